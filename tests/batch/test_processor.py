"""BatchProcessor: legacy API, concurrency bound, trials and seeds, failures, cancel and resume."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conversation_engine.batch import BatchProcessor, BatchProgress
from conversation_engine.batch.rows import FAILED_COMMENT, scenario_seed
from conversation_engine.batch.storage import JOB_FILE, RESULTS_FILE, SCENARIOS_FILE, read_results
from conversation_engine.core.errors import ScenarioError, SpecError, UserInputError
from conversation_engine.core.settings import get_settings
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import Fault, SimulationConfig
from tests.full_disk import full_disk, rows_in

REPO = Path(__file__).resolve().parents[2]
SMOKE = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"
COUNTING = "tests.batch.test_processor:CountingEngine"
SPEC = "multiagent_prompts"


class CountingEngine:
    """A contract engine without a model that counts conversations in flight.

    Scenario variables steer it: `DELAY` (seconds), `RAISE` (an exception escapes),
    `STATUS` (`failed`, `failed_api_blocked`, `failed_api_blocked_partial`, `timeout`),
    `NOT_A_DICT` (returns a string).
    """

    active: ClassVar[int] = 0
    max_active: ClassVar[int] = 0
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str, **_: Any) -> None:
        self.prompt_spec_name = prompt_spec_name

    @classmethod
    def reset(cls) -> None:
        cls.active = 0
        cls.max_active = 0
        cls.calls = []

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: Any = None
    ) -> Any:
        return await self._run(scenario, max_turns, timeout_sec, "agent")

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: Any = None
    ) -> Any:
        return await self._run(scenario, max_turns, timeout_sec, "agent_agent")

    async def _run(
        self, scenario: dict[str, Any], max_turns: Any, timeout_sec: Any, speaker: str
    ) -> Any:
        cls = type(self)
        variables = scenario["variables"]
        cls.calls.append({"scenario": scenario, "max_turns": max_turns, "timeout": timeout_sec})
        cls.active += 1
        cls.max_active = max(cls.max_active, cls.active)
        try:
            await asyncio.sleep(float(variables.get("DELAY", 0)))
        finally:
            cls.active -= 1
        if variables.get("RAISE"):
            raise RuntimeError(str(variables["RAISE"]))
        if variables.get("NOT_A_DICT"):
            return "not a result"
        now = "2024-01-15T10:00:00+00:00"
        history = [
            {"turn": 1, "speaker": speaker, "content": "Hello, how can I help?", "timestamp": now},
            {
                "turn": 1,
                "speaker": "client",
                "content": "That's everything, thank you. Goodbye!",
                "timestamp": now,
            },
        ]
        result: dict[str, Any] = {
            "session_id": f"s-{len(cls.calls)}",
            "scenario": scenario["name"],
            "status": "completed",
            "total_turns": 1,
            "duration_seconds": 0.01,
            "conversation_history": history,
            "start_time": now,
            "end_time": now,
            "tools_used": speaker != "agent",
            "end_reason": "client_end_call",
            "usage": {
                "calls": 2,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "cost_usd": 0.001,
            },
            "seed": variables.get("SEED"),
        }
        status = variables.get("STATUS")
        if status == "failed":
            result.update(status="failed", error="boom", error_type="ValueError")
            for key in ("conversation_history", "start_time", "end_time"):
                result.pop(key)
        elif status in ("failed_api_blocked", "failed_api_blocked_partial"):
            partial = status.endswith("partial")
            result.update(
                status="failed_api_blocked",
                error="OpenAI API blocked due to geographic restrictions",
                error_type="APIBlockedError",
                graceful_degradation=True,
                partial_completion=partial,
            )
            if not partial:
                result.update(conversation_history=[], total_turns=0)
        elif status == "timeout":
            result.update(
                status="timeout",
                error="Conversation timeout after 1 seconds",
                error_type="TimeoutError",
            )
        return result


@pytest.fixture(autouse=True)
def _reset_counting_engine() -> None:
    CountingEngine.reset()


@pytest.fixture
async def wrapper() -> AsyncIterator[OpenAIWrapper]:
    wrapper = OpenAIWrapper.simulated()
    yield wrapper
    await wrapper.aclose()


def scenarios(count: int, **variables: Any) -> list[dict[str, Any]]:
    return [
        {"name": f"scenario {index}", "variables": {"SEED": 100 + index, **variables}}
        for index in range(count)
    ]


def keys(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return sorted((row["scenario_index"], row["trial"]) for row in rows)


# ---------------------------------------------------------------------------- legacy API


async def test_legacy_api_and_status_flow(wrapper: OpenAIWrapper, tmp_path: Path) -> None:
    processor = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path)
    batch_id = processor.create_batch_job(scenarios(4), prompt_spec_name=SPEC)

    status = processor.get_batch_status(batch_id)
    assert status is not None
    assert status["status"] == "pending" and status["current_stage"] == "pending"
    assert status["prompt_version"] == "v1.0" and status["use_tools"] is True
    assert status["total_scenarios"] == 4 and status["completed_scenarios"] == 0
    assert (tmp_path / batch_id / JOB_FILE).is_file()

    stages: list[str] = []
    progress: list[tuple[int, int]] = []

    async def callback(completed: int, total: int) -> None:  # async callbacks are awaited
        progress.append((completed, total))
        stages.append(processor.jobs[batch_id].current_stage)

    result = await processor.run_batch(batch_id, callback)

    assert set(result) >= {
        "batch_id",
        "status",
        "total_scenarios",
        "successful_scenarios",
        "failed_scenarios",
        "duration_seconds",
        "results",
    }
    assert result["status"] == "completed"
    assert (result["total_scenarios"], result["successful_scenarios"]) == (4, 4)
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert any(stage.startswith("processing") for stage in stages)
    final = processor.get_batch_status(batch_id)
    assert final is not None
    assert final["status"] == "completed" and final["current_stage"] == "completed"
    assert final["progress_percentage"] == 100.0 and final["completed_at"]
    rows = processor.get_batch_results(batch_id)
    assert rows is not None and keys(rows) == [(i, 0) for i in range(4)]
    assert processor.get_batch_status("no-such-batch") is None
    assert processor.get_batch_results("no-such-batch") is None
    with pytest.raises(UserInputError, match="only a pending batch"):
        await processor.run_batch(batch_id)
    # Everything is on disk for a new process.
    saved = json.loads((tmp_path / batch_id / JOB_FILE).read_text())
    assert saved["status"] == "completed" and "scenarios" not in saved  # written once, beside
    assert len(json.loads((tmp_path / batch_id / SCENARIOS_FILE).read_text())) == 4
    assert "results" not in saved
    for name in ("results.ndjson", "results.csv", "results.json", "summary.json"):
        assert (tmp_path / batch_id / name).is_file()
    assert processor.cleanup_completed_jobs(max_age_hours=0) == 1
    assert processor.get_batch_status(batch_id)["status"] == "completed"  # type: ignore[index]


async def test_sync_callback_and_progress_events(wrapper: OpenAIWrapper, tmp_path: Path) -> None:
    processor = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path)
    batch_id = processor.create_batch_job(scenarios(5, DELAY=0.01), prompt_spec_name=SPEC)
    seen: list[tuple[int, int]] = []
    events: list[BatchProgress] = []
    await processor.run_batch(
        batch_id, lambda done, total: seen.append((done, total)), on_progress=events.append
    )
    assert seen[-1] == (5, 5)
    assert max(event.active for event in events) == 2
    assert all(event.active <= 2 for event in events)
    finished = [event for event in events if event.row is not None]
    assert [event.done for event in finished] == [1, 2, 3, 4, 5]


def test_legacy_api_key_positional_argument(tmp_path: Path) -> None:
    processor = BatchProcessor("sk-test-key", engine=COUNTING, output_dir=tmp_path)
    assert isinstance(processor.openai, OpenAIWrapper)
    assert processor.concurrency == get_settings().CONCURRENCY
    asyncio.run(processor.aclose())


@pytest.mark.parametrize("engine", ["legacy", "autogen"])
async def test_real_engines_give_legacy_rows(
    wrapper: OpenAIWrapper, tmp_path: Path, engine: str
) -> None:
    processor = BatchProcessor(wrapper, engine=engine, output_dir=tmp_path)
    batch_id = processor.create_batch_job(
        json.loads(SMOKE.read_text())[:1], prompt_spec_name=SPEC, prompt_version="v2"
    )
    result = await processor.run_batch(batch_id)
    (row,) = result["results"]
    assert row["status"] == "completed"
    for key in (
        "scenario_index",
        "scenario",
        "session_id",
        "total_turns",
        "duration_seconds",
        "score",
        "comment",
        "evaluation_status",
        "start_time",
        "end_time",
        "conversation_history",
    ):
        assert key in row, key
    assert row["evaluation_status"] == "success" and row["score"] in (1, 2, 3)
    assert (row["trial"], row["seed"], row["engine"]) == (0, 1, engine)
    assert row["prompt_version"] == "v2" and row["batch_id"] == batch_id
    assert row["end_reason"] == "client_end_call"
    assert row["usage"]["total_tokens"] > 0
    assert row["evaluation_usage"]["calls"] == 1
    assert row["contract_violations"] == []


# ---------------------------------------------------------------------------- running


async def test_concurrency_is_never_exceeded(wrapper: OpenAIWrapper, tmp_path: Path) -> None:
    processor = BatchProcessor(wrapper, 3, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(12, DELAY=0.02), prompt_spec_name=SPEC)
    result = await processor.run_batch(batch_id)
    assert len(result["results"]) == 12
    assert CountingEngine.max_active == 3


async def test_one_engine_per_batch(
    wrapper: OpenAIWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[Any] = []
    original = CountingEngine.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        created.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(CountingEngine, "__init__", counting_init)
    processor = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    await processor.run_batch(processor.create_batch_job(scenarios(6), prompt_spec_name=SPEC))
    assert len(created) == 1


async def test_repeat_runs_trials_with_distinct_recorded_seeds(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    items = [
        {"name": "seeded", "variables": {"SEED": 7}},
        {"name": "unseeded", "variables": {}},
    ]
    processor = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(items, prompt_spec_name=SPEC, repeat=3)
    assert processor.get_batch_status(batch_id)["total_scenarios"] == 6  # type: ignore[index]
    rows = (await processor.run_batch(batch_id))["results"]
    derived = scenario_seed(items[1])
    assert [(r["scenario_index"], r["trial"], r["seed"]) for r in rows] == [
        (0, 0, 7),
        (0, 1, 8),
        (0, 2, 9),
        (1, 0, derived),
        (1, 1, derived + 1),
        (1, 2, derived + 2),
    ]
    # The engine ran each trial with the seed recorded on its row.
    sent = sorted(
        (c["scenario"]["name"], c["scenario"]["variables"]["SEED"]) for c in CountingEngine.calls
    )
    assert sent == sorted(
        [("seeded", 7), ("seeded", 8), ("seeded", 9)]
        + [("unseeded", derived + i) for i in range(3)]
    )
    assert derived == scenario_seed({"name": "unseeded"})  # stable across runs and engines


async def test_max_turns_and_timeout_are_passed_through(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    processor = BatchProcessor(
        wrapper, engine=COUNTING, output_dir=tmp_path, max_turns=4, timeout_sec=12.5, evaluate=False
    )
    await processor.run_batch(processor.create_batch_job(scenarios(2), prompt_spec_name=SPEC))
    assert {(c["max_turns"], c["timeout"]) for c in CountingEngine.calls} == {(4, 12.5)}


async def test_a_failed_row_keeps_where_the_conversation_got_to(tmp_path: Path) -> None:
    # The real engine on the simulated model; the agent's third model call is refused.
    config = SimulationConfig(faults=[Fault(kind="unauthorized", role="agent", on_calls=[3])])
    wrapper = OpenAIWrapper.simulated(config)
    try:
        processor = BatchProcessor(wrapper, output_dir=tmp_path, evaluate=False)
        items = json.loads(SMOKE.read_text(encoding="utf-8"))[:1]
        batch_id = processor.create_batch_job(items, prompt_spec_name=SPEC)
        (row,) = (await processor.run_batch(batch_id))["results"]
    finally:
        await wrapper.aclose()

    assert row["status"] == "failed" and row["error_type"] == "AuthenticationError"
    assert "conversation_history" not in row  # the legacy's failed row, for its readers
    speakers = [entry["speaker"] for entry in row["partial_history"]]
    # The greeting (the Swarm's first agent) and the customer's answer, at least.
    assert speakers[0] != "client" and speakers[1] == "client"
    assert row["partial_history"][0]["content"]
    (stored,) = read_results(tmp_path / batch_id / RESULTS_FILE)
    assert stored["partial_history"] == row["partial_history"]


async def test_basic_mode_uses_run_conversation(wrapper: OpenAIWrapper, tmp_path: Path) -> None:
    processor = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(1), use_tools=False, prompt_spec_name=SPEC)
    (row,) = (await processor.run_batch(batch_id))["results"]
    assert row["conversation_history"][0]["speaker"] == "agent"
    assert row["evaluation_status"] == "skipped" and "score" not in row


async def test_a_failing_scenario_never_stops_the_batch(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    items = [
        {"name": "fine", "variables": {}},
        {"name": "raises", "variables": {"RAISE": "engine exploded"}},
        {"name": "failed", "variables": {"STATUS": "failed"}},
        {"name": "blocked", "variables": {"STATUS": "failed_api_blocked"}},
        {"name": "blocked late", "variables": {"STATUS": "failed_api_blocked_partial"}},
        {"name": "timeout", "variables": {"STATUS": "timeout"}},
        {"name": "not a dict", "variables": {"NOT_A_DICT": True}},
    ]
    processor = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path)
    result = await processor.run_batch(processor.create_batch_job(items, prompt_spec_name=SPEC))
    assert result["status"] == "completed"
    rows = {row["scenario"]: row for row in result["results"]}
    rows["not a dict"] = result["results"][6]
    assert len(result["results"]) == 7
    assert result["failed_scenarios"] == 5 and result["successful_scenarios"] == 2

    raised = rows["raises"]
    assert raised["status"] == "failed" and raised["score"] == 1
    assert raised["comment"] == FAILED_COMMENT.format(error="engine exploded")
    assert raised["comment"] == "Разговор не завершен: engine exploded"
    assert raised["error_type"] == "RuntimeError" and "conversation_history" not in raised
    assert "raised RuntimeError" in raised["contract_violations"][0]

    failed = rows["failed"]
    assert failed["error"] == "boom" and failed["comment"] == "Разговор не завершен: boom"
    assert "conversation_history" not in failed and "evaluation_status" not in failed
    assert {"scenario_index", "scenario", "session_id", "status", "total_turns"} <= set(failed)

    blocked, late = rows["blocked"], rows["blocked late"]
    assert blocked["status"] == late["status"] == "failed_api_blocked"
    assert (blocked["score"], late["score"]) == (1, 2)
    assert blocked["graceful_degradation"] is True and blocked["comment"]
    assert "evaluation_status" not in blocked

    timed_out = rows["timeout"]
    assert timed_out["evaluation_status"] == "success" and timed_out["score"] in (1, 2, 3)
    assert {"start_time", "end_time", "duration_seconds", "conversation_history"} <= set(timed_out)

    broken = result["results"][6]
    assert broken["status"] == "failed" and "not a dict" in broken["contract_violations"][0]


# ---------------------------------------------------------------------------- user errors


def test_bad_engine_spec_or_scenario_is_a_user_error_before_anything_runs(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    with pytest.raises(UserInputError, match="Engine 'nope'"):
        BatchProcessor(wrapper, engine="nope", output_dir=tmp_path)
    processor = BatchProcessor(wrapper, engine="legacy", output_dir=tmp_path)
    with pytest.raises(SpecError, match="no_such_spec"):
        processor.create_batch_job(scenarios(1), prompt_spec_name="no_such_spec")
    with pytest.raises(ScenarioError, match="name"):
        processor.create_batch_job([{"variables": {}}], prompt_spec_name=SPEC)
    with pytest.raises(UserInputError, match="no scenarios"):
        processor.create_batch_job([], prompt_spec_name=SPEC)
    with pytest.raises(UserInputError, match="repeat"):
        processor.create_batch_job(scenarios(1), prompt_spec_name=SPEC, repeat=0)
    with pytest.raises(UserInputError, match="Concurrency"):
        BatchProcessor(wrapper, 0, engine="legacy", output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_spec_without_evaluator_needs_no_eval(wrapper: OpenAIWrapper, tmp_path: Path) -> None:
    spec = json.loads((get_settings().PROMPTS_DIR / "default_prompts.json").read_text())
    del spec["agents"]["evaluator"]
    path = tmp_path / "no_evaluator.json"
    path.write_text(json.dumps(spec))
    processor = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path / "out")
    with pytest.raises(SpecError, match=r"no 'evaluator' agent.*--no-eval"):
        processor.create_batch_job(scenarios(1), prompt_spec_name=str(path))
    quiet = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path / "out", evaluate=False)
    assert quiet.create_batch_job(scenarios(1), prompt_spec_name=str(path))


# ---------------------------------------------------------------------------- cancel, resume


async def test_cancel_stops_launching_and_resume_finishes(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    processor = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(10, DELAY=0.03), prompt_spec_name=SPEC)

    def cancel_after_three(done: int, _total: int) -> None:
        if done == 3:
            assert processor.cancel_batch(batch_id)

    result = await processor.run_batch(batch_id, cancel_after_three)
    assert result["status"] == "cancelled"
    done_before = len(result["results"])
    assert 3 <= done_before < 10
    assert CountingEngine.active == 0  # runs in flight were cancelled, not left running
    assert len(CountingEngine.calls) <= done_before + 2  # nothing launched after the cancel
    assert processor.get_batch_status(batch_id)["status"] == "cancelled"  # type: ignore[index]
    assert processor.cancel_batch(batch_id) is False

    CountingEngine.reset()
    fresh = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    resumed = await fresh.resume_batch(batch_id)
    assert resumed["status"] == "completed"
    assert keys(resumed["results"]) == [(i, 0) for i in range(10)]
    assert len(CountingEngine.calls) == 10 - done_before
    assert keys(read_results(tmp_path / batch_id / RESULTS_FILE)) == [(i, 0) for i in range(10)]


async def test_resume_unknown_batch_is_a_user_error(wrapper: OpenAIWrapper, tmp_path: Path) -> None:
    processor = BatchProcessor(wrapper, engine=COUNTING, output_dir=tmp_path)
    with pytest.raises(UserInputError, match="no batch 'missing'"):
        await processor.resume_batch("missing")
    assert processor.cancel_batch("missing") is False


async def test_resume_after_a_crash_at_any_point_loses_and_duplicates_nothing(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    processor = BatchProcessor(wrapper, 3, engine=COUNTING, output_dir=source, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(6), prompt_spec_name=SPEC, repeat=2)
    await processor.run_batch(batch_id)
    data = (source / batch_id / RESULTS_FILE).read_bytes()
    line_ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    rng = random.Random(5)
    cuts = {0, len(data), *line_ends[:3], *(rng.randrange(len(data)) for _ in range(6))}
    for cut in sorted(cuts):
        # What a crash leaves: a log cut anywhere (maybe mid-row) and a job still "running".
        crashed = tmp_path / f"crash-{cut}"
        shutil.copytree(source, crashed)
        (crashed / batch_id / RESULTS_FILE).write_bytes(data[:cut])
        job = json.loads((crashed / batch_id / JOB_FILE).read_text())
        job.update(status="running", current_stage="processing (3 active)")
        (crashed / batch_id / JOB_FILE).write_text(json.dumps(job))
        complete = sum(end <= cut for end in line_ends)

        CountingEngine.reset()
        fresh = BatchProcessor(wrapper, 3, engine=COUNTING, output_dir=crashed, evaluate=False)
        assert fresh.get_batch_status(batch_id)["completed_scenarios"] == complete  # type: ignore[index]
        result = await fresh.resume_batch(batch_id)
        expected = [(i, t) for i in range(6) for t in range(2)]
        assert result["status"] == "completed", cut
        assert keys(result["results"]) == expected, cut
        assert len(CountingEngine.calls) == 12 - complete, cut
        on_disk = (crashed / batch_id / RESULTS_FILE).read_bytes()
        assert on_disk.endswith(b"\n") and on_disk.count(b"\n") == 12, cut
        assert keys(read_results(crashed / batch_id / RESULTS_FILE)) == expected, cut


_KILL_SCRIPT = """
import asyncio, sys
from conversation_engine.batch import BatchProcessor
from conversation_engine.llm.endpoint import OpenAIWrapper

async def main():
    wrapper = OpenAIWrapper.simulated()
    processor = BatchProcessor(wrapper, 2, engine="{engine}", output_dir=sys.argv[1], evaluate=False)
    items = [{{"name": f"s{{i}}", "variables": {{"DELAY": 0.15}}}} for i in range(16)]
    batch_id = processor.create_batch_job(items, prompt_spec_name="{spec}")
    print(batch_id, flush=True)
    await processor.run_batch(batch_id)

asyncio.run(main())
"""


async def test_resume_after_sigkill_runs_every_scenario_exactly_once(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    script = _KILL_SCRIPT.format(engine=COUNTING, spec=SPEC)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        batch_id = process.stdout.readline().strip()
        assert batch_id, process.stderr.read() if process.stderr else ""
        results = tmp_path / batch_id / RESULTS_FILE
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if results.exists() and results.read_bytes().count(b"\n") >= 3:
                break
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    before = read_results(tmp_path / batch_id / RESULTS_FILE)
    assert 3 <= len(before) < 16
    job = json.loads((tmp_path / batch_id / JOB_FILE).read_text())
    assert job["status"] == "running"  # the killed process never got to say otherwise

    fresh = BatchProcessor(wrapper, 4, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    result = await fresh.resume_batch(batch_id)
    assert result["status"] == "completed"
    assert keys(result["results"]) == [(i, 0) for i in range(16)]
    assert len(CountingEngine.calls) == 16 - len(before)
    assert fresh.get_batch_status(batch_id)["resumed_count"] == 1  # type: ignore[index]


# ---------------------------------------------------------------------------- scale


async def test_the_status_file_does_not_grow_with_the_batch(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    sizes = {}
    for count in (10, 3000):
        processor = BatchProcessor(wrapper, 4, engine=COUNTING, output_dir=tmp_path / str(count))
        batch_id = processor.create_batch_job(scenarios(count), prompt_spec_name=SPEC)
        batch_dir = tmp_path / str(count) / batch_id
        sizes[count] = (batch_dir / JOB_FILE).stat().st_size
        assert "scenarios" not in json.loads((batch_dir / JOB_FILE).read_text())
        assert len(json.loads((batch_dir / SCENARIOS_FILE).read_text())) == count
    assert sizes[3000] <= sizes[10] + 8  # a few more digits in the counters, nothing else


async def test_scenarios_are_written_once_and_the_status_often(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    processor = BatchProcessor(wrapper, 4, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(40, DELAY=0.05), prompt_spec_name=SPEC)
    written = (tmp_path / batch_id / SCENARIOS_FILE).stat()
    result = await processor.run_batch(batch_id)
    assert result["status"] == "completed"
    after = (tmp_path / batch_id / SCENARIOS_FILE).stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


async def test_status_saves_never_block_the_event_loop(
    wrapper: OpenAIWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow disk for the status file only: every fsync of batch.json takes 0.3 s.
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if "batch.json" in os.readlink(f"/proc/self/fd/{fd}"):
            time.sleep(0.3)
        real_fsync(fd)

    processor = BatchProcessor(wrapper, 4, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(48, DELAY=0.05), prompt_spec_name=SPEC)
    monkeypatch.setattr(os, "fsync", slow_fsync)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        result = await processor.run_batch(batch_id)
    finally:
        done.set()
        await ticking
    assert result["status"] == "completed"
    assert max(gaps) < 0.2, f"the event loop stood still for {max(gaps):.2f} s"


async def test_a_batch_runs_through_a_bounded_number_of_tasks(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    processor = BatchProcessor(wrapper, 4, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(400), prompt_spec_name=SPEC)
    before = len(asyncio.all_tasks())
    peak = 0

    def sample(_: BatchProgress) -> None:
        nonlocal peak
        peak = max(peak, len(asyncio.all_tasks()) - before)

    result = await processor.run_batch(batch_id, on_progress=sample)
    assert result["status"] == "completed" and len(result["results"]) == 400
    assert peak <= 4 + 2, f"{peak} tasks for a batch of 400 at concurrency 4"


async def test_a_batch_folder_from_before_scenarios_json_is_still_resumable(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    processor = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(4), prompt_spec_name=SPEC)
    batch_dir = tmp_path / batch_id
    # The old layout: the scenarios inside batch.json, no scenarios.json.
    job = json.loads((batch_dir / JOB_FILE).read_text())
    job["scenarios"] = json.loads((batch_dir / SCENARIOS_FILE).read_text())
    (batch_dir / JOB_FILE).write_text(json.dumps(job))
    (batch_dir / SCENARIOS_FILE).unlink()

    fresh = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    result = await fresh.resume_batch(batch_id)
    assert result["status"] == "completed"
    assert keys(result["results"]) == [(i, 0) for i in range(4)]
    assert len(json.loads((batch_dir / SCENARIOS_FILE).read_text())) == 4
    assert "scenarios" not in json.loads((batch_dir / JOB_FILE).read_text())


async def test_a_full_disk_stops_the_batch_and_a_resume_runs_the_rest_once(
    wrapper: OpenAIWrapper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = BatchProcessor(wrapper, 2, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(10, DELAY=0.01), prompt_spec_name=SPEC)
    free = full_disk(monkeypatch, tmp_path, when=rows_in(tmp_path, 3))
    result = await processor.run_batch(batch_id)  # returns: nothing is raised for a full disk
    assert result["status"] == "failed" and "No space left on device" in result["error"]
    assert 3 <= len(result["results"]) < 10
    saved = json.loads((tmp_path / batch_id / JOB_FILE).read_text())
    assert saved["status"] == "failed" and "No space left on device" in saved["error_message"]
    assert keys(read_results(tmp_path / batch_id / RESULTS_FILE)) == keys(result["results"])
    free()
    CountingEngine.reset()
    resumed = await BatchProcessor(
        wrapper, 2, engine=COUNTING, output_dir=tmp_path, evaluate=False
    ).resume_batch(batch_id)
    assert resumed["status"] == "completed"
    assert keys(resumed["results"]) == [(i, 0) for i in range(10)]
    assert len(CountingEngine.calls) == 10 - len(result["results"])
    lines = (tmp_path / batch_id / RESULTS_FILE).read_bytes().splitlines()
    assert sorted(keys([json.loads(line) for line in lines])) == [(i, 0) for i in range(10)]


async def test_a_batch_keeps_no_rows_in_memory_and_reads_them_back_from_the_store(
    wrapper: OpenAIWrapper, tmp_path: Path
) -> None:
    """The rows go to `results.ndjson` and nowhere else: at the last row, only the rows of
    the conversations in flight are alive; the legacy reads come from the store."""
    import gc

    from conversation_engine.batch.rows import BatchRow

    processor = BatchProcessor(wrapper, 4, engine=COUNTING, output_dir=tmp_path, evaluate=False)
    batch_id = processor.create_batch_job(scenarios(60), prompt_spec_name=SPEC)
    alive: list[int] = []

    def sample(event: BatchProgress) -> None:
        if event.row is not None and event.done == event.total:
            alive.append(sum(type(item) is BatchRow for item in gc.get_objects()))

    result = await processor.run_batch(batch_id, on_progress=sample, return_rows=False)
    assert result["status"] == "completed" and "results" not in result
    assert alive and alive[0] <= 4, f"{alive[0]} rows alive at the end of a batch of 60"
    stored = processor.get_batch_results(batch_id) or []
    assert keys(stored) == [(index, 0) for index in range(60)]
    assert [(r["scenario_index"], r["trial"]) for r in stored] == keys(stored)  # in key order
    legacy = await BatchProcessor(
        wrapper, 4, engine=COUNTING, output_dir=tmp_path, evaluate=False
    ).resume_batch(batch_id)
    assert legacy["results"] == stored  # the legacy return: read back from the store
