"""Text from outside is data: no content loses a row, a results file or a report, and none of
it reaches the terminal as markup or escape codes.

The model is mocked at the wire (respx) and sends what a real endpoint may: lone surrogates
(as `\\ud800` escapes in its JSON), ANSI/OSC escape sequences, control characters, console
markup (`[/]`), in a reply, in an `end_call` reason, in the evaluator's comment and in an
error message. The shipped engines show a lone surrogate of a model as U+FFFD in their
results; an engine of one's own (`package.module:Class`, here `EchoEngine`) may hand back any
string, so the storage is tested with it too. Stored JSON must read back to the same strings
(as JSON can hold them); the CSV and the Markdown/HTML reports show a lone surrogate as
U+FFFD; the terminal shows plain text without control sequences.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.storage import (
    CSV_FILE,
    JOB_FILE,
    JSON_FILE,
    RESULTS_FILE,
    SUMMARY_FILE,
    read_results,
    sorted_rows,
)
from conversation_engine.cli import app
from conversation_engine.compare.analysis import compare_rows
from conversation_engine.compare.report import write_reports
from conversation_engine.core._safe_text import without_surrogates
from conversation_engine.core.settings import get_settings
from conversation_engine.llm.endpoint import OpenAIWrapper
from tests.compare.batch_rows import row as hand_row
from tests.hostile_text import (
    EVERYTHING,
    HostileModel,
    as_json_reads_it,
    error_response,
    hostile_text,
)
from tests.scripted_llm import BASE_URL, MODEL

runner = CliRunner()
SPEC = "multiagent_prompts"
ECHO = "tests.reliability.test_hostile_text:EchoEngine"
#: What must never reach the terminal: C0 controls but newline, DEL, C1 controls, surrogates.
TERMINAL_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
SCENARIO = {
    "name": "hostile",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet"],
        "SEED": 5,
    },
}
BOUNDED = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class EchoEngine:
    """A contract engine of one's own whose model said `TEXT_JSON` (the scenario variable,
    JSON as on the wire, so the scenario file itself stays plain ASCII): it is the reply, the
    client's line, a tool's result, the error and part of the scenario name of the result."""

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str, **_: Any) -> None:
        self.prompt_spec_name = prompt_spec_name

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: Any = None
    ) -> dict[str, Any]:
        return self._result(scenario)

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: Any = None
    ) -> dict[str, Any]:
        return self._result(scenario)

    @staticmethod
    def _result(scenario: dict[str, Any]) -> dict[str, Any]:
        text = json.loads(scenario["variables"]["TEXT_JSON"])
        now = "2024-01-15T10:00:00+00:00"
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_cart", "arguments": json.dumps({"message": text})},
        }
        history = [
            {
                "turn": 1,
                "speaker": "agent_agent",
                "content": text,
                "timestamp": now,
                "tool_calls": [call],
                "tool_results": [{"result": text}],
            },
            {"turn": 1, "speaker": "client", "content": text, "timestamp": now},
        ]
        return {
            "session_id": "s-1",
            "scenario": f"{scenario['name']} {text}",
            "status": "timeout",
            "total_turns": 1,
            "duration_seconds": 0.01,
            "conversation_history": history,
            "start_time": now,
            "end_time": now,
            "tools_used": True,
            "end_reason": "timeout",
            "error": f"the model said {text}",
            "error_type": "TimeoutError",
            "usage": {"calls": 1, "total_tokens": 15},
            "seed": scenario["variables"].get("SEED"),
        }


def echo_scenarios(text: str, count: int = 2) -> list[dict[str, Any]]:
    return [
        {"name": f"echo {index}", "variables": {"TEXT_JSON": json.dumps(text), "SEED": index}}
        for index in range(count)
    ]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line talks to a 'real' endpoint at BASE_URL (mocked at the wire)."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    monkeypatch.setenv("OPENAI_MODEL", MODEL)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps([SCENARIO]), encoding="utf-8")
    return path


def ends_with_reason(content: str, reason: str) -> bool:
    """The client's end-call line holds `reason` as the wire carried it (an engine may show a
    lone surrogate as U+FFFD)."""
    sent = as_json_reads_it(reason)
    return content.endswith((f"{sent}]", f"{without_surrogates(sent)}]"))


def assert_terminal_safe(output: str) -> None:
    found = TERMINAL_UNSAFE.search(output)
    assert found is None, f"{found.group()!r} reached the terminal" if found else ""


def assert_exports_hold(batch_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Every export exists, is UTF-8 and holds every row."""
    exported = json.loads((batch_dir / JSON_FILE).read_bytes().decode("utf-8"))["results"]
    assert exported == rows
    table = list(csv.reader(io.StringIO((batch_dir / CSV_FILE).read_bytes().decode("utf-8"))))
    assert len(table) == len(rows) + 1
    summary = json.loads((batch_dir / SUMMARY_FILE).read_bytes().decode("utf-8"))
    assert summary["total_conversations"] == len(rows)


# ------------------------------------------------------------------------ storage, via the API


async def run_hostile_batch(out: Path, reason: str, comment: str, engine: str) -> dict[str, Any]:
    wrapper = OpenAIWrapper(api_key="test-key", model=MODEL, base_url=BASE_URL, max_retries=0)
    try:
        with respx.mock(assert_all_called=False) as router:
            router.post(f"{BASE_URL}/chat/completions").mock(
                side_effect=HostileModel(reason, comment)
            )
            processor = BatchProcessor(wrapper, 2, engine=engine, output_dir=out)
            batch_id = processor.create_batch_job([SCENARIO, SCENARIO], prompt_spec_name=SPEC)
            return await processor.run_batch(batch_id)
    finally:
        await wrapper.aclose()


@BOUNDED
@given(reason=hostile_text, comment=hostile_text)
async def test_a_batch_stores_every_row_whatever_text_the_model_sends(
    reason: str, comment: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        summary = await run_hostile_batch(Path(tmp), reason, comment, "legacy")
        assert summary["status"] == "completed", summary.get("error")
        batch_dir = Path(summary["output_dir"])
        stored = sorted_rows(read_results(batch_dir / RESULTS_FILE))
        assert len(stored) == 2
        # Lossless: the rows read back are the rows the batch made, as far as JSON can hold
        # strings at all.
        assert stored == as_json_reads_it(summary["results"])
        for row in stored:
            assert ends_with_reason(row["conversation_history"][-1]["content"], reason)
            if row["evaluation_status"] == "success":
                sent = as_json_reads_it(comment)
                assert row["comment"] in (sent, without_surrogates(sent))
        assert_exports_hold(batch_dir, stored)
        assert json.loads((batch_dir / JOB_FILE).read_text(encoding="utf-8"))["status"] == (
            "completed"
        )


@pytest.mark.parametrize("engine", ["autogen", "legacy"])
async def test_a_lone_surrogate_from_the_model_loses_no_row(tmp_path: Path, engine: str) -> None:
    # The evaluator's comment is the last model output of a run, so it reaches the row as sent.
    summary = await run_hostile_batch(
        tmp_path, "done \ud800", "fine \ud800 [/] \x1b]0;T\x07", engine
    )
    assert summary["status"] == "completed", summary.get("error")
    stored = sorted_rows(read_results(Path(summary["output_dir"]) / RESULTS_FILE))
    assert len(stored) == 2
    assert stored == as_json_reads_it(summary["results"])
    assert ends_with_reason(stored[0]["conversation_history"][-1]["content"], "done \ud800")
    (Path(summary["output_dir"]) / RESULTS_FILE).read_bytes().decode("utf-8")
    assert_exports_hold(Path(summary["output_dir"]), stored)


@BOUNDED
@given(text=hostile_text)
async def test_no_text_an_engine_returns_loses_its_row_or_the_batch(text: str) -> None:
    wrapper = OpenAIWrapper.simulated()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            processor = BatchProcessor(wrapper, 2, engine=ECHO, output_dir=tmp, evaluate=False)
            batch_id = processor.create_batch_job(echo_scenarios(text), prompt_spec_name=SPEC)
            summary = await processor.run_batch(batch_id)
            assert summary["status"] == "completed", summary.get("error")
            batch_dir = Path(summary["output_dir"])
            stored = sorted_rows(read_results(batch_dir / RESULTS_FILE))
            assert len(stored) == 2
            assert stored == as_json_reads_it(summary["results"])  # lossless
            assert stored[0]["conversation_history"][0]["content"] == as_json_reads_it(text)
            assert_exports_hold(batch_dir, stored)
    finally:
        await wrapper.aclose()


# ------------------------------------------------------------------------ the command line


def test_batch_command_stores_an_engines_hostile_rows(tmp_path: Path) -> None:
    scenarios = tmp_path / "echo.json"
    scenarios.write_text(json.dumps(echo_scenarios(EVERYTHING)), encoding="ascii")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["batch", str(scenarios), "--engine", ECHO, "--no-eval", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.output)
    (batch_dir,) = [path.parent for path in out.glob(f"*/{JOB_FILE}")]
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "completed"
    stored = sorted_rows(read_results(batch_dir / RESULTS_FILE))
    assert len(stored) == 2
    assert stored[0]["conversation_history"][1]["content"] == as_json_reads_it(EVERYTHING)
    assert_exports_hold(batch_dir, stored)


def test_run_command_shows_and_writes_an_engines_hostile_text(tmp_path: Path) -> None:
    scenarios = tmp_path / "echo.json"
    text = "[/] \x1b]0;PWNED\x07\x1b[2J [bold]x[/bold] \ud800 :smile:"
    scenarios.write_text(json.dumps(echo_scenarios(text, 1)), encoding="ascii")
    out = tmp_path / "run.json"
    shown = runner.invoke(app, ["run", str(scenarios), "--engine", ECHO, "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "Traceback" not in shown.output
    assert_terminal_safe(shown.output)
    assert "[/] " in shown.output and "[bold]x[/bold]" in shown.output  # shown, not applied
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["conversation_history"][0]["content"] == text  # stored as it came
    assert written["scenario"] == f"echo 0 {text}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["echo.json", "run.json"]


def test_batch_command_keeps_hostile_rows_and_prints_plain_text(
    endpoint: None, scenario_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE_URL}/chat/completions").mock(
            side_effect=HostileModel(EVERYTHING, EVERYTHING)
        )
        result = runner.invoke(app, ["batch", str(scenario_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert_terminal_safe(result.output)
    (batch_dir,) = [path.parent for path in out.glob(f"*/{JOB_FILE}")]
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "completed"
    stored = read_results(batch_dir / RESULTS_FILE)
    assert len(stored) == 1
    assert_exports_hold(batch_dir, stored)


@pytest.mark.parametrize("engine", ["autogen", "legacy"])
def test_run_shows_model_text_as_plain_text_and_writes_it(
    endpoint: None, scenario_file: Path, tmp_path: Path, engine: str
) -> None:
    out = tmp_path / "run.json"
    reason = "[/] \x1b]0;PWNED\x07\x1b[2J [bold]x[/bold] \ud800 :smile:"
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE_URL}/chat/completions").mock(side_effect=HostileModel(reason, "ok"))
        shown = runner.invoke(
            app, ["run", str(scenario_file), "--engine", engine, "--out", str(out)]
        )
    assert shown.exit_code == 0, shown.output
    assert_terminal_safe(shown.output)
    assert "[/] " in shown.output and "[bold]x[/bold]" in shown.output  # shown, not applied
    assert ":smile:" in shown.output and "\ufffd" in shown.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert ends_with_reason(written["conversation_history"][-1]["content"], reason)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))


def test_run_json_output_is_valid_json_and_terminal_safe(
    endpoint: None, scenario_file: Path, tmp_path: Path
) -> None:
    reason = "bye \ud800 \x1b]0;T\x07 \x9b2J"
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE_URL}/chat/completions").mock(side_effect=HostileModel(reason, "ok"))
        shown = runner.invoke(
            app,
            [
                "run",
                str(scenario_file),
                "--engine",
                "legacy",
                "--json",
                "--out",
                str(tmp_path / "r"),
            ],
        )
    assert shown.exit_code == 0, shown.output
    assert_terminal_safe(shown.stdout)
    (printed,) = json.loads(shown.stdout)
    assert ends_with_reason(printed["conversation_history"][-1]["content"], reason)


@pytest.mark.parametrize("engine", ["autogen", "legacy"])
def test_an_endpoint_error_with_markup_is_shown_and_the_results_written(
    endpoint: None, scenario_file: Path, tmp_path: Path, engine: str
) -> None:
    out = tmp_path / "run.json"
    message = "Bad request [/] near [bold]x[/bold] \x1b[2J\ud800"
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE_URL}/chat/completions").mock(return_value=error_response(400, message))
        shown = runner.invoke(
            app, ["run", str(scenario_file), "--engine", engine, "--out", str(out)]
        )
    assert shown.exit_code == 0, shown.output
    assert "MarkupError" not in shown.output
    assert_terminal_safe(shown.output)
    assert "BadRequestError" in shown.output  # the footer, shown as text
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["status"] == "failed" and "[/] near" in written["error"]


# ------------------------------------------------------------------------ the compare report


@BOUNDED
@given(text=hostile_text, name=hostile_text)
def test_the_compare_report_is_written_whatever_the_rows_hold(text: str, name: str) -> None:
    rows_a = [hand_row(i, client_line=text, name=name) for i in range(3)]
    rows_b = [
        hand_row(i, client_line=text, name=name, violations=[text], end_reason=text)
        for i in range(3)
    ]
    comparison = compare_rows(
        rows_a, rows_b, label_a=f"A {text}", label_b=f"B {text}", scenario_names=[name] * 3
    )
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_reports(comparison, rows_a, rows_b, Path(tmp))
        stored = json.loads(paths["json"].read_bytes().decode("utf-8"))
        assert stored == as_json_reads_it(comparison.model_dump(mode="json"))  # lossless
        markdown = paths["md"].read_bytes().decode("utf-8")
        page = paths["html"].read_bytes().decode("utf-8")
        assert "<script>alert" not in page  # escaped by the template, never markup
        for document in (markdown, page):
            assert not re.search("[\ud800-\udfff]", document)


def test_compare_command_with_hostile_model_text_writes_its_reports(
    endpoint: None, scenario_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE_URL}/chat/completions").mock(
            side_effect=HostileModel(EVERYTHING, EVERYTHING)
        )
        shown = runner.invoke(
            app,
            ["compare", str(scenario_file), "--a", "legacy", "--b", "legacy", "--out", str(out)],
        )
    assert shown.exit_code == 0, shown.output
    assert_terminal_safe(shown.output)
    for name in ("comparison.json", "report.md", "report.html"):
        (out / name).read_bytes().decode("utf-8")


class LoggingEchoEngine(EchoEngine):
    """`EchoEngine` that also logs what its model said, as engines log failures."""

    @staticmethod
    def _result(scenario: dict[str, Any]) -> dict[str, Any]:
        text = json.loads(scenario["variables"]["TEXT_JSON"])
        logging.getLogger("conversation_engine.test").warning("The model said: %s", text)
        return EchoEngine._result(scenario)


def test_logged_outside_text_reaches_stderr_without_escape_codes(tmp_path: Path) -> None:
    scenarios = tmp_path / "echo.json"
    scenarios.write_text(json.dumps(echo_scenarios(EVERYTHING, 1)), encoding="ascii")
    engine = "tests.reliability.test_hostile_text:LoggingEchoEngine"
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", "from conversation_engine.cli import main; main()", "run",
         str(scenarios), "--engine", engine, "--out", str(tmp_path / "r.json")],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stderr = done.stderr.decode("utf-8")
    assert "The model said: " in stderr  # logged, as plain text
    assert_terminal_safe(stderr)
    assert_terminal_safe(done.stdout.decode("utf-8"))
