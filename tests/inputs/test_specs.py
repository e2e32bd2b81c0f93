"""Prompt specifications: loading, validation, `file:` prompts, strict formatting, tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.core.errors import SpecError, TemplateVariableError
from conversation_engine.inputs.specs import (
    AgentSpec,
    PromptSpec,
    list_prompt_specs,
    load_prompt_spec,
)
from conversation_engine.tools.catalogue import ToolCatalogue


def _multiagent() -> dict[str, Any]:
    return {
        "name": "Multi-agent shop",
        "version": "2.1.0",
        "description": "Sales agent and support with handoffs.",
        "agents": {
            "agent": {
                "name": "Sales Agent",
                "prompt": "Hello {{ CLIENT_NAME }}, today is {{ CURRENT_DATE }}.\n",
                "tools": ["rag_find_products", "add_to_cart"],
                "handoffs": {"support": "Complaints and delivery problems."},
            },
            "support": {
                "name": "Support",
                "prompt": "You help {{ name }}.",
                "tools": ["change_delivery_date"],
                "handoffs": {"agent": "Back to ordering."},
            },
            "client": {
                "name": "Customer",
                "prompt": (
                    "You are {{ CLIENT_NAME }}. Order:"
                    "{% for item in ORDER_GOAL %}\n- {{ item }}{% endfor %}"
                    "{% if PATIENCE > 2 %}\nYou are patient.{% endif %}"
                ),
                "tools": ["end_call"],
            },
            "evaluator": {"name": "Evaluator", "prompt": "Score the call."},
        },
    }


def _write(directory: Path, name: str, data: Any) -> Path:
    path = directory / name
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    _write(tmp_path, "multiagent_prompts.json", _multiagent())
    return tmp_path


# ------------------------------------------------------------------------------------ loading


def test_load_by_name_from_spec_dir(spec_dir: Path) -> None:
    spec = load_prompt_spec("multiagent_prompts", spec_dir=spec_dir)
    assert spec.name == "Multi-agent shop"
    assert spec.version == "2.1.0"
    assert list(spec.agents) == ["agent", "support", "client", "evaluator"]
    assert spec.source_path == spec_dir / "multiagent_prompts.json"
    assert spec.spec_name == "multiagent_prompts"


def test_load_by_name_with_json_suffix(spec_dir: Path) -> None:
    spec = load_prompt_spec("multiagent_prompts.json", spec_dir=spec_dir)
    assert spec.source_path == spec_dir / "multiagent_prompts.json"


def test_load_by_path_object_and_string(spec_dir: Path) -> None:
    path = spec_dir / "multiagent_prompts.json"
    assert load_prompt_spec(path).name == "Multi-agent shop"
    assert load_prompt_spec(str(path)).name == "Multi-agent shop"


def test_name_uses_settings_prompts_dir_by_default(
    spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conversation_engine.core import settings

    monkeypatch.setenv("PROMPTS_DIR", str(spec_dir))
    settings.get_settings.cache_clear()
    try:
        assert load_prompt_spec("multiagent_prompts").name == "Multi-agent shop"
    finally:
        settings.get_settings.cache_clear()


def test_unknown_spec_lists_available_names(spec_dir: Path) -> None:
    _write(spec_dir, "default_prompts.json", _multiagent())
    with pytest.raises(SpecError) as info:
        load_prompt_spec("nope", spec_dir=spec_dir)
    message = str(info.value)
    assert "Unknown prompt spec 'nope'" in message
    assert "default_prompts, multiagent_prompts" in message


def test_missing_spec_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_prompt_spec(tmp_path / "missing.json")


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": "x",\n  "agents": {,}\n}', encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert "line 3, column 14" in message


def test_top_level_not_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "list.json", [1, 2])
    with pytest.raises(SpecError, match="the top level is a list"):
        load_prompt_spec(path)


def test_wrong_structure_names_the_field(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["support"]["tools"] = "change_delivery_date"
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert str(info.value) == f"{path}: agents.support.tools: expected a list, got string."


def test_missing_required_key_names_it(tmp_path: Path) -> None:
    data = _multiagent()
    del data["agents"]["support"]["prompt"]
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert str(info.value) == (
        f"{path}: agents.support: the required key 'prompt' is missing; add it."
    )


def test_unknown_agent_key_is_an_error(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["agent"]["tool"] = ["get_cart"]
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    message = str(info.value)
    assert f"{path}: agents.agent: unknown key 'tool'" in message
    assert "allowed keys: name, prompt, tools, description, handoffs" in message


def test_agent_spec_model_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError, match="colour"):
        AgentSpec.model_validate({"name": "A", "prompt": "p", "colour": "red"})


def test_several_structure_problems_are_listed(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["agent"]["tools"] = "x"
    data["agents"]["support"]["handoffs"] = ["agent"]
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"Prompt spec file '{path}' has 2 problems:"
    assert lines[1] == f"  - {path}: agents.agent.tools: expected a list, got string."
    assert lines[2] == f"  - {path}: agents.support.handoffs: expected an object, got list."


# --------------------------------------------------------------------------------- validation


def _load_error(tmp_path: Path, data: dict[str, Any], **kwargs: Any) -> str:
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path, **kwargs)
    return str(info.value)


def test_unknown_tool(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["agent"]["tools"].append("foo")
    message = _load_error(tmp_path, data)
    path = tmp_path / "spec.json"
    assert message.startswith(f"{path}: agents.agent.tools[2]: unknown tool 'foo'; known tools: ")
    assert "add_to_cart, call_transfer, change_delivery_date, end_call" in message


def test_tool_names_argument_replaces_the_catalogue(tmp_path: Path) -> None:
    data = _multiagent()
    message = _load_error(
        tmp_path, data, tool_names=["rag_find_products", "add_to_cart", "end_call"]
    )
    assert "agents.support.tools[0]: unknown tool 'change_delivery_date'" in message
    assert "known tools: add_to_cart, end_call, rag_find_products." in message

    data["agents"]["agent"]["tools"].append("lookup_stock")
    path = _write(tmp_path, "custom.json", data)
    spec = load_prompt_spec(path, tool_names=[*ToolCatalogue().names, "lookup_stock"])
    assert spec.agents["agent"].tools[-1] == "lookup_stock"


def test_handoff_target_not_in_spec(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["agent"]["handoffs"]["billing"] = "Invoices."
    message = _load_error(tmp_path, data)
    assert message == (
        f"{tmp_path / 'spec.json'}: agents.agent.handoffs.billing: the handoff target 'billing' "
        "is not an agent of this spec; use one of: agent, support."
    )


@pytest.mark.parametrize("target", ["client", "evaluator"])
def test_handoff_to_reserved_agent(tmp_path: Path, target: str) -> None:
    data = _multiagent()
    data["agents"]["support"]["handoffs"][target] = "No."
    message = _load_error(tmp_path, data)
    assert f"agents.support.handoffs.{target}: agents cannot hand off to '{target}'" in message


def test_handoff_to_self(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["support"]["handoffs"]["support"] = "Loop."
    message = _load_error(tmp_path, data)
    assert "agents.support.handoffs.support: agent 'support' hands off to itself" in message


def test_handoff_tool_without_handoffs_key(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["support"]["tools"].append("handoff_agent")
    del data["agents"]["support"]["handoffs"]
    message = _load_error(tmp_path, data)
    assert "agents.support.tools[1]: 'handoff_agent' has no matching key" in message


def test_handoff_tool_listed_with_its_key_is_fine(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["support"]["tools"].append("handoff_agent")
    spec = load_prompt_spec(_write(tmp_path, "spec.json", data))
    assert spec.agents["support"].tools == ["change_delivery_date", "handoff_agent"]


def test_no_client_agent(tmp_path: Path) -> None:
    data = _multiagent()
    del data["agents"]["client"]
    message = _load_error(tmp_path, data)
    assert message == (
        f"{tmp_path / 'spec.json'}: agents: there is no 'client' agent; add one whose prompt "
        "plays the customer."
    )


def test_no_service_agent(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"] = {k: v for k, v in data["agents"].items() if k in ("client", "evaluator")}
    message = _load_error(tmp_path, data)
    assert "agents: there is no service agent" in message


def test_entry_agent_must_be_a_service_agent(tmp_path: Path) -> None:
    data = _multiagent()
    data["entry_agent"] = "client"
    message = _load_error(tmp_path, data)
    assert message == (
        f"{tmp_path / 'spec.json'}: entry_agent: 'client' is not a service agent of this spec; "
        "use one of: agent, support."
    )


def test_several_validation_problems_are_listed(tmp_path: Path) -> None:
    data = _multiagent()
    del data["agents"]["client"]
    data["agents"]["agent"]["tools"].append("foo")
    message = _load_error(tmp_path, data)
    assert message.startswith(f"Prompt spec file '{tmp_path / 'spec.json'}' has 2 problems:\n")
    assert "\n  - " in message


def test_validate_without_a_file_omits_the_file() -> None:
    data = _multiagent()
    data["agents"]["agent"]["tools"] = ["nope"]
    spec = PromptSpec.from_dict(data)
    problems = spec.validate()
    assert len(problems) == 1
    assert problems[0].startswith("agents.agent.tools[0]: unknown tool 'nope'")


def test_duplicate_tool_is_reported() -> None:
    data = _multiagent()
    data["agents"]["agent"]["tools"].append("add_to_cart")
    problems = PromptSpec.from_dict(data).validate()
    assert problems == [
        "agents.agent.tools[2]: 'add_to_cart' is listed twice; remove the duplicate."
    ]


def test_shipped_style_spec_is_valid() -> None:
    assert PromptSpec.from_dict(_multiagent()).validate() == []


# ------------------------------------------------------------------------------ agent id names


def test_agent_id_that_cannot_be_mapped(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["---"] = {"name": "Dashes", "prompt": "p"}
    message = _load_error(tmp_path, data)
    assert "agents.'---': the agent id '---' cannot be an AutoGen agent name" in message


def test_agent_ids_colliding_after_mapping(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["order-desk"] = {"name": "Desk", "prompt": "p"}
    data["agents"]["order_desk"] = {"name": "Desk 2", "prompt": "p"}
    message = _load_error(tmp_path, data)
    assert (
        "agents.order_desk: the agent ids 'order-desk' and 'order_desk' both become the AutoGen "
        "name 'order_desk'; rename one of them."
    ) in message


# ----------------------------------------------------------------------------- file: prompts


def test_file_prompt_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "agent_system.txt").write_text("\n  Sell food to {{ name }}.  \n\n", "utf-8")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "support.txt").write_text("Support — привет", "utf-8")
    data = _multiagent()
    data["agents"]["agent"]["prompt"] = "file:agent_system.txt"
    data["agents"]["support"]["prompt"] = "file:prompts/support.txt"
    spec = load_prompt_spec(_write(tmp_path, "spec.json", data))
    assert spec.agents["agent"].prompt == "Sell food to {{ name }}."
    assert spec.agents["support"].prompt == "Support — привет"


@pytest.mark.parametrize("reference", ["../secret.txt", "prompts/../../secret.txt"])
def test_file_prompt_traversal_is_refused(tmp_path: Path, reference: str) -> None:
    (tmp_path / "secret.txt").write_text("secret", "utf-8")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "prompts").mkdir()
    data = _multiagent()
    data["agents"]["agent"]["prompt"] = f"file:{reference}"
    path = _write(specs, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert str(info.value).startswith(
        f"{path}: agents.agent.prompt: 'file:{reference}' points outside the spec's directory"
    )


def test_file_prompt_absolute_path_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret", "utf-8")
    data = _multiagent()
    data["agents"]["client"]["prompt"] = f"file:{secret}"
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert f"{path}: agents.client.prompt:" in str(info.value)
    assert "points outside the spec's directory" in str(info.value)


def test_file_prompt_missing_file(tmp_path: Path) -> None:
    data = _multiagent()
    data["agents"]["support"]["prompt"] = "file:support_system.txt"
    path = _write(tmp_path, "spec.json", data)
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert str(info.value) == (
        f"{path}: agents.support.prompt: the prompt file 'support_system.txt' does not exist in "
        "the spec's directory; create it or fix the 'file:' reference."
    )


def test_file_prompt_without_a_spec_file() -> None:
    data = _multiagent()
    data["agents"]["agent"]["prompt"] = "file:agent.txt"
    with pytest.raises(SpecError, match="can only be resolved for a spec loaded from a file"):
        PromptSpec.from_dict(data)


# -------------------------------------------------------------------------------- formatting


def _variables(**overrides: Any) -> dict[str, Any]:
    variables = {
        "CLIENT_NAME": "Anna",
        "CURRENT_DATE": "2025-06-09",
        "name": "Anna",
        "ORDER_GOAL": ["Chicken breast", "Beef mince"],
        "PATIENCE": 3,
    }
    variables.update(overrides)
    return variables


def test_format_returns_a_new_spec_and_leaves_the_original(spec_dir: Path) -> None:
    spec = load_prompt_spec("multiagent_prompts", spec_dir=spec_dir)
    original = spec.model_dump()
    formatted = spec.format(_variables())
    assert formatted is not spec
    assert formatted.agents["agent"].prompt == "Hello Anna, today is 2025-06-09.\n"
    assert formatted.agents["support"].prompt == "You help Anna."
    assert spec.model_dump() == original
    assert spec.agents["agent"].prompt.startswith("Hello {{ CLIENT_NAME }}")
    assert formatted.source_path == spec.source_path
    assert formatted.agents["agent"].tools is not spec.agents["agent"].tools


def test_format_keeps_the_trailing_newline(spec_dir: Path) -> None:
    spec = load_prompt_spec("multiagent_prompts", spec_dir=spec_dir)
    assert spec.format(_variables()).agents["agent"].prompt.endswith(".\n")


def test_format_runs_loops_and_conditionals(spec_dir: Path) -> None:
    spec = load_prompt_spec("multiagent_prompts", spec_dir=spec_dir)
    patient = spec.format(_variables()).agents["client"].prompt
    assert patient == "You are Anna. Order:\n- Chicken breast\n- Beef mince\nYou are patient."
    hasty = spec.format(_variables(ORDER_GOAL=["Eggs"], PATIENCE=1)).agents["client"].prompt
    assert hasty == "You are Anna. Order:\n- Eggs"


def test_missing_variable_names_spec_agent_and_variable(spec_dir: Path) -> None:
    spec = load_prompt_spec("multiagent_prompts", spec_dir=spec_dir)
    variables = _variables()
    del variables["ORDER_GOAL"]
    with pytest.raises(TemplateVariableError) as info:
        spec.format(variables)
    assert str(info.value) == (
        "Prompt spec 'multiagent_prompts' agent 'client' uses the variable 'ORDER_GOAL', which "
        "the scenario does not provide; add it to the scenario's variables."
    )
    assert info.value.agent_id == "client"
    assert info.value.variable == "ORDER_GOAL"


def test_missing_attribute_is_a_template_variable_error() -> None:
    data = _multiagent()
    data["agents"]["support"]["prompt"] = "Ship to {{ ADDRESS.city }}."
    spec = PromptSpec.from_dict(data)
    with pytest.raises(TemplateVariableError) as info:
        spec.format(_variables(ADDRESS={"street": "1 Main St"}))
    assert info.value.agent_id == "support"
    assert info.value.variable is None
    assert "has no attribute 'city'" in str(info.value)


def test_template_syntax_error_names_agent_and_line() -> None:
    data = _multiagent()
    data["agents"]["support"]["prompt"] = "Line one\nLine {{ two }\nLine three"
    spec = PromptSpec.from_dict(data)
    with pytest.raises(SpecError) as info:
        spec.format(_variables())
    assert not isinstance(info.value, TemplateVariableError)
    assert str(info.value) == (
        "Prompt spec 'Multi-agent shop' agent 'support' has a template syntax error on line 2 "
        "of its prompt: unexpected '}'; fix the Jinja2 syntax."
    )


def test_template_syntax_error_in_a_prompt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "client.txt").write_text("{% for x in ORDER_GOAL %}", "utf-8")
    data = _multiagent()
    data["agents"]["client"]["prompt"] = "file:client.txt"
    spec = load_prompt_spec(_write(tmp_path, "shop.json", data))
    with pytest.raises(SpecError, match=r"line 1 of its prompt file 'client\.txt'"):
        spec.format(_variables())


# ---------------------------------------------------------------------------- agents & entry


def test_entry_agent_defaults_to_agent_and_service_order() -> None:
    data = _multiagent()
    data["agents"] = {
        "support": data["agents"]["support"],
        "client": data["agents"]["client"],
        "agent": data["agents"]["agent"],
    }
    spec = PromptSpec.from_dict(data)
    assert spec.entry_agent_id == "agent"
    assert spec.service_agent_ids == ["agent", "support"]


def test_entry_agent_without_agent_is_first_service_agent() -> None:
    data = {
        "name": "Staged",
        "agents": {
            "client": {"name": "Customer", "prompt": "c"},
            "ENTRY": {"name": "Entry", "prompt": "e", "handoffs": {"GOODBYE": "Done."}},
            "GOODBYE": {"name": "Bye", "prompt": "g", "tools": ["end_call"]},
            "evaluator": {"name": "Evaluator", "prompt": "v"},
        },
    }
    spec = PromptSpec.from_dict(data)
    assert spec.validate() == []
    assert spec.entry_agent_id == "ENTRY"
    assert spec.service_agent_ids == ["ENTRY", "GOODBYE"]


def test_explicit_entry_agent_wins() -> None:
    data = _multiagent()
    data["entry_agent"] = "support"
    spec = PromptSpec.from_dict(data)
    assert spec.entry_agent_id == "support"
    assert spec.service_agent_ids == ["support", "agent"]


def test_entry_agent_id_without_service_agents_raises() -> None:
    spec = PromptSpec.from_dict(
        {"name": "Empty", "agents": {"client": {"name": "Customer", "prompt": "c"}}}
    )
    with pytest.raises(SpecError, match="no service agent to start with"):
        _ = spec.entry_agent_id
    assert spec.service_agent_ids == []


def test_client_evaluator_and_agent_lookup() -> None:
    spec = PromptSpec.from_dict(_multiagent())
    assert spec.client is not None and spec.client.name == "Customer"
    assert spec.evaluator is not None and spec.evaluator.name == "Evaluator"
    assert spec.agent("support").name == "Support"
    del spec.agents["evaluator"]
    assert spec.evaluator is None
    with pytest.raises(SpecError, match="has no agent 'billing'"):
        spec.agent("billing")


# ------------------------------------------------------------------------------------ tools


def _tool_names(schemas: list[dict[str, Any]]) -> list[str]:
    return [schema["function"]["name"] for schema in schemas]


def test_get_tool_schemas_appends_handoff_tools() -> None:
    spec = PromptSpec.from_dict(_multiagent())
    schemas = spec.get_tool_schemas("agent")
    assert _tool_names(schemas) == ["rag_find_products", "add_to_cart", "handoff_support"]
    handoff = schemas[-1]["function"]
    assert handoff["description"] == (
        "Transfer the conversation to support. Complaints and delivery problems."
    )
    assert handoff["parameters"]["required"] == ["reason"]
    assert schemas[0] == ToolCatalogue().schema("rag_find_products")


def test_get_tool_schemas_legacy_drops_unknown_and_keeps_listed_handoff_position() -> None:
    data = _multiagent()
    data["agents"]["agent"]["tools"] = [
        "handoff_support",
        "no_such_tool",
        "get_cart",
        "handoff_ghost",
        "get_cart",
    ]
    spec = PromptSpec.from_dict(data)
    assert _tool_names(spec.get_tool_schemas("agent")) == ["handoff_support", "get_cart"]


def test_get_tool_schemas_uses_the_given_catalogue() -> None:
    extra = {
        "lookup_stock": {
            "type": "function",
            "function": {"name": "lookup_stock", "description": "Stock.", "parameters": {}},
        }
    }
    data = _multiagent()
    data["agents"]["support"]["tools"] = ["lookup_stock"]
    spec = PromptSpec.from_dict(data)
    assert _tool_names(spec.get_tool_schemas("support")) == ["handoff_agent"]
    with_extra = spec.get_tool_schemas("support", ToolCatalogue().with_schemas(extra))
    assert _tool_names(with_extra) == ["lookup_stock", "handoff_agent"]


def test_client_tools() -> None:
    spec = PromptSpec.from_dict(_multiagent())
    assert _tool_names(spec.get_tool_schemas("client")) == ["end_call"]
    assert spec.get_tool_schemas("evaluator") == []


# ---------------------------------------------------------------------------- serialisation


def test_to_dict_drops_none_fields_from_agents() -> None:
    data = _multiagent()
    spec = PromptSpec.from_dict(data)
    dumped = spec.to_dict()
    assert dumped["description"] == "Sales agent and support with handoffs."
    assert "description" not in dumped["agents"]["agent"]
    assert "entry_agent" not in dumped
    assert dumped["agents"]["agent"]["handoffs"] == {"support": "Complaints and delivery problems."}
    assert PromptSpec.from_dict(dumped).to_dict() == dumped
    assert "source_path" not in spec.model_dump()


def test_to_dict_keeps_a_null_spec_description() -> None:
    data = _multiagent()
    del data["description"]
    assert PromptSpec.from_dict(data).to_dict()["description"] is None


# ---------------------------------------------------------------------------------- listing


def test_list_prompt_specs_skips_non_specs(spec_dir: Path) -> None:
    (spec_dir / "broken.json").write_text("{not json", "utf-8")
    _write(spec_dir, "catalogue.json", [{"code": "X"}])
    _write(spec_dir, "settings.json", {"theme": "dark"})
    (spec_dir / "notes.txt").write_text("hello", "utf-8")
    minimal = {"name": "Minimal", "agents": {"agent": {"name": "A", "prompt": "p"}}}
    _write(spec_dir, "a_minimal.json", minimal)

    listed = list_prompt_specs(spec_dir)
    assert [item["name"] for item in listed] == ["a_minimal", "multiagent_prompts"]
    multi = listed[1]
    assert multi["display_name"] == "Multi-agent shop"
    assert multi["version"] == "2.1.0"
    assert multi["description"] == "Sales agent and support with handoffs."
    assert multi["agents"] == ["agent", "support", "client", "evaluator"]
    assert multi["file_size"] == (spec_dir / "multiagent_prompts.json").stat().st_size
    assert isinstance(multi["last_modified"], str) and "T" in multi["last_modified"]
    assert listed[0]["version"] == "1.0.0"
    assert listed[0]["description"] is None


def test_list_prompt_specs_of_a_missing_directory(tmp_path: Path) -> None:
    assert list_prompt_specs(tmp_path / "nowhere") == []
