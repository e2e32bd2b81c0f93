"""The bot side of a conversation: what an engine supplies to the shared driver.

The driver (`engines.driver`) owns the exchange loop, the simulated customer and the outcome;
a bot answers what the customer said. The AutoGen Swarm and the legacy baseline are two bots,
so both sides of an A/B comparison face the same customer by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from conversation_engine.core.contract import HistoryEntry


@dataclass
class BotTurn:
    """What the agent side did in one exchange."""

    entries: list[HistoryEntry] = field(default_factory=list)
    """The agents' history entries of the exchange, in order (several after a handoff)."""
    spoken: str = ""
    """What the customer hears: all the agents' words of the exchange, joined."""
    ended_call: bool = False
    """An agent hung up (`end_call` ran, or the legacy terminate word was said)."""
    capped: bool = False
    """The per-exchange bound on model calls stopped an agent mid tool loop."""


class Bot(Protocol):
    """One conversation's agent side, built fresh for each conversation."""

    async def respond(self, heard: str | None, *, turn: int) -> BotTurn:
        """Answer the customer's words (`None`: the bot opens the conversation)."""
        ...

    def unfinished(self) -> list[HistoryEntry]:
        """The entries of an exchange cut short by a failure or the deadline, kept as history."""
        ...


@runtime_checkable
class RewindableBot(Bot, Protocol):
    """A bot whose state can be saved between exchanges and restored, so a customer can take
    back a line (`chat`'s `/undo`). Tool side effects in a backend are not part of it."""

    async def save_state(self) -> object:
        """The agents' state between exchanges (contexts, current agent); opaque to callers."""
        ...

    async def load_state(self, state: object) -> None:
        """Return to a state `save_state` gave; the exchange after it can be played again."""
        ...
