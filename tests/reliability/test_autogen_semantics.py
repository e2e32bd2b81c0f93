"""What AutoGen really did is what the history says, and the engines agree on it.

* Several handoffs in one reply: AutoGen's Swarm executes only the first, so only the first
  is `handoff_completed`; each later one is recorded as not executed. The legacy engine
  follows the same rule with the same result.
* An agent's successful `end_call` ends its turn at once: no further model call, no further
  tool call in that turn, as in the legacy engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings
from conversation_engine.engines import resolve_engine
from conversation_engine.tools.catalogue import handoff_not_executed
from conversation_engine.tools.shop import EmulatedShop
from tests.reliability.role_wire import RoleWire, tool_call, with_tool_calls, wrapper_for

ENGINES = ["autogen", "legacy"]

SCENARIO = {
    "name": "semantics",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet"],
        "SEED": 5,
    },
}


@pytest.fixture
def spec_path(tmp_path: Path) -> str:
    """The shipped multi-agent spec plus a `billing` agent the sales agent can hand off to,
    and `end_call` among the sales agent's tools."""
    shipped = get_settings().PROMPTS_DIR / "multiagent_prompts.json"
    spec = json.loads(shipped.read_text(encoding="utf-8"))
    agents = spec["agents"]
    agents["agent"]["tools"] = [*agents["agent"]["tools"], "end_call"]
    agents["agent"]["handoffs"]["billing"] = "Invoices and payments."
    agents["billing"] = {
        **agents["support"],
        "name": "Billing Agent",
        "description": "Invoices and payments.",
        "handoffs": {"agent": "Products and cart."},
    }
    path = tmp_path / "semantics.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


async def converse(engine: str, wire: RoleWire, spec_path: str) -> dict[str, Any]:
    wrapper = wrapper_for(wire)
    try:
        runner = resolve_engine(engine)(wrapper, spec_path, tool_backend=EmulatedShop())
        result = await runner.run_conversation_with_tools(SCENARIO, max_turns=3, timeout_sec=20)
    finally:
        await wrapper.aclose()
    assert contract_violations(result, basic_mode=False) == []
    return result


def entry_with(result: dict[str, Any], tool: str) -> dict[str, Any]:
    return next(
        entry
        for entry in result["conversation_history"]
        if any(c["function"]["name"] == tool for c in entry.get("tool_calls") or [])
    )


@pytest.mark.parametrize("engine", ENGINES)
async def test_only_the_first_of_two_handoffs_runs_and_the_second_says_so(
    engine: str, spec_path: str
) -> None:
    wire = RoleWire(
        agent={
            2: with_tool_calls(
                tool_call("handoff_billing", "{}", "call_1"),
                tool_call("handoff_support", "{}", "call_2"),
            )
        }
    )
    result = await converse(engine, wire, spec_path)

    entry = entry_with(result, "handoff_billing")
    assert [c["function"]["name"] for c in entry["tool_calls"]] == [
        "handoff_billing",
        "handoff_support",
    ]
    first, second = entry["tool_results"]
    assert first["status"] == "handoff_completed" and first["target_agent"] == "billing"
    assert second == handoff_not_executed("billing")
    # Billing, not support, took the customer over.
    speakers = [e["speaker"] for e in result["conversation_history"]]
    assert "agent_billing" in speakers and "agent_support" not in speakers


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_same_handoff_twice_runs_once(engine: str, spec_path: str) -> None:
    wire = RoleWire(
        agent={
            2: with_tool_calls(
                tool_call("handoff_support", "{}", "call_1"),
                tool_call("handoff_support", "{}", "call_2"),
            )
        }
    )
    result = await converse(engine, wire, spec_path)
    first, second = entry_with(result, "handoff_support")["tool_results"]
    assert first["status"] == "handoff_completed"
    assert second == handoff_not_executed("support")


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_agent_s_end_call_ends_its_turn_at_once(engine: str, spec_path: str) -> None:
    wire = RoleWire(
        agent={
            2: with_tool_calls(
                tool_call("get_cart", "{}", "call_1"),
                tool_call("end_call", '{"reason": "the customer is served"}', "call_2"),
            )
        }
    )
    result = await converse(engine, wire, spec_path)

    assert result["status"] == "completed" and result["end_reason"] == "agent_end_call"
    # No model call after the reply that ended the call: not the agent's, not the client's.
    assert wire.count("agent") == 2 and wire.count("client") == 1
    last = result["conversation_history"][-1]
    assert last["speaker"] == "agent_agent"
    assert [c["function"]["name"] for c in last["tool_calls"]] == ["get_cart", "end_call"]
    assert len(last["tool_results"]) == 2


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_end_call_alone_ends_the_turn_too(engine: str, spec_path: str) -> None:
    wire = RoleWire(agent={2: with_tool_calls(tool_call("end_call", '{"reason": "done"}'))})
    result = await converse(engine, wire, spec_path)
    assert result["end_reason"] == "agent_end_call"
    assert wire.count("agent") == 2
    assert result["conversation_history"][-1]["tool_calls"][-1]["function"]["name"] == "end_call"
