"""Arguments for a tool the simulated agent does not know by name: a user's own tool.

The agent serves the shop's requests with the shipped business tools it knows
(`agent_role`). Any other business tool it is offered (a `@python_tool` a spec declares, a
tool of another backend) it calls once in the conversation it sees (an agent that takes
over calls its own offered tools once too), after the first request it has served, with
arguments built from the tool's JSON schema alone: every required argument gets
a value of its schema (`$ref`, `anyOf`, `enum`, `format`, bounds and nested objects are
followed), taken from what the conversation holds when the argument's name suggests it (a
product code from a search result, the requested item, quantity, date or address number)
and a neutral value of the right type otherwise. So the first offline run of a spec with a
custom tool shows that tool called, with arguments its own validation accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The date a `date` argument gets when the conversation names none.
DEFAULT_DATE = "2024-01-15"
#: How deeply nested objects and arrays are filled in.
MAX_DEPTH = 6

_CODE_WORDS = ("code", "sku", "product_id", "article")
_TEXT_WORDS = ("query", "message", "text", "question", "request", "search", "item", "product")
_QUANTITY_WORDS = ("quantity", "qty", "count", "amount", "number", "units")
_LOCATION_WORDS = ("location", "address")


@dataclass(frozen=True)
class ConversationHints:
    """What the conversation offers for arguments (None: nothing of that kind yet)."""

    request_text: str = ""
    item: str | None = None
    quantity: int | float | None = None
    date: str | None = None
    location_id: int | None = None
    product_code: str | None = None


def example_arguments(parameters: dict[str, Any], hints: ConversationHints) -> dict[str, Any]:
    """A value for every required argument of an object schema (the tool's `parameters`)."""
    return _object_value(parameters, hints, parameters.get("$defs") or {}, 0)


def _resolve(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """`schema` with a local `$ref` and `allOf` merged in; {} for anything unusable."""
    if not isinstance(schema, dict):
        return {}
    for _ in range(MAX_DEPTH):
        reference = schema.get("$ref")
        if not (isinstance(reference, str) and reference.startswith("#/$defs/")):
            break
        target = definitions.get(reference.removeprefix("#/$defs/"))
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**(target if isinstance(target, dict) else {}), **siblings}
    parts = schema.get("allOf")
    if isinstance(parts, list):
        merged = {key: value for key, value in schema.items() if key != "allOf"}
        for part in parts:
            merged = {**_resolve(part, definitions), **merged}
        schema = merged
    return schema


def _value(
    name: str, schema: Any, hints: ConversationHints, definitions: dict[str, Any], depth: int
) -> Any:
    schema = _resolve(schema, definitions)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            usable = [
                branch for branch in branches if _resolve(branch, definitions).get("type") != "null"
            ]
            return _value(name, (usable or branches)[0], hints, definitions, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "string")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if depth >= MAX_DEPTH and kind in ("object", "array"):
        return {} if kind == "object" else []
    if kind == "object":
        return _object_value(schema, hints, definitions, depth + 1)
    if kind == "array":
        count = max(int(schema.get("minItems") or 0), 1)
        item = _value(name, schema.get("items") or {}, hints, definitions, depth + 1)
        return [item] * count
    if kind in ("integer", "number"):
        return _number(name.lower(), schema, hints, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _text(name.lower(), schema, hints)


def _object_value(
    schema: dict[str, Any], hints: ConversationHints, definitions: dict[str, Any], depth: int
) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = [key for key in schema.get("required") or [] if key in properties]
    return {
        key: _value(key, properties[key], hints, definitions, depth)
        for key in required
        if isinstance(key, str)
    }


def _text(name: str, schema: dict[str, Any], hints: ConversationHints) -> str:
    form = schema.get("format")
    if form == "date-time":
        text = f"{hints.date or DEFAULT_DATE}T09:00:00"
    elif form == "date" or (form is None and _names_a_date(name)):
        text = hints.date or DEFAULT_DATE
    elif form == "email":
        text = "customer@example.com"
    elif any(word in name for word in _CODE_WORDS) and hints.product_code:
        text = hints.product_code
    elif any(word in name for word in _TEXT_WORDS):
        text = hints.item or hints.request_text or "n/a"
    else:
        text = hints.request_text or "n/a"
    minimum = schema.get("minLength")
    if isinstance(minimum, int) and len(text) < minimum:
        text = text.ljust(minimum, "x")
    maximum = schema.get("maxLength")
    if isinstance(maximum, int) and len(text) > maximum:
        text = text[:maximum]
    return text


def _names_a_date(name: str) -> bool:
    """`date`, `delivery_date`, `date_from` (not `update`)."""
    return name == "date" or name.endswith("_date") or name.startswith("date_")


def _number(
    name: str, schema: dict[str, Any], hints: ConversationHints, *, integer: bool
) -> int | float:
    value: int | float = 1
    if any(word in name for word in _LOCATION_WORDS) and hints.location_id is not None:
        value = hints.location_id
    elif any(word in name for word in _QUANTITY_WORDS) and hints.quantity is not None:
        value = hints.quantity
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, int | float) and value < low:
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if isinstance(high, int | float) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    return round(value) if integer else value
