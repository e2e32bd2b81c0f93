"""The simulated client's goals, read from the sections of its system prompt.

The shipped client prompt renders these sections (the documented convention)::

    Shopping list:
    - 2 boxes of chilled chicken fillet
    - 1 kg of salmon fillet
    Delivery date change: 2024-01-18        (optional)
    Address change: 2                        (optional; number in the client's locations)
    Patience: 2                              (1 = impatient ... 3 = very patient)

Goals are worked through in the order their lines appear. A shopping-list bullet that itself
reads "Delivery date change: <date>" or "Address change: <n>" is a change request at that
position, which lets a scenario ask for a change before (or between) products.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_SHOPPING_LIST_RE = re.compile(r"^\s*shopping list\s*:\s*$", re.IGNORECASE | re.MULTILINE)
_BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(?P<text>.+?)\s*$")
_DELIVERY_RE = re.compile(r"^\s*delivery date change\s*:\s*(\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)
_ADDRESS_RE = re.compile(r"^\s*address change\s*:\s*(\d+)\b", re.IGNORECASE)
_PATIENCE_RE = re.compile(r"^\s*patience\s*:\s*(\d+)", re.IGNORECASE | re.MULTILINE)

DEFAULT_PATIENCE = 2

GoalKind = Literal["product", "delivery", "address"]


@dataclass(frozen=True)
class Goal:
    """One thing the client wants from the call."""

    kind: GoalKind
    value: str
    """The shopping-list line, the new date (YYYY-MM-DD) or the address number."""

    @property
    def marker(self) -> str:
        """Lower-case text that every phrasing of this request contains verbatim."""
        if self.kind == "product":
            return " ".join(self.value.lower().split())
        if self.kind == "delivery":
            return self.value
        return f"address number {self.value}"


@dataclass(frozen=True)
class Persona:
    """The client's goals in order, and how much failure it tolerates."""

    goals: tuple[Goal, ...]
    patience: int
    has_shopping_list: bool

    @property
    def turn_budget(self) -> int:
        """How many of its own turns the client sits through before giving up."""
        return len(self.goals) + 2 + self.patience * 2


def _change_goal(line: str) -> Goal | None:
    if match := _DELIVERY_RE.match(line):
        return Goal(kind="delivery", value=match.group(1))
    if match := _ADDRESS_RE.match(line):
        return Goal(kind="address", value=match.group(1))
    return None


def parse_persona(system_prompt: str) -> Persona:
    """Read the goal sections; missing sections mean no such goal (and patience 2)."""
    goals: list[Goal] = []
    lines = system_prompt.splitlines()
    list_start = next(
        (index for index, line in enumerate(lines) if _SHOPPING_LIST_RE.match(line)), None
    )
    index = 0
    while index < len(lines):
        line = lines[index]
        if list_start is not None and index == list_start:
            index += 1
            # The list runs over consecutive bullets; blank lines inside it are tolerated.
            while index < len(lines):
                bullet = _BULLET_RE.match(lines[index])
                if bullet:
                    text = bullet.group("text")
                    goals.append(_change_goal(text) or Goal(kind="product", value=text))
                elif lines[index].strip():
                    break
                index += 1
            continue
        if change := _change_goal(line):
            goals.append(change)
        index += 1
    patience_match = _PATIENCE_RE.search(system_prompt)
    patience = int(patience_match.group(1)) if patience_match else DEFAULT_PATIENCE
    return Persona(
        goals=tuple(goals), patience=max(1, patience), has_shopping_list=list_start is not None
    )
