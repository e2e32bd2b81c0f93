"""User-registered Python tools: schema from the signature, routing, validation, failures."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from conversation_engine.tools.catalogue import BUSINESS_TOOLS, EXECUTION_MESSAGE
from conversation_engine.tools.python_tools import PythonTool, PythonToolBackend, python_tool
from conversation_engine.tools.session import SessionTools
from conversation_engine.tools.shop import EmulatedShop

calls: list[dict[str, Any]] = []


class Window(BaseModel):
    start: str
    end: str


@python_tool
async def check_stock(
    session_id: str,
    product_code: Annotated[str, "Product code from rag_find_products"],
    warehouse: int = Field(1, description="Warehouse number"),
    window: Window | None = None,
) -> dict[str, Any]:
    """Tell how many units of a product are in stock."""
    calls.append(
        {
            "session_id": session_id,
            "product_code": product_code,
            "warehouse": warehouse,
            "window": window,
        }
    )
    return {"product_code": product_code, "in_stock": 12, "warehouse": warehouse}


@python_tool(name="loyalty_points", description="Points the customer has.")
async def points(session_id: str) -> str:
    return f"{session_id} has 40 points"


@python_tool(with_execution_message=False)
async def explode(session_id: str, why: str) -> None:
    """Always fails."""
    raise RuntimeError(f"database down: {why}")


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    calls.clear()


def test_schema_from_the_signature() -> None:
    assert isinstance(check_stock, PythonTool)
    schema = check_stock.schema()
    function = schema["function"]
    assert schema["type"] == "function"
    assert function["name"] == "check_stock"
    assert function["description"] == "Tell how many units of a product are in stock."
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == {
        "product_code",
        "warehouse",
        "window",
        EXECUTION_MESSAGE,
    }
    assert "session_id" not in parameters["properties"]
    assert parameters["properties"]["product_code"]["description"] == (
        "Product code from rag_find_products"
    )
    assert parameters["properties"]["product_code"]["type"] == "string"
    assert parameters["properties"]["warehouse"]["description"] == "Warehouse number"
    assert parameters["properties"]["warehouse"]["default"] == 1
    assert parameters["required"] == ["product_code", EXECUTION_MESSAGE]
    # Same execution_message wording as the business tools.
    business = BUSINESS_TOOLS["get_cart"]["function"]["parameters"]["properties"]
    assert parameters["properties"][EXECUTION_MESSAGE] == business[EXECUTION_MESSAGE]


def test_decorator_options() -> None:
    assert points.name == "loyalty_points"
    assert points.description == "Points the customer has."
    assert points.schema()["function"]["parameters"] == {
        "type": "object",
        "properties": {
            EXECUTION_MESSAGE: points.schema()["function"]["parameters"]["properties"][
                EXECUTION_MESSAGE
            ]
        },
        "required": [EXECUTION_MESSAGE],
    }
    parameters = explode.schema()["function"]["parameters"]
    assert EXECUTION_MESSAGE not in parameters["properties"]
    assert parameters["required"] == ["why"]


def test_bad_functions_are_rejected() -> None:
    async def no_session(code: str) -> None: ...

    def not_async(session_id: str) -> None: ...

    async def untyped(session_id: str, code) -> None:  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(TypeError, match="session_id"):
        python_tool(no_session)
    with pytest.raises(TypeError, match="async"):
        python_tool(not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="annotation"):
        python_tool(untyped)
    with pytest.raises(ValueError, match="reserved"):
        python_tool(name="end_call")(points.func)
    with pytest.raises(ValueError, match="reserved"):
        python_tool(name="handoff_sales")(points.func)


async def test_routing_and_fallback() -> None:
    shop = EmulatedShop()
    backend = PythonToolBackend([check_stock, points], fallback=shop)
    schemas = backend.tool_schemas()
    assert set(schemas) == {*shop.tool_schemas(), "check_stock", "loyalty_points"}

    result = await backend.call(
        "check_stock", {"product_code": "CB-00000101", "warehouse": "2"}, "sess-1"
    )
    assert result == {"product_code": "CB-00000101", "in_stock": 12, "warehouse": 2}
    assert calls == [
        {"session_id": "sess-1", "product_code": "CB-00000101", "warehouse": 2, "window": None}
    ]
    assert await backend.call("loyalty_points", {}, "sess-9") == "sess-9 has 40 points"

    # Everything else goes to the shop, under the same session.
    added = await backend.call(
        "add_to_cart", {"items": [{"product_code": "CB-00000101", "quantity": 1}]}, "sess-1"
    )
    assert added["status"] == "added"
    assert len(shop.cart("sess-1")) == 1


def test_default_fallback_is_the_shop() -> None:
    assert isinstance(PythonToolBackend([]).fallback, EmulatedShop)
    with pytest.raises(ValueError, match="Two Python tools"):
        PythonToolBackend([points, points])


async def test_nested_models_reach_the_function_as_models() -> None:
    backend = PythonToolBackend([check_stock])
    await backend.call(
        "check_stock",
        {"product_code": "CB-1", "window": {"start": "08:00", "end": "12:00"}, "junk": 1},
        "s",
    )
    assert calls[0]["window"] == Window(start="08:00", end="12:00")


async def test_validation_problem_is_a_result() -> None:
    backend = PythonToolBackend([check_stock])
    result = await backend.call("check_stock", {"warehouse": "north"}, "s")
    assert result["error"].startswith("Invalid arguments for check_stock: ")
    assert "product_code: Field required" in result["error"]
    assert "warehouse: Input should be a valid integer" in result["error"]
    assert calls == []


async def test_session_tools_strip_execution_message_and_record_exceptions() -> None:
    tools = SessionTools("s-1", PythonToolBackend([check_stock, explode]))
    text = await tools.execute(
        "check_stock", json.dumps({"product_code": "CB-2", "execution_message": "Checking."})
    )
    assert json.loads(text) == {"product_code": "CB-2", "in_stock": 12, "warehouse": 1}
    assert calls[0]["session_id"] == "s-1"

    failure = await tools.execute("explode", {"why": "disk"})
    assert json.loads(failure) == {
        "error": "Tool execution failed: RuntimeError: database down: disk"
    }


async def test_hand_written_python_tool() -> None:
    async def lookup(session_id: str, **arguments: Any) -> dict[str, Any]:
        return {"session_id": session_id, **arguments}

    tool = PythonTool(
        name="lookup",
        description="Look something up.",
        parameters={
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
        func=lookup,
    )
    backend = PythonToolBackend([tool])
    assert await backend.call("lookup", {"key": "a", "stray": 1}, "s") == {
        "session_id": "s",
        "key": "a",
    }
    assert await backend.call("lookup", {}, "s") == {
        "error": "Invalid arguments for lookup: missing key."
    }
    assert tool.schema()["function"]["parameters"]["required"] == ["key", EXECUTION_MESSAGE]
