"""AutoGen's runtime quiet when nobody listens (`_quiet_runtime`): nothing else changes.

Transcripts, tokens, tool calls and the bytes on the wire are the same with and without; once
a tracer provider is set, AutoGen's spans are emitted as before, attributes included.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams._group_chat._events import GroupChatMessage
from autogen_core import (
    EVENT_LOGGER_NAME,
    SingleThreadedAgentRuntime,
    try_get_known_serializers_for_type,
)
from opentelemetry import trace

from conversation_engine.engines import create_engine, resolve_engine
from conversation_engine.engines.autogen import _quiet_runtime
from conversation_engine.tools.shop import EmulatedShop
from tests.llm.test_sdk_fast_path import CapturingTransport, comparable, simulated

pytestmark = pytest.mark.usefixtures("installed")

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def installed() -> None:
    assert _quiet_runtime.install(), "AutoGen's runtime no longer has the seams we wrap"


class RecordingTracer(trace.NoOpTracer):
    """A tracer that notes each span's name and attributes (no OpenTelemetry SDK needed)."""

    def __init__(self, spans: list[tuple[str, dict[str, Any]]]) -> None:
        self.spans = spans

    def start_span(  # type: ignore[override]
        self, name: str, context: Any = None, kind: Any = None, attributes: Any = None, *_: Any
    ) -> trace.Span:
        self.spans.append((name, dict(attributes or {})))
        return trace.INVALID_SPAN

    @contextlib.contextmanager  # type: ignore[override]
    def start_as_current_span(
        self, name: str, context: Any = None, kind: Any = None, attributes: Any = None, *_: Any
    ) -> Iterator[trace.Span]:
        yield self.start_span(name, context, kind, attributes)


class RecordingTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []

    def get_tracer(self, *_: Any, **__: Any) -> trace.Tracer:
        return RecordingTracer(self.spans)


@pytest.fixture
def global_tracer(monkeypatch: pytest.MonkeyPatch) -> RecordingTracerProvider:
    """A tracer provider set as the global one (as `trace.set_tracer_provider` sets it),
    restored after the test."""
    provider = RecordingTracerProvider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    return provider


def message() -> GroupChatMessage:
    return GroupChatMessage(message=TextMessage(content="Привет 🛒", source="agent"))


def runtime_of_messages() -> SingleThreadedAgentRuntime:
    """A runtime that knows how to serialise `message()`, as a team's runtime does."""
    runtime = SingleThreadedAgentRuntime()
    runtime.add_message_serializer(try_get_known_serializers_for_type(GroupChatMessage))
    return runtime


def test_nobody_listening_gets_no_payload_and_no_span() -> None:
    runtime = runtime_of_messages()
    assert _quiet_runtime.tracing_off(runtime._tracer_helper)
    assert runtime._try_serialize(message()) == ""
    with runtime._tracer_helper.trace_block("publish", "topic", parent=None) as span:
        assert span is trace.INVALID_SPAN
    with _quiet_runtime.keeping_runtime_telemetry():
        assert "Привет" in runtime._try_serialize(message())


def test_an_enabled_event_logger_gets_its_payloads(caplog: pytest.LogCaptureFixture) -> None:
    runtime = runtime_of_messages()
    with caplog.at_level(logging.INFO, logger=EVENT_LOGGER_NAME):
        assert "Привет" in runtime._try_serialize(message())


def test_a_tracer_provider_set_later_gets_spans_of_a_running_runtime(
    global_tracer: RecordingTracerProvider,
) -> None:
    runtime = runtime_of_messages()  # may well be built before tracing is configured
    assert not _quiet_runtime.tracing_off(runtime._tracer_helper)
    assert "Привет" in runtime._try_serialize(message())
    with runtime._tracer_helper.trace_block("publish", "topic", parent=None):
        pass
    assert [name for name, _ in global_tracer.spans] == ["autogen publish topic"]


async def play(spec: str, count: int = 4) -> tuple[list[bytes], list[dict[str, Any]]]:
    from benchmarks._common import shipped_scenarios

    transport = CapturingTransport(_simulated_llm())
    async with simulated(transport) as wrapper:
        engine = create_engine(
            resolve_engine("autogen"), wrapper, spec, tool_backend=EmulatedShop()
        )
        results = [
            comparable(await engine.run_conversation_with_tools(scenario))
            for scenario in shipped_scenarios(count)
        ]
    return transport.bodies, results


def _simulated_llm() -> Any:
    from conversation_engine.testing.simulated_llm import SimulatedLLMTransport

    return SimulatedLLMTransport()


@pytest.mark.parametrize("spec", ["multiagent_prompts", "default_prompts"])
async def test_conversations_are_the_same_with_and_without(spec: str) -> None:
    quiet_bodies, quiet_results = await play(spec)
    with _quiet_runtime.keeping_runtime_telemetry():
        kept_bodies, kept_results = await play(spec)
    assert len(quiet_bodies) > 20
    assert quiet_bodies == kept_bodies
    assert quiet_results == kept_results
    assert all(result["status"] == "completed" for result in quiet_results)


async def test_with_a_tracer_provider_autogen_s_spans_are_emitted_as_before(
    global_tracer: RecordingTracerProvider,
) -> None:
    await play("multiagent_prompts", count=2)
    quiet = list(global_tracer.spans)
    global_tracer.spans.clear()
    with _quiet_runtime.keeping_runtime_telemetry():
        await play("multiagent_prompts", count=2)
    kept = list(global_tracer.spans)

    def shape(spans: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[str]]]:
        # Span names carry the ids of each run's agents and topics.
        return [(UUID.sub("<id>", name), sorted(attributes)) for name, attributes in spans]

    assert len(quiet) > 50 and shape(quiet) == shape(kept)
    payloads = [attributes["message"] for _, attributes in quiet if "message" in attributes]
    assert payloads and all(payload for payload in payloads)  # serialised, not left empty
