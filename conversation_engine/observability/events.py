"""The one event stream of a conversation: what happened, in order, as it happens.

The engines, the customer, the shared tools and the model endpoint say what they do here;
the tracer (`observability.tracing`), the live transcript (`observability.follow`) and the
cost budget (`observability.budget`) listen. A listener is a *sink*: any callable taking an
`Event`, installed for a block of code with `observing(sink)`. Sinks travel in a context
variable, like the call context (`core.call_context`), so every task a conversation starts
(AutoGen's runtime tasks included) reports to the sinks of the code that started it, and two
commands in one process never see each other's events.

Nothing listening costs one context-variable read per emission point: callers guard with
`observed()` before they build an event. A sink that raises is logged and dropped from that
emission, never allowed to break a conversation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import count

from conversation_engine.core.call_context import (
    ConversationRef,
    current_conversation,
    current_role,
)

logger = logging.getLogger(__name__)


def _now_ns() -> int:
    return time.time_ns()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every event says: when, in which conversation, on whose behalf."""

    conversation: ConversationRef | None = field(default_factory=current_conversation)
    """The conversation it belongs to (None outside any)."""
    role: str | None = field(default_factory=current_role)
    """Who was acting: an agent id, `client`, `evaluator`; None if unsaid."""
    at_ns: int = field(default_factory=_now_ns)
    """Wall-clock time, nanoseconds since the epoch (what OpenTelemetry takes)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationStarted(Event):
    """An engine began a conversation (its session id is known from here on)."""

    engine: str
    spec: str
    tools: bool
    """Tools mode (`run_conversation_with_tools`) rather than basic mode."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationEnded(Event):
    """The conversation's result is decided."""

    status: str
    end_reason: str | None = None
    error_type: str | None = None
    turns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeStarted(Event):
    """Exchange `number` began: the bot's turn and the customer's reply."""

    number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeEnded(Event):
    """Exchange `number` is over (normally, or cut short)."""

    number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMessage(Event):
    """An agent said `text` to the customer (`agent`: its spec id)."""

    agent: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMessage(Event):
    """The customer said `text`, or hung up (`hung_up`, `text` is then its reason)."""

    text: str
    hung_up: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallStarted(Event):
    """A tool call began (`call_id` pairs it with its `ToolCallEnded`)."""

    call_id: int
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallEnded(Event):
    """A tool call's result, as the model gets it (JSON text)."""

    call_id: int
    name: str
    result: str
    is_error: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRetried(Event):
    """Attempt `attempt` (1, 2, ...) of tool call `call_id` failed and is tried again (the
    HTTP tool API's retries). No reason: an error text may echo the API's credentials."""

    call_id: int
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff(Event):
    """Agent `source` passed the conversation to agent `target`."""

    source: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallStarted(Event):
    """A chat completion request left for the model (`call_id` pairs it with its end)."""

    call_id: int
    model: str
    """The model name the request asked for (what a budget prices)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallEnded(Event):
    """A chat completion's answer, or its failure (`error`: the exception's type name)."""

    call_id: int
    model: str
    response_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    status_code: int | None = None
    error: str | None = None


Sink = Callable[[Event], object]
"""A listener: called with every event emitted inside its `observing` block."""

_SINKS: ContextVar[tuple[Sink, ...]] = ContextVar("conversation_engine_sinks", default=())
_TOOL_CALL: ContextVar[int | None] = ContextVar("conversation_engine_tool_call", default=None)
_IDS = count(1)


def observed() -> bool:
    """Whether anything listens here; check it before building an event."""
    return bool(_SINKS.get())


def next_id() -> int:
    """A process-unique number pairing a start event with its end."""
    return next(_IDS)


def emit(event: Event) -> None:
    """Hand `event` to every sink listening here."""
    for sink in _SINKS.get():
        try:
            sink(event)
        except Exception:  # a listener's bug must not end a conversation
            logger.exception("An event listener failed on %s", type(event).__name__)


@contextmanager
def observing(*sinks: Sink) -> Iterator[None]:
    """Hand the events emitted in the block (and in tasks it starts) to `sinks` too."""
    token = _SINKS.set(_SINKS.get() + sinks)
    try:
        yield
    finally:
        _SINKS.reset(token)


@contextmanager
def exchange(number: int) -> Iterator[None]:
    """Mark the block as exchange `number` of the current conversation (when observed)."""
    if not observed():
        yield
        return
    emit(ExchangeStarted(number=number))
    try:
        yield
    finally:
        emit(ExchangeEnded(number=number))


@contextmanager
def in_tool_call(call_id: int) -> Iterator[None]:
    """Mark the block as tool call `call_id`, so a backend deep inside can say it retried
    (`tool_call_retried`) without knowing the call."""
    token = _TOOL_CALL.set(call_id)
    try:
        yield
    finally:
        _TOOL_CALL.reset(token)


def tool_call_retried(attempt: int) -> None:
    """The tool call in progress here failed attempt `attempt` and is tried again."""
    call_id = _TOOL_CALL.get()
    if call_id is not None and observed():
        emit(ToolCallRetried(call_id=call_id, attempt=attempt))


def say(event_type: type[AgentMessage] | type[ClientMessage], **fields: object) -> None:
    """Emit a message event when observed (the guard and the emission in one call)."""
    if observed():
        emit(event_type(**fields))  # type: ignore[arg-type]
