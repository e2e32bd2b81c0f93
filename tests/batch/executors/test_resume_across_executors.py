"""`conversation-engine batch` as a user runs it, in a subprocess: the driver is killed
mid-batch (SIGKILL), on one executor, and `--resume` finishes on the other; each
(scenario, trial) is then stored exactly once, and a killed driver leaves no worker behind."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conversation_engine.batch.storage import JOB_FILE, RESULTS_FILE
from tests.batch.executors.conftest import (
    BOUND,
    descendants,
    keys_on_disk,
    row_count,
    scenario_items,
    wait_until_gone,
)
from tests.processes import CLI, cli, finish

COUNT = 10
WITHOUT_RAY = "import sys; sys.modules['ray'] = None; " + CLI


def kill_mid_batch(process: subprocess.Popen[str], out: Path, workers: bool) -> Path:
    """SIGKILL the driver once two rows are stored (and, with workers, they run)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        assert process.poll() is None, finish(process, BOUND)
        logs = list(out.glob(f"*/{RESULTS_FILE}"))
        below = descendants(process.pid)
        if logs and row_count(logs[0]) >= 2 and (not workers or len(below) >= 2):
            process.send_signal(signal.SIGKILL)
            finish(process, BOUND)
            assert not wait_until_gone(below), "workers outlived their driver"
            return logs[0].parent
        time.sleep(0.02)
    raise AssertionError("the batch never got going")


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(scenario_items(COUNT)), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("first", "then"),
    [([], ["--workers", "2"]), (["--workers", "2"], [])],
    ids=["in-process-then-workers", "workers-then-in-process"],
)
def test_a_killed_batch_resumes_on_the_other_executor_exactly_once(
    model_url: str, scenarios: Path, tmp_path: Path, first: list[str], then: list[str]
) -> None:
    out = tmp_path / "out"
    process = cli(
        model_url, "batch", str(scenarios), "--out", str(out), "--concurrency", "2", *first
    )
    batch_dir = kill_mid_batch(process, out, workers=bool(first))
    before = keys_on_disk(batch_dir)
    assert 2 <= sum(before.values()) < COUNT and set(before.values()) == {1}

    resumed = cli(model_url, "batch", "--resume", batch_dir.name, "--out", str(out), *then)
    stdout, stderr = finish(resumed, BOUND)
    assert resumed.returncode == 0, stdout + stderr
    assert keys_on_disk(batch_dir) == {(index, 0): 1 for index in range(COUNT)}
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "completed"
    assert "Batch summary" in stdout and "score" in stdout


def test_ray_without_the_extra_says_how_to_install_it(model_url: str, scenarios: Path) -> None:
    process = cli(model_url, "batch", str(scenarios), "--ray", "auto", code=WITHOUT_RAY)
    stdout, stderr = finish(process, BOUND)
    assert process.returncode == 2, stdout + stderr
    assert "pip install 'conversation-engine[ray]'" in " ".join(stderr.split())
    assert "Traceback" not in stderr


def test_ctrl_c_stops_the_workers_and_the_batch_resumes(
    model_url: str, scenarios: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = cli(model_url, "batch", str(scenarios), "--out", str(out), "--workers", "2")
    deadline = time.monotonic() + BOUND
    while not list(out.glob(f"*/{RESULTS_FILE}")) or len(descendants(process.pid)) < 2:
        assert time.monotonic() < deadline and process.poll() is None, finish(process, BOUND)
        time.sleep(0.02)
    workers = descendants(process.pid)
    process.send_signal(signal.SIGINT)
    stdout, stderr = finish(process, BOUND)

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert not wait_until_gone(workers)
    batch_dir = next(out.iterdir())
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "cancelled"
    resumed = cli(model_url, "batch", "--resume", batch_dir.name, "--out", str(out))
    assert finish(resumed, BOUND) and resumed.returncode == 0
    assert keys_on_disk(batch_dir) == {(index, 0): 1 for index in range(COUNT)}
