"""Whose model call this is, in which conversation: context that travels with every call.

Recording, replay and tracing see a model call at the HTTP transport or in the endpoint,
where the request alone does not say who made it. The code that decides to call the model
says so here instead, and context variables carry it down the await chain (and into the tasks
AutoGen's runtime starts, which copy the context of the code that starts them).

Roles: an agent id for the bot's agents, `CLIENT_ROLE` for the simulated customer,
`EVALUATOR_ROLE` for the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

CLIENT_ROLE = "client"
EVALUATOR_ROLE = "evaluator"


@dataclass(slots=True)
class ConversationRef:
    """Which conversation is running: what a batch knows of it, then its session id.

    `side` names the side of a comparison ("a"/"b"); None outside one. `session_id` is set by
    the engine once the scenario's variables are prepared. `calls` counts the model calls made
    in this conversation so far (every role), so each call has its order.
    """

    scenario: str
    trial: int = 0
    side: str | None = None
    session_id: str | None = None
    calls: int = field(default=0)
    _on_end: list[Callable[[], None]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def next_call(self) -> int:
        """Number the next model call of this conversation (1, 2, ...)."""
        self.calls += 1
        return self.calls

    def when_ended(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the conversation ends: its outermost `in_conversation`
        block exits (a batch's row, the evaluator included; a lone engine call otherwise).

        Per-conversation state kept elsewhere (a recording's open file, a replay's queues)
        is released there, so a long batch holds only the conversations in flight.
        """
        self._on_end.append(callback)

    def _end(self) -> None:
        callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            callback()


_CONVERSATION: ContextVar[ConversationRef | None] = ContextVar(
    "conversation_engine_conversation", default=None
)
_ROLE: ContextVar[str | None] = ContextVar("conversation_engine_role", default=None)


def current_conversation() -> ConversationRef | None:
    """The conversation the running code belongs to; None outside any."""
    return _CONVERSATION.get()


@contextmanager
def in_conversation(ref: ConversationRef) -> Iterator[ConversationRef]:
    """Run the block as part of conversation `ref`; leaving the outermost block for `ref`
    ends the conversation (`ConversationRef.when_ended`)."""
    outermost = _CONVERSATION.get() is not ref
    token = _CONVERSATION.set(ref)
    try:
        yield ref
    finally:
        _CONVERSATION.reset(token)
        if outermost:
            ref._end()


def current_role() -> str | None:
    """Who is calling the model: an agent id, `CLIENT_ROLE` or `EVALUATOR_ROLE`; None if unsaid."""
    return _ROLE.get()


@contextmanager
def speaking_as(role: str) -> Iterator[None]:
    """Make the model calls of the block on behalf of `role`."""
    token = _ROLE.set(role)
    try:
        yield
    finally:
        _ROLE.reset(token)


def set_role(role: str) -> None:
    """Say who calls the model from here on in the current context.

    For code that cannot hold a `with` block around its calls, such as an AutoGen agent's
    async generator (resetting across its yields could run in another context). Each agent
    handles its messages in a task of its own, so the role set there stays its own.
    """
    _ROLE.set(role)
