"""What both engines do alike, end to end: each test runs once per engine.

Both engines run every conversation through the one driver (`engines.driver`) with the one
simulated customer (`engines.customer`); only the bot differs. So the same script
(`ScriptedLLM` answers by role) drives either engine, and each behaviour is asserted once, on
both. Where the engines legitimately differ on a shared behaviour, the expectation is spelled
out per engine in `DIFFERENCES`. Engine-specific behaviour lives in `autogen/test_engine.py`
and `test_legacy.py`.

HTTP is mocked at the wire (respx + `ScriptedLLM`) or served by the simulated LLM.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from conversation_engine.core.contract import client_end_call_content, contract_violations
from conversation_engine.core.settings import Settings
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.catalogue import handoff_result
from conversation_engine.tools.shop import EmulatedShop
from tests.engines.conftest import SHOP_SPEC
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, error, role_of, text
from tests.shop import SHOP_VARIABLES, agent_ends_the_call

EngineClass = type[ContractEngine]

BUTTER = "CB-00000135"

SPEC = SHOP_SPEC

#: Arguments cut off mid-object, and what parsing them says.
MALFORMED_ARGUMENTS = '{"items": [{"product_code": '
JSON_ERROR = "Expecting value: line 1 column 29 (char 28)"
INVALID_JSON_ERROR = f"Invalid JSON arguments for add_to_cart: {JSON_ERROR}"

#: Where the engines legitimately differ on a behaviour they share.
DIFFERENCES: dict[EngineClass, dict[str, Any]] = {
    AutogenConversationEngine: {
        # A 500 is retried once, on a team rebuilt from the last checkpoint, before failing.
        "agent_calls_after_server_errors": 3,
        # The Swarm also offers each agent AutoGen's hand-back-to-the-customer tool.
        "extra_agent_tools": {"handoff_client"},
        # AutoGen's tool runner reports the arguments' JSON error as a plain-text result.
        "malformed_arguments_result": f"Error: {JSON_ERROR}",
        "malformed_arguments_message": f"Error: {JSON_ERROR}",
    },
    LegacyConversationEngine: {
        "agent_calls_after_server_errors": 2,
        "extra_agent_tools": set(),
        "malformed_arguments_result": {"error": INVALID_JSON_ERROR},
        "malformed_arguments_message": json.dumps({"error": INVALID_JSON_ERROR}),
    },
}


@pytest.fixture(
    params=[AutogenConversationEngine, LegacyConversationEngine], ids=["autogen", "legacy"]
)
def engine_class(request: pytest.FixtureRequest) -> EngineClass:
    return request.param


@pytest.fixture
def differs(engine_class: EngineClass) -> dict[str, Any]:
    """This engine's side of `DIFFERENCES`."""
    return DIFFERENCES[engine_class]


def scenario(name: str = "buy butter", **variables: Any) -> dict[str, Any]:
    return {"name": name, "variables": {"CLIENT_NAME": "Ann", "SEED": 7, **variables}}


def shop_scenario(name: str, goals: list[str], seed: int, **variables: Any) -> dict[str, Any]:
    return {
        "name": name,
        "variables": {**SHOP_VARIABLES, "ORDER_GOAL": goals, "SEED": seed, **variables},
    }


def serve(respx_mock: respx.MockRouter, side_effect: Any) -> None:
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=side_effect)


def shape(result: dict[str, Any]) -> list[tuple[int, str, str, list[str]]]:
    """(turn, speaker, content, tool names) per entry."""
    return [
        (
            entry["turn"],
            entry["speaker"],
            entry["content"],
            [c["function"]["name"] for c in entry.get("tool_calls") or []],
        )
        for entry in result["conversation_history"]
    ]


def speakers(result: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["turn"], e["speaker"]) for e in result["conversation_history"]]


def conforms(result: dict[str, Any], basic_mode: bool | None = None) -> None:
    assert contract_violations(result) == []
    assert contract_violations(result, basic_mode=basic_mode) == []


# ------------------------------------------------------------------ scripted (respx) conversations


async def test_tools_handoffs_and_back_ended_by_the_client(
    engine_class: EngineClass,
    differs: dict[str, Any],
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    shop = EmulatedShop()
    add_arguments = json.dumps(
        {
            "items": [{"product_code": BUTTER, "quantity": 2, "packaging_type": 1}],
            "execution_message": "Adding it now.",
        }
    )
    llm = ScriptedLLM(
        agent=[
            text("Hello, how can I help?"),
            call(
                "handoff_support",
                {"reason": "delivery date"},
                content="Support will help with that.",
            ),
            call(
                "change_delivery_date",
                {"delivery_date": "2024-01-19", "execution_message": "Changing it."},
            ),
            text("Done, delivery moved to 19 January."),
            call("handoff_agent", {"reason": "products"}),
            call("rag_find_products", {"message": "butter", "execution_message": "Let me check."}),
            call("add_to_cart", add_arguments),
            text("Added 2 packs of butter."),
        ],
        client=[
            text("Move my delivery to 2024-01-19, please."),
            text("Also 2 packs of butter."),
            call("end_call", {"reason": "order complete"}),
        ],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=shop)
    result = await engine.run_conversation_with_tools(scenario(), max_turns=10)

    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["end_reason"] == "client_end_call"
    assert result["tools_used"] is True
    assert shape(result) == [
        (1, "agent_agent", "Hello, how can I help?", []),
        (1, "client", "Move my delivery to 2024-01-19, please.", []),
        (2, "agent_agent", "Support will help with that.", ["handoff_support"]),
        (2, "agent_support", "Done, delivery moved to 19 January.", ["change_delivery_date"]),
        (2, "client", "Also 2 packs of butter.", []),
        (3, "agent_support", "", ["handoff_agent"]),
        (3, "agent_agent", "Added 2 packs of butter.", ["rag_find_products", "add_to_cart"]),
        (3, "client", "[ЗАВЕРШИЛ ЗВОНОК: order complete]", ["end_call"]),
    ]
    assert result["total_turns"] == 3
    history = result["conversation_history"]
    agent_requests = llm.by_role("agent")
    assert history[2]["tool_results"] == [
        {
            "status": "handoff_completed",
            "target_agent": "support",
            "message": "Successfully handed off conversation to support",
        }
    ]
    assert history[5]["tool_results"] == [handoff_result("agent")]
    assert history[3]["tool_results"] == [
        {"status": "delivery_date_changed", "delivery_date": "2024-01-19"}
    ]
    # Arguments are recorded as the model's JSON string, execution_message included.
    rag_arguments = json.loads(history[6]["tool_calls"][0]["function"]["arguments"])
    assert rag_arguments["execution_message"] == "Let me check."
    assert history[6]["tool_calls"][1]["function"]["arguments"] == add_arguments
    # The model reads each tool's result before its next call.
    products = json.loads(agent_requests[6]["messages"][-1]["content"])["products"]
    assert products[0]["product_code"] == BUTTER
    # Tool results are the backend's, parsed.
    assert history[6]["tool_results"][1]["status"] == "added"
    assert history[6]["tool_results"][1]["cart"]
    assert "tool_results" not in history[7]

    # The session's shop state holds what the conversation did, under the result's session id.
    state = shop.session_state(result["session_id"])
    assert state.delivery_date == "2024-01-19"
    assert [(line.product_code, line.quantity) for line in state.cart] == [(BUTTER, 2)]
    assert [line.quantity for line in shop.cart(result["session_id"])] == [2]

    # Each agent is offered its own tools and its handoffs.
    sales_tools = {t["function"]["name"] for t in agent_requests[0]["tools"]}
    support_tools = {t["function"]["name"] for t in agent_requests[2]["tools"]}
    assert sales_tools == {
        "rag_find_products",
        "add_to_cart",
        "get_cart",
        "handoff_support",
        *differs["extra_agent_tools"],
    }
    assert support_tools == {
        "change_delivery_date",
        "set_current_location",
        "end_call",
        "handoff_agent",
        *differs["extra_agent_tools"],
    }

    # The client hears only the agents' words: no tool traffic, no handoff mechanics.
    client_requests = llm.by_role("client")
    assert [m["role"] for m in client_requests[-1]["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert client_requests[-1]["messages"][0] == {
        "role": "system",
        "content": "You are Ann, buying food.",
    }
    # All the agents' words of an exchange, joined: text said alongside a handoff too.
    assert client_requests[1]["messages"][-1] == {
        "role": "user",
        "content": "Support will help with that. Done, delivery moved to 19 January.",
    }
    heard = " ".join(
        str(m.get("content")) for m in client_requests[-1]["messages"] if m["role"] == "user"
    )
    assert "Transferred" not in heard and "CB-" not in heard

    # The scenario SEED and the endpoint's temperature go with every call; parallel tool
    # calls are off.
    assert {body["seed"] for body in llm.requests} == {7}
    assert {body["temperature"] for body in llm.requests} == {wire_wrapper.temperature}
    assert all(body["parallel_tool_calls"] is False for body in llm.requests)
    # Usage is the conversation's own calls, the customer's included.
    assert result["usage"]["calls"] == len(llm.requests) == 11
    assert result["usage"]["prompt_tokens"] == 10 * 11
    assert result["usage"]["total_tokens"] == 15 * 11


async def test_agent_end_call_ends_the_conversation(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = agent_ends_the_call()
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["end_reason"] == "agent_end_call"
    assert shape(result) == [
        (1, "agent_agent", "Hello!", []),
        (1, "client", "That's all, thanks.", []),
        (2, "agent_agent", "", ["handoff_support"]),
        (2, "agent_support", "", ["end_call"]),
    ]
    last = result["conversation_history"][-1]
    assert last["tool_results"] == [{"status": "call_ended", "reason": "customer is done"}]
    assert len(llm.by_role("client")) == 1  # the customer is not asked again


async def test_basic_mode_has_no_tools_and_legacy_speakers(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), text("We have butter.")],
        client=[text("Butter, please."), call("end_call", {"reason": "bye"})],
    )
    serve(respx_mock, llm)
    result = await engine_class(wire_wrapper, spec_path).run_conversation(scenario())
    conforms(result, basic_mode=True)
    assert result["status"] == "completed"
    assert result["end_reason"] == "client_end_call"
    assert result["tools_used"] is False
    assert speakers(result) == [(1, "agent"), (1, "client"), (2, "agent"), (2, "client")]
    assert all(
        "tool_calls" not in entry and "tool_results" not in entry
        for entry in result["conversation_history"]
    )
    assert all("tools" not in body for body in llm.by_role("agent"))
    assert result["conversation_history"][-1] == {
        "turn": 2,
        "speaker": "client",
        "content": "[ЗАВЕРШИЛ ЗВОНОК: bye]",
        "timestamp": result["conversation_history"][-1]["timestamp"],
    }


@pytest.mark.parametrize("greeting_key", ["GREETING", "client_greeting"])
async def test_client_opens_with_the_scenario_greeting(
    engine_class: EngineClass,
    greeting_key: str,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hi Ann, what would you like?"), text("Two packs, noted.")],
        client=[text("2 packs of butter."), call("end_call", {"reason": "bye"})],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario(**{greeting_key: "Good afternoon!"}))
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert [(e["turn"], e["speaker"], e["content"]) for e in result["conversation_history"]] == [
        (1, "client", "Good afternoon!"),
        (1, "agent_agent", "Hi Ann, what would you like?"),
        (2, "client", "2 packs of butter."),
        (2, "agent_agent", "Two packs, noted."),
        (3, "client", "[ЗАВЕРШИЛ ЗВОНОК: bye]"),
    ]
    # The greeting is spoken without asking the customer's model; the agent hears it.
    first_agent_request = llm.by_role("agent")[0]["messages"]
    assert first_agent_request[-1]["role"] == "user"
    assert first_agent_request[-1]["content"] == "Good afternoon!"
    assert llm.by_role("client")[0]["messages"][1] == {
        "role": "assistant",
        "content": "Good afternoon!",
    }


@pytest.mark.parametrize("max_turns", [1, 2])
async def test_max_turns_counts_exchanges(
    engine_class: EngineClass,
    max_turns: int,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[text(f"Agent {i}") for i in range(5)], client=[text(f"Client {i}") for i in range(5)]
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario(), max_turns=max_turns)
    conforms(result, basic_mode=False)
    assert result["status"] == "completed" and result["end_reason"] == "max_turns"
    assert result["total_turns"] == max_turns
    assert speakers(result) == [
        (turn, speaker) for turn in range(1, max_turns + 1) for speaker in ("agent_agent", "client")
    ]
    # The customer's last words are history, though no agent answers them.
    assert result["conversation_history"][-1]["content"] == f"Client {max_turns - 1}"
    assert len(llm.by_role("agent")) == max_turns


@pytest.mark.parametrize(
    ("hangs", "heard"),
    [
        (("agent", 2), [(1, "agent_agent", "Hello!", []), (1, "client", "Hi", [])]),
        (("client", 1), [(1, "agent_agent", "Hello!", [])]),
    ],
    ids=["agent-call-hangs", "client-call-hangs"],
)
async def test_timeout_is_a_hard_bound_inside_a_slow_model_call(
    engine_class: EngineClass,
    hangs: tuple[str, int],
    heard: list[tuple[int, str, str, list[str]]],
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(agent=[text("Hello!"), text("Too late")], client=[text("Hi")])
    calls: Counter[str] = Counter()

    async def slow(request: httpx.Request) -> httpx.Response:
        role = role_of(json.loads(request.content))
        calls[role] += 1
        if (role, calls[role]) == hangs:
            # This model call hangs far beyond the bound; only cancellation ends it.
            await asyncio.sleep(30)
        return await llm(request)

    serve(respx_mock, slow)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    started = time.monotonic()
    result = await engine.run_conversation_with_tools(scenario(), timeout_sec=1)
    elapsed = time.monotonic() - started
    conforms(result)
    assert elapsed < 1.5, elapsed
    assert result["status"] == "timeout" and result["error_type"] == "TimeoutError"
    assert result["error"] == "Conversation timeout after 1 seconds"
    assert result["end_reason"] == "timeout"
    assert shape(result) == heard


def blocked(body: dict[str, Any]) -> httpx.Response:
    """A scripted reply: the endpoint refuses the caller's region (a fresh response each time)."""
    return error(
        403, "Country, region, or territory not supported", "unsupported_country_region_territory"
    )


@pytest.mark.parametrize(
    ("script", "heard"),
    [
        ({"agent": [blocked]}, []),
        (
            {"agent": [text("Hello!"), blocked], "client": [text("Hi")]},
            [(1, "agent_agent", "Hello!", []), (1, "client", "Hi", [])],
        ),
        (
            {"agent": [text("Hello!")], "client": [blocked]},
            [(1, "agent_agent", "Hello!", [])],
        ),
    ],
    ids=["first-call", "agent-call", "client-call"],
)
async def test_geographic_block_is_failed_api_blocked(
    engine_class: EngineClass,
    script: dict[str, list[Any]],
    heard: list[tuple[int, str, str, list[str]]],
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(agent=script.get("agent"), client=script.get("client"))
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result)
    assert result["status"] == "failed_api_blocked"
    assert result["error_type"] == "APIBlockedError"
    assert result["graceful_degradation"] is True
    # Partial when anything was said before the block.
    assert result["partial_completion"] is bool(heard)
    assert shape(result) == heard


async def test_server_error_fails_keeps_history_and_spares_the_next_conversation(
    engine_class: EngineClass,
    differs: dict[str, Any],
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), error(500, "boom"), error(500, "boom")],
        client=[text("2 packs of butter.")],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result)
    assert result["status"] == "failed" and result["error_type"] == "InternalServerError"
    assert "500" in result["error"] and "Traceback" not in result["error"]
    assert result["error_context"]["spec_name"] == spec_path
    assert result["session_id"] == result["error_context"]["session_id"]
    assert shape(result) == [
        (1, "agent_agent", "Hello!", []),
        (1, "client", "2 packs of butter.", []),
    ]
    assert len(llm.by_role("agent")) == differs["agent_calls_after_server_errors"]
    # The next conversation on the same engine is unaffected.
    llm.scripts["agent"] = [text("Hello again!")]
    llm.scripts["client"] = [call("end_call", {"reason": "bye"})]
    again = await engine.run_conversation_with_tools(scenario())
    assert again["status"] == "completed"
    assert [e["content"] for e in again["conversation_history"]] == [
        "Hello again!",
        "[ЗАВЕРШИЛ ЗВОНОК: bye]",
    ]


async def test_malformed_tool_arguments_are_reported_to_the_model(
    engine_class: EngineClass,
    differs: dict[str, Any],
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("add_to_cart", MALFORMED_ARGUMENTS),
            text("Sorry, let me try that again later."),
        ],
        client=[text("2 packs of butter."), call("end_call", {"reason": "done"})],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    entry = result["conversation_history"][2]
    assert entry["tool_calls"][0]["function"]["arguments"] == MALFORMED_ARGUMENTS
    assert entry["tool_results"] == [differs["malformed_arguments_result"]]
    assert entry["content"] == "Sorry, let me try that again later."
    # The model read the error as the tool message of its call.
    follow_up = llm.by_role("agent")[2]["messages"]
    assert follow_up[-1]["role"] == "tool"
    assert follow_up[-1]["content"] == differs["malformed_arguments_message"]


class RaisingBackend:
    """A tool backend whose every call fails."""

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        return {}

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        raise ConnectionError("inventory database down")


async def test_a_raising_tool_backend_becomes_a_tool_error_result(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("get_cart", {"execution_message": "Checking."}),
            text("Our system is down, sorry."),
        ],
        client=[text("What's in my cart?"), call("end_call", {"reason": "done"})],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=RaisingBackend())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    entry = result["conversation_history"][2]
    assert entry["tool_results"] == [
        {"error": "Tool execution failed: ConnectionError: inventory database down"}
    ]
    assert entry["content"] == "Our system is down, sorry."


async def test_handoff_to_an_unknown_agent_is_an_error_result(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("handoff_billing", {"reason": "invoice"}),
            text("I can't transfer you, but I can help here."),
        ],
        client=[text("I need an invoice."), call("end_call", {"reason": "done"})],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    entry = result["conversation_history"][2]
    assert entry["speaker"] == "agent_agent"
    assert entry["tool_results"] == [{"error": "Invalid handoff target: billing"}]
    assert entry["content"] == "I can't transfer you, but I can help here."
    # No switch happened: the next request is the same agent with the error in its context.
    assert llm.by_role("agent")[2]["messages"][0]["content"] == "You sell food to Ann."


async def test_tool_loop_bound_records_the_turn_and_goes_on(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    looping = [call("get_cart", {"execution_message": "Checking."}) for _ in range(3)]
    llm = ScriptedLLM(
        agent=[text("Hello!"), *looping, text("Your cart is empty.")],
        client=[text("What's in my cart?"), text("Thanks, and now?"), call("end_call", {})],
    )
    serve(respx_mock, llm)
    engine = engine_class(
        wire_wrapper,
        spec_path,
        tool_backend=EmulatedShop(),
        settings=Settings(MAX_INTERNAL_MESSAGES=3),
    )
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["internal_cap_hits"] == 1
    assert shape(result) == [
        (1, "agent_agent", "Hello!", []),
        (1, "client", "What's in my cart?", []),
        (2, "agent_agent", "", ["get_cart"] * 3),
        (2, "client", "Thanks, and now?", []),
        (3, "agent_agent", "Your cart is empty.", []),
        (3, "client", client_end_call_content("Client ended the call"), ["end_call"]),
    ]
    # The capped exchange's three model calls ran, and no fourth.
    assert len(llm.by_role("agent")) == 5


async def test_missing_template_variable_fails_with_a_clear_error(
    engine_class: EngineClass, tmp_path: Path, wire_wrapper: OpenAIWrapper
) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["agents"]["client"]["prompt"] = "You want {{ ORDER_GOAL }}."
    path = tmp_path / "needs_goal.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    result = await engine_class(wire_wrapper, str(path)).run_conversation_with_tools(scenario())
    conforms(result)
    assert result["status"] == "failed"
    assert result["error_type"] == "TemplateVariableError"
    assert "'client'" in result["error"] and "'ORDER_GOAL'" in result["error"]
    assert result["conversation_history"] == []


async def test_bad_scenario_is_a_failed_result(
    engine_class: EngineClass, spec_path: str, wire_wrapper: OpenAIWrapper
) -> None:
    result = await engine_class(wire_wrapper, spec_path).run_conversation_with_tools(
        {"variables": {}}
    )
    conforms(result)
    assert result["status"] == "failed" and result["error_type"] == "ScenarioError"
    assert "'name'" in result["error"]
    assert result["scenario"] == "unknown"
    assert result["conversation_history"] == []


class SlowClientData:
    """A client-data source whose own timeout fires (not the conversation's)."""

    async def get_client_data(self, client_id: str, codes: list[str] | None = None) -> Any:
        raise TimeoutError("client data lookup timed out")


async def test_a_timeout_error_not_caused_by_the_deadline_is_a_failure(
    engine_class: EngineClass, spec_path: str, wire_wrapper: OpenAIWrapper
) -> None:
    engine = engine_class(wire_wrapper, spec_path, client_data=SlowClientData())
    result = await engine.run_conversation_with_tools(scenario(client_id="C-1"))
    conforms(result)
    assert result["status"] == "failed" and result["end_reason"] == "error"
    assert result["error_type"] == "TimeoutError"
    assert result["error"] == "client data lookup timed out"


# ---------------------------------------------------------------------- simulated-LLM conversations


async def test_concurrent_conversations_keep_separate_carts(engine_class: EngineClass) -> None:
    shop = EmulatedShop()
    async with OpenAIWrapper.simulated() as simulated_wrapper:
        engine = engine_class(simulated_wrapper, "multiagent_prompts", tool_backend=shop)
        chicken, butter = await asyncio.gather(
            engine.run_conversation_with_tools(
                shop_scenario("chicken", ["2 boxes of chicken fillet"], seed=8)
            ),
            engine.run_conversation_with_tools(shop_scenario("butter", ["3 packs of butter"], 9)),
        )
    for result in (chicken, butter):
        conforms(result, basic_mode=False)
        assert result["status"] == "completed"
    assert chicken["session_id"] != butter["session_id"]
    chicken_cart = [(line.name, line.quantity) for line in shop.cart(chicken["session_id"])]
    butter_cart = [(line.name, line.quantity) for line in shop.cart(butter["session_id"])]
    assert len(chicken_cart) == 1 and "Chicken" in chicken_cart[0][0]
    assert chicken_cart[0][1] == 2
    assert len(butter_cart) == 1 and "Butter" in butter_cart[0][0]
    assert butter_cart[0][1] == 3
    assert chicken["usage"]["calls"] > 0 and butter["usage"]["calls"] > 0


async def test_same_seed_gives_the_same_conversation(
    engine_class: EngineClass, simulated_wrapper: OpenAIWrapper
) -> None:
    engine = engine_class(simulated_wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
    runs = [
        await engine.run_conversation_with_tools(
            shop_scenario("seeded", ["2 packs of butter"], seed=10, DELIVERY_CHANGE="2024-01-19")
        )
        for _ in range(2)
    ]

    def comparable(result: dict[str, Any]) -> list[Any]:
        return [
            (
                e["turn"],
                e["speaker"],
                e["content"],
                [c["function"]["arguments"] for c in e.get("tool_calls") or []],
                e.get("tool_results"),
            )
            for e in result["conversation_history"]
        ]

    for result in runs:
        conforms(result, basic_mode=False)
        assert result["status"] == "completed"
    assert runs[0]["session_id"] != runs[1]["session_id"]
    assert comparable(runs[0]) == comparable(runs[1])
    assert runs[0]["seed"] == 10


async def test_a_lone_surrogate_in_a_reply_becomes_a_replacement_character(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    """A server may send `"\\ud800"` in JSON; it used to fail the next request of both engines."""
    llm = ScriptedLLM(
        agent=[text("Hello \ud800 there"), text("Bye")],
        client=[text("Hi \udcff"), call("end_call", {"reason": "done"})],
    )

    async def escaped(request: httpx.Request) -> httpx.Response:
        # As a server sends it: JSON with \uXXXX escapes (httpx's own encoder would refuse).
        body = json.loads(request.content)
        llm.requests.append(body)
        reply = llm.scripts[role_of(body)].pop(0)
        completion = json.dumps(llm._completion(body, reply)).encode()
        return httpx.Response(200, content=completion, headers={"content-type": "application/json"})

    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=escaped)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert [entry["content"] for entry in result["conversation_history"]][:3] == [
        "Hello \ufffd there",
        "Hi \ufffd",
        "Bye",
    ]


async def test_a_failure_after_a_tool_call_keeps_the_call_in_the_history(
    engine_class: EngineClass,
    spec_path: str,
    wire_wrapper: OpenAIWrapper,
    respx_mock: respx.MockRouter,
) -> None:
    """The tool ran, so it is history, whichever engine was speaking when the model failed."""
    llm = ScriptedLLM(
        agent=[call("get_cart", {"execution_message": "Checking."}), error(400, "bad request")],
        client=[],
    )
    serve(respx_mock, llm)
    engine = engine_class(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "failed" and result["error_type"] == "BadRequestError"
    (entry,) = result["conversation_history"]
    assert (entry["turn"], entry["speaker"]) == (1, "agent_agent")
    assert [call["function"]["name"] for call in entry["tool_calls"]] == ["get_cart"]
    assert len(entry["tool_results"]) == 1 and "error" not in entry["tool_results"][0]
