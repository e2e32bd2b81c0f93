from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings

runner = CliRunner()
SMOKE = str(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json")


def test_run_writes_contract_results_and_shows_transcripts(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = runner.invoke(app, ["run", SMOKE, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "simulated LLM" in result.output
    assert "client_end_call" in result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(written, list) and len(written) == 2
    for conversation in written:
        assert contract_violations(conversation) == []
        assert conversation["status"] == "completed"
    assert not list(tmp_path.glob("*.partial"))


def test_run_json_and_legacy_engine(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", SMOKE, "--engine", "legacy", "--json", "--out", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [r["engine"] for r in printed] == ["LegacyConversationEngine"] * 2


def test_run_basic_mode(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            SMOKE,
            "--basic",
            "--spec",
            "default_prompts",
            "--json",
            "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    for conversation in json.loads(result.stdout):
        assert conversation["tools_used"] is False
        assert contract_violations(conversation, basic_mode=True) == []


def test_bad_scenario_file_is_exit_2_with_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "not a list"}', encoding="utf-8")
    result = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "bad.json" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.json").exists()


def test_unknown_spec_and_engine_are_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", SMOKE, "--spec", "nope", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "nope" in result.output
    result = runner.invoke(
        app, ["run", SMOKE, "--engine", "no.such:Engine", "--out", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 2 and "no.such" in result.output


def test_specs_commands() -> None:
    listed = runner.invoke(app, ["specs", "list"])
    assert listed.exit_code == 0 and "multiagent_prompts" in listed.output
    valid = runner.invoke(app, ["specs", "validate", "multiagent_prompts"])
    assert valid.exit_code == 0 and "entry agent 'agent'" in valid.output
    shown = runner.invoke(app, ["specs", "show", "default_prompts"])
    assert shown.exit_code == 0 and '"client"' in shown.output


def test_invalid_spec_is_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "broken.json"
    spec.write_text(
        json.dumps(
            {"name": "x", "agents": {"agent": {"name": "A", "prompt": "p", "tools": ["teleport"]}}}
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["specs", "validate", str(spec)])
    assert result.exit_code == 2
    assert "teleport" in result.output and "client" in result.output
