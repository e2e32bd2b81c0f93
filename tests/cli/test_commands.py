from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
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


# ------------------------------------------------------------------ one line for a user error


def bad_scenarios(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "not a list"}', encoding="utf-8")
    return bad


@pytest.mark.parametrize("command", ["run", "batch", "compare"])
def test_a_bad_scenario_file_prints_exactly_one_line_on_stderr(
    tmp_path: Path, command: str
) -> None:
    out = tmp_path / ("r.json" if command == "run" else "out")
    result = runner.invoke(app, [command, str(bad_scenarios(tmp_path)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: Scenario file ") and "bad.json" in result.stderr
    assert result.stdout == ""  # no endpoint line, nothing ran


@pytest.mark.parametrize(
    "args",
    [
        ["run", SMOKE, "--spec", "nope"],
        ["run", SMOKE, "--engine", "no.such:Engine"],
        ["batch", SMOKE, "--spec", "nope"],
        ["batch", SMOKE, "--engine", "no.such:Engine"],
        ["compare", SMOKE, "--b-spec", "nope"],
        [
            "compare",
            SMOKE,
            "--b-base-url",
            "http://127.0.0.1:9/v1",
            "--b-key-env",
            "CE_TEST_UNSET_KEY_VARIABLE",
        ],
    ],
    ids=lambda args: " ".join(args[:1] + args[2:]),
)
def test_the_simulated_llm_banner_comes_after_input_validation(
    tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / ("r.json" if args[0] == "run" else "out")
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    assert "simulated LLM" not in result.output


# ------------------------------------------------------------------ endpoint and model first


def test_run_says_which_endpoint_and_model_first(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", SMOKE, "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first == "Using model simulated on the simulated LLM (offline test double)."
    assert result.stderr.startswith("No OPENAI_API_KEY or OPENAI_BASE_URL is set")


def test_batch_says_which_endpoint_and_model_first(tmp_path: Path) -> None:
    result = runner.invoke(app, ["batch", SMOKE, "--no-eval", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Using model simulated on the simulated LLM (offline test double)."
    assert lines[1].startswith("Running batch ")


def test_compare_says_each_side_s_endpoint_and_model_first(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["compare", SMOKE, "--b-model", "other-model", "--resamples", "100",
         "--out", str(tmp_path / "ab")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "A (legacy): model simulated on the simulated LLM (offline test double)"
    assert lines[1] == (
        "B (autogen · other-model): model other-model on the simulated LLM (offline test double)"
    )


def test_the_endpoint_is_named_by_its_host_only() -> None:
    from conversation_engine.cli._terminal import endpoint_host, endpoint_text

    url = "https://user:sk-secret@llm.example.com:8443/v1?api-key=sk-secret"
    assert endpoint_host(url) == "llm.example.com:8443"
    assert endpoint_host("http://[::1]:9/v1") == "[::1]:9"
    assert endpoint_host("not a url") is None
    text = endpoint_text(model="m", host=endpoint_host(url), simulated=False)
    assert text == "model m on OpenAI-compatible endpoint llm.example.com:8443"


# ------------------------------------------------------------------ transcripts and progress


def test_run_shows_display_names_and_the_hang_up(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", SMOKE, "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "Sales Agent: " in result.stdout and "Customer: " in result.stdout
    assert "agent_agent" not in result.stdout and "ЗАВЕРШИЛ" not in result.stdout
    assert "(Customer hung up: " in result.stdout
    written = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert {entry["speaker"] for entry in written[0]["conversation_history"]} == {
        "agent_agent",
        "client",
    }  # the contract keeps its speaker ids
    assert "conversations" not in result.stdout  # 2 scenarios: no progress bar


def test_run_shows_a_progress_bar_for_more_than_a_few_scenarios(tmp_path: Path) -> None:
    scenarios = tmp_path / "four.json"
    smoke = json.loads(Path(SMOKE).read_text(encoding="utf-8"))
    scenarios.write_text(json.dumps(smoke * 2), encoding="utf-8")
    result = runner.invoke(app, ["run", str(scenarios), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert re.search(r"conversations .*4/4 0 failed 0 active .*ETA 0:00:00", result.stdout)
    as_json = runner.invoke(
        app, ["run", str(scenarios), "--json", "--out", str(tmp_path / "j.json")]
    )
    assert as_json.exit_code == 0 and len(json.loads(as_json.stdout)) == 4  # no bar in JSON


# ------------------------------------------------------------------ run --out a directory


def test_run_out_with_a_trailing_slash_writes_inside_it(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir"
    result = runner.invoke(app, ["run", SMOKE, "--out", f"{target}/"])
    assert result.exit_code == 0, result.output
    (written,) = target.iterdir()
    assert re.fullmatch(r"run-\d{8}T\d{6}Z\.json", written.name)
    assert len(json.loads(written.read_text(encoding="utf-8"))) == 2
    assert written.name in result.stdout  # "Results written to <dir>/run-<time>.json"


def test_run_out_an_existing_directory_writes_inside_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", SMOKE, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.iterdir()
    assert written.is_file() and re.fullmatch(r"run-\d{8}T\d{6}Z\.json", written.name)


def test_results_file_resolution(tmp_path: Path) -> None:
    from conversation_engine.cli._terminal import results_file

    assert results_file(str(tmp_path / "r.json"), Path("results"), "run") == tmp_path / "r.json"
    assert results_file(str(tmp_path), Path("results"), "run").parent == tmp_path
    assert results_file("somedir/", Path("results"), "run").parent == Path("somedir")
    assert results_file(None, Path("results"), "run").parent == Path("results")


# ------------------------------------------------------------------ --help


@pytest.mark.parametrize("columns", ["80", "100"])
@pytest.mark.parametrize("command", [[], ["run"], ["batch"], ["compare"], ["specs"]])
def test_help_has_no_value_type_on_flags_and_whole_sentences(
    command: list[str], columns: str
) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "…" not in result.output  # nothing cut off
    flags = [line for line in result.output.splitlines() if re.search(r"│ --(help|debug) ", line)]
    assert flags and all("<" not in line for line in flags)


@pytest.mark.parametrize("columns", ["80", "100"])
def test_the_compare_summary_is_one_whole_sentence(columns: str) -> None:
    listed = runner.invoke(app, ["--help"], env={"COLUMNS": columns})
    (row,) = [line for line in listed.output.splitlines() if "│ compare " in line]
    assert row.split("compare", 1)[1].strip(" │") == (
        "A/B test two configurations on the same scenarios and seeds."
    )
    shown = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": columns})
    text = " ".join(shown.output.split())
    assert "A/B test two configurations on the same scenarios and seeds. Writes" in text


def test_help_paragraphs_wrap_at_the_terminal_not_at_the_source() -> None:
    from conversation_engine.cli._apps import reflow_help

    assert reflow_help("Summary.\n\n    One\n    paragraph.\n\n* a\n* b") == (
        "Summary.\n\nOne paragraph.\n\n* a\n* b"
    )
