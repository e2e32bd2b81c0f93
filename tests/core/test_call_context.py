"""Every model call is known at the wire by its conversation, its order and its role.

The transport below sees each request as the simulated LLM does and reads the call context
there, as recording and tracing do: on both engines, in a handoff conversation with tools,
and through a batch with the evaluator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conversation_engine.batch.processor import BatchProcessor
from conversation_engine.core.call_context import (
    CLIENT_ROLE,
    EVALUATOR_ROLE,
    ConversationRef,
    current_conversation,
    current_role,
    in_conversation,
    speaking_as,
)
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.inputs.specs import load_prompt_spec
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import SimulatedLLMTransport
from conversation_engine.tools.shop import EmulatedShop
from tests.shop import HANDOFF_SCENARIO


@dataclass(frozen=True)
class SeenCall:
    role: str | None
    scenario: str | None
    trial: int | None
    session_id: str | None
    number: int | None


class ContextReadingTransport(httpx.AsyncBaseTransport):
    """The simulated LLM, noting the call context of every request it answers."""

    def __init__(self) -> None:
        self.inner = SimulatedLLMTransport()
        self.seen: list[SeenCall] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ref = current_conversation()
        self.seen.append(
            SeenCall(
                current_role(),
                ref.scenario if ref else None,
                ref.trial if ref else None,
                ref.session_id if ref else None,
                ref.next_call() if ref else None,
            )
        )
        return await self.inner.handle_async_request(request)


@pytest.fixture(
    params=[AutogenConversationEngine, LegacyConversationEngine], ids=["autogen", "legacy"]
)
def engine_class(request: pytest.FixtureRequest) -> type[ContractEngine]:
    return request.param


async def test_each_call_names_its_role_conversation_and_order(
    engine_class: type[ContractEngine],
) -> None:
    transport = ContextReadingTransport()
    async with OpenAIWrapper("simulated", "simulated", transport=transport) as wrapper:
        engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
        result = await engine.run_conversation_with_tools(HANDOFF_SCENARIO, 8)

    assert result["status"] == "completed"
    seen = transport.seen
    assert len(seen) == result["usage"]["calls"]
    assert {call.scenario for call in seen} == {"butter and a new date"}
    assert {call.session_id for call in seen} == {result["session_id"]}
    assert [call.number for call in seen] == list(range(1, len(seen) + 1))
    agent_ids = set(load_prompt_spec("multiagent_prompts").service_agent_ids)
    # Agents speak as `agent_<id>` in the history.
    spoke = {
        e["speaker"].removeprefix("agent_")
        for e in result["conversation_history"]
        if e["speaker"] != "client"
    }
    roles = {call.role for call in seen}
    assert CLIENT_ROLE in roles
    # Each agent that is in the history called the model as itself, and no one else did.
    assert spoke <= roles - {CLIENT_ROLE}
    assert roles - {CLIENT_ROLE} <= agent_ids
    assert len(spoke) >= 2, "the scenario hands off, so two agents speak"


async def test_concurrent_conversations_keep_their_own_context(
    engine_class: type[ContractEngine],
) -> None:
    transport = ContextReadingTransport()
    async with OpenAIWrapper("simulated", "simulated", transport=transport) as wrapper:
        engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
        results = await asyncio.gather(
            *(
                engine.run_conversation_with_tools({**HANDOFF_SCENARIO, "name": f"s{i}"}, 4)
                for i in range(4)
            )
        )
    by_scenario: dict[str | None, list[SeenCall]] = {}
    for call in transport.seen:
        by_scenario.setdefault(call.scenario, []).append(call)
    for result in results:
        calls = by_scenario[result["scenario"]]
        assert len(calls) == result["usage"]["calls"]
        assert {call.session_id for call in calls} == {result["session_id"]}
        assert [call.number for call in calls] == list(range(1, len(calls) + 1))


async def test_a_batch_row_carries_its_trial_and_the_evaluator_speaks_last(
    tmp_path: Any,
) -> None:
    transport = ContextReadingTransport()
    async with OpenAIWrapper("simulated", "simulated", transport=transport) as wrapper:
        processor = BatchProcessor(wrapper, 2, engine="legacy", output_dir=tmp_path, max_turns=3)
        batch_id = processor.create_batch_job(
            [HANDOFF_SCENARIO], prompt_spec_name="multiagent_prompts", repeat=2
        )
        summary = await processor.run_batch(batch_id)
        await processor.aclose()

    assert summary["successful_scenarios"] == 2
    for trial in (0, 1):
        calls = [c for c in transport.seen if c.trial == trial]
        assert calls and {c.scenario for c in calls} == {"butter and a new date"}
        assert calls[-1].role == EVALUATOR_ROLE
        assert EVALUATOR_ROLE not in {c.role for c in calls[:-1]}
        assert [c.number for c in calls] == list(range(1, len(calls) + 1))


def test_the_context_is_scoped_to_its_block() -> None:
    assert current_role() is None and current_conversation() is None
    ref = ConversationRef("x", trial=3, side="b")
    with in_conversation(ref), speaking_as("agent"):
        assert current_role() == "agent"
        assert current_conversation() is ref
        with speaking_as(CLIENT_ROLE):
            assert current_role() == CLIENT_ROLE
        assert current_role() == "agent"
    assert current_role() is None and current_conversation() is None
