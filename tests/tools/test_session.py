"""SessionTools: argument parsing, control tools, error results, shared backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from conversation_engine.core.errors import UnknownToolError
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, CONTROL_TOOLS
from conversation_engine.tools.python_tools import PythonToolBackend, python_tool
from conversation_engine.tools.session import SessionTools
from conversation_engine.tools.shop import EmulatedShop


class RecordingBackend:
    """A backend that records what it receives and answers with a fixed value."""

    def __init__(self, answer: Any = None, error: BaseException | None = None) -> None:
        self.answer = {"ok": True} if answer is None else answer
        self.error = error
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        return dict(BUSINESS_TOOLS)

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        self.calls.append((tool_name, arguments, session_id))
        if self.error is not None:
            raise self.error
        return self.answer


async def test_json_string_arguments_are_parsed_and_stripped() -> None:
    backend = RecordingBackend()
    tools = SessionTools("s-1", backend)
    text = await tools.execute(
        "change_delivery_date",
        '{"delivery_date": "2024-05-01", "execution_message": "Changing the date."}',
    )
    assert text == '{"ok": true}'
    assert backend.calls == [("change_delivery_date", {"delivery_date": "2024-05-01"}, "s-1")]


async def test_dict_arguments_are_not_mutated() -> None:
    backend = RecordingBackend()
    arguments = {"execution_message": "One moment.", "location_id": 2}
    await SessionTools("s", backend).execute("set_current_location", arguments)
    assert arguments == {"execution_message": "One moment.", "location_id": 2}
    assert backend.calls[0][1] == {"location_id": 2}


@pytest.mark.parametrize("arguments", ["", "   ", None])
async def test_empty_arguments_mean_none(arguments: str | None) -> None:
    backend = RecordingBackend()
    await SessionTools("s", backend).execute("get_cart", arguments)
    assert backend.calls == [("get_cart", {}, "s")]


async def test_invalid_json_is_a_result_and_the_backend_is_not_called() -> None:
    backend = RecordingBackend()
    tools = SessionTools("s", backend)
    result = json.loads(await tools.execute("get_cart", "{not json"))
    assert result["error"].startswith(
        "Invalid JSON arguments for get_cart: Expecting property name"
    )
    result = json.loads(await tools.execute("get_cart", "[1, 2]"))
    assert result == {"error": "Invalid JSON arguments for get_cart: expected an object, got list"}
    assert backend.calls == []


async def test_end_call_is_answered_locally() -> None:
    backend = RecordingBackend()
    text = await SessionTools("s", backend).execute("end_call", '{"reason": "order placed"}')
    assert json.loads(text) == {"status": "call_ended", "reason": "order placed"}
    assert backend.calls == []


async def test_unknown_and_handoff_tools() -> None:
    backend = RecordingBackend()
    tools = SessionTools("s", backend)
    assert json.loads(await tools.execute("fly_to_moon", "{}")) == {
        "error": "Unknown tool 'fly_to_moon'"
    }
    handoff = json.loads(await tools.execute("handoff_sales", '{"reason": "x"}'))
    assert "handoff_sales" in handoff["error"]
    assert backend.calls == []


async def test_backend_exception_is_recorded_in_legacy_wording() -> None:
    tools = SessionTools("s", RecordingBackend(error=ValueError("bad gateway config")))
    assert json.loads(await tools.execute("get_cart", "{}")) == {
        "error": "Tool execution failed: ValueError: bad gateway config"
    }


async def test_cancellation_propagates() -> None:
    tools = SessionTools("s", RecordingBackend(error=asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        await tools.execute("get_cart", "{}")


async def test_string_results_pass_through_and_text_is_not_ascii_escaped() -> None:
    assert (
        await SessionTools("s", RecordingBackend("Адресс изменен")).execute(
            "set_current_location", {"location_id": 1}
        )
        == "Адресс изменен"
    )
    text = await SessionTools("s", RecordingBackend({"name": "Сыр"})).execute("get_cart", {})
    assert text == '{"name": "Сыр"}'


def test_catalogue_and_schemas_for() -> None:
    @python_tool
    async def check_stock(session_id: str, product_code: str) -> str:
        """Stock level."""
        return "12"

    tools = SessionTools("s", PythonToolBackend([check_stock]))
    assert {"check_stock", "end_call", "call_transfer", *BUSINESS_TOOLS} <= tools.catalogue.names
    schemas = tools.schemas_for(["rag_find_products", "end_call", "check_stock"])
    assert schemas[0] == BUSINESS_TOOLS["rag_find_products"]
    assert schemas[1] == CONTROL_TOOLS["end_call"]
    assert schemas[2]["function"]["name"] == "check_stock"
    with pytest.raises(UnknownToolError, match="'nope'"):
        tools.schemas_for(["get_cart", "nope"])


def test_default_backend_is_the_shop() -> None:
    assert isinstance(SessionTools("s").backend, EmulatedShop)


async def test_shop_through_session_tools() -> None:
    tools = SessionTools("s", EmulatedShop())
    found = json.loads(
        await tools.execute(
            "rag_find_products",
            json.dumps({"message": "chiken filet", "execution_message": "Looking it up."}),
        )
    )
    code = found["products"][0]["product_code"]
    added = json.loads(
        await tools.execute(
            "add_to_cart",
            json.dumps({"items": [{"product_code": code, "quantity": 2, "packaging_type": 1}]}),
        )
    )
    assert added["total"] == 138.0
    transfer = json.loads(await tools.execute("call_transfer", {"reason": "complaint"}))
    assert transfer["status"] == "transfer_requested"


async def test_one_backend_many_sessions() -> None:
    shop = EmulatedShop()

    async def run(index: int) -> None:
        tools = SessionTools(f"s{index}", shop)
        await tools.execute(
            "add_to_cart",
            json.dumps({"items": [{"product_code": "CB-00000101", "quantity": index + 1}]}),
        )

    await asyncio.gather(*(run(index) for index in range(50)))
    assert [shop.cart(f"s{index}")[0].quantity for index in range(50)] == list(range(1, 51))
