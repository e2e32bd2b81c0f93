"""The simulated agent calls tools it does not know by name (a user's own tools) once, with
arguments fitted to their schema, and leaves conversations with the shipped tools as they were."""

from __future__ import annotations

import json
from datetime import date
from enum import Enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from conversation_engine.testing.simulated_llm import SimulatedModel
from conversation_engine.testing.simulated_llm import utterances as say
from conversation_engine.testing.simulated_llm.custom_tools import (
    DEFAULT_DATE,
    ConversationHints,
    example_arguments,
)
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, EXECUTION_MESSAGE
from conversation_engine.tools.python_tools import PythonTool, python_tool

SEARCH_RESULT = json.dumps(
    {"query": "chicken fillet", "products": [{"product_code": "CB-00000101", "name": "Fillet"}]}
)
ADDED_RESULT = json.dumps({"status": "added", "added": [{"product_code": "CB-00000101"}]})


@python_tool
async def check_stock(
    session_id: str,
    product_code: Annotated[str, "Product code from rag_find_products"],
    warehouse: int,
) -> dict[str, Any]:
    """How many units are in stock."""
    return {"in_stock": 12}


class Window(BaseModel):
    start: date
    end: date


class Speed(Enum):
    FAST = "fast"
    SLOW = "slow"


@python_tool
async def book_slot(
    session_id: str,
    delivery_date: date,
    window: Window,
    speed: Speed,
    mode: Literal["van", "truck"],
    pallets: Annotated[int, Field(ge=2, le=5)],
    labels: Annotated[list[str], Field(min_length=2)],
    note: str | None,
    quantity: float,
    express: bool = False,
) -> str:
    """Book a delivery slot."""
    return "booked"


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


def tool_result(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def served_product(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """A sales agent's context after it searched for and added 2 boxes of chicken fillet."""
    return [
        {"role": "system", "content": "You are the sales agent."},
        {"role": "user", "content": "I'd like to order 2 boxes of chicken fillet."},
        tool_call("c1", "rag_find_products", {"message": "chicken fillet"}),
        tool_result("c1", SEARCH_RESULT),
        tool_call("c2", "add_to_cart", {"items": [{"product_code": "CB-00000101", "quantity": 2}]}),
        tool_result("c2", ADDED_RESULT),
        *extra,
    ]


def reply(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"model": "simulated", "messages": messages, "tools": tools, "seed": 1}
    message: dict[str, Any] = SimulatedModel().complete(body)["choices"][0]["message"]
    return message


def called(message: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    calls = message.get("tool_calls")
    if not calls:
        return None
    function = calls[0]["function"]
    return function["name"], json.loads(function["arguments"])


SHOP_TOOLS = [BUSINESS_TOOLS[name] for name in ("rag_find_products", "add_to_cart", "get_cart")]


def test_a_custom_tool_is_called_once_the_request_is_served() -> None:
    tools = [*SHOP_TOOLS, check_stock.schema()]
    # Mid-request the shop's own steps come first.
    first = reply(served_product()[:2], tools)
    assert called(first) == (
        "rag_find_products",
        {"message": "chicken fillet", EXECUTION_MESSAGE: "Let me check what we have."},
    )
    # Served: the custom tool runs, with the product code the search found.
    name, arguments = called(reply(served_product(), tools)) or ("", {})
    assert name == "check_stock"
    assert arguments == {
        "product_code": "CB-00000101",
        "warehouse": 1,
        EXECUTION_MESSAGE: "One moment, please.",
    }
    assert check_stock.bind(arguments)  # its own validation accepts them
    # Its result back: the agent says what it would have said, and calls it no more.
    after = served_product(
        tool_call("c3", "check_stock", arguments), tool_result("c3", '{"in_stock": 12}')
    )
    answer = reply(after, tools)
    assert called(answer) is None
    assert answer["content"].startswith(("I've added 2 boxes", "Done, I've put 2 boxes"))
    # A later request in the same conversation does not call it again.
    later = [
        *after,
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": "What's in my cart right now?"},
        tool_call("c4", "get_cart", {}),
        tool_result("c4", '{"items": []}'),
    ]
    assert called(reply(later, tools)) is None


def test_a_greeting_request_also_gets_the_custom_tool_called() -> None:
    tools = [*SHOP_TOOLS, check_stock.schema()]
    messages = [
        {"role": "system", "content": "You are the sales agent."},
        {"role": "user", "content": "Hello, what kind of products do you sell?"},
    ]
    name, arguments = called(reply(messages, tools)) or ("", {})
    assert name == "check_stock"
    # No product code in the conversation yet: the client's words stand in.
    assert arguments["product_code"] == "Hello, what kind of products do you sell?"


def test_no_custom_tool_when_the_bot_opens_or_in_basic_mode() -> None:
    opening = [{"role": "system", "content": "You are the sales agent."}]
    assert called(reply(opening, [*SHOP_TOOLS, check_stock.schema()])) is None
    basic = reply(served_product()[:2], [])
    assert called(basic) is None


def test_shipped_tools_only_are_served_as_before() -> None:
    # Every shipped business tool is known by name: none is called "because it is new".
    tools = [*BUSINESS_TOOLS.values()]
    answer = reply(served_product(), tools)
    assert called(answer) is None
    assert answer["content"].startswith(("I've added 2 boxes", "Done, I've put 2 boxes"))
    assert not say.is_failure(answer["content"])


def test_example_arguments_fit_a_rich_signature() -> None:
    hints = ConversationHints(
        request_text="Could you change my delivery date to 2024-01-18?", date="2024-01-18"
    )
    arguments = example_arguments(book_slot.parameters, hints)
    assert set(arguments) == {
        "delivery_date",
        "window",
        "speed",
        "mode",
        "pallets",
        "labels",
        "note",
        "quantity",
    }
    assert arguments["delivery_date"] == "2024-01-18"
    assert arguments["window"] == {"start": "2024-01-18", "end": "2024-01-18"}
    assert arguments["speed"] == "fast" and arguments["mode"] == "van"
    assert arguments["pallets"] == 2
    assert len(arguments["labels"]) == 2
    bound = book_slot.bind(arguments)  # validates against the function's own model
    assert bound["window"].start == date(2024, 1, 18)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"type": "object", "properties": {}}, {}),
        ({"type": "object"}, {}),
        (
            {
                "type": "object",
                "properties": {"location_id": {"type": "integer"}, "count": {"type": "integer"}},
                "required": ["location_id", "count"],
            },
            {"location_id": 2, "count": 3},
        ),
        (
            {
                "type": "object",
                "properties": {"when": {"type": "string", "format": "date"}},
                "required": ["when"],
            },
            {"when": DEFAULT_DATE},
        ),
        (
            {
                "type": "object",
                "properties": {"code": {"type": ["string", "null"], "maxLength": 4}},
                "required": ["code"],
            },
            {"code": "CB-0"},
        ),
    ],
)
def test_example_arguments_follow_the_schema(
    parameters: dict[str, Any], expected: dict[str, Any]
) -> None:
    hints = ConversationHints(quantity=3, location_id=2, product_code="CB-00000101")
    assert example_arguments(parameters, hints) == expected


def test_tools_built_by_hand_are_called_too() -> None:
    async def lookup(session_id: str, **arguments: Any) -> str:
        return "ok"

    tool = PythonTool(
        name="crm_lookup",
        description="Look the customer up.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
        func=lookup,
        with_execution_message=False,
    )
    name, arguments = called(reply(served_product(), [*SHOP_TOOLS, tool.schema()])) or ("", {})
    assert (name, arguments) == ("crm_lookup", {"query": "chicken fillet"})
