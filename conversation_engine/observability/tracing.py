"""OpenTelemetry traces of conversations, built from the event stream (`observability.events`).

One trace per conversation, the same tree on every engine, so A/B traces compare:

    conversation <scenario>                      scenario, trial, side, session id, engine,
    ├── exchange <n>                             spec, status, end reason
    │   ├── invoke_agent <agent id>              one per agent's stretch of speech
    │   │   ├── chat <model>                     GenAI conventions: role, tokens, finish reason
    │   │   ├── execute_tool <tool>              arguments size, outcome
    │   │   └── handoff <source> -> <target>
    │   └── chat <model>                         the customer's reply (role `client`)
    └── chat <model>                             the evaluator's score (role `evaluator`)

Attribute names follow the OpenTelemetry GenAI semantic conventions where one exists
(`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...) and
are `conversation_engine.*` otherwise. No span holds what was said, tool arguments or
results (only their size and outcome), nor anything of the endpoint's configuration: traces
leave the machine, and a secret must not go with them.

While an exchange runs, its span is the current OpenTelemetry span of the conversation's
task, so spans others make inside it (AutoGen's runtime, which uses the global tracer
provider) nest under ours. `traced` sets the global provider for that reason.

The SDK and exporters are the optional `[trace]` extra; the API alone (an AutoGen
dependency) is enough to import this module.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from conversation_engine.core.call_context import CLIENT_ROLE, EVALUATOR_ROLE, ConversationRef
from conversation_engine.observability.events import (
    ConversationEnded,
    ConversationStarted,
    Event,
    ExchangeEnded,
    ExchangeStarted,
    Handoff,
    ModelCallEnded,
    ModelCallStarted,
    ToolCallEnded,
    ToolCallRetried,
    ToolCallStarted,
    observing,
)

TRACER_NAME = "conversation_engine"
#: How many ended conversations keep their span for late children (the evaluator's call).
_ENDED_KEPT = 1024
_NOT_AGENTS = frozenset({CLIENT_ROLE, EVALUATOR_ROLE})

_enabled = 0


def tracing_enabled() -> bool:
    """Whether traces are being made in this process (`tracing` or `traced` is active).

    Code that would otherwise pay for spans nobody exports (AutoGen's runtime) checks this.
    """
    return _enabled > 0


@dataclass
class _Conversation:
    """The open spans of one conversation."""

    ref: ConversationRef
    span: Span
    token: object | None = None
    exchange: Span | None = None
    exchange_token: object | None = None
    agent: str | None = None
    agent_span: Span | None = None
    turns: dict[str, Span] = field(default_factory=dict)
    """The last turn span of each agent in the exchange (a late handoff event finds its own)."""
    open: dict[int, Span] = field(default_factory=dict)
    """Model and tool call spans in flight, by call id."""


class SpanBuilder:
    """An event sink that turns the event stream into spans on `tracer_provider`."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer(TRACER_NAME)
        self._live: dict[int, _Conversation] = {}
        self._ended: OrderedDict[int, _Conversation] = OrderedDict()
        self._calls: dict[int, Span] = {}
        """Call spans outside any conversation, by call id."""

    def __call__(self, event: Event) -> None:
        ref = event.conversation
        if isinstance(event, ConversationStarted):
            self._start_conversation(event)
            return
        state = self._live.get(id(ref)) if ref is not None else None
        if state is None:
            self._outside(event, ref)
        elif isinstance(event, ConversationEnded):
            self._end_conversation(state, event)
        elif isinstance(event, ExchangeStarted):
            self._start_exchange(state, event)
        elif isinstance(event, ExchangeEnded):
            self._end_exchange(state, event.at_ns)
        elif isinstance(event, ModelCallStarted | ToolCallStarted):
            self._start_call(state, event)
        elif isinstance(event, ModelCallEnded | ToolCallEnded):
            span = state.open.pop(event.call_id, None)
            if span is not None:
                _end_call(span, event)
        elif isinstance(event, ToolCallRetried):
            _count_retry(state.open.get(event.call_id), event)
        elif isinstance(event, Handoff):
            self._handoff(state, event)

    # Conversations and exchanges ---------------------------------------------------------

    def _start_conversation(self, event: ConversationStarted) -> None:
        ref = event.conversation
        if ref is None:
            return
        attributes: dict[str, Any] = {
            "conversation_engine.scenario": ref.scenario,
            "conversation_engine.trial": ref.trial,
            "conversation_engine.engine": event.engine,
            "conversation_engine.spec": event.spec,
            "conversation_engine.tools": event.tools,
        }
        if ref.side is not None:
            attributes["conversation_engine.side"] = ref.side
        span = self._tracer.start_span(
            f"conversation {ref.scenario}",
            context=otel_context.Context(),  # a trace of its own, whatever runs around it
            attributes=attributes,
            start_time=event.at_ns,
        )
        state = _Conversation(ref, span)
        # Current for the conversation's task: other libraries' spans nest under it.
        state.token = otel_context.attach(trace.set_span_in_context(span))
        self._live[id(ref)] = state

    def _end_conversation(self, state: _Conversation, event: ConversationEnded) -> None:
        self._end_exchange(state, event.at_ns)
        for span in state.open.values():
            span.set_status(Status(StatusCode.ERROR, "the conversation ended first"))
            span.end(event.at_ns)
        state.open.clear()
        span = state.span
        if state.ref.session_id:
            span.set_attribute("conversation_engine.session_id", state.ref.session_id)
            span.set_attribute("gen_ai.conversation.id", state.ref.session_id)
        span.set_attribute("conversation_engine.status", event.status)
        span.set_attribute("conversation_engine.turns", event.turns)
        if event.end_reason:
            span.set_attribute("conversation_engine.end_reason", str(event.end_reason))
        if event.error_type:
            span.set_attribute("error.type", event.error_type)
        if event.status.startswith("failed"):
            span.set_status(Status(StatusCode.ERROR, event.status))
        span.end(event.at_ns)
        _detach(state.token)
        del self._live[id(state.ref)]
        self._ended[id(state.ref)] = state
        while len(self._ended) > _ENDED_KEPT:
            self._ended.popitem(last=False)

    def _start_exchange(self, state: _Conversation, event: ExchangeStarted) -> None:
        self._end_exchange(state, event.at_ns)
        state.exchange = self._tracer.start_span(
            f"exchange {event.number}",
            context=trace.set_span_in_context(state.span),
            attributes={"conversation_engine.exchange": event.number},
            start_time=event.at_ns,
        )
        state.exchange_token = otel_context.attach(trace.set_span_in_context(state.exchange))

    def _end_exchange(self, state: _Conversation, at_ns: int) -> None:
        self._end_agent_turn(state, at_ns)
        state.turns.clear()
        if state.exchange is not None:
            state.exchange.end(at_ns)
            state.exchange = None
            _detach(state.exchange_token)
            state.exchange_token = None

    # Agent turns ---------------------------------------------------------------------------

    def _agent_turn(self, state: _Conversation, agent: str, at_ns: int) -> Span:
        if state.agent == agent and state.agent_span is not None:
            return state.agent_span
        self._end_agent_turn(state, at_ns)
        parent = state.exchange or state.span
        span = self._tracer.start_span(
            f"invoke_agent {agent}",
            context=trace.set_span_in_context(parent),
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": agent,
                "gen_ai.agent.id": agent,
            },
            start_time=at_ns,
        )
        state.agent, state.agent_span = agent, span
        state.turns[agent] = span
        return span

    def _end_agent_turn(self, state: _Conversation, at_ns: int) -> None:
        if state.agent_span is not None:
            state.agent_span.end(at_ns)
        state.agent, state.agent_span = None, None

    def _parent_of(self, state: _Conversation, role: str | None, at_ns: int) -> Span:
        """Where a call of `role` goes: its agent's turn, the exchange (the customer), or the
        conversation (the evaluator, or a call between exchanges)."""
        if state.exchange is None:
            return state.span
        if role is not None and role not in _NOT_AGENTS:
            return self._agent_turn(state, role, at_ns)
        return state.exchange

    # Calls and handoffs ---------------------------------------------------------------------

    def _start_call(self, state: _Conversation, event: ModelCallStarted | ToolCallStarted) -> None:
        parent = self._parent_of(state, event.role, event.at_ns)
        state.open[event.call_id] = self._call_span(event, parent)

    def _handoff(self, state: _Conversation, event: Handoff) -> None:
        parent = state.turns.get(event.source) or self._parent_of(state, event.source, event.at_ns)
        span = self._tracer.start_span(
            f"handoff {event.source} -> {event.target}",
            context=trace.set_span_in_context(parent),
            attributes={
                "conversation_engine.handoff.source": event.source,
                "conversation_engine.handoff.target": event.target,
            },
            start_time=event.at_ns,
        )
        span.end(event.at_ns)

    def _call_span(self, event: ModelCallStarted | ToolCallStarted, parent: Span | None) -> Span:
        context = (
            trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        )
        attributes: dict[str, Any] = {}
        if event.role is not None:
            attributes["conversation_engine.role"] = event.role
        if isinstance(event, ModelCallStarted):
            attributes.update(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": event.model,
                }
            )
            return self._tracer.start_span(
                f"chat {event.model}",
                context=context,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=event.at_ns,
            )
        attributes.update(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": event.name,
                "conversation_engine.tool.arguments_size": len(event.arguments.encode()),
                "conversation_engine.tool.retries": 0,
            }
        )
        return self._tracer.start_span(
            f"execute_tool {event.name}",
            context=context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=event.at_ns,
        )

    def _outside(self, event: Event, ref: ConversationRef | None) -> None:
        """A call outside a live conversation: the evaluator after it ended, or no
        conversation at all (its own trace)."""
        ended = self._ended.get(id(ref)) if ref is not None else None
        if ended is not None and ended.ref is not ref:
            ended = None
        if isinstance(event, ModelCallStarted | ToolCallStarted):
            parent = ended.span if ended is not None else None
            self._calls[event.call_id] = self._call_span(event, parent)
        elif isinstance(event, ModelCallEnded | ToolCallEnded):
            span = self._calls.pop(event.call_id, None)
            if span is not None:
                _end_call(span, event)
        elif isinstance(event, ToolCallRetried):
            _count_retry(self._calls.get(event.call_id), event)


def _count_retry(span: Span | None, event: ToolCallRetried) -> None:
    if span is not None:
        span.set_attribute("conversation_engine.tool.retries", event.attempt)


def _end_call(span: Span, event: ModelCallEnded | ToolCallEnded) -> None:
    if isinstance(event, ToolCallEnded):
        span.set_attribute("conversation_engine.tool.outcome", "error" if event.is_error else "ok")
        span.set_attribute("conversation_engine.tool.result_size", len(event.result.encode()))
        if event.is_error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(event.at_ns)
        return
    if event.response_model:
        span.set_attribute("gen_ai.response.model", event.response_model)
    span.set_attribute("gen_ai.usage.input_tokens", event.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", event.output_tokens)
    if event.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [event.finish_reason])
    if event.status_code is not None:
        span.set_attribute("http.response.status_code", event.status_code)
    if event.error:
        span.set_attribute("error.type", event.error)
        span.set_status(Status(StatusCode.ERROR, event.error))
    span.end(event.at_ns)


def _detach(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


@contextmanager
def tracing(tracer_provider: trace.TracerProvider | None = None) -> Iterator[SpanBuilder]:
    """Make spans of the conversations run in the block, on `tracer_provider` (default: the
    global one)."""
    global _enabled
    builder = SpanBuilder(tracer_provider)
    _enabled += 1
    try:
        with observing(builder):
            yield builder
    finally:
        _enabled -= 1


@contextmanager
def traced(target: str | None) -> Iterator[None]:
    """The CLI's `--trace TARGET` (`otlp` or a JSON Lines file): trace the block, and flush
    every span before it returns.

    The provider also becomes the process's global one (when none was set before), so that
    AutoGen's runtime spans reach the same exporter, under ours.
    """
    if not target:
        yield
        return
    from conversation_engine.observability.exporters import tracer_provider_for

    provider = tracer_provider_for(target)
    trace.set_tracer_provider(provider)
    try:
        with tracing(provider):
            yield
    finally:
        provider.shutdown()  # flushes the batch processor
