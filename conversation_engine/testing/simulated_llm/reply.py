"""What a simulated role answers: some text, at most one tool call, and arguments that fit.

Parallel tool calls are off everywhere in this project, so a reply never holds more than one
call. Arguments are built against the schema the request offered, so they validate whatever
variant of a tool the engine sends (legacy `handoff_<x>` with a required `reason`, AutoGen
handoffs without parameters, business tools with `execution_message`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conversation_engine.tools.catalogue import EXECUTION_MESSAGE

_EXECUTION_MESSAGES = {
    "rag_find_products": "Let me check what we have.",
    "add_to_cart": "I'm adding that to your cart.",
    "remove_from_cart": "I'm removing that from your cart.",
    "get_cart": "Let me look at your cart.",
    "change_delivery_date": "I'm changing your delivery date.",
    "set_current_location": "I'm updating your delivery address.",
}
_DEFAULT_EXECUTION_MESSAGE = "One moment, please."


@dataclass(frozen=True)
class ToolCallPlan:
    """A tool call a role decided to make."""

    name: str
    arguments: dict[str, Any] | str
    """A dict to be JSON-encoded, or a raw string sent as-is (the malformed-arguments fault)."""


@dataclass(frozen=True)
class Reply:
    """One assistant message: text, a tool call, or both (the client's goodbye + end_call)."""

    content: str | None = None
    tool_call: ToolCallPlan | None = None


def text(content: str) -> Reply:
    return Reply(content=content)


def _placeholder(schema: dict[str, Any]) -> Any:
    """A value of the schema's type, for required arguments the role has no opinion on."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {
        "integer": 1,
        "number": 1,
        "boolean": False,
        "array": [],
        "object": {},
    }.get(str(kind), "n/a")


def fit_arguments(
    parameters: dict[str, Any], tool_name: str, wanted: dict[str, Any]
) -> dict[str, Any]:
    """`wanted` restricted to the schema's properties, plus `execution_message` and any other
    required argument the schema asks for; unchanged when the schema declares no properties
    key at all (nothing to check against)."""
    properties = parameters.get("properties")
    if not isinstance(properties, dict):
        return dict(wanted)
    arguments = {key: value for key, value in wanted.items() if key in properties}
    if EXECUTION_MESSAGE in properties and EXECUTION_MESSAGE not in arguments:
        arguments[EXECUTION_MESSAGE] = _EXECUTION_MESSAGES.get(
            tool_name, _DEFAULT_EXECUTION_MESSAGE
        )
    for key in parameters.get("required") or []:
        if key not in arguments and key in properties:
            arguments[key] = _placeholder(properties[key])
    return arguments


def call(
    parameters: dict[str, Any], tool_name: str, wanted: dict[str, Any], content: str | None = None
) -> Reply:
    """A reply making one tool call with schema-fitted arguments."""
    return Reply(
        content=content,
        tool_call=ToolCallPlan(tool_name, fit_arguments(parameters, tool_name, wanted)),
    )
