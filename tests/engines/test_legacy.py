"""The legacy engine end to end: the real `openai` SDK, HTTP mocked at the wire with respx
(scripted replies) or served by the simulated LLM."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from conversation_engine.core.contract import client_end_call_content, contract_violations
from conversation_engine.core.settings import Settings
from conversation_engine.engines.legacy import TAKEOVER_INSTRUCTION, LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import Fault, SimulationConfig
from conversation_engine.tools.catalogue import handoff_result
from conversation_engine.tools.shop import EmulatedShop
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, error, role_of, text

BUTTER = "CB-00000135"

SPEC: dict[str, Any] = {
    "name": "Test shop",
    "version": "1.0.0",
    "agents": {
        "agent": {
            "name": "Sales",
            "prompt": "You sell food to {{ CLIENT_NAME }}.",
            "tools": ["rag_find_products", "add_to_cart", "get_cart"],
            "handoffs": {"support": "Delivery dates and addresses."},
        },
        "support": {
            "name": "Support",
            "prompt": "You handle deliveries for {{ CLIENT_NAME }}.",
            "tools": ["change_delivery_date", "set_current_location", "end_call"],
            "handoffs": {"agent": "Products and cart."},
        },
        "client": {
            "name": "Customer",
            "prompt": "You are {{ CLIENT_NAME }}, buying food.",
            "tools": [],
        },
        "evaluator": {"name": "Evaluator", "prompt": "Score the call.", "tools": []},
    },
}

#: Variables the shipped specs' client prompt needs, for the simulated LLM.
SHOP_VARIABLES: dict[str, Any] = {
    "CLIENT_NAME": "Ellie Watson",
    "locations": "1. The Corner Cafe, York 2. 14 Canal Street, York",
    "PERSONALITY": "Friendly cafe owner.",
    "AMB_LEVEL": 1,
    "PATIENCE": 2,
    "CURRENT_DATE": "2024-01-15",
}


@pytest.fixture
def spec_path(tmp_path: Path) -> str:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    return str(path)


def scenario(name: str = "buy butter", **variables: Any) -> dict[str, Any]:
    return {"name": name, "variables": {"CLIENT_NAME": "Ann", "SEED": 7, **variables}}


def shop_scenario(name: str, goals: list[str], seed: int, **variables: Any) -> dict[str, Any]:
    return {
        "name": name,
        "variables": {**SHOP_VARIABLES, "ORDER_GOAL": goals, "SEED": seed, **variables},
    }


def mock_llm(llm: ScriptedLLM) -> respx.MockRouter:
    router = respx.mock(assert_all_called=False)
    router.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    return router


def shape(result: dict[str, Any]) -> list[tuple[int, str, str, list[str]]]:
    """(turn, speaker, content, tool names) per entry."""
    return [
        (
            entry["turn"],
            entry["speaker"],
            entry["content"],
            [c["function"]["name"] for c in entry.get("tool_calls", [])],
        )
        for entry in result["conversation_history"]
    ]


def conforms(result: dict[str, Any], basic_mode: bool | None = None) -> None:
    assert contract_violations(result) == []
    assert contract_violations(result, basic_mode=basic_mode) == []


# ------------------------------------------------------------------ scripted (respx) conversations


async def test_handoff_and_back_with_tools_ended_by_client(wire_wrapper, spec_path):
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
            call("handoff_support", {"reason": "delivery date"}),
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
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=shop)
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario(), max_turns=10)

    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["end_reason"] == "client_end_call"
    assert result["tools_used"] is True
    assert shape(result) == [
        (1, "agent_agent", "Hello, how can I help?", []),
        (1, "client", "Move my delivery to 2024-01-19, please.", []),
        (2, "agent_agent", "", ["handoff_support"]),
        (2, "agent_support", "Done, delivery moved to 19 January.", ["change_delivery_date"]),
        (2, "client", "Also 2 packs of butter.", []),
        (3, "agent_support", "", ["handoff_agent"]),
        (3, "agent_agent", "Added 2 packs of butter.", ["rag_find_products", "add_to_cart"]),
        (3, "client", client_end_call_content("order complete"), ["end_call"]),
    ]
    assert result["total_turns"] == 3
    history = result["conversation_history"]
    assert history[2]["tool_results"] == [handoff_result("support")]
    assert history[5]["tool_results"] == [handoff_result("agent")]
    assert history[3]["tool_results"] == [
        {"status": "delivery_date_changed", "delivery_date": "2024-01-19"}
    ]
    # Arguments are recorded as the model's JSON string, execution_message included.
    assert history[6]["tool_calls"][1]["function"]["arguments"] == add_arguments
    assert history[6]["tool_results"][1]["status"] == "added"
    assert "tool_results" not in history[7]

    # The session's shop state holds what the conversation did, under the result's session id.
    state = shop.session_state(result["session_id"])
    assert state.delivery_date == "2024-01-19"
    assert [(line.product_code, line.quantity) for line in state.cart] == [(BUTTER, 2)]

    # A receiving agent starts from its prompt, the client's last words and the takeover line.
    agent_requests = llm.by_role("agent")
    assert agent_requests[2]["messages"] == [
        {"role": "system", "content": "You handle deliveries for Ann."},
        {"role": "user", "content": "Move my delivery to 2024-01-19, please."},
        {"role": "user", "content": TAKEOVER_INSTRUCTION},
    ]
    assert agent_requests[5]["messages"] == [
        {"role": "system", "content": "You sell food to Ann."},
        {"role": "user", "content": "Also 2 packs of butter."},
        {"role": "user", "content": TAKEOVER_INSTRUCTION},
    ]
    # Each agent is offered its own tools and its handoffs.
    sales_tools = {t["function"]["name"] for t in agent_requests[0]["tools"]}
    support_tools = {t["function"]["name"] for t in agent_requests[2]["tools"]}
    assert sales_tools == {"rag_find_products", "add_to_cart", "get_cart", "handoff_support"}
    assert support_tools == {
        "change_delivery_date",
        "set_current_location",
        "end_call",
        "handoff_agent",
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
    assert client_requests[1]["messages"][-1] == {
        "role": "user",
        "content": "Done, delivery moved to 19 January.",
    }
    # The scenario SEED and the endpoint's temperature go with every call.
    assert {body["seed"] for body in llm.requests} == {7}
    assert {body["temperature"] for body in llm.requests} == {wire_wrapper.temperature}
    # Usage is the conversation's own calls.
    assert result["usage"]["calls"] == len(llm.requests) == 11
    assert result["usage"]["total_tokens"] == 15 * 11


async def test_agent_end_call_ends_the_conversation(wire_wrapper, spec_path):
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("handoff_support", {"reason": "goodbye"}),
            call("end_call", {"reason": "customer is done"}),
        ],
        client=[text("That's all, thanks.")],
    )
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["end_reason"] == "agent_end_call"
    last = result["conversation_history"][-1]
    assert last["speaker"] == "agent_support"
    assert last["tool_results"] == [{"status": "call_ended", "reason": "customer is done"}]


async def test_malformed_tool_arguments_are_reported_to_the_model(wire_wrapper, spec_path):
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("add_to_cart", '{"items": [{"product_code": '),
            text("Sorry, let me try that again later."),
        ],
        client=[text("2 packs of butter."), call("end_call", {"reason": "done"})],
    )
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    entry = result["conversation_history"][2]
    assert entry["tool_calls"][0]["function"]["arguments"] == '{"items": [{"product_code": '
    assert "Invalid JSON arguments" in entry["tool_results"][0]["error"]
    assert entry["content"] == "Sorry, let me try that again later."
    # The model read the error as the tool message of its call.
    follow_up = llm.by_role("agent")[2]["messages"]
    assert follow_up[-1]["role"] == "tool"
    assert "Invalid JSON arguments" in follow_up[-1]["content"]


class RaisingBackend:
    """A tool backend whose every call fails."""

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        return {}

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        raise ConnectionError("tool API unreachable")


async def test_a_raising_backend_becomes_a_tool_error_result(wire_wrapper, spec_path):
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("rag_find_products", {"message": "butter", "execution_message": "Checking."}),
            text("Our catalogue is unavailable right now."),
        ],
        client=[text("Do you have butter?"), call("end_call", {"reason": "done"})],
    )
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=RaisingBackend())
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    error_result = result["conversation_history"][2]["tool_results"][0]
    assert error_result["error"].startswith("Tool execution failed: ConnectionError")


async def test_handoff_to_an_unknown_agent_is_an_error_result(wire_wrapper, spec_path):
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            call("handoff_billing", {"reason": "invoice"}),
            text("I can't transfer you, but I can help here."),
        ],
        client=[text("I need an invoice."), call("end_call", {"reason": "done"})],
    )
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    entry = result["conversation_history"][2]
    assert entry["speaker"] == "agent_agent"
    assert entry["tool_results"] == [{"error": "Invalid handoff target: billing"}]
    assert entry["content"] == "I can't transfer you, but I can help here."
    # No switch happened: the next request is the same agent with the error in its context.
    assert llm.by_role("agent")[2]["messages"][0]["content"] == "You sell food to Ann."


async def test_tool_loop_bound_records_the_turn_and_goes_on(wire_wrapper, spec_path):
    looping = [call("get_cart", {"execution_message": "Checking."}) for _ in range(3)]
    llm = ScriptedLLM(
        agent=[text("Hello!"), *looping, text("Your cart is empty.")],
        client=[text("What's in my cart?"), text("Thanks, and now?"), call("end_call", {})],
    )
    settings = Settings(MAX_INTERNAL_MESSAGES=3)
    engine = LegacyConversationEngine(
        wire_wrapper, spec_path, tool_backend=EmulatedShop(), settings=settings
    )
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["internal_cap_hits"] == 1
    assert shape(result)[2] == (2, "agent_agent", "", ["get_cart"] * 3)
    assert shape(result)[4][2] == "Your cart is empty."
    assert result["conversation_history"][-1]["content"] == client_end_call_content(
        "Client ended the call"
    )


async def test_geographic_block_is_failed_api_blocked(wire_wrapper, spec_path):
    blocked = error(
        403, "Country, region, or territory not supported", "unsupported_country_region_territory"
    )
    llm = ScriptedLLM(agent=[text("Hello!")], client=[blocked])
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result)
    assert result["status"] == "failed_api_blocked"
    assert result["error_type"] == "APIBlockedError"
    assert result["graceful_degradation"] is True
    assert result["partial_completion"] is True
    assert shape(result) == [(1, "agent_agent", "Hello!", [])]


async def test_server_error_fails_with_partial_history(wire_wrapper, spec_path):
    llm = ScriptedLLM(
        agent=[text("Hello!"), error(500, "boom")],
        client=[text("2 packs of butter.")],
    )
    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    with mock_llm(llm):
        result = await engine.run_conversation_with_tools(scenario())
    conforms(result)
    assert result["status"] == "failed"
    assert result["error_type"] == "InternalServerError"
    assert result["error_context"]["spec_name"] == spec_path
    assert shape(result) == [
        (1, "agent_agent", "Hello!", []),
        (1, "client", "2 packs of butter.", []),
    ]
    assert result["session_id"] == result["error_context"]["session_id"]


async def test_timeout_is_a_hard_bound_during_a_slow_call(wire_wrapper, spec_path):
    llm = ScriptedLLM(agent=[text("Hello!")], client=[text("too late")])

    async def slow_client(request: httpx.Request) -> httpx.Response:
        # The client's model call hangs far beyond the bound; only cancellation ends it.
        if role_of(json.loads(request.content)) == "client":
            await asyncio.sleep(30)
        return await llm(request)

    engine = LegacyConversationEngine(wire_wrapper, spec_path, tool_backend=EmulatedShop())
    started = time.monotonic()
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE_URL}/chat/completions").mock(side_effect=slow_client)
        result = await engine.run_conversation_with_tools(scenario(), timeout_sec=1)
    elapsed = time.monotonic() - started
    conforms(result)
    assert elapsed < 1.5
    assert result["status"] == "timeout"
    assert result["error_type"] == "TimeoutError"
    assert result["end_reason"] == "timeout"
    assert shape(result) == [(1, "agent_agent", "Hello!", [])]


# ---------------------------------------------------------------------- simulated-LLM conversations


async def test_basic_mode_has_no_tools(simulated_wrapper):
    engine = LegacyConversationEngine(simulated_wrapper, "multiagent_prompts")
    result = await engine.run_conversation(
        shop_scenario("basic", ["2 boxes of chicken fillet"], seed=3)
    )
    conforms(result, basic_mode=True)
    assert result["status"] == "completed"
    assert result["end_reason"] == "client_end_call"
    assert result["tools_used"] is False
    assert {entry["speaker"] for entry in result["conversation_history"]} == {"agent", "client"}
    assert all(
        "tool_calls" not in entry and "tool_results" not in entry
        for entry in result["conversation_history"]
    )
    assert result["conversation_history"][-1]["content"].startswith("[ЗАВЕРШИЛ ЗВОНОК:")


async def test_basic_mode_offers_the_agent_no_tools(wire_wrapper, spec_path):
    llm = ScriptedLLM(
        agent=[text("Hello!"), text("Noted.")],
        client=[text("Butter, please."), call("end_call", {"reason": "bye"})],
    )
    engine = LegacyConversationEngine(wire_wrapper, spec_path)
    with mock_llm(llm):
        result = await engine.run_conversation(scenario())
    conforms(result, basic_mode=True)
    assert all("tools" not in body for body in llm.by_role("agent"))
    assert result["conversation_history"][-1] == {
        "turn": 2,
        "speaker": "client",
        "content": client_end_call_content("bye"),
        "timestamp": result["conversation_history"][-1]["timestamp"],
    }


async def test_client_opens_with_its_greeting(simulated_wrapper):
    engine = LegacyConversationEngine(
        simulated_wrapper, "multiagent_prompts", tool_backend=EmulatedShop()
    )
    greeting = "Hello, this is Ellie from the Corner Cafe."
    result = await engine.run_conversation_with_tools(
        shop_scenario("greeting", ["2 trays of eggs"], seed=4, client_greeting=greeting)
    )
    conforms(result, basic_mode=False)
    history = result["conversation_history"]
    assert (history[0]["turn"], history[0]["speaker"], history[0]["content"]) == (
        1,
        "client",
        greeting,
    )
    assert (history[1]["turn"], history[1]["speaker"]) == (1, "agent_agent")
    assert history[2]["turn"] == 2 and history[2]["speaker"] == "client"


@pytest.mark.parametrize("max_turns", [1, 2])
async def test_max_turns_counts_exchanges(simulated_wrapper, max_turns):
    engine = LegacyConversationEngine(
        simulated_wrapper, "multiagent_prompts", tool_backend=EmulatedShop()
    )
    goals = ["2 boxes of beef mince", "3 packs of smoked bacon", "4 packs of milk"]
    result = await engine.run_conversation_with_tools(
        shop_scenario("long", goals, seed=5), max_turns=max_turns
    )
    conforms(result, basic_mode=False)
    assert result["status"] == "completed"
    assert result["end_reason"] == "max_turns"
    assert result["total_turns"] == max_turns
    assert result["conversation_history"][-1]["speaker"] == "client"


async def test_geo_block_from_the_simulated_endpoint():
    config = SimulationConfig(faults=[Fault(kind="geo_block")])
    async with OpenAIWrapper.simulated(config) as blocked:
        engine = LegacyConversationEngine(blocked, "multiagent_prompts")
        result = await engine.run_conversation_with_tools(shop_scenario("geo", ["butter"], 6))
    conforms(result)
    assert result["status"] == "failed_api_blocked"
    assert result["partial_completion"] is False


async def test_concurrent_conversations_keep_separate_carts():
    shop = EmulatedShop()
    async with OpenAIWrapper.simulated() as simulated_wrapper:
        engine = LegacyConversationEngine(
            simulated_wrapper, "multiagent_prompts", tool_backend=shop
        )
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


async def test_same_seed_gives_the_same_conversation(simulated_wrapper):
    engine = LegacyConversationEngine(
        simulated_wrapper, "multiagent_prompts", tool_backend=EmulatedShop()
    )
    runs = [
        await engine.run_conversation_with_tools(
            shop_scenario("seeded", ["2 packs of butter"], seed=10, DELIVERY_CHANGE="2024-01-19")
        )
        for _ in range(2)
    ]

    def comparable(result: dict[str, Any]) -> list[Any]:
        return [
            (e["turn"], e["speaker"], e["content"], e.get("tool_results"))
            for e in result["conversation_history"]
        ]

    assert comparable(runs[0]) == comparable(runs[1])
    assert runs[0]["seed"] == 10


async def test_missing_template_variable_fails_without_raising(simulated_wrapper):
    engine = LegacyConversationEngine(simulated_wrapper, "multiagent_prompts")
    result = await engine.run_conversation_with_tools({"name": "empty", "variables": {}})
    conforms(result)
    assert result["status"] == "failed"
    assert result["error_type"] == "TemplateVariableError"
    assert result["conversation_history"] == []


class SlowClientData:
    """A client-data source whose own timeout fires (not the conversation's)."""

    async def get_client_data(self, client_id: str, codes: list[str] | None = None) -> Any:
        raise TimeoutError("client data lookup timed out")


async def test_a_timeout_error_not_caused_by_the_deadline_is_a_failure(simulated_wrapper):
    engine = LegacyConversationEngine(
        simulated_wrapper, "multiagent_prompts", client_data=SlowClientData()
    )
    result = await engine.run_conversation_with_tools(
        shop_scenario("lookup", ["butter"], 11, client_id="C-1")
    )
    conforms(result)
    assert result["status"] == "failed"
    assert result["error_type"] == "TimeoutError"


def test_tool_call_arguments_are_read_as_the_autogen_engine_reads_them() -> None:
    from types import SimpleNamespace

    from conversation_engine.llm.endpoint import reply_tool_calls as _tool_calls_of

    def raw(arguments: Any) -> SimpleNamespace:
        return SimpleNamespace(
            id="c1", function=SimpleNamespace(name="get_cart", arguments=arguments)
        )

    reply = SimpleNamespace(tool_calls=[raw(None), raw(""), raw('{"a": 1}'), raw("[1")])
    assert [c.function.arguments for c in _tool_calls_of(reply)] == ["{}", "{}", '{"a": 1}', "[1"]
