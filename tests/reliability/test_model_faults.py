"""What each model-endpoint fault becomes, for both engines, through the real stack.

Faults are injected by the simulated LLM at the wire (HTTP status, broken body, transport
error) or in the model's reply (bad tool calls, endless tools). Every case must end within its
bound with a contract-valid result, the right status and the history produced so far.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from conversation_engine.core.contract import contract_violations
from conversation_engine.engines import resolve_engine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import Fault, SimulationConfig
from conversation_engine.tools.shop import EmulatedShop

ENGINES = ["autogen", "legacy"]
BOUND_SECONDS = 20

SCENARIO = {
    "name": "faulty",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet", "1 kg of salmon fillet"],
        "SEED": 5,
    },
}


async def play(
    engine_name: str, faults: list[Fault], *, max_retries: int = 0, max_turns: int | None = None
) -> dict[str, Any]:
    wrapper = OpenAIWrapper.simulated(SimulationConfig(faults=faults), max_retries=max_retries)
    try:
        engine = resolve_engine(engine_name)(
            wrapper, "multiagent_prompts", tool_backend=EmulatedShop()
        )
        started = time.monotonic()
        result = await engine.run_conversation_with_tools(
            SCENARIO, max_turns=max_turns, timeout_sec=BOUND_SECONDS
        )
        assert time.monotonic() - started < BOUND_SECONDS, "the fault made the conversation hang"
    finally:
        await wrapper.aclose()
    assert contract_violations(result, basic_mode=False) == []
    return result


def contents(result: dict[str, Any]) -> list[str]:
    return [entry["content"] for entry in result["conversation_history"]]


@pytest.mark.parametrize("engine", ENGINES)
async def test_429_with_retry_after_is_retried(engine: str) -> None:
    result = await play(
        engine, [Fault(kind="rate_limit", on_calls=[2], retry_after=0.1)], max_retries=2
    )
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("server_error", "InternalServerError"),
        ("bad_gateway", "InternalServerError"),
        ("service_unavailable", "InternalServerError"),
        ("connection_reset", "APIConnectionError"),
        ("timeout", "APITimeoutError"),
        ("context_length", "BadRequestError"),
        ("unauthorized", "AuthenticationError"),
        ("non_json", "MalformedResponseError"),
    ],
)
async def test_endpoint_failure_mid_conversation_fails_and_keeps_history(
    engine: str, kind: str, error_type: str
) -> None:
    # The first agent turn works; every agent call after it fails (retries included).
    result = await play(
        engine, [Fault(kind=kind, role="agent", on_calls=list(range(2, 40)), delay_ms=50)]
    )
    assert result["status"] == "failed", result.get("error")
    assert result["error_type"] == error_type
    assert "Traceback" not in result["error"]
    assert (
        result["conversation_history"][:2]
        and result["conversation_history"][0]["speaker"] == "agent_agent"
    )
    assert result["conversation_history"][1]["speaker"] == "client"
    assert result["error_context"]["completed_turns"] >= 1


@pytest.mark.parametrize("engine", ENGINES)
async def test_geographic_block(engine: str) -> None:
    result = await play(engine, [Fault(kind="geo_block", role="agent", on_calls=[2])])
    assert result["status"] == "failed_api_blocked"
    assert result["graceful_degradation"] is True and result["partial_completion"] is True
    assert result["error_type"] == "APIBlockedError"


@pytest.mark.parametrize("engine", ENGINES)
async def test_geographic_block_on_the_first_call(engine: str) -> None:
    result = await play(engine, [Fault(kind="geo_block")])
    assert result["status"] == "failed_api_blocked" and result["partial_completion"] is False


@pytest.mark.parametrize("engine", ENGINES)
async def test_empty_content_is_heard_as_silence(engine: str) -> None:
    result = await play(engine, [Fault(kind="empty_content", role="agent", on_calls=[1])])
    assert result["status"] == "completed"
    assert result["conversation_history"][0]["content"] == ""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["unknown_tool", "malformed_arguments", "invalid_handoff"])
async def test_bad_tool_calls_become_error_results_and_the_call_goes_on(
    engine: str, kind: str
) -> None:
    result = await play(engine, [Fault(kind=kind, role="agent", on_calls=[2])])
    assert result["status"] == "completed"
    errors = [
        outcome
        for entry in result["conversation_history"]
        if entry["speaker"] != "client"
        for outcome in entry.get("tool_results") or []
        if "error" in str(outcome).lower()
    ]
    assert errors, "the bad call's error is recorded in tool_results"


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_model_that_never_stops_calling_tools_is_bounded(engine: str) -> None:
    result = await play(engine, [Fault(kind="endless_tools", role="agent")], max_turns=3)
    assert result["status"] == "completed"
    assert result["total_turns"] <= 3
    agent_entries = [e for e in result["conversation_history"] if e["speaker"] != "client"]
    assert all(len(e.get("tool_calls") or []) <= 10 for e in agent_entries)
    assert agent_entries and all(e["tool_calls"] for e in agent_entries)


@pytest.mark.parametrize("engine", ENGINES)
async def test_handoff_ping_pong_between_two_agents_is_bounded(engine: str) -> None:
    result = await play(engine, [Fault(kind="handoff_ping_pong", role="agent")], max_turns=3)
    assert result["status"] == "completed"
    assert result["total_turns"] <= 3
    agent_entries = [e for e in result["conversation_history"] if e["speaker"] != "client"]
    handoffs_per_turn: dict[int, int] = {}
    for entry in agent_entries:
        for call in entry.get("tool_calls") or []:
            if call["function"]["name"].startswith("handoff_"):
                handoffs_per_turn[entry["turn"]] = handoffs_per_turn.get(entry["turn"], 0) + 1
    # Both agents took part, and no turn exceeded the per-turn model-call cap.
    assert {e["speaker"] for e in agent_entries} == {"agent_agent", "agent_support"}
    assert handoffs_per_turn and min(handoffs_per_turn.values()) >= 2
    assert max(handoffs_per_turn.values()) <= 10


@pytest.mark.parametrize("engine", ENGINES)
async def test_client_side_failure_is_reported_with_partial_history(engine: str) -> None:
    result = await play(engine, [Fault(kind="server_error", role="client")])
    assert result["status"] == "failed" and result["error_type"] == "InternalServerError"
    assert contents(result)[0]  # the agent's greeting is kept
