"""Tool schemas from pydantic argument models: the one generator behind every tool offered.

The catalogue's tools (`catalogue.py`, from the models in `arguments.py`) and user Python
tools (`python_tools.py`, from a model of the function's signature) both go through
`model_parameters` and `function_schema`. They differ only in the JSON-schema style:

* `LegacyJsonSchema` for the catalogue: the compact form of the legacy service's
  hand-written schemas (`type` first, then `items`/`properties`, `description`,
  `required`), with no titles, `$defs` inlined, and an optional `T | None = None` field
  offered as a plain optional `T`;
* pydantic's own style (titles, sorted keys, `$defs`) for Python tools, as they always had.

Business tools get the legacy `execution_message` argument (what the agent says while the
tool runs) appended as a required string; it is stripped before the backend is called.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

EXECUTION_MESSAGE = "execution_message"

_EXECUTION_MESSAGE_PARAMETER: dict[str, Any] = {
    "type": "string",
    "description": (
        "What you say to the customer while the tool runs: a short statement in everyday "
        "language, not a question."
    ),
}

_REF_PREFIX = "#/$defs/"


def execution_message_parameter() -> dict[str, Any]:
    """The JSON schema of `execution_message`, a fresh copy (one wording for every tool)."""
    return copy.deepcopy(_EXECUTION_MESSAGE_PARAMETER)


class LegacyJsonSchema(GenerateJsonSchema):
    """The JSON-schema style of the legacy tool catalogue (see the module docstring).

    Keys stay in the order pydantic writes them (`type` before `description`), which is
    the order of the legacy schemas; the model sees exactly those bytes.
    """

    def sort(self, value: JsonSchemaValue, parent_key: str | None = None) -> JsonSchemaValue:
        return value

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        # `x: T | None = None`: the model may leave x out, which is all an optional
        # argument says; neither `null` nor the default is offered.
        inner = schema["schema"]
        if schema.get("default", ...) is None and inner["type"] == "nullable":
            return self.generate_inner(inner["schema"])
        return super().default_schema(schema)

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        json_schema = super().generate(schema, mode)
        definitions = json_schema.pop("$defs", {})
        json_schema.pop("title", None)
        return _inline(json_schema, definitions, ())


def _inline(value: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    """`value` with every `{"$ref": "#/$defs/X", ...}` replaced by X itself (untitled)."""
    if isinstance(value, list):
        return [_inline(item, definitions, seen) for item in value]
    if not isinstance(value, dict):
        return value
    reference = value.get("$ref")
    if isinstance(reference, str) and reference.startswith(_REF_PREFIX):
        name = reference[len(_REF_PREFIX) :]
        if name in seen:
            raise ValueError(f"Tool argument model '{name}' is recursive; it cannot be inlined.")
        definition = {key: item for key, item in definitions[name].items() if key != "title"}
        siblings = {key: item for key, item in value.items() if key != "$ref"}
        return _inline({**definition, **siblings}, definitions, (*seen, name))
    return {key: _inline(item, definitions, seen) for key, item in value.items()}


def model_parameters(
    model: type[BaseModel], schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema
) -> dict[str, Any]:
    """The JSON schema of a tool's arguments model, as the `parameters` of its schema.

    The model's title and docstring are dropped: the tool's name and description say that.
    """
    parameters = model.model_json_schema(schema_generator=schema_generator)
    parameters.pop("title", None)
    parameters.pop("description", None)
    parameters.setdefault("properties", {})
    return parameters


def function_schema(
    name: str,
    description: str,
    parameters: dict[str, Any],
    *,
    with_execution_message: bool,
) -> dict[str, Any]:
    """The OpenAI tools entry the model is offered (`parameters` is copied, not changed)."""
    parameters = copy.deepcopy(parameters)
    parameters.setdefault("type", "object")
    properties = parameters.setdefault("properties", {})
    if with_execution_message:
        properties[EXECUTION_MESSAGE] = execution_message_parameter()
        parameters["required"] = [*parameters.get("required", []), EXECUTION_MESSAGE]
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }
