"""Every bad input through the command line: exit code 2, one sentence, nothing half-written.

Each case is run through `conversation-engine run` and `conversation-engine batch`. The error
must be one line on stderr that names the file and the field to fix, with no traceback, and
`--out` must hold nothing afterwards (no results file, no batch folder). Inputs that are only
unusual, such as a 1 MB variable, must run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from conversation_engine.cli import app
from conversation_engine.core.settings import get_settings

COMMANDS = ["run", "batch", "compare"]
GOOD_VARIABLES = {
    "CLIENT_NAME": "Ann",
    "PERSONALITY": "Polite.",
    "AMB_LEVEL": 1,
    "PATIENCE": 2,
    "ORDER_GOAL": ["2 boxes of chicken fillet"],
    "SEED": 1,
}
GOOD_SCENARIOS = [{"name": "fine", "variables": GOOD_VARIABLES}]

runner = CliRunner()


def invoke(command: str, scenarios: Path, out: Path, *options: str) -> Result:
    target = out / "results.json" if command == "run" else out
    extra = ["--no-eval"] if command == "batch" else []
    return runner.invoke(
        app, [command, str(scenarios), "--out", str(target), "--max-turns", "3", *extra, *options]
    )


def assert_user_error(result: Result, out: Path, *named: str) -> str:
    """Exit 2, one line naming everything in `named`, no traceback, nothing in `out`."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    (line,) = errors
    assert line.endswith("."), line
    for text in named:
        assert text in line, f"{text!r} is not named in: {line}"
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    return line


def write(path: Path, content: Any) -> Path:
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    return path


def spec_variant(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    spec = json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())
    edit(spec)
    directory = tmp_path / "specs"
    directory.mkdir(exist_ok=True)
    return write(directory / "edited.json", spec)


# ------------------------------------------------------------------------- scenario files

SCENARIO_FILE_CASES = {
    "not a list": ({"name": "x", "variables": {}}, ["the top level is an object, not a list"]),
    "missing name": ([{"variables": GOOD_VARIABLES}], ["item [0]", "no 'name'"]),
    "name of the wrong type": (
        [{"name": 7, "variables": GOOD_VARIABLES}],
        ["item [0]", "'name' is a number"],
    ),
    "variables of the wrong type": (
        [{"name": "x", "variables": ["CLIENT_NAME", "Ann"]}],
        ["item [0]", "'variables' is a list"],
    ),
    "item of the wrong type": (["just a string"], ["item [0] is a string, not an object"]),
    "invalid JSON": ('[{"name": "x",\n  "variables": {', ["is not valid JSON", "line 2"]),
    "invalid JSON line": (
        '{"name": "a", "variables": {}}\n{"name": "b", variables}\n',
        ["line 2", "is not valid JSON"],
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(SCENARIO_FILE_CASES))
def test_malformed_scenario_file(tmp_path: Path, command: str, case: str) -> None:
    content, named = SCENARIO_FILE_CASES[case]
    scenarios = write(tmp_path / "scenarios.json", content)
    out = tmp_path / "out"
    result = invoke(command, scenarios, out)
    assert_user_error(result, out, f"Scenario file '{scenarios}'", *named)


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_scenario_file(tmp_path: Path, command: str) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "nowhere.json"
    assert_user_error(invoke(command, missing, out), out, f"'{missing}' does not exist")


# ------------------------------------------------------------------------------ specs


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_spec(tmp_path: Path, command: str) -> None:
    scenarios = write(tmp_path / "scenarios.json", GOOD_SCENARIOS)
    out = tmp_path / "out"
    result = invoke(command, scenarios, out, "--spec", "no_such_spec")
    assert_user_error(
        result, out, "Unknown prompt spec 'no_such_spec'", "multiagent_prompts", "default_prompts"
    )


def _add_unknown_tool(spec: dict[str, Any]) -> None:
    spec["agents"]["agent"]["tools"].append("teleport")


def _add_bad_handoff(spec: dict[str, Any]) -> None:
    spec["agents"]["agent"]["handoffs"]["billing"] = "Invoices."


def _drop_client(spec: dict[str, Any]) -> None:
    del spec["agents"]["client"]


def _escape_directory(spec: dict[str, Any]) -> None:
    spec["agents"]["support"]["prompt"] = "file:../outside.txt"


SPEC_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], list[str]]] = {
    "unknown tool": (_add_unknown_tool, ["agents.agent.tools[4]", "unknown tool 'teleport'"]),
    "bad handoff target": (
        _add_bad_handoff,
        ["agents.agent.handoffs.billing", "'billing' is not an agent of this spec"],
    ),
    "no client": (_drop_client, ["agents: there is no 'client' agent"]),
    "file prompt escaping its directory": (
        _escape_directory,
        ["agents.support.prompt", "'file:../outside.txt' points outside the spec's directory"],
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_invalid_spec(tmp_path: Path, command: str, case: str) -> None:
    edit, named = SPEC_CASES[case]
    write(tmp_path / "outside.txt", "A prompt that lives where it must not be read from.")
    spec = spec_variant(tmp_path, edit)
    scenarios = write(tmp_path / "scenarios.json", GOOD_SCENARIOS)
    out = tmp_path / "out"
    result = invoke(command, scenarios, out, "--spec", str(spec))
    line = assert_user_error(result, out, str(spec), *named)
    assert "A prompt that lives" not in result.output, line


# ------------------------------------------------------------------------- variables


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_template_variable(tmp_path: Path, command: str) -> None:
    variables = {key: value for key, value in GOOD_VARIABLES.items() if key != "PERSONALITY"}
    scenarios = write(
        tmp_path / "scenarios.json",
        [*GOOD_SCENARIOS, {"name": "no personality", "variables": variables}],
    )
    out = tmp_path / "out"
    result = invoke(command, scenarios, out)
    assert_user_error(
        result,
        out,
        f"Scenario file '{scenarios}' item [1] ('no personality')",
        "agent 'client' uses the variable 'PERSONALITY'",
        "add it to the scenario's variables",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_variables_a_client_id_would_fetch_are_not_reported_missing(
    tmp_path: Path, command: str
) -> None:
    # LOCATIONS comes from the client data of a client_id: the check must not refuse it.
    spec = spec_variant(
        tmp_path,
        lambda spec: spec["agents"]["agent"].update(
            prompt=spec["agents"]["agent"]["prompt"] + "\nAddresses on file: {{ LOCATIONS }}"
        ),
    )
    scenarios = write(
        tmp_path / "scenarios.json",
        [{"name": "known client", "variables": {**GOOD_VARIABLES, "client_id": "C-1001"}}],
    )
    result = invoke(command, scenarios, tmp_path / "out", "--spec", str(spec))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("engine", ["autogen", "legacy"])
def test_a_one_megabyte_variable_runs(tmp_path: Path, engine: str) -> None:
    personality = "Talks at length about the weather. " * 30_000  # ~1 MB, inside the prompt
    scenarios = write(
        tmp_path / "scenarios.json",
        [{"name": "chatty", "variables": {**GOOD_VARIABLES, "PERSONALITY": personality}}],
    )
    out = tmp_path / "out"
    result = invoke("batch", scenarios, out, "--engine", engine)
    assert result.exit_code == 0, result.output
    (batch_dir,) = out.iterdir()
    (row,) = [json.loads(line) for line in (batch_dir / "results.ndjson").read_text().splitlines()]
    assert row["status"] == "completed" and row["contract_violations"] == []
    assert row["end_reason"] == "client_end_call"
