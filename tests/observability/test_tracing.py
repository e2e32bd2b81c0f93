"""The span tree of a handoff conversation, the same on both engines, from the event stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import respx

from conversation_engine.core.call_context import ConversationRef, in_conversation
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.observability.exporters import tracer_provider_for
from conversation_engine.observability.tracing import tracing, tracing_enabled
from conversation_engine.testing.simulated_llm import SimulatedLLMTransport
from conversation_engine.tools.http import HttpToolBackend
from conversation_engine.tools.session import SessionTools
from conversation_engine.tools.shop import EmulatedShop
from tests.observability.conftest import Spans
from tests.shop import HANDOFF_SCENARIO


async def _traced_run(engine_class: type[ContractEngine], spans: Spans, wrapper: OpenAIWrapper):
    engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
    with tracing(spans.provider):
        return await engine.run_conversation_with_tools(HANDOFF_SCENARIO, 4)


async def test_a_handoff_conversation_makes_the_span_tree(
    engine_class: type[ContractEngine], spans: Spans
) -> None:
    async with OpenAIWrapper.simulated() as wrapper:
        result = await _traced_run(engine_class, spans, wrapper)

    roots = [s for s in spans.finished if s.parent is None]
    assert [r.name for r in roots] == ["conversation butter and a new date"]
    root = roots[0]
    attributes = dict(root.attributes or {})
    assert attributes["conversation_engine.session_id"] == result["session_id"]
    assert attributes["conversation_engine.status"] == result["status"] == "completed"
    assert attributes["conversation_engine.end_reason"] == result["end_reason"]
    assert attributes["conversation_engine.engine"] == engine_class.__name__
    assert attributes["conversation_engine.spec"] == "multiagent_prompts"
    assert {s.context.trace_id for s in spans.finished} == {root.context.trace_id}

    exchanges = spans.children(root)
    assert [e.name for e in exchanges] == [f"exchange {n}" for n in range(1, len(exchanges) + 1)]
    turns = [t for e in exchanges for t in spans.children(e) if t.name.startswith("invoke_agent")]
    # The sales agent hands off to support within one exchange: two turns, the handoff in the
    # first, each turn's calls its own.
    handoffs = [
        (turn, child)
        for turn in turns
        for child in spans.children(turn)
        if child.name.startswith("handoff")
    ]
    assert [h.name for _, h in handoffs] == ["handoff agent -> support"]
    assert handoffs[0][0].name == "invoke_agent agent"
    for turn in turns:
        agent = turn.name.removeprefix("invoke_agent ")
        for child in spans.children(turn):
            assert child.name.split()[0] in {"chat", "execute_tool", "handoff"}
            if child.name.startswith(("chat", "execute_tool")):
                assert child.attributes["conversation_engine.role"] == agent
    chats = [s for s in spans.finished if s.name.startswith("chat")]
    assert len(chats) == result["usage"]["calls"]
    assert (
        sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats)
        == (result["usage"]["prompt_tokens"])
    )
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "simulated"
        assert chat.attributes["gen_ai.response.finish_reasons"]
    # The customer's calls hang from the exchange itself.
    client_chats = [c for c in chats if c.attributes["conversation_engine.role"] == "client"]
    exchange_ids = {e.context.span_id for e in exchanges}
    assert client_chats and all(c.parent.span_id in exchange_ids for c in client_chats)
    tools = [s for s in spans.finished if s.name.startswith("execute_tool")]
    assert {"execute_tool change_delivery_date"} <= {t.name for t in tools}
    assert all(t.attributes["conversation_engine.tool.outcome"] == "ok" for t in tools)


async def test_both_engines_make_the_same_tree() -> None:
    shapes = []
    for engine_class in (AutogenConversationEngine, LegacyConversationEngine):
        memory = Spans()
        async with OpenAIWrapper.simulated() as wrapper:
            await _traced_run(engine_class, memory, wrapper)
        (root,) = [s for s in memory.finished if s.parent is None]
        shapes.append(memory.shape(root))
    assert shapes[0] == shapes[1]


async def test_no_secret_reaches_a_span() -> None:
    secret = "sk-test-observability-secret-0123456789"
    memory = Spans()
    async with OpenAIWrapper(
        secret, "simulated", base_url="http://llm.internal/v1", transport=SimulatedLLMTransport()
    ) as wrapper:
        await _traced_run(LegacyConversationEngine, memory, wrapper)
    assert memory.finished
    for span in memory.finished:
        text = json.dumps({"name": span.name, **dict(span.attributes or {})}, default=str)
        assert secret not in text and "llm.internal" not in text


async def test_concurrent_conversations_get_a_trace_each(spans: Spans) -> None:
    async with OpenAIWrapper.simulated() as wrapper:
        engine = LegacyConversationEngine(
            wrapper, "multiagent_prompts", tool_backend=EmulatedShop()
        )

        async def one(trial: int) -> None:
            with in_conversation(ConversationRef("s", trial=trial)):
                await engine.run_conversation_with_tools(HANDOFF_SCENARIO, 3)

        with tracing(spans.provider):
            await asyncio.gather(*(one(trial) for trial in range(3)))
    roots = [s for s in spans.finished if s.parent is None]
    assert sorted(r.attributes["conversation_engine.trial"] for r in roots) == [0, 1, 2]
    for root in roots:
        trace_spans = [s for s in spans.finished if s.context.trace_id == root.context.trace_id]
        assert all(s is root or s.parent is not None for s in trace_spans)


async def test_tracing_is_on_only_inside_its_block(spans: Spans) -> None:
    assert not tracing_enabled()
    with tracing(spans.provider):
        assert tracing_enabled()
    assert not tracing_enabled()


async def test_a_json_lines_file_holds_one_span_a_line(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "run.jsonl"
    provider = tracer_provider_for(str(path))
    async with OpenAIWrapper.simulated() as wrapper:
        engine = LegacyConversationEngine(
            wrapper, "multiagent_prompts", tool_backend=EmulatedShop()
        )
        with tracing(provider):
            await engine.run_conversation_with_tools(HANDOFF_SCENARIO, 2)
    provider.shutdown()
    lines = path.read_text(encoding="utf-8").splitlines()
    spans = [json.loads(line) for line in lines]
    names = {span["name"] for span in spans}
    assert "conversation butter and a new date" in names and "exchange 1" in names
    assert all(span["context"]["trace_id"] == spans[0]["context"]["trace_id"] for span in spans)


async def test_a_tool_call_span_counts_the_tool_api_s_retries(spans: Spans) -> None:
    base = "https://tools.test/rag"
    async with HttpToolBackend(base, backoff_seconds=0) as backend:
        tools = SessionTools("sess-retries", backend)
        with respx.mock(assert_all_mocked=True) as router:
            router.post(f"{base}/rag_find_products").mock(
                side_effect=[
                    httpx.Response(503),
                    httpx.Response(502),
                    httpx.Response(200, json="Found: butter"),
                    httpx.Response(200, json="Found: milk"),
                ]
            )
            with tracing(spans.provider):
                await tools.execute("rag_find_products", '{"message": "butter"}')
                await tools.execute("rag_find_products", '{"message": "milk"}')
    calls = sorted(
        (s for s in spans.finished if s.name == "execute_tool rag_find_products"),
        key=lambda s: s.start_time or 0,
    )
    assert [c.attributes["conversation_engine.tool.retries"] for c in calls] == [2, 0]
    assert all(c.attributes["conversation_engine.tool.outcome"] == "ok" for c in calls)
