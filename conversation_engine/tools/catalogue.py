"""The tool catalogue: OpenAI function schemas shared by both engines.

Business tools carry the legacy `execution_message` argument (what the agent says while the
tool runs). It stays in the schema and in recorded tool calls, and is stripped before the
backend is called. `handoff_<agent>` schemas are generated from a spec's handoffs.
"""

from __future__ import annotations

import copy
from typing import Any

from conversation_engine.contract import END_CALL_TOOL, HANDOFF_PREFIX
from conversation_engine.errors import UnknownToolError

EXECUTION_MESSAGE = "execution_message"

_EXECUTION_MESSAGE_PARAM = {
    "type": "string",
    "description": (
        "What you say to the customer while the tool runs: a short statement in everyday "
        "language, not a question."
    ),
}


def _business_tool(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {**properties, EXECUTION_MESSAGE: _EXECUTION_MESSAGE_PARAM},
                "required": [*required, EXECUTION_MESSAGE],
            },
        },
    }


BUSINESS_TOOLS: dict[str, dict[str, Any]] = {
    "rag_find_products": _business_tool(
        "rag_find_products",
        "Search the product catalogue. Returns matching products with their codes, packaging "
        "types and prices, best match first.",
        {
            "message": {
                "type": "string",
                "description": "Free-text description of the product: kind, cut, brand, "
                "chilled or frozen, packaging.",
            }
        },
        ["message"],
    ),
    "add_to_cart": _business_tool(
        "add_to_cart",
        "Add products to the customer's cart. Use product codes returned by rag_find_products.",
        {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "product_code": {
                            "type": "string",
                            "description": "Product code from rag_find_products.",
                        },
                        "quantity": {"type": "number", "description": "How many units."},
                        "packaging_type": {
                            "type": "integer",
                            "description": "Packaging option number; 1 if there is only one.",
                        },
                    },
                    "required": ["product_code", "quantity"],
                },
            }
        },
        ["items"],
    ),
    "remove_from_cart": _business_tool(
        "remove_from_cart",
        "Remove products from the customer's cart.",
        {"items": {"type": "array", "items": {"type": "string"}, "description": "Product codes."}},
        ["items"],
    ),
    "get_cart": _business_tool("get_cart", "Show the customer's cart with totals.", {}, []),
    "change_delivery_date": _business_tool(
        "change_delivery_date",
        "Change the delivery date of the current order.",
        {"delivery_date": {"type": "string", "description": "New date, YYYY-MM-DD."}},
        ["delivery_date"],
    ),
    "set_current_location": _business_tool(
        "set_current_location",
        "Choose the delivery address from the customer's numbered list of locations.",
        {
            "location_id": {
                "type": "integer",
                "description": "Number of the address in the customer's LOCATIONS list; 1 by default.",
            }
        },
        ["location_id"],
    ),
}

CONTROL_TOOLS: dict[str, dict[str, Any]] = {
    END_CALL_TOOL: {
        "type": "function",
        "function": {
            "name": END_CALL_TOOL,
            "description": "End the conversation",
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "Reason for ending the call"}
                },
                "required": ["reason"],
            },
        },
    },
    "call_transfer": {
        "type": "function",
        "function": {
            "name": "call_transfer",
            "description": "Transfer the call to a human operator.",
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "Why a human is needed."}
                },
                "required": ["reason"],
            },
        },
    },
}


def handoff_tool_name(target: str) -> str:
    return f"{HANDOFF_PREFIX}{target}"


def is_handoff_tool(name: str) -> bool:
    return name.startswith(HANDOFF_PREFIX)


def handoff_target(name: str) -> str | None:
    """The agent a `handoff_<agent>` tool transfers to; None for other tools."""
    return name[len(HANDOFF_PREFIX) :] if is_handoff_tool(name) else None


def handoff_description(target: str, description: str | None) -> str:
    """The legacy wording: "Transfer the conversation to <agent>. <spec description>"."""
    text = f"Transfer the conversation to {target}."
    return f"{text} {description}" if description else text


def handoff_tool_schema(target: str, description: str | None = None) -> dict[str, Any]:
    """The legacy `handoff_<agent>` schema (reason required, context optional)."""
    return {
        "type": "function",
        "function": {
            "name": handoff_tool_name(target),
            "description": handoff_description(target, description),
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {
                        "type": "string",
                        "description": "Why the conversation is transferred.",
                    },
                    "context": {
                        "type": "string",
                        "description": "What the next agent should know.",
                    },
                },
                "required": ["reason"],
            },
        },
    }


def handoff_result(target: str) -> dict[str, str]:
    """The legacy tool result recorded for a completed handoff."""
    return {
        "status": "handoff_completed",
        "target_agent": target,
        "message": f"Successfully handed off conversation to {target}",
    }


def handoff_not_executed(executed_target: str) -> dict[str, str]:
    """The result of a handoff that did not run because another one in the same reply did.

    Both engines execute only the first valid handoff of a reply (AutoGen's Swarm can switch
    to one agent only); every later one is recorded with this error, never as completed.
    """
    return {
        "error": (
            f"Not executed: the handoff to {executed_target} in the same reply ran first; "
            "one handoff per reply."
        )
    }


def end_call_result(reason: str) -> dict[str, str]:
    return {"status": "call_ended", "reason": reason}


def strip_execution_message(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments the backend receives: everything but `execution_message`."""
    return {key: value for key, value in arguments.items() if key != EXECUTION_MESSAGE}


class ToolCatalogue:
    """Tool schemas by name: the legacy tools plus any a backend adds (user Python tools)."""

    def __init__(self, schemas: dict[str, dict[str, Any]] | None = None) -> None:
        self._schemas = {**BUSINESS_TOOLS, **CONTROL_TOOLS, **(schemas or {})}

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._schemas)

    def __contains__(self, name: object) -> bool:
        return name in self._schemas

    def schema(self, name: str) -> dict[str, Any]:
        """A deep copy of the OpenAI tools entry for `name`."""
        try:
            return copy.deepcopy(self._schemas[name])
        except KeyError:
            known = ", ".join(sorted(self._schemas))
            raise UnknownToolError(f"Unknown tool '{name}'; known tools: {known}.") from None

    def with_schemas(self, schemas: dict[str, dict[str, Any]]) -> ToolCatalogue:
        """A catalogue that also holds `schemas` (a backend's own tools)."""
        return ToolCatalogue({**self._schemas, **schemas})
