"""Code in a prompt template, through the command line: refused, never run.

A spec's prompts are Jinja2 templates and specs come from outside (the service accepts them
over HTTP). A template that reaches Python (`__globals__`, `__subclasses__`, ...), loads a file
(`{% include %}`) or does unbounded work must be refused with `Error: <spec file>: agents.<id>
.prompt: ...`, exit 2: by `specs validate`, and by `run`, `batch` and `compare` before any
conversation starts or anything is written. The payloads try to create a marker file; it must
never appear.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from typer.testing import CliRunner, Result

from conversation_engine.cli import app
from conversation_engine.core.settings import get_settings
from tests.inputs.test_prompt_sandbox import escape_templates
from tests.reliability.test_input_errors import (
    COMMANDS,
    GOOD_SCENARIOS,
    assert_user_error,
    invoke,
    write,
)

runner = CliRunner()

# The reported attack and its relatives; MARKER is replaced by a path to create.
TEMPLATES = {
    "popen through __globals__": (
        "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch MARKER').read() }}"
    ),
    "cycler globals": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "template context": "{{ self._TemplateReference__context }}",
    "include a file": "{% include 'secret.txt' %}",
    "extends a file": "{% extends 'secret.txt' %}",
}
# Seen only when rendered: `specs validate` cannot know, `run`/`batch`/`compare` refuse them
# when they check the scenarios against the spec, before anything runs.
RUNTIME_TEMPLATES = {
    "computed dunder": "{{ ORDER_GOAL|attr('_' ~ '_class__') }}",
    "list mutation": "{{ ORDER_GOAL.append('x') }}",
    "attribute write": "{% set ORDER_GOAL.x = 1 %}",
    "runaway loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "runaway string": "{{ 'x' * 10**10 }}",
}


def hostile_spec(directory: Path, prompt: str) -> Path:
    spec = json.loads((get_settings().PROMPTS_DIR / "multiagent_prompts.json").read_text())
    spec["agents"]["support"]["prompt"] = prompt.replace("MARKER", str(directory / "pwned"))
    (directory / "secret.txt").write_text("SECRET CONTENT", encoding="utf-8")
    return write(directory / "hostile.json", spec)


def validate(spec: Path) -> Result:
    return runner.invoke(app, ["specs", "validate", str(spec)])


@pytest.mark.parametrize("case", list(TEMPLATES))
def test_specs_validate_refuses_code_in_a_template(tmp_path: Path, case: str) -> None:
    spec = hostile_spec(tmp_path, TEMPLATES[case])
    result = validate(spec)
    line = assert_user_error(result, tmp_path / "out", f"{spec}: agents.support.prompt: line 1")
    assert "OK" not in result.output and "SECRET" not in result.output, line
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", ["popen through __globals__", "include a file"])
def test_run_batch_and_compare_refuse_code_in_a_template(
    tmp_path: Path, command: str, case: str
) -> None:
    spec = hostile_spec(tmp_path, TEMPLATES[case])
    scenarios = write(tmp_path / "scenarios.json", GOOD_SCENARIOS)
    out = tmp_path / "out"
    result = invoke(command, scenarios, out, "--spec", str(spec))
    assert_user_error(result, out, f"{spec}: agents.support.prompt")
    assert "SECRET" not in result.output
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(RUNTIME_TEMPLATES))
def test_templates_refused_when_rendered_stop_the_command_before_it_runs(
    tmp_path: Path, command: str, case: str
) -> None:
    spec = hostile_spec(tmp_path, RUNTIME_TEMPLATES[case])
    assert validate(spec).exit_code == 0  # nothing in the text gives it away
    scenarios = write(tmp_path / "scenarios.json", GOOD_SCENARIOS)
    out = tmp_path / "out"
    result = invoke(command, scenarios, out, "--spec", str(spec))
    assert_user_error(
        result, out, f"Scenario file '{scenarios}' item [0]", f"'{spec}' agent 'support'"
    )


@settings(max_examples=15, deadline=None)
@given(prompt=escape_templates())
def test_specs_validate_refuses_generated_escapes(prompt: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        spec = hostile_spec(Path(directory), prompt)
        result = validate(spec)
        assert_user_error(result, Path(directory) / "out", f"{spec}: agents.support.prompt")


def test_shipped_specs_still_validate() -> None:
    for name in ("default_prompts", "multiagent_prompts"):
        result = validate(Path(name))
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"OK {name}")
