"""How `chat` shows the agents' side of each exchange as it comes back (rich).

One line per agent entry: the agent's display name and what it said; under it each tool call
folded to one line (`↳ name(arguments) → short result`) and each handoff
(`⇢ hands off to Support Agent`); an agent's hang-up says so. Everything here came from
outside (the model, the tools): shown as plain text, never read as console markup, with
escape sequences and control characters removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text

from conversation_engine.core._safe_text import terminal_safe
from conversation_engine.core.contract import (
    CLIENT_SPEAKER,
    END_CALL_TOOL,
    HANDOFF_PREFIX,
    HistoryEntry,
)

_AGENT_STYLES = ("cyan", "magenta", "blue", "yellow", "bright_cyan", "bright_magenta")

#: How many characters of a tool's arguments or result a folded line shows.
ARGUMENTS_CHARS = 60
RESULT_CHARS = 70


def folded(value: Any, limit: int) -> str:
    """`value` as one short line: JSON for data, cut with `…` past `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(terminal_safe(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arguments(raw: str) -> str:
    """`key=value, ...` of a call's JSON arguments, without the spoken `execution_message`."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return folded(raw, ARGUMENTS_CHARS)
    if not isinstance(parsed, dict):
        return folded(raw, ARGUMENTS_CHARS)
    parsed.pop("execution_message", None)
    text = ", ".join(f"{key}={folded(value, 30)}" for key, value in parsed.items())
    return folded(text, ARGUMENTS_CHARS)


class TurnView:
    """Renders agent entries, giving each agent one colour for the whole chat."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = names
        self._styles: dict[str, str] = {}

    def name_of(self, speaker_or_agent: str) -> str:
        """The display name of a speaker id (`agent_sales`) or an agent id (`sales`)."""
        return terminal_safe(self._names.get(speaker_or_agent, speaker_or_agent))

    def lines(self, entries: Iterable[HistoryEntry]) -> list[Text]:
        """The lines of the agents' entries of one exchange (client entries are skipped)."""
        lines: list[Text] = []
        for entry in entries:
            if entry.speaker != CLIENT_SPEAKER:
                lines.extend(self._entry_lines(entry))
        return lines

    def _entry_lines(self, entry: HistoryEntry) -> list[Text]:
        style = self._styles.setdefault(
            entry.speaker, _AGENT_STYLES[len(self._styles) % len(_AGENT_STYLES)]
        )
        speaker = self.name_of(entry.speaker)
        lines: list[Text] = []
        if entry.content.strip() or not entry.tool_calls:
            line = Text(f"{speaker}: ", style=f"bold {style}")
            line.append(terminal_safe(entry.content) or "(says nothing)")
            lines.append(line)
        results = entry.tool_results or []
        for index, call in enumerate(entry.tool_calls or []):
            name = call.function.name
            if name.startswith(HANDOFF_PREFIX):
                target = self.name_of(name[len(HANDOFF_PREFIX) :])
                lines.append(Text(f"  ⇢ {speaker} hands off to {target}", style="bold yellow"))
                continue
            if name == END_CALL_TOOL:
                lines.append(Text(f"  ☎ {speaker} ends the call", style="bold yellow"))
                continue
            detail = Text(f"  ↳ {terminal_safe(name)}({_arguments(call.function.arguments)})")
            detail.stylize("dim")
            if index < len(results):
                detail.append(f" → {folded(results[index], RESULT_CHARS)}", style="dim italic")
            lines.append(detail)
        return lines
