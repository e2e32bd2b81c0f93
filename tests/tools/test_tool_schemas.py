"""Tool schemas generated from the argument models: byte-identical to the golden file, and
in agreement with what the emulated shop accepts.

`golden_tool_schemas.json` holds the schemas the model is offered, as they were when they
were still written by hand (catalogue tools, handoffs, and the example Python tools of
`test_python_tools.py`). A generated schema must serialise to exactly the same JSON, key
order included. When a schema is changed on purpose, update that tool's entry only (and say
why in the change): `json.dumps(ToolCatalogue().schema(name), ensure_ascii=False, indent=2)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from conversation_engine.tools.arguments import (
    AddToCartArguments,
    CallTransferArguments,
    RemoveFromCartArguments,
    SetCurrentLocationArguments,
)
from conversation_engine.tools.catalogue import (
    BUSINESS_TOOLS,
    CONTROL_TOOLS,
    EXECUTION_MESSAGE,
    TOOL_DEFINITIONS,
    ToolCatalogue,
    handoff_tool_schema,
)
from conversation_engine.tools.schema import LegacyJsonSchema, model_parameters
from conversation_engine.tools.shop import EmulatedShop
from tests.tools.test_python_tools import check_stock, explode, points

try:  # the reference validator when it is installed; the subset below otherwise
    import jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    jsonschema = None

GOLDEN = json.loads(
    Path(__file__).with_name("golden_tool_schemas.json").read_text(encoding="utf-8")
)
HANDOFFS = {
    "support (with a description)": (
        "support",
        "Delivery dates, delivery addresses and order problems.",
    ),
    "agent (no description)": ("agent", None),
}
PYTHON_TOOLS = {tool.name: tool for tool in (check_stock, points, explode)}
#: The tools the emulated shop serves, each validated with its catalogue model.
SHOP_TOOLS = [*BUSINESS_TOOLS, "call_transfer"]

SCHEMA_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def text(schema: dict[str, Any]) -> str:
    """The bytes the model is sent for a schema (key order matters)."""
    return json.dumps(schema, ensure_ascii=False)


def parameters(name: str) -> dict[str, Any]:
    return ToolCatalogue().schema(name)["function"]["parameters"]


# ---------------------------------------------------------------- golden file


@pytest.mark.parametrize("name", sorted(GOLDEN["catalogue"]))
def test_catalogue_schema_is_byte_identical_to_the_golden_file(name: str) -> None:
    assert text(ToolCatalogue().schema(name)) == text(GOLDEN["catalogue"][name])


def test_the_golden_file_covers_every_catalogue_tool() -> None:
    assert set(GOLDEN["catalogue"]) == set(ToolCatalogue().names)
    assert set(GOLDEN["catalogue"]) == {*BUSINESS_TOOLS, *CONTROL_TOOLS} == set(TOOL_DEFINITIONS)


@pytest.mark.parametrize("case", sorted(HANDOFFS))
def test_handoff_schema_is_byte_identical_to_the_golden_file(case: str) -> None:
    target, description = HANDOFFS[case]
    assert text(handoff_tool_schema(target, description)) == text(GOLDEN["handoff"][case])


@pytest.mark.parametrize("name", sorted(PYTHON_TOOLS))
def test_python_tool_schema_is_byte_identical_to_the_golden_file(name: str) -> None:
    # Python tools go through the same generator, in pydantic's own style.
    assert text(PYTHON_TOOLS[name].schema()) == text(GOLDEN["python_tools"][name])


@pytest.mark.parametrize("name", sorted(TOOL_DEFINITIONS))
def test_schemas_are_generated_from_the_argument_models(name: str) -> None:
    definition = TOOL_DEFINITIONS[name]
    generated = model_parameters(definition.arguments, LegacyJsonSchema)
    offered = parameters(name)
    if definition.with_execution_message:
        assert name in BUSINESS_TOOLS
        assert offered["required"][-1] == EXECUTION_MESSAGE
        assert list(offered["properties"])[-1] == EXECUTION_MESSAGE
        offered["properties"].pop(EXECUTION_MESSAGE)
        offered["required"].pop()
        if not offered["required"]:
            del offered["required"]
    assert offered == generated


# ---------------------------------------------------------------- schema and shop agree
#
# A JSON-Schema subset: exactly the keywords the tool schemas use. Anything else fails
# loudly, so a schema cannot outgrow these checks unnoticed.

_KNOWN_KEYWORDS = frozenset(
    {"type", "description", "properties", "required", "items", "additionalProperties"}
)
_JSON_VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=10)


def _check_keywords(schema: dict[str, Any]) -> None:
    unknown = set(schema) - _KNOWN_KEYWORDS
    assert not unknown, f"keywords this test does not understand: {sorted(unknown)}"


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under `schema`, stray object keys included where the schema allows them."""
    _check_keywords(schema)
    kind = schema["type"]
    if kind == "string":
        return st.text(max_size=30)
    if kind == "integer":
        return st.integers()
    if kind == "number":
        return st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema["items"]), max_size=4)
    assert kind == "object", kind
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))

    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for key, child in properties.items():
            if key in required or draw(st.booleans()):
                value[key] = draw(from_schema(child))
        if schema.get("additionalProperties", True) is not False:
            extra = draw(st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=2))
            value.update({key: item for key, item in extra.items() if key not in properties})
        return value

    return objects()


def schema_errors(value: Any, schema: dict[str, Any], where: str = "arguments") -> list[str]:
    """Why `value` is not valid under `schema` (empty when it is)."""
    if jsonschema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        return [error.message for error in validator.iter_errors(value)]
    _check_keywords(schema)
    kind = schema["type"]
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if not checks[kind](value):
        return [f"{where}: not {kind}: {value!r}"]
    errors: list[str] = []
    if kind == "array":
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{index}]")
    if kind == "object":
        properties = schema.get("properties", {})
        errors += [
            f"{where}: {key} missing" for key in schema.get("required", []) if key not in value
        ]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{where}.{key}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: {key} not allowed")
    return errors


def shop_model(name: str) -> type[BaseModel]:
    return TOOL_DEFINITIONS[name].arguments


@pytest.fixture(scope="module")
def shop() -> EmulatedShop:
    return EmulatedShop()


@pytest.mark.parametrize("name", SHOP_TOOLS)
@SCHEMA_SETTINGS
@given(data=st.data())
async def test_arguments_valid_under_the_schema_are_accepted_by_the_shop(
    shop: EmulatedShop, name: str, data: st.DataObject
) -> None:
    schema = parameters(name)
    arguments = data.draw(from_schema(schema), label="arguments")
    assert schema_errors(arguments, schema) == []
    # The shop's own model accepts them (execution_message is stripped before it) ...
    shop_model(name).model_validate({k: v for k, v in arguments.items() if k != EXECUTION_MESSAGE})
    # ... and so does the shop: at most a business answer (unknown code, address 7), never
    # an argument error.
    result = await shop.call(name, arguments, "schema-agreement")
    error = result.get("error", "") if isinstance(result, dict) else ""
    assert not error.startswith("Invalid arguments"), error
    shop.reset("schema-agreement")


#: Arguments the shop accepts, as models send them, for each tool.
ACCEPTED_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "rag_find_products": [{"message": "chilled chicken fillet"}],
    "add_to_cart": [
        {"items": [{"product_code": "CB-00000101", "quantity": 2}]},
        {"items": [{"product_code": "CB-00000101", "quantity": 1.5, "packaging_type": 2}]},
        {"items": [{"product_code": "CB-00000101", "quantity": 1, "packaging_type": None}]},
    ],
    "remove_from_cart": [
        {"items": ["CB-00000101", "DA-00000001"]},
        {"items": [{"product_code": "CB-00000101", "quantity": 1}]},  # a cart item
    ],
    "get_cart": [{}, {"stray": 1}],
    "change_delivery_date": [{"delivery_date": "2024-02-29"}],
    "set_current_location": [{"location_id": 2}, {"location_id": "3"}, {"location_id": 4.0}],
    "call_transfer": [{"reason": "wants a manager"}],
}


@pytest.mark.parametrize("name", SHOP_TOOLS)
def test_what_the_shop_accepts_means_arguments_valid_under_the_schema(name: str) -> None:
    # The models accept a few spellings besides the schema's (a digit string, a cart item for
    # a code, an explicit null for an optional field); what they make of them is valid.
    schema = parameters(name)
    for example in ACCEPTED_EXAMPLES[name]:
        validated = shop_model(name).model_validate(example)
        meant = {**validated.model_dump(exclude_none=True), EXECUTION_MESSAGE: "One moment."}
        assert schema_errors(meant, schema) == [], example


@SCHEMA_SETTINGS
@given(
    arguments=st.builds(AddToCartArguments)
    | st.builds(RemoveFromCartArguments)
    | st.builds(SetCurrentLocationArguments)
    | st.builds(CallTransferArguments)
)
def test_arguments_built_from_a_model_are_valid_under_its_schema(arguments: BaseModel) -> None:
    name = next(n for n in SHOP_TOOLS if shop_model(n) is type(arguments))
    meant = {**arguments.model_dump(exclude_none=True), EXECUTION_MESSAGE: "One moment."}
    assert schema_errors(meant, parameters(name)) == []


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        # The mismatches the hand-written schemas had: the shop took any value for the
        # address and anything (even objects without a code) for the codes to remove, and
        # call_transfer's required reason was optional.
        ("set_current_location", {"location_id": "second"}),
        ("set_current_location", {"location_id": True}),
        ("remove_from_cart", {"items": [{"quantity": 1}]}),
        ("remove_from_cart", {"items": [7]}),
        ("call_transfer", {}),
        # Missing required arguments.
        ("rag_find_products", {}),
        ("add_to_cart", {"items": [{"product_code": "CB-00000101"}]}),
        ("change_delivery_date", {"delivery_date": 20240229}),
    ],
)
def test_arguments_invalid_under_the_schema_are_refused_by_the_model(
    name: str, arguments: dict[str, Any]
) -> None:
    assert schema_errors({**arguments, EXECUTION_MESSAGE: "One moment."}, parameters(name))
    with pytest.raises(ValidationError):
        shop_model(name).model_validate(arguments)
