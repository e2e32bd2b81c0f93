"""The AutoGen engine on the shipped specs and scenarios, driven by the simulated LLM."""

from __future__ import annotations

import asyncio
import json

from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.inputs.scenario import load_scenarios
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.shop import EmulatedShop


def shipped_scenarios() -> list[dict]:
    path = get_settings().FIXTURES_DIR / "scenarios" / "shop_scenarios.json"
    return [s.model_dump() for s in load_scenarios(path)]


def tool_names(result: dict) -> list[str]:
    return [
        call["function"]["name"]
        for entry in result["conversation_history"]
        for call in entry.get("tool_calls") or []
    ]


async def test_shipped_scenarios_run_to_a_valid_end(simulated_wrapper: OpenAIWrapper) -> None:
    shop = EmulatedShop()
    engine = AutogenConversationEngine(simulated_wrapper, "multiagent_prompts", tool_backend=shop)
    results = await asyncio.gather(
        *(engine.run_conversation_with_tools(s) for s in shipped_scenarios())
    )
    for result in results:
        assert contract_violations(result, basic_mode=False) == [], result["scenario"]
        assert result["status"] == "completed", (result["scenario"], result.get("error"))
        assert result["end_reason"] in {"client_end_call", "agent_end_call"}, result["scenario"]
    calls = [name for result in results for name in tool_names(result)]
    assert "rag_find_products" in calls and "add_to_cart" in calls
    assert "handoff_support" in calls and "handoff_agent" in calls
    assert any(r["conversation_history"][-1]["speaker"] == "client" for r in results)
    # Every session's cart holds exactly what its own conversation added.
    for result in results:
        added = [
            item["product_code"]
            for entry in result["conversation_history"]
            if entry["speaker"] != "client"
            for call, outcome in zip(
                entry.get("tool_calls") or [], entry.get("tool_results") or [], strict=True
            )
            if call["function"]["name"] == "add_to_cart" and "error" not in outcome
            for item in json.loads(call["function"]["arguments"])["items"]
        ]
        assert sorted(line.product_code for line in shop.cart(result["session_id"])) == sorted(
            set(added)
        )


async def test_same_seed_gives_the_same_conversation(simulated_wrapper: OpenAIWrapper) -> None:
    engine = AutogenConversationEngine(simulated_wrapper, "multiagent_prompts")
    scenario = shipped_scenarios()[0]
    first, second = await asyncio.gather(
        engine.run_conversation_with_tools(scenario), engine.run_conversation_with_tools(scenario)
    )

    def shape(result: dict) -> list[tuple]:
        return [
            (
                e["turn"],
                e["speaker"],
                e["content"],
                [c["function"]["arguments"] for c in e.get("tool_calls") or []],
            )
            for e in result["conversation_history"]
        ]

    assert first["session_id"] != second["session_id"]
    assert shape(first) == shape(second)


async def test_basic_mode_on_shipped_spec(simulated_wrapper: OpenAIWrapper) -> None:
    engine = AutogenConversationEngine(simulated_wrapper, "default_prompts")
    result = await engine.run_conversation(shipped_scenarios()[0])
    assert contract_violations(result, basic_mode=True) == []
    assert result["status"] == "completed"
    assert {e["speaker"] for e in result["conversation_history"]} == {"agent", "client"}
