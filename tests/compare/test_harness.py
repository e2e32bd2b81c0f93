"""`conversation-engine compare` end to end, offline with the simulated LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.compare.analysis import METRICS
from conversation_engine.core.settings import get_settings
from conversation_engine.engines.legacy import LegacyConversationEngine

runner = CliRunner()
SMOKE = str(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json")
FLAKY = "tests.compare.test_harness:FlakyLegacyEngine"


class FlakyLegacyEngine(LegacyConversationEngine):
    """The legacy engine, except that the delivery-date scenario always crashes."""

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: Any = None
    ) -> dict[str, Any]:
        if "delivery" in scenario.get("name", ""):
            raise RuntimeError("support desk unreachable")
        return await super().run_conversation_with_tools(scenario, max_turns, timeout_sec)


def batch_rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of each side's batch, by the label the batch recorded for its engine."""
    found: dict[str, list[dict[str, Any]]] = {}
    for results in sorted((out / "batches").glob("*/results.json")):
        job = json.loads((results.parent / "batch.json").read_text(encoding="utf-8"))
        found[job["engine"]] = json.loads(results.read_text(encoding="utf-8"))["results"]
    return found


def test_compare_legacy_with_autogen_on_the_smoke_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        ["compare", SMOKE, "--a", "legacy", "--b", "autogen", "--repeat", "2", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "Paired differences (B − A)" in result.output
    assert "Only 2 scenario(s)" in result.output  # too few to call anything real
    assert {"comparison.json", "report.md", "report.html", "batches"} <= {
        path.name for path in out.iterdir()
    }

    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert (comparison["a"]["label"], comparison["b"]["label"]) == ("legacy", "autogen")
    assert (comparison["scenario_count"], comparison["repeat"]) == (2, 2)
    assert comparison["spec"] == "multiagent_prompts"
    keys = [item["metric"]["key"] for item in comparison["paired"]]
    assert set(keys) == {m.key for m in METRICS} | {"duration_p50", "duration_p95", "pass_k"}
    for item in comparison["paired"]:
        assert not item["difference"]["significant"]
        # The simulated LLM has no price: the cost is not compared.
        expected = {"pass_k": 2, "cost_usd": 0}.get(item["metric"]["key"], 4)
        assert item["difference"]["n_pairs"] == expected
    for side in ("a", "b"):
        summary = comparison[side]
        assert summary["runs"] == 4 and summary["status_counts"] == {"completed": 4}
        assert sum(summary["end_reasons"].values()) == 4
        assert summary["tool_calls"] and summary["handoffs"] == {"support": 2}
        assert summary["metrics"]["duration_seconds"]["p95"] > 0
        assert summary["usage"]["total_tokens"] > 0 and summary["wall_seconds"] > 0
        assert summary["usage"]["cost_usd"] is None  # the simulated LLM has no price
        assert len(summary["pass_k"]["curve"]) == 2
    assert {item["metric"]["key"] for item in comparison["breakdowns"]} >= {
        "status:completed",
        "tool:add_to_cart",
    }

    # Both engines ran every scenario-trial with the same seed.
    rows = batch_rows(out)
    assert set(rows) == {"legacy", "autogen"}
    seeds = {
        engine: {(r["scenario_index"], r["trial"]): r["seed"] for r in engine_rows}
        for engine, engine_rows in rows.items()
    }
    assert seeds["legacy"] == seeds["autogen"]
    assert seeds["legacy"] == {(0, 0): 1, (0, 1): 2, (1, 0): 2, (1, 1): 3}  # SEED + trial

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Smoke: single item order" in html and html.count('<svg viewBox="0 0') == 5
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "# A/B comparison: legacy (A) vs autogen (B)" in markdown
    assert "| cost (USD) | unknown | unknown |" in markdown


def test_either_side_may_be_a_class_by_import_path(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(
        app, ["compare", SMOKE, "--a", FLAKY, "--b", "legacy", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["a"]["label"] == FLAKY and comparison["b"]["label"] == "legacy"
    assert comparison["a"]["status_counts"] == {"completed": 1, "failed": 1}
    assert comparison["b"]["status_counts"] == {"completed": 2}
    failed = next(item for item in comparison["paired"] if item["metric"]["key"] == "failed")
    assert (failed["value_a"], failed["value_b"], failed["difference"]["estimate"]) == (
        0.5,
        0,
        -0.5,
    )
    tools = next(item for item in comparison["paired"] if item["metric"]["key"] == "tool_calls")
    assert tools["difference"]["n_pairs"] == 1  # the crashed run has no history to count
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "support desk unreachable" in html


def test_a_bad_engine_name_is_exit_2_with_one_sentence(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    for engine, expected in (
        (
            "nosuch",
            "Engine 'nosuch' is not 'autogen', 'legacy', 'rollout' or 'package.module:Class'.",
        ),
        (
            "conversation_engine.engines.legacy:Nope",
            "Engine 'conversation_engine.engines.legacy:Nope': module "
            "'conversation_engine.engines.legacy' has no class 'Nope'.",
        ),
    ):
        result = runner.invoke(
            app, ["compare", SMOKE, "--a", "legacy", "--b", engine, "--out", str(out)]
        )
        assert result.exit_code == 2, result.output
        output = " ".join(result.output.split())
        assert f"Error: {expected}" in output
        error = output.split("Error: ", 1)[1]
        assert error == expected  # one sentence and nothing after it
        assert "Traceback" not in output and "A: legacy" not in output  # no progress bars
        assert not out.exists()  # nothing ran, nothing written


# ------------------------------------------------------------------ fair order and resume


def _scenarios() -> list[dict[str, Any]]:
    from conversation_engine.inputs.scenario import load_scenarios

    path = get_settings().FIXTURES_DIR / "scenarios" / "shop_scenarios.json"
    return [scenario.model_dump() for scenario in load_scenarios(path)[:4]]


async def test_both_sides_start_in_one_interleaved_order(tmp_path: Path) -> None:
    import asyncio

    from conversation_engine.batch.rows import RowKey
    from conversation_engine.batch.schedule import interleaved_order
    from conversation_engine.compare.analysis import BootstrapSettings
    from conversation_engine.compare.harness import run_comparison
    from conversation_engine.llm.endpoint import OpenAIWrapper

    started: list[tuple[str, RowKey]] = []

    def on_progress(side: str, event: Any) -> None:
        # A run's start is reported before it runs; with one slot starts never overlap.
        if event.row is None:
            started.append((side, None))  # type: ignore[arg-type]

    async with OpenAIWrapper.simulated() as wrapper:
        run = await run_comparison(
            _scenarios(),
            engine_a="legacy",
            engine_b="legacy",
            repeat=2,
            out_dir=tmp_path / "cmp",
            concurrency=1,
            openai_wrapper=wrapper,
            bootstrap=BootstrapSettings(seed=99, resamples=200),
            on_progress=on_progress,
        )
    order = interleaved_order(
        [RowKey(i, t) for i in range(4) for t in range(2)], ("a", "b"), seed=99
    )
    assert [side for side, _ in started] == [side for side, _ in order]
    # The rows say the same: sorted by start time they follow the schedule.
    rows = [("a", row) for row in run.a.rows] + [("b", row) for row in run.b.rows]
    rows.sort(key=lambda item: item[1]["start_time"])
    assert [(side, RowKey(r["scenario_index"], r["trial"])) for side, r in rows] == order
    await asyncio.sleep(0)


#: What a resumed comparison must reproduce exactly: everything but wall-clock times.
_TIMED = {"duration_seconds", "duration_p50", "duration_p95"}


def _numbers(comparison: dict[str, Any]) -> dict[str, Any]:
    paired = {
        item["metric"]["key"]: (item["value_a"], item["value_b"], item["difference"]["estimate"])
        for item in [*comparison["paired"], *comparison["breakdowns"]]
        if item["metric"]["key"] not in _TIMED
    }
    sides = {
        side: {
            key: comparison[side][key]
            for key in ("runs", "status_counts", "end_reasons", "tool_calls", "handoffs", "usage")
        }
        for side in ("a", "b")
    }
    return {"paired": paired, "sides": sides, "scenarios": comparison["scenarios"]}


def _without_times(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for scenario in scenarios:
        for trial in scenario["trials"]:
            for side in ("a", "b"):
                if trial[side]:
                    trial[side].pop("duration_seconds", None)
                    trial[side].pop("session_id", None)
    return scenarios


async def test_an_interrupted_comparison_resumes_to_the_same_numbers(tmp_path: Path) -> None:
    import asyncio

    from conversation_engine.compare.analysis import BootstrapSettings
    from conversation_engine.compare.harness import resume_comparison, run_comparison
    from conversation_engine.llm.endpoint import OpenAIWrapper

    settings = BootstrapSettings(seed=5, resamples=200)
    options: dict[str, Any] = {
        "engine_a": "legacy",
        "engine_b": "autogen",
        "repeat": 2,
        "concurrency": 2,
        "bootstrap": settings,
    }
    async with OpenAIWrapper.simulated() as wrapper:
        whole = await run_comparison(
            _scenarios(), out_dir=tmp_path / "whole", openai_wrapper=wrapper, **options
        )
        finished = 0
        stop = asyncio.Event()

        def on_progress(side: str, event: Any) -> None:
            nonlocal finished
            if event.row is not None:
                finished += 1
                if finished == 5:
                    stop.set()

        interrupted = asyncio.ensure_future(
            run_comparison(
                _scenarios(),
                out_dir=tmp_path / "cut",
                openai_wrapper=wrapper,
                on_progress=on_progress,
                **options,
            )
        )
        await asyncio.wait_for(stop.wait(), timeout=60)
        interrupted.cancel()
        with pytest.raises(asyncio.CancelledError):
            await interrupted
        assert not (tmp_path / "cut" / "comparison.json").exists()
        kept = sum(
            len((path / "results.ndjson").read_text(encoding="utf-8").splitlines())
            for path in (tmp_path / "cut" / "batches").iterdir()
        )
        assert 5 <= kept < 16
        resumed = await resume_comparison(tmp_path / "cut", openai_wrapper=wrapper)
    # Each (scenario, trial, side) exactly once.
    for run in (resumed.a, resumed.b):
        keys = [(row["scenario_index"], row["trial"]) for row in run.rows]
        assert sorted(keys) == [(i, t) for i in range(4) for t in range(2)]
    first = json.loads((tmp_path / "whole" / "comparison.json").read_text(encoding="utf-8"))
    second = json.loads((tmp_path / "cut" / "comparison.json").read_text(encoding="utf-8"))
    first["scenarios"], second["scenarios"] = (
        _without_times(first["scenarios"]),
        _without_times(second["scenarios"]),
    )
    assert _numbers(first) == _numbers(second)
    assert whole.comparison.scenario_count == resumed.comparison.scenario_count == 4


async def test_resuming_a_folder_with_no_comparison_is_a_clear_error(tmp_path: Path) -> None:
    from conversation_engine.compare.harness import resume_comparison
    from conversation_engine.core.errors import UserInputError

    with pytest.raises(UserInputError, match="holds no comparison to resume"):
        await resume_comparison(tmp_path)
