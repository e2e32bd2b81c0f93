"""Validation reports every problem at once: all missing variables of a scenario (and of
every scenario), and all problems of a spec, structural ones included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core.errors import SpecError, TemplateVariableError
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs.scenario import check_variables, enrich_variables, parse_scenario
from conversation_engine.inputs.specs import MissingVariablesError, PromptSpec, load_prompt_spec

MULTIAGENT = get_settings().PROMPTS_DIR / "multiagent_prompts.json"
COMPLETE = {
    "PERSONALITY": "Calm.",
    "AMB_LEVEL": 1,
    "ORDER_GOAL": ["2 packs of butter"],
    "PATIENCE": 2,
}


def multiagent() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MULTIAGENT.read_text(encoding="utf-8"))
    return data


def test_a_scenario_missing_four_variables_names_all_four() -> None:
    spec = load_prompt_spec(MULTIAGENT)
    scenario = parse_scenario({"name": "bare", "variables": {"CLIENT_NAME": "Ann"}})
    with pytest.raises(TemplateVariableError) as info:
        check_variables(spec, [scenario], source="scenarios.json")
    assert str(info.value) == (
        "Scenario file 'scenarios.json' item [0] ('bare'): prompt spec 'multiagent_prompts' "
        "uses 4 variables the scenario does not provide: 'PERSONALITY' (agent 'client'), "
        "'AMB_LEVEL' (agent 'client'), 'ORDER_GOAL' (agent 'client') and 'PATIENCE' "
        "(agent 'client'); add them to the scenario's variables."
    )
    assert info.value.agent_id == "client" and info.value.variable == "PERSONALITY"


def test_format_names_every_missing_variable_and_the_agents_using_it() -> None:
    data = multiagent()
    data["agents"]["agent"]["prompt"] += "\nRegion: {{ REGION }}. Tier: {{ TIER.level }}."
    data["agents"]["support"]["prompt"] += "\nRegion: {{ REGION }}."
    spec = PromptSpec.from_dict(data)
    variables, _ = enrich_variables(parse_scenario({"name": "n", "variables": COMPLETE}), None)
    with pytest.raises(MissingVariablesError) as info:
        spec.format(variables)
    assert info.value.missing == {"REGION": ["agent", "support"], "TIER": ["agent"]}
    assert info.value.variables == ["REGION", "TIER"]
    assert "uses 2 variables the scenario does not provide: 'REGION' (agents 'agent', " in str(
        info.value
    )
    # One variable that several agents use is named once, with its agents.
    with pytest.raises(MissingVariablesError) as single:
        spec.format({**variables, "TIER": {"level": "gold"}})
    assert str(single.value).startswith(
        "Prompt spec 'Shop assistants (sales and support)' uses the variable 'REGION' "
        "(agents 'agent', 'support'), which the scenario does not provide"
    )


def test_one_missing_variable_keeps_its_one_sentence() -> None:
    spec = load_prompt_spec(MULTIAGENT)
    scenario = parse_scenario(
        {"name": "almost", "variables": {k: v for k, v in COMPLETE.items() if k != "PATIENCE"}}
    )
    with pytest.raises(TemplateVariableError) as info:
        check_variables(spec, [scenario])
    assert not isinstance(info.value, MissingVariablesError)
    assert str(info.value) == (
        "Scenario [0] ('almost'): prompt spec 'multiagent_prompts' agent 'client' uses the "
        "variable 'PATIENCE', which the scenario does not provide; add it to the scenario's "
        "variables."
    )


def test_every_scenario_that_lacks_variables_is_listed() -> None:
    spec = load_prompt_spec(MULTIAGENT)
    scenarios = [
        parse_scenario({"name": "fine", "variables": COMPLETE}),
        parse_scenario(
            {
                "name": "no goal",
                "variables": {k: v for k, v in COMPLETE.items() if k != "ORDER_GOAL"},
            }
        ),
        parse_scenario({"name": "bare"}),
    ]
    with pytest.raises(TemplateVariableError) as info:
        check_variables(spec, scenarios, source="s.json")
    message = str(info.value)
    assert message.startswith(
        "Scenario file 's.json': 2 scenarios lack variables the prompt spec "
        "'multiagent_prompts' uses:\n"
    )
    assert "  - Scenario file 's.json' item [1] ('no goal'): prompt spec" in message
    assert "'ORDER_GOAL', which the scenario does not provide" in message
    assert (
        "  - Scenario file 's.json' item [2] ('bare'): prompt spec 'multiagent_prompts' uses 4"
        in message
    )
    assert "item [0]" not in message


def test_cli_run_names_all_missing_variables(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios.json"
    scenarios.write_text(json.dumps([{"name": "bare", "variables": {}}]), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(scenarios), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2, result.output
    for variable in ("PERSONALITY", "AMB_LEVEL", "ORDER_GOAL", "PATIENCE"):
        assert variable in result.output
    assert not (tmp_path / "r.json").exists()


def test_a_spec_with_several_problems_lists_them_all(tmp_path: Path) -> None:
    data = multiagent()
    data["agents"]["agent"]["model"] = "gpt-4o"  # structural: unknown key
    data["agents"]["agent"]["tools"].append("teleport")  # unknown tool
    data["agents"]["support"]["prompt"] = "file:support.txt"  # missing prompt file
    data["agents"]["client"]["prompt"] = "file:client.txt"  # another one
    data["agents"]["support"]["handoffs"]["nobody"] = "never"  # unknown handoff target
    data["entry_agent"] = "client"  # not a service agent
    data["python_tools"] = ["no_such_tools_module"]  # nothing to import
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    message = str(info.value)
    assert message.startswith(f"Prompt spec file '{path}' has 7 problems:\n")
    for field in (
        "agents.agent: unknown key 'model'",
        "agents.support.prompt: the prompt file 'support.txt' does not exist",
        "agents.client.prompt: the prompt file 'client.txt' does not exist",
        "python_tools[0]: no module 'no_such_tools_module'",
        "entry_agent: 'client' is not a service agent",
        "agents.agent.tools[4]: unknown tool 'teleport'",
        "agents.support.handoffs.nobody: the handoff target 'nobody' is not an agent",
    ):
        assert f"  - {path}: {field}" in message, (field, message)


@pytest.mark.parametrize(
    ("edit", "structural", "semantic"),
    [
        (
            lambda d: d["agents"]["support"].pop("name"),
            "agents.support: the required key 'name' is missing",
            "agents.agent.tools[4]: unknown tool 'teleport'",
        ),
        (
            lambda d: d["agents"].__setitem__("support", "just text"),
            "agents.support: expected an object, got string",
            "agents.agent.tools[4]: unknown tool 'teleport'",
        ),
        (
            lambda d: d["agents"]["support"]["tools"].append(7),
            "agents.support.tools[4]: expected a string, got number",
            "agents.agent.tools[4]: unknown tool 'teleport'",
        ),
    ],
)
def test_structural_problems_do_not_hide_the_others(
    tmp_path: Path, edit: Any, structural: str, semantic: str
) -> None:
    data = multiagent()
    data["agents"]["agent"]["tools"].append("teleport")
    edit(data)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    message = str(info.value)
    assert f"{path}: {structural}" in message, message
    assert f"{path}: {semantic}" in message, message


def test_no_agents_at_all_is_reported_alone(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "x", "agents": []}), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_prompt_spec(path)
    assert str(info.value) == f"{path}: agents: expected an object, got list."
