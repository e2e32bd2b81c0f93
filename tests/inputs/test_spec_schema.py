"""The JSON Schema of prompt specs: printed by `specs schema`, true to the models, and it
accepts the shipped specs and refuses what loading refuses.

`jsonschema` is not a dependency; when it is installed it validates too, and a small
validator of the keywords the schema uses always does.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core.errors import SpecError
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs.spec_schema import JSON_SCHEMA_DIALECT, spec_json_schema
from conversation_engine.inputs.specs import AgentSpec, PromptSpec, load_prompt_spec

SHIPPED = sorted(get_settings().PROMPTS_DIR.glob("*.json"))

#: Every keyword the schema may use; anything else would go unchecked by `validate` below.
KNOWN_KEYWORDS = {
    "$schema",
    "$defs",
    "$ref",
    "title",
    "description",
    "default",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "allOf",
    "not",
    "propertyNames",
    "enum",
    "pattern",
    "uniqueItems",
    "maxProperties",
}
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "null": type(None),
    "boolean": bool,
}


def errors_of(
    instance: Any, schema: dict[str, Any], root: dict[str, Any], at: str = ""
) -> list[str]:
    """A small JSON Schema validator for the keywords in `KNOWN_KEYWORDS`."""
    problems: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        problems += errors_of(instance, root["$defs"][name], root, at)
    kind = schema.get("type")
    if kind is not None and not isinstance(instance, _TYPES[kind]):
        return [*problems, f"{at}: not a {kind}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{at}: not one of {schema['enum']}")
    if isinstance(instance, str) and not re.search(schema.get("pattern", ""), instance):
        problems.append(f"{at}: does not match {schema['pattern']}")
    for branch in schema.get("allOf", []):
        problems += errors_of(instance, branch, root, at)
    if "anyOf" in schema and all(errors_of(instance, b, root, at) for b in schema["anyOf"]):
        problems.append(f"{at}: matches no anyOf branch")
    if "not" in schema and not errors_of(instance, schema["not"], root, at):
        problems.append(f"{at}: matches a 'not' schema")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                problems.append(f"{at}: '{key}' is required")
        if "maxProperties" in schema and len(instance) > schema["maxProperties"]:
            problems.append(f"{at}: more than {schema['maxProperties']} properties")
        for key, value in instance.items():
            if "propertyNames" in schema:
                problems += errors_of(key, schema["propertyNames"], root, f"{at}.{key} (name)")
            if key in properties:
                problems += errors_of(value, properties[key], root, f"{at}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{at}: unknown key '{key}'")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += errors_of(value, schema["additionalProperties"], root, f"{at}.{key}")
    if isinstance(instance, list):
        if schema.get("uniqueItems") and len({json.dumps(i) for i in instance}) < len(instance):
            problems.append(f"{at}: items are not unique")
        for index, item in enumerate(instance):
            problems += errors_of(item, schema.get("items", {}), root, f"{at}[{index}]")
    return problems


def keywords(schema: Any, found: set[str] | None = None, *, container: bool = False) -> set[str]:
    """Every keyword used anywhere in `schema` (keys of `properties`/`$defs` are names)."""
    found = set() if found is None else found
    if isinstance(schema, dict):
        for key, value in schema.items():
            if not container:
                found.add(key)
            keywords(value, found, container=key in ("properties", "$defs") and not container)
    elif isinstance(schema, list):
        for item in schema:
            keywords(item, found)
    return found


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["specs", "schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def shipped(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_specs_schema_prints_the_package_schema(schema: dict[str, Any]) -> None:
    assert schema == spec_json_schema()
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert keywords(schema) <= KNOWN_KEYWORDS, keywords(schema) - KNOWN_KEYWORDS


def test_the_schema_is_the_models_schema(schema: dict[str, Any]) -> None:
    assert set(schema["properties"]) == set(PromptSpec.model_fields)
    assert set(schema["required"]) == {
        name for name, field in PromptSpec.model_fields.items() if field.is_required()
    }
    agent = schema["$defs"]["AgentSpec"]
    assert set(agent["properties"]) == set(AgentSpec.model_fields)
    assert set(agent["required"]) == {"name", "prompt"}
    assert schema["additionalProperties"] is False and agent["additionalProperties"] is False
    for name in [*schema["properties"], *agent["properties"]]:
        entry = schema["properties"].get(name) or agent["properties"][name]
        assert entry.get("description"), f"{name} has no description"
        assert "\n" not in entry["description"]


def test_the_schema_is_valid_json_schema_when_jsonschema_is_installed(
    schema: dict[str, Any],
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in SHIPPED:
        jsonschema.Draft202012Validator(schema).validate(shipped(path))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_the_shipped_specs_conform(schema: dict[str, Any], path: Path) -> None:
    assert errors_of(shipped(path), schema, schema) == []
    load_prompt_spec(path)  # and loading agrees


def _broken(edit: str) -> dict[str, Any]:
    data = copy.deepcopy(shipped(get_settings().PROMPTS_DIR / "multiagent_prompts.json"))
    agents = data["agents"]
    if edit == "no client":
        del agents["client"]
    elif edit == "only reserved agents":
        data["agents"] = {"client": agents["client"], "evaluator": agents["evaluator"]}
    elif edit == "unknown top-level key":
        data["tools"] = []
    elif edit == "unknown agent key":
        agents["agent"]["model"] = "gpt-4o"
    elif edit == "agent without prompt":
        del agents["support"]["prompt"]
    elif edit == "tool listed twice":
        agents["agent"]["tools"].append("get_cart")
    elif edit == "handoff to the client":
        agents["agent"]["handoffs"]["client"] = "never"
    elif edit == "client hands off":
        agents["client"]["handoffs"] = {"agent": "never"}
    elif edit == "bad python_tools entry":
        data["python_tools"] = ["my tools.py"]
    elif edit == "tools not a list":
        agents["agent"]["tools"] = "get_cart"
    return data


@pytest.mark.parametrize(
    "edit",
    [
        "no client",
        "only reserved agents",
        "unknown top-level key",
        "unknown agent key",
        "agent without prompt",
        "tool listed twice",
        "handoff to the client",
        "client hands off",
        "bad python_tools entry",
        "tools not a list",
    ],
)
def test_the_schema_refuses_what_loading_refuses(
    schema: dict[str, Any], edit: str, tmp_path: Path
) -> None:
    data = _broken(edit)
    assert errors_of(data, schema, schema), edit
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SpecError):
        load_prompt_spec(path)


def test_the_schema_accepts_python_tools_and_entry_agent(schema: dict[str, Any]) -> None:
    data = shipped(get_settings().PROMPTS_DIR / "multiagent_prompts.json")
    data["python_tools"] = ["mytools", "shop_extras.stock:check_stock"]
    data["entry_agent"] = "support"
    assert errors_of(data, schema, schema) == []
