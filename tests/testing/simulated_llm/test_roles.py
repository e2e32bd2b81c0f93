"""The simulated model's roles, driven through the real `openai` SDK over the httpx transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jinja2
import openai
import pytest

from conversation_engine.core.settings import project_path
from conversation_engine.testing.simulated_llm import (
    SimulatedLLMTransport,
    SimulatedModel,
    detect_role,
)
from conversation_engine.testing.simulated_llm.persona import parse_persona
from conversation_engine.testing.simulated_llm.utterances import parse_amount, parse_request
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, CONTROL_TOOLS, handoff_tool_schema

BASE_URL = "http://simulated.local/v1"
END_CALL = CONTROL_TOOLS["end_call"]
SALES_TOOLS = [BUSINESS_TOOLS[name] for name in ("rag_find_products", "add_to_cart", "get_cart")]
SUPPORT_TOOLS = [BUSINESS_TOOLS[name] for name in ("change_delivery_date", "set_current_location")]
ALL_AGENT_TOOLS = [*BUSINESS_TOOLS.values(), CONTROL_TOOLS["call_transfer"]]
AUTOGEN_EMPTY_PARAMETERS = {
    "type": "object",
    "properties": {},
    "required": [],
    "additionalProperties": False,
}
SEARCH_RESULT = json.dumps(
    {
        "query": "chicken fillet",
        "products": [
            {
                "product_code": "CB-00000101",
                "name": "Chicken fillet, chilled",
                "packaging_types": [{"type": 1, "name": "box 10 kg"}],
            },
            {"product_code": "CB-00000102", "name": "Chicken fillet, frozen"},
        ],
    }
)
SCENARIO_VARIABLES: dict[str, Any] = {
    "CLIENT_NAME": "Anna",
    "name": "Anna",
    "LOCATION": "1 Harbour Road",
    "locations": "1. 1 Harbour Road 2. 2 Mill Lane",
    "CURRENT_DATE": "2024-01-15",
    "current_date": "2024-01-15",
    "DELIVERY_DAY": "tomorrow",
    "delivery_days": "Monday, Wednesday",
    "PURCHASE_HISTORY": "none",
    "purchase_history": "none",
    "PERSONALITY": "Friendly.",
    "AMB_LEVEL": 1,
    "PATIENCE": 2,
    "session_id": "s-1",
}


def render_prompt(agent_id: str, spec: str = "default_prompts", **variables: Any) -> str:
    """A shipped prompt rendered strictly, as the engines do."""
    data = json.loads((project_path("prompt_specs") / f"{spec}.json").read_text(encoding="utf-8"))
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    template = environment.from_string(data["agents"][agent_id]["prompt"])
    return template.render(**{**SCENARIO_VARIABLES, **variables})


def client_prompt(goals: Any, **variables: Any) -> str:
    return render_prompt("client", ORDER_GOAL=goals, **variables)


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def tool_result(call_id: str, content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def check_arguments(tools: list[dict[str, Any]], name: str, raw: str) -> dict[str, Any]:
    """The call's arguments parse as JSON and satisfy the offered schema's required keys."""
    schema = next(tool["function"] for tool in tools if tool["function"]["name"] == name)
    arguments = json.loads(raw)
    parameters = schema.get("parameters", {})
    properties = parameters.get("properties", {})
    assert isinstance(arguments, dict)
    assert set(parameters.get("required", [])) <= set(arguments), (name, arguments)
    assert set(arguments) <= set(properties), (name, arguments)
    if name == "add_to_cart":
        item_schema = properties["items"]["items"]
        for item in arguments["items"]:
            assert set(item_schema["required"]) <= set(item)
    return arguments


@pytest.fixture
def transport() -> SimulatedLLMTransport:
    return SimulatedLLMTransport()


@pytest.fixture
async def sdk(transport: SimulatedLLMTransport) -> AsyncIterator[openai.AsyncOpenAI]:
    async with httpx.AsyncClient(transport=transport) as http:
        yield openai.AsyncOpenAI(api_key="sim", base_url=BASE_URL, http_client=http, max_retries=0)


async def complete(
    sdk: openai.AsyncOpenAI,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Any:
    if tools:
        extra["tools"] = tools
    response = await sdk.chat.completions.create(model="simulated", messages=messages, **extra)
    return response.choices[0]


# --- role detection ------------------------------------------------------------------------


def test_detect_role() -> None:
    user = [{"role": "user", "content": "hi"}]
    assert (
        detect_role({"messages": user, "response_format": {"type": "json_object"}}) == "evaluator"
    )
    assert (
        detect_role({"messages": user, "response_format": {"type": "json_schema"}}) == "evaluator"
    )
    assert detect_role({"messages": user, "tools": [END_CALL]}) == "client"
    assert detect_role({"messages": user, "tools": [END_CALL, *SALES_TOOLS]}) == "agent"
    assert detect_role({"messages": user, "tools": SALES_TOOLS}) == "agent"
    assert detect_role({"messages": user}) == "agent"
    basic_client = [{"role": "system", "content": client_prompt(["2 boxes of butter"])}, *user]
    assert detect_role({"messages": basic_client}) == "client"


async def test_requests_are_counted_by_role(
    sdk: openai.AsyncOpenAI, transport: SimulatedLLMTransport
) -> None:
    hello = [{"role": "user", "content": "Hello"}]
    await complete(sdk, hello, SALES_TOOLS)
    await complete(sdk, hello, [END_CALL])
    await complete(sdk, hello, response_format={"type": "json_object"})
    assert transport.stats.requests == 3
    assert transport.stats.by_role == {"agent": 1, "client": 1, "evaluator": 1}
    assert transport.stats.model_cpu_seconds > 0


# --- client --------------------------------------------------------------------------------


async def test_client_works_through_its_goals_and_ends_the_call(sdk: openai.AsyncOpenAI) -> None:
    system = client_prompt(
        ["2 boxes of chicken fillet", ["1 kg of salmon fillet", "CB-00000127"]],
        DELIVERY_CHANGE="2024-01-18",
        ADDRESS_CHANGE=2,
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Hello! You've reached the shop. How can I help you today?"},
    ]
    requests = []
    for _ in range(6):
        choice = await complete(sdk, messages, [END_CALL], seed=3)
        if choice.message.tool_calls:
            break
        requests.append(parse_request(choice.message.content))
        messages += [
            {"role": "assistant", "content": choice.message.content},
            {"role": "user", "content": "Done. Anything else?"},
        ]
    assert [(r.kind, r.amount and r.amount.item, r.date, r.location_id) for r in requests] == [
        ("product", "chicken fillet", None, None),
        ("product", "salmon fillet", None, None),
        ("delivery", None, "2024-01-18", None),
        ("address", None, None, 2),
    ]
    assert requests[0].amount is not None and requests[0].amount.quantity == 2
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "end_call"
    assert json.loads(call.function.arguments) == {"reason": "order complete"}
    assert "goodbye" in (choice.message.content or "").lower()


async def test_client_runs_out_of_patience_after_repeated_failures(sdk: openai.AsyncOpenAI) -> None:
    system = client_prompt(["kangaroo steaks", "dragon fruit", "2 packs of butter"], PATIENCE=1)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Hello! How can I help you today?"},
        {"role": "assistant", "content": "I'd like to order kangaroo steaks."},
        {"role": "user", "content": "Sorry, we don't have kangaroo steaks. Anything else?"},
        {"role": "assistant", "content": "I need dragon fruit."},
        {"role": "user", "content": "Sorry, we don't have dragon fruit. Anything else?"},
    ]
    choice = await complete(sdk, messages, [END_CALL])
    (call,) = choice.message.tool_calls
    assert call.function.name == "end_call"
    assert json.loads(call.function.arguments)["reason"].startswith("out of patience")


async def test_client_runs_out_of_patience_when_the_call_drags_on(sdk: openai.AsyncOpenAI) -> None:
    # One goal and patience 1 give a budget of 1 + 2 + 2 = 5 own turns.
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": client_prompt(["1 pack of butter"], PATIENCE=1)}
    ]
    for _ in range(5):
        messages += [
            {"role": "user", "content": "How can I help you?"},
            {"role": "assistant", "content": "Hello?"},
        ]
    messages.append({"role": "user", "content": "How can I help you?"})
    choice = await complete(sdk, messages, [END_CALL])
    reason = json.loads(choice.message.tool_calls[0].function.arguments)["reason"]
    assert reason == "out of patience: the conversation is taking too long"


async def test_client_without_goals_asks_then_leaves(sdk: openai.AsyncOpenAI) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a customer."},
        {"role": "user", "content": "Hello! How can I help you today?"},
    ]
    first = await complete(sdk, messages, [END_CALL])
    assert first.message.content and not first.message.tool_calls
    messages += [
        {"role": "assistant", "content": first.message.content},
        {"role": "user", "content": "We sell meat, fish and dairy."},
    ]
    second = await complete(sdk, messages, [END_CALL])
    assert second.message.tool_calls[0].function.name == "end_call"


async def test_client_in_basic_mode_speaks_plain_text(sdk: openai.AsyncOpenAI) -> None:
    messages = [
        {"role": "system", "content": client_prompt(["2 packs of butter"])},
        {"role": "user", "content": "Hello! How can I help you today?"},
        {"role": "assistant", "content": "I'd like to order 2 packs of butter."},
        {"role": "user", "content": "We have that, I've noted 2 packs of butter. Anything else?"},
    ]
    choice = await complete(sdk, messages)
    assert choice.finish_reason == "stop"
    assert "goodbye" in choice.message.content.lower()


# --- agent ---------------------------------------------------------------------------------


async def test_agent_greets_without_a_client_request(sdk: openai.AsyncOpenAI) -> None:
    choice = await complete(sdk, [{"role": "system", "content": "You are a shop."}], SALES_TOOLS)
    assert choice.finish_reason == "stop"
    assert "How can I help you today?" in choice.message.content


async def test_agent_searches_adds_and_confirms(sdk: openai.AsyncOpenAI) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": render_prompt("agent")},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "I'd like to order 2 boxes of chicken fillet."},
    ]
    search = await complete(sdk, messages, ALL_AGENT_TOOLS)
    assert search.finish_reason == "tool_calls"
    (call,) = search.message.tool_calls
    assert call.id.startswith("call_")
    assert call.function.name == "rag_find_products"
    arguments = check_arguments(ALL_AGENT_TOOLS, call.function.name, call.function.arguments)
    assert arguments["message"] == "chicken fillet"
    assert arguments["execution_message"]

    messages += [
        tool_call(call.id, call.function.name, arguments),
        tool_result(call.id, SEARCH_RESULT),
    ]
    add = await complete(sdk, messages, ALL_AGENT_TOOLS)
    (call,) = add.message.tool_calls
    assert call.function.name == "add_to_cart"
    arguments = check_arguments(ALL_AGENT_TOOLS, call.function.name, call.function.arguments)
    assert arguments["items"] == [
        {"product_code": "CB-00000101", "quantity": 2, "packaging_type": 1}
    ]

    messages += [
        tool_call(call.id, call.function.name, arguments),
        tool_result(call.id, {"status": "added", "items_in_cart": 1}),
    ]
    reply = await complete(sdk, messages, ALL_AGENT_TOOLS)
    assert reply.finish_reason == "stop"
    assert "2 boxes of Chicken fillet, chilled" in reply.message.content
    assert "Anything else?" in reply.message.content


async def test_agent_says_when_a_product_is_missing(sdk: openai.AsyncOpenAI) -> None:
    messages = [
        {"role": "user", "content": "Could I get kangaroo steaks, please?"},
        tool_call("call_1", "rag_find_products", {"message": "kangaroo steaks"}),
        tool_result("call_1", {"query": "kangaroo steaks", "products": []}),
    ]
    choice = await complete(sdk, messages, SALES_TOOLS)
    assert choice.message.content == "Sorry, we don't have kangaroo steaks. Anything else?"


async def test_agent_apologises_for_a_tool_error(sdk: openai.AsyncOpenAI) -> None:
    messages = [
        {"role": "user", "content": "Could you change my delivery date to 2024-02-30?"},
        tool_call("call_1", "change_delivery_date", {"delivery_date": "2024-02-30"}),
        tool_result("call_1", {"error": "Invalid delivery date"}),
    ]
    choice = await complete(sdk, messages, SUPPORT_TOOLS)
    assert choice.message.content.startswith("Sorry")
    assert not choice.message.tool_calls


@pytest.mark.parametrize(
    ("request_text", "tool", "arguments", "confirmation"),
    [
        (
            "Could you change my delivery date to 2024-01-18?",
            "change_delivery_date",
            {"delivery_date": "2024-01-18"},
            "2024-01-18",
        ),
        (
            "Please deliver to my address number 2.",
            "set_current_location",
            {"location_id": 2},
            "address number 2",
        ),
    ],
)
async def test_agent_changes_delivery_details(
    sdk: openai.AsyncOpenAI,
    request_text: str,
    tool: str,
    arguments: dict[str, Any],
    confirmation: str,
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": request_text}]
    choice = await complete(sdk, messages, ALL_AGENT_TOOLS)
    (call,) = choice.message.tool_calls
    assert call.function.name == tool
    made = check_arguments(ALL_AGENT_TOOLS, tool, call.function.arguments)
    assert {key: made[key] for key in arguments} == arguments
    messages += [tool_call(call.id, tool, made), tool_result(call.id, {"status": "ok"})]
    done = await complete(sdk, messages, ALL_AGENT_TOOLS)
    assert confirmation in done.message.content


async def test_agent_answers_a_cart_question(sdk: openai.AsyncOpenAI) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What's in my cart right now?"}]
    choice = await complete(sdk, messages, SALES_TOOLS)
    assert choice.message.tool_calls[0].function.name == "get_cart"
    cart = {"items": [{"name": "Butter 82%", "quantity": 3.0}], "total": 20.1}
    messages += [tool_call("call_1", "get_cart", {}), tool_result("call_1", cart)]
    summary = await complete(sdk, messages, SALES_TOOLS)
    assert "3 x Butter 82%" in summary.message.content


async def test_agent_hands_off_when_it_lacks_the_tool(sdk: openai.AsyncOpenAI) -> None:
    legacy_tools = [
        *SALES_TOOLS,
        handoff_tool_schema("support", "Delivery dates, delivery addresses and order problems."),
    ]
    request = [{"role": "user", "content": "Could you change my delivery date to 2024-01-18?"}]
    choice = await complete(sdk, request, legacy_tools)
    (call,) = choice.message.tool_calls
    assert call.function.name == "handoff_support"
    assert check_arguments(legacy_tools, call.function.name, call.function.arguments)["reason"]

    autogen_tools = [
        *SALES_TOOLS,
        {
            "type": "function",
            "function": {
                "name": "transfer_to_support",
                "description": "Delivery dates, delivery addresses and order problems.",
                "parameters": AUTOGEN_EMPTY_PARAMETERS,
                "strict": True,
            },
        },
    ]
    choice = await complete(sdk, request, autogen_tools)
    (call,) = choice.message.tool_calls
    assert call.function.name == "transfer_to_support"
    assert json.loads(call.function.arguments) == {}


async def test_agent_does_not_ping_pong_a_handed_over_request(sdk: openai.AsyncOpenAI) -> None:
    support_tools = [
        *SUPPORT_TOOLS,
        handoff_tool_schema("agent", "Product search, adding or removing products."),
    ]
    request = {"role": "user", "name": "client", "content": "I'd like to order 2 packs of butter."}
    handed_over = {
        "role": "user",
        "name": "agent",
        "content": "Transferred to support, adopting the role of support immediately.",
    }
    choice = await complete(sdk, [request, handed_over], support_tools)
    assert not choice.message.tool_calls
    assert "cannot help" in choice.message.content

    legacy_takeover = {
        "role": "user",
        "content": "You are now taking over this conversation. The previous agent has "
        "transferred the customer to you.",
    }
    plain_request = {"role": "user", "content": "I'd like to order 2 packs of butter."}
    choice = await complete(sdk, [plain_request, legacy_takeover], support_tools)
    assert "cannot help" in choice.message.content

    # A handoff notice from before the request does not block handing the new request back.
    choice = await complete(sdk, [handed_over, request], support_tools)
    assert choice.message.tool_calls[0].function.name == "handoff_agent"


async def test_agent_serves_a_request_handed_over_to_it(sdk: openai.AsyncOpenAI) -> None:
    messages = [
        {
            "role": "user",
            "name": "client",
            "content": "Could you change my delivery date to 2024-01-18?",
        },
        {"role": "user", "name": "agent", "content": "Transferred to support."},
    ]
    choice = await complete(sdk, messages, SUPPORT_TOOLS)
    assert choice.message.tool_calls[0].function.name == "change_delivery_date"


async def test_agent_never_hands_off_to_the_client(sdk: openai.AsyncOpenAI) -> None:
    tools = [
        *SALES_TOOLS,
        handoff_tool_schema("client", "Delivery dates and addresses."),
        {
            "type": "function",
            "function": {
                "name": "transfer_to_client",
                "description": "Delivery dates.",
                "parameters": AUTOGEN_EMPTY_PARAMETERS,
            },
        },
    ]
    request = [{"role": "user", "content": "Could you change my delivery date to 2024-01-18?"}]
    choice = await complete(sdk, request, tools)
    assert not choice.message.tool_calls
    assert "cannot help" in choice.message.content


async def test_agent_in_basic_mode_answers_in_words(sdk: openai.AsyncOpenAI) -> None:
    choice = await complete(
        sdk, [{"role": "user", "content": "I'd like to order 2 boxes of chicken fillet."}]
    )
    assert choice.finish_reason == "stop"
    assert (
        choice.message.content
        == "We have that, I've noted 2 boxes of chicken fillet. Anything else?"
    )
    goodbye = await complete(
        sdk, [{"role": "user", "content": "That's everything, thank you. Goodbye!"}]
    )
    assert "Goodbye" in goodbye.message.content


# --- evaluator -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transcript", "score"),
    [
        (
            "Ход 1 - agent_agent: Hello! How can I help you today?\n"
            "Ход 1 - client: I'd like to order 2 packs of butter.\n"
            "Ход 2 - agent_agent: I've added 2 packs of Butter to your cart. Anything else?\n"
            "Ход 2 - client: [ЗАВЕРШИЛ ЗВОНОК: order complete]",
            3,
        ),
        (
            "Ход 1 - agent_agent: Hello!\n"
            "Ход 1 - client: Could I get kangaroo steaks, please?\n"
            "Ход 2 - agent_agent: Sorry, we don't have kangaroo steaks. Anything else?\n"
            "Ход 2 - client: [ЗАВЕРШИЛ ЗВОНОК: order partly complete]",
            2,
        ),
        (
            "Ход 1 - agent_agent: Hello!\n"
            "Ход 3 - client: [ЗАВЕРШИЛ ЗВОНОК: out of patience: the shop failed 2 of my requests]",
            1,
        ),
        ("Ход 1 - client: Hello?", 1),
    ],
)
async def test_evaluator_scores_the_transcript(
    sdk: openai.AsyncOpenAI, transcript: str, score: int
) -> None:
    messages = [
        {"role": "system", "content": render_prompt("evaluator")},
        {"role": "user", "content": transcript},
    ]
    choice = await complete(sdk, messages, response_format={"type": "json_object"})
    verdict = json.loads(choice.message.content)
    assert verdict["score"] == score
    assert isinstance(verdict["comment"], str) and verdict["comment"]


# --- wire format and determinism -----------------------------------------------------------


async def test_response_shape_and_usage(sdk: openai.AsyncOpenAI) -> None:
    response = await sdk.chat.completions.create(
        model="my-model",
        messages=[{"role": "user", "content": "I need 3 packs of butter."}],
        tools=SALES_TOOLS,
    )
    assert response.object == "chat.completion"
    assert response.model == "my-model"
    assert response.usage is not None
    assert response.usage.prompt_tokens > 100  # the tool schemas count too
    assert response.usage.completion_tokens > 0
    assert (
        response.usage.total_tokens
        == response.usage.prompt_tokens + response.usage.completion_tokens
    )


async def test_same_request_same_response_and_seed_varies_phrasing(sdk: openai.AsyncOpenAI) -> None:
    messages = [{"role": "system", "content": client_prompt(["2 packs of butter"])}]
    first = await sdk.chat.completions.create(
        model="m", messages=messages, tools=[END_CALL], seed=7
    )
    again = await sdk.chat.completions.create(
        model="m", messages=messages, tools=[END_CALL], seed=7
    )
    assert first.model_dump() == again.model_dump()
    phrasings = set()
    for seed in range(12):
        response = await sdk.chat.completions.create(
            model="m", messages=messages, tools=[END_CALL], seed=seed
        )
        content = response.choices[0].message.content
        assert parse_request(content).amount == parse_amount("2 packs of butter")
        phrasings.add(content)
    assert len(phrasings) > 1


async def test_tool_call_ids_are_unique_across_a_conversation() -> None:
    model = SimulatedModel()
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "I'd like to order 2 boxes of chicken fillet."}
    ]
    ids = []
    for result in (SEARCH_RESULT, json.dumps({"status": "added"})):
        message = model.complete({"model": "m", "messages": messages, "tools": SALES_TOOLS})[
            "choices"
        ][0]["message"]
        call = message["tool_calls"][0]
        ids.append(call["id"])
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            tool_result(call["id"], result),
        ]
    assert len(set(ids)) == 2


# --- conventions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "item", "quantity"),
    [
        (
            "I'd like to order 2 boxes of chilled chicken fillet.",
            "product",
            "chilled chicken fillet",
            2,
        ),
        ("Could I get 1 kg of salmon fillet, please?", "product", "salmon fillet", 1),
        ("Please add three packs of butter to my order.", "product", "butter", 3),
        ("can i have a tray of eggs please", "product", "eggs", 1),
        ("I need kangaroo steaks.", "product", "kangaroo steaks", 1),
        ("Could you change my delivery date to 2024-01-18?", "delivery", None, None),
        ("Please deliver to my address number 2.", "address", None, None),
        ("What's in my cart right now?", "cart", None, None),
        ("That's everything, thank you. Goodbye!", "goodbye", None, None),
        ("Добрый день!", "other", None, None),
    ],
)
def test_parse_request(text: str, kind: str, item: str | None, quantity: int | None) -> None:
    request = parse_request(text)
    assert request.kind == kind
    if item is not None:
        assert request.amount is not None
        assert (request.amount.item, request.amount.quantity) == (item, quantity)


def test_persona_reads_goals_in_prompt_order() -> None:
    persona = parse_persona(
        client_prompt(
            ["Delivery date change: 2024-01-19", "2 boxes of pork ribs"],
            ADDRESS_CHANGE=2,
            PATIENCE=3,
        )
    )
    assert [(goal.kind, goal.value) for goal in persona.goals] == [
        ("delivery", "2024-01-19"),
        ("product", "2 boxes of pork ribs"),
        ("address", "2"),
    ]
    assert persona.patience == 3
    single = parse_persona(client_prompt("1 pack of bacon"))
    assert [goal.value for goal in single.goals] == ["1 pack of bacon"]
