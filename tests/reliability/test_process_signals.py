"""Signals to a running `conversation-engine batch`: Ctrl-C stops it cleanly, a kill loses
nothing, and `--resume` finishes the rest so that every scenario appears exactly once.

The batch runs in a subprocess, as a user runs it, against the simulated LLM served over HTTP
from this process with added latency, so that the batch is mid-run when the signal arrives.
(`tests/batch/test_processor.py` covers the same guarantees for the `BatchProcessor` API.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_engine.batch.storage import JOB_FILE, RESULTS_FILE, read_results
from conversation_engine.core.settings import get_settings
from conversation_engine.testing.simulated_llm import (
    SimulationConfig,
    base_url,
    serving_in_background,
)
from tests.processes import cli, finish

SCENARIO_COUNT = 8
LATENCY_MS = 60
BOUND_SECONDS = 60


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with serving_in_background(SimulationConfig(latency_ms=LATENCY_MS)) as server:
        yield base_url(server)


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    smoke = json.loads((get_settings().FIXTURES_DIR / "scenarios" / "smoke.json").read_text())
    items = []
    for index in range(SCENARIO_COUNT):
        item = json.loads(json.dumps(smoke[index % len(smoke)]))
        item["name"] = f"scenario {index}"
        item["variables"]["SEED"] = 100 + index
        items.append(item)
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def wait_for_rows(out: Path, count: int, process: subprocess.Popen[str]) -> Path:
    """The batch folder once its results log holds `count` complete rows."""
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, finish(process, BOUND_SECONDS)
        for log in out.glob(f"*/{RESULTS_FILE}"):
            if log.read_bytes().count(b"\n") >= count:
                return log.parent
        time.sleep(0.02)
    raise AssertionError("the batch never got going")


def assert_complete_lines(batch_dir: Path) -> list[dict[str, object]]:
    data = (batch_dir / RESULTS_FILE).read_bytes()
    assert data.endswith(b"\n"), "the results log ends mid-row"
    rows = [json.loads(line) for line in data.splitlines()]
    assert all(isinstance(row, dict) for row in rows)
    return rows


def resume(model_url: str, batch_dir: Path) -> list[dict[str, object]]:
    process = cli(model_url, "batch", "--resume", batch_dir.name, "--out", str(batch_dir.parent))
    stdout, stderr = finish(process, BOUND_SECONDS)
    assert process.returncode == 0, stdout + stderr
    assert "Traceback" not in stderr
    rows = assert_complete_lines(batch_dir)
    keys = sorted((row["scenario_index"], row["trial"]) for row in rows)
    assert keys == [(index, 0) for index in range(SCENARIO_COUNT)], "lost or duplicated rows"
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "completed"
    assert (batch_dir / "summary.json").is_file() and (batch_dir / "results.csv").is_file()
    return rows


@pytest.mark.parametrize("engine", ["autogen", "legacy"])
def test_sigint_stops_the_batch_cleanly_and_resume_finishes_it(
    model_url: str, scenarios: Path, tmp_path: Path, engine: str
) -> None:
    out = tmp_path / "out"
    process = cli(
        model_url,
        "batch",
        str(scenarios),
        "--engine",
        engine,
        "--out",
        str(out),
        "--concurrency",
        "2",
        "--no-eval",
    )
    batch_dir = wait_for_rows(out, 2, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = finish(process, BOUND_SECONDS)

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    assert f"--resume {batch_dir.name}" in " ".join(stderr.split())
    rows = assert_complete_lines(batch_dir)
    assert 2 <= len(rows) < SCENARIO_COUNT
    assert all(row["status"] == "completed" for row in rows)  # no cancelled run was recorded
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "cancelled"

    resumed = resume(model_url, batch_dir)
    assert resumed[: len(rows)] == rows  # what was saved before the stop is kept as it was


def test_sigkill_then_resume_runs_every_scenario_exactly_once(
    model_url: str, scenarios: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = cli(
        model_url, "batch", str(scenarios), "--out", str(out), "--concurrency", "2", "--no-eval"
    )
    batch_dir = wait_for_rows(out, 2, process)
    process.send_signal(signal.SIGKILL)
    finish(process, BOUND_SECONDS)

    assert process.returncode == -signal.SIGKILL
    before = read_results(batch_dir / RESULTS_FILE)
    assert 2 <= len(before) < SCENARIO_COUNT
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "running"

    rows = resume(model_url, batch_dir)
    assert rows[: len(before)] == before


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_a_stopped_compare_resumes_to_the_numbers_of_an_uninterrupted_one(
    model_url: str, scenarios: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    from tests.compare.test_harness import _numbers, _without_times

    def compare_args(out: Path) -> list[str]:
        return ["compare", str(scenarios), "--a", "legacy", "--b", "autogen", "--out", str(out),
                "--concurrency", "2", "--resamples", "200"]  # fmt: skip

    whole = tmp_path / "whole"
    stdout, stderr = finish(cli(model_url, *compare_args(whole)), BOUND_SECONDS)
    assert (whole / "comparison.json").is_file(), stdout + stderr

    cut = tmp_path / "cut"
    process = cli(model_url, *compare_args(cut))
    wait_for_rows(cut / "batches", 2, process)
    process.send_signal(stop)
    stdout, stderr = finish(process, BOUND_SECONDS)
    assert not (cut / "comparison.json").exists()
    if stop is signal.SIGINT:
        assert process.returncode == 130, stdout + stderr
        assert "Traceback" not in stderr and f"--resume {cut}" in " ".join(stderr.split())

    process = cli(model_url, "compare", "--resume", str(cut))
    stdout, stderr = finish(process, BOUND_SECONDS)
    assert process.returncode == 0, stdout + stderr
    for batch_dir in (cut / "batches").iterdir():  # each (scenario, trial, side) exactly once
        keys = sorted(
            (row["scenario_index"], row["trial"]) for row in assert_complete_lines(batch_dir)
        )
        assert keys == [(index, 0) for index in range(SCENARIO_COUNT)]
    first, second = (json.loads((out / "comparison.json").read_text()) for out in (whole, cut))
    for comparison in (first, second):
        comparison["scenarios"] = _without_times(comparison["scenarios"])
    assert _numbers(first) == _numbers(second)


def test_resuming_a_compare_refuses_other_options(model_url: str, tmp_path: Path) -> None:
    from conversation_engine.compare.analysis import BootstrapSettings
    from conversation_engine.compare.harness import JOB_FILE as COMPARE_FILE
    from conversation_engine.compare.harness import ComparisonJob
    from conversation_engine.compare.sides import SideConfig

    job = ComparisonJob(
        a=SideConfig(engine="legacy"), b=SideConfig(engine="autogen"), scenario_count=2,
        repeat=1, pass_threshold=3, concurrency=2, bootstrap=BootstrapSettings(),
        batch_ids={"a": "x", "b": "y"},
    )  # fmt: skip
    (tmp_path / COMPARE_FILE).write_text(job.model_dump_json(), encoding="utf-8")
    process = cli(
        model_url, "compare", "--resume", str(tmp_path), "--b", "legacy", "--repeat", "3",
        "--b-model", "other",
    )  # fmt: skip
    stdout, stderr = finish(process, BOUND_SECONDS)
    assert process.returncode == 2, stdout + stderr
    assert (
        "--resume finishes the comparison with what it was started with; drop --b legacy (the "
        "comparison has autogen), --repeat 3 (the comparison has 1), --b-model (the "
        "comparison keeps its sides)."
    ) in " ".join(stderr.split())
