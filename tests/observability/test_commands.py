"""`--budget-usd`, `--trace` and `--follow` on `run` and `compare`, as a user runs them (a
subprocess on the simulated LLM, its model name priced through `MODEL_PRICES`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conversation_engine.cli._observe import BUDGET_REACHED_EXIT_CODE
from tests.shop import HANDOFF_SCENARIO

#: The simulated LLM's own model name, at gpt-4o-mini's price (USD per 1K tokens).
PRICES = '{"simulated": [0.00015, 0.0006]}'


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env.pop("BUDGET_USD", None)
    return subprocess.run(
        [sys.executable, "-c", "from conversation_engine.cli import app; app()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**env, "MODEL_PRICES": PRICES, "COLUMNS": "400"},
        stdin=subprocess.DEVNULL,
    )


def _scenarios(tmp_path: Path, *names: str) -> str:
    path = tmp_path / "scenarios.json"
    scenarios = [{**HANDOFF_SCENARIO, "name": name} for name in names]
    path.write_text(json.dumps(scenarios), encoding="utf-8")
    return str(path)


def test_run_says_which_scenarios_its_budget_left_out(tmp_path: Path) -> None:
    scenarios = _scenarios(tmp_path, "first", "second", "third")
    out = tmp_path / "results.json"
    # One conversation costs more than the cap: the first runs, the cap stops the other two.
    done = _cli(
        "run", scenarios, "--engine", "legacy", "--max-turns", "3", "--concurrency", "1",
        "--budget-usd", "0.0001", "--out", str(out), "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == BUDGET_REACHED_EXIT_CODE, done.stderr
    results = json.loads(out.read_text(encoding="utf-8"))
    assert [r["scenario"] for r in results] == ["first"]
    notice = [line for line in done.stderr.splitlines() if "Budget reached" in line]
    assert len(notice) == 1
    assert "2 of 3 scenario(s) not started: second, third" in notice[0]
    assert "--budget-usd" in notice[0]
    json.loads(done.stdout)  # stdout stays the results' JSON


def test_run_within_its_budget_says_nothing_of_it(tmp_path: Path) -> None:
    scenarios = _scenarios(tmp_path, "first")
    done = _cli(
        "run", scenarios, "--engine", "legacy", "--max-turns", "2", "--budget-usd", "5",
        "--out", str(tmp_path / "results.json"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Budget" not in done.stdout + done.stderr


def test_compare_stops_at_its_budget_and_resumes_with_a_higher_cap(tmp_path: Path) -> None:
    scenarios = _scenarios(tmp_path, HANDOFF_SCENARIO["name"])
    out = tmp_path / "ab"
    trace = tmp_path / "spans.jsonl"
    done = _cli(
        "compare", scenarios, "--a", "legacy", "--b", "legacy", "--repeat", "3",
        "--max-turns", "3", "--concurrency", "1", "--resamples", "100", "--out", str(out),
        "--budget-usd", "0.003", "--trace", str(trace), "--follow", "all",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == BUDGET_REACHED_EXIT_CODE, done.stderr
    assert "Budget reached" in done.stderr
    assert "of 6 conversations finished" in done.stderr
    assert f"compare --resume {out} --budget-usd <higher>" in " ".join(done.stderr.split())
    assert not (out / "comparison.json").exists()
    # --follow labels each line with its side; --trace gives each side's conversations theirs.
    for side in ("a", "b"):
        assert re.search(rf"^\[{HANDOFF_SCENARIO['name']} #\d {side}\] agent: ", done.stdout, re.M)
    spans = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    roots = [s for s in spans if s.get("parent_id") is None]
    assert roots and {r["attributes"]["conversation_engine.side"] for r in roots} <= {"a", "b"}

    resumed = _cli(
        "compare", "--resume", str(out), "--budget-usd", "1", "--resamples", "100", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert comparison
