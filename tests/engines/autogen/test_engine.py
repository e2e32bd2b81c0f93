"""The AutoGen engine end to end: real Swarm, real SDK, HTTP mocked at the wire."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import respx

from conversation_engine.core.contract import contract_violations
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.shop import EmulatedShop
from tests.scripted_llm import BASE_URL, ScriptedLLM, call, error, text

SPEC = {
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
            "prompt": "You handle deliveries.",
            "tools": ["change_delivery_date", "set_current_location"],
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


@pytest.fixture
def spec_path(tmp_path: Path) -> str:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    return str(path)


def scenario(name: str = "buy chicken", **variables: object) -> dict:
    return {"name": name, "variables": {"CLIENT_NAME": "Ann", "SEED": 7, **variables}}


def speakers(result: dict) -> list[tuple[int, str]]:
    return [(e["turn"], e["speaker"]) for e in result["conversation_history"]]


async def test_multi_agent_conversation_with_tools_handoffs_and_end_call(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    shop = EmulatedShop()
    llm = ScriptedLLM(
        agent=[
            text("Hello, this is the shop."),
            call(
                "rag_find_products",
                {"message": "chicken fillet", "execution_message": "Let me check."},
            ),
            lambda body: call(
                "add_to_cart",
                {
                    "items": [
                        {"product_code": _first_code(body), "quantity": 2, "packaging_type": 1}
                    ],
                    "execution_message": "Adding it.",
                },
            ),
            text("Added two chicken fillets."),
            call("handoff_support", content="Support will help with that."),
            call(
                "change_delivery_date",
                {"delivery_date": "2024-01-18", "execution_message": "Changing."},
            ),
            text("Your delivery is now on the 18th."),
            call("handoff_agent"),
            call("get_cart", {"execution_message": "Checking your cart."}),
            text("You have chicken fillet in your cart."),
        ],
        client=[
            text("I'd like 2 chicken fillets."),
            text("Change my delivery to 2024-01-18."),
            text("What's in my cart?"),
            call("end_call", {"reason": "order complete"}),
        ],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    engine = AutogenConversationEngine(wire_wrapper, spec_path, tool_backend=shop)
    result = await engine.run_conversation_with_tools(scenario())

    assert contract_violations(result, basic_mode=False) == []
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"
    assert speakers(result) == [
        (1, "agent_agent"),
        (1, "client"),
        (2, "agent_agent"),
        (2, "client"),
        (3, "agent_agent"),
        (3, "agent_support"),
        (3, "client"),
        (4, "agent_support"),
        (4, "agent_agent"),
        (4, "client"),
    ]
    history = result["conversation_history"]
    assert [c["function"]["name"] for c in history[2]["tool_calls"]] == [
        "rag_find_products",
        "add_to_cart",
    ]
    assert (
        json.loads(history[2]["tool_calls"][0]["function"]["arguments"])["execution_message"]
        == "Let me check."
    )
    assert history[2]["tool_results"][1]["cart"]  # the shop's add_to_cart result, parsed
    assert history[4]["content"] == "Support will help with that."
    assert history[4]["tool_results"] == [
        {
            "status": "handoff_completed",
            "target_agent": "support",
            "message": "Successfully handed off conversation to support",
        }
    ]
    assert history[5]["content"] == "Your delivery is now on the 18th."
    assert history[-1]["content"] == "[ЗАВЕРШИЛ ЗВОНОК: order complete]"
    assert "tool_results" not in history[-1]
    assert result["total_turns"] == 4
    # One session id everywhere: the shop's state under it is what the conversation did.
    state = shop.session_state(result["session_id"])
    assert state.delivery_date == "2024-01-18"
    assert [line.quantity for line in shop.cart(result["session_id"])] == [2]
    # The client heard only spoken text, never tool traffic or handoff mechanics.
    client_context = llm.by_role("client")[-1]["messages"]
    heard = " ".join(str(m.get("content")) for m in client_context if m["role"] == "user")
    assert (
        "Support will help with that." in heard
        and "Transferred" not in heard
        and "CB-" not in heard
    )
    # The seed and the endpoint's temperature reach every request; parallel tool calls are off.
    assert {body["seed"] for body in llm.requests} == {7}
    assert all(body["parallel_tool_calls"] is False for body in llm.requests)
    assert result["usage"]["calls"] == len(llm.requests)
    assert result["usage"]["prompt_tokens"] == 10 * len(llm.requests)


def _first_code(body: dict) -> str:
    for message in reversed(body["messages"]):
        if message["role"] == "tool":
            return json.loads(message["content"])["products"][0]["product_code"]
    raise AssertionError("no tool result in the request")


async def test_basic_mode_has_no_tools_and_legacy_speakers(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), text("We have chicken.")],
        client=[text("Chicken, please."), call("end_call", {"reason": "done"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation(scenario())
    assert contract_violations(result, basic_mode=True) == []
    assert result["tools_used"] is False
    assert speakers(result) == [(1, "agent"), (1, "client"), (2, "agent"), (2, "client")]
    assert all("tools" not in body for body in llm.by_role("agent"))
    assert result["conversation_history"][-1] == {
        "turn": 2,
        "speaker": "client",
        "content": "[ЗАВЕРШИЛ ЗВОНОК: done]",
        "timestamp": result["conversation_history"][-1]["timestamp"],
    }


async def test_client_opens_with_the_scenario_greeting(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hi Ann, what would you like?")], client=[call("end_call", {"reason": "bye"})]
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario(GREETING="Good afternoon!")
    )
    assert contract_violations(result) == []
    history = result["conversation_history"]
    assert [(e["turn"], e["speaker"], e["content"]) for e in history[:2]] == [
        (1, "client", "Good afternoon!"),
        (1, "agent_agent", "Hi Ann, what would you like?"),
    ]
    first_agent_request = llm.by_role("agent")[0]["messages"]
    assert first_agent_request[-1] == {
        "role": "user",
        "content": "Good afternoon!",
        "name": "client",
    }


async def test_max_turns_counts_exchanges(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[text(f"Agent {i}") for i in range(5)], client=[text(f"Client {i}") for i in range(5)]
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario(), max_turns=2
    )
    assert contract_violations(result) == []
    assert result["status"] == "completed" and result["end_reason"] == "max_turns"
    assert result["total_turns"] == 2
    assert speakers(result) == [
        (1, "agent_agent"),
        (1, "client"),
        (2, "agent_agent"),
        (2, "client"),
    ]
    assert len(llm.by_role("agent")) == 2


async def test_timeout_is_a_hard_bound_inside_a_slow_model_call(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(agent=[text("Hello!"), text("Too late")], client=[text("Hi")])

    async def side_effect(request):
        if len(llm.requests) >= 2:
            await asyncio.sleep(30)  # the agent's second call hangs
        return await llm(request)

    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=side_effect)
    started = time.monotonic()
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario(), timeout_sec=1
    )
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert result["status"] == "timeout" and result["error_type"] == "TimeoutError"
    assert result["error"] == "Conversation timeout after 1 seconds"
    assert result["end_reason"] == "timeout"
    assert contract_violations(result) == []
    assert [(e["turn"], e["speaker"], e["content"]) for e in result["conversation_history"]] == [
        (1, "agent_agent", "Hello!"),
        (1, "client", "Hi"),
    ]


async def test_geographic_block(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[
            text("Hello!"),
            error(
                403,
                "Country, region, or territory not supported",
                "unsupported_country_region_territory",
            ),
        ],
        client=[text("Hi")],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario()
    )
    assert contract_violations(result) == []
    assert result["status"] == "failed_api_blocked"
    assert result["error_type"] == "APIBlockedError" and result["graceful_degradation"] is True
    assert result["partial_completion"] is True
    assert [e["content"] for e in result["conversation_history"]] == ["Hello!", "Hi"]


async def test_server_error_outlasting_retries_fails_and_keeps_history(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), error(500, "boom"), error(500, "boom")], client=[text("Hi")]
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    engine = AutogenConversationEngine(wire_wrapper, spec_path)
    result = await engine.run_conversation_with_tools(scenario())
    assert contract_violations(result) == []
    assert result["status"] == "failed" and result["error_type"] == "InternalServerError"
    assert "500" in result["error"] and "Traceback" not in result["error"]
    assert result["error_context"]["spec_name"] == spec_path
    assert [e["content"] for e in result["conversation_history"]] == ["Hello!", "Hi"]
    # One retry on a rebuilt team, then the failure is reported.
    assert len(llm.by_role("agent")) == 3
    # The next conversation on the same engine is unaffected.
    llm.scripts["agent"] = [text("Hello again!")]
    llm.scripts["client"] = [call("end_call", {"reason": "bye"})]
    again = await engine.run_conversation_with_tools(scenario())
    assert again["status"] == "completed"
    assert [e["content"] for e in again["conversation_history"]] == [
        "Hello again!",
        "[ЗАВЕРШИЛ ЗВОНОК: bye]",
    ]


async def test_transient_error_is_retried_from_the_checkpoint(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[text("Hello!"), error(500, "blip"), text("Here you are.")],
        client=[text("Hi"), call("end_call", {"reason": "ok"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario()
    )
    assert result["status"] == "completed"
    assert [e["content"] for e in result["conversation_history"]] == [
        "Hello!",
        "Hi",
        "Here you are.",
        "[ЗАВЕРШИЛ ЗВОНОК: ok]",
    ]
    retried = llm.by_role("agent")[-1]["messages"]
    assert [m["content"] for m in retried if m["role"] == "user"] == ["Hi"]  # not duplicated


async def test_malformed_tool_arguments_are_recorded_and_the_call_goes_on(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[call("add_to_cart", '{"items": [oops'), text("Sorry, let me try that again.")],
        client=[call("end_call", {"reason": "bye"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario()
    )
    assert result["status"] == "completed" and contract_violations(result) == []
    entry = result["conversation_history"][0]
    assert entry["tool_calls"][0]["function"]["arguments"] == '{"items": [oops'
    assert "Error" in str(entry["tool_results"][0])
    assert entry["content"] == "Sorry, let me try that again."


class ExplodingShop(EmulatedShop):
    async def call(self, tool_name, arguments, session_id):
        raise ConnectionError("inventory database down")


async def test_tool_backend_raising_becomes_a_tool_error(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[
            call("get_cart", {"execution_message": "Checking."}),
            text("Our system is down, sorry."),
        ],
        client=[call("end_call", {"reason": "bye"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(
        wire_wrapper, spec_path, tool_backend=ExplodingShop()
    ).run_conversation_with_tools(scenario())
    assert result["status"] == "completed"
    assert result["conversation_history"][0]["tool_results"] == [
        {"error": "Tool execution failed: ConnectionError: inventory database down"}
    ]


async def test_handoff_to_unknown_agent(
    spec_path: str, wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    llm = ScriptedLLM(
        agent=[call("handoff_nobody"), text("Let me help you myself.")],
        client=[call("end_call", {"reason": "bye"})],
    )
    respx_mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=llm)
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        scenario()
    )
    assert result["status"] == "completed" and contract_violations(result) == []
    entry = result["conversation_history"][0]
    assert entry["speaker"] == "agent_agent"
    assert entry["tool_results"] == [{"error": "Invalid handoff target: nobody"}]
    assert entry["content"] == "Let me help you myself."


async def test_missing_template_variable_fails_with_a_clear_error(
    tmp_path: Path, wire_wrapper: OpenAIWrapper
) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["agents"]["client"]["prompt"] = "You want {{ ORDER_GOAL }}."
    path = tmp_path / "needs_goal.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    result = await AutogenConversationEngine(wire_wrapper, str(path)).run_conversation_with_tools(
        scenario()
    )
    assert result["status"] == "failed"
    assert result["error_type"] == "TemplateVariableError"
    assert "'client'" in result["error"] and "'ORDER_GOAL'" in result["error"]
    assert result["conversation_history"] == []
    assert contract_violations(result) == []


async def test_bad_scenario_is_a_failed_result(spec_path: str, wire_wrapper: OpenAIWrapper) -> None:
    result = await AutogenConversationEngine(wire_wrapper, spec_path).run_conversation_with_tools(
        {"variables": {}}
    )
    assert result["status"] == "failed" and result["error_type"] == "ScenarioError"
    assert result["scenario"] == "unknown"
