"""The tool catalogue: OpenAI function schemas shared by both engines.

Every schema is generated (`schema.py`) from the tool's argument model in `arguments.py`,
the same models the emulated shop validates with, so the two cannot disagree. Business
tools carry the legacy `execution_message` argument (what the agent says while the tool
runs): it is added to the generated schema, stays in recorded tool calls, and is stripped
before the backend is called. `handoff_<agent>` schemas are generated from a spec's
handoffs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from conversation_engine.core.contract import END_CALL_TOOL, HANDOFF_PREFIX
from conversation_engine.core.errors import UnknownToolError
from conversation_engine.tools import arguments as args
from conversation_engine.tools.schema import (
    EXECUTION_MESSAGE,
    LegacyJsonSchema,
    function_schema,
    model_parameters,
)


@dataclass(frozen=True)
class ToolDefinition:
    """A catalogue tool: its name, its description and the model of its arguments."""

    name: str
    description: str
    arguments: type[args.ToolArguments]
    with_execution_message: bool = True

    def schema(self) -> dict[str, Any]:
        """The OpenAI tools entry generated from `arguments`."""
        return function_schema(
            self.name,
            self.description,
            model_parameters(self.arguments, LegacyJsonSchema),
            with_execution_message=self.with_execution_message,
        )


BUSINESS_TOOL_DEFINITIONS: tuple[ToolDefinition, ...] = (
    ToolDefinition(
        "rag_find_products",
        "Search the product catalogue. Returns matching products with their codes, packaging "
        "types and prices, best match first.",
        args.FindProductsArguments,
    ),
    ToolDefinition(
        "add_to_cart",
        "Add products to the customer's cart. Use product codes returned by rag_find_products.",
        args.AddToCartArguments,
    ),
    ToolDefinition(
        "remove_from_cart",
        "Remove products from the customer's cart.",
        args.RemoveFromCartArguments,
    ),
    ToolDefinition("get_cart", "Show the customer's cart with totals.", args.GetCartArguments),
    ToolDefinition(
        "change_delivery_date",
        "Change the delivery date of the current order.",
        args.ChangeDeliveryDateArguments,
    ),
    ToolDefinition(
        "set_current_location",
        "Choose the delivery address from the customer's numbered list of locations.",
        args.SetCurrentLocationArguments,
    ),
)

CONTROL_TOOL_DEFINITIONS: tuple[ToolDefinition, ...] = (
    ToolDefinition(
        END_CALL_TOOL, "End the conversation", args.EndCallArguments, with_execution_message=False
    ),
    ToolDefinition(
        "call_transfer",
        "Transfer the call to a human operator.",
        args.CallTransferArguments,
        with_execution_message=False,
    ),
)

#: Tool name -> its definition, for every catalogue tool (handoffs are per spec).
TOOL_DEFINITIONS: dict[str, ToolDefinition] = {
    definition.name: definition
    for definition in (*BUSINESS_TOOL_DEFINITIONS, *CONTROL_TOOL_DEFINITIONS)
}

BUSINESS_TOOLS: dict[str, dict[str, Any]] = {
    definition.name: definition.schema() for definition in BUSINESS_TOOL_DEFINITIONS
}

CONTROL_TOOLS: dict[str, dict[str, Any]] = {
    definition.name: definition.schema() for definition in CONTROL_TOOL_DEFINITIONS
}

_HANDOFF_PARAMETERS = model_parameters(args.HandoffArguments, LegacyJsonSchema)


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
    return function_schema(
        handoff_tool_name(target),
        handoff_description(target, description),
        _HANDOFF_PARAMETERS,
        with_execution_message=False,
    )


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
