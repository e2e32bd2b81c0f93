"""Two resumes of one batch never run a scenario-trial twice.

A resume reads which scenario-trials are done only once it holds the batch's lock. Tested
deterministically with two `BatchProcessor`s, each in its own thread and event loop as in two
processes (an `flock` is per open file, so they exclude each other like processes do):

* the second starts while the first holds the lock and runs: it is refused at once;
* the second starts while the first holds the lock, but reaches the lock only after the first
  finished (its engine takes that long to build): it finds nothing missing and runs nothing.

And once with two `conversation-engine batch --resume` processes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.storage import JOB_FILE, RESULTS_FILE
from conversation_engine.core.errors import UserInputError
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import (
    SimulationConfig,
    base_url,
    serving_in_background,
)
from tests.contract_results import completed_result
from tests.processes import served_env, start

GATED = "tests.reliability.test_resume_race:GatedEngine"
SPEC = "multiagent_prompts"
COUNT = 4
BOUND = 30


class GatedEngine:
    """A contract engine whose conversations wait for `release`, and whose construction waits
    for `construct` while that is set (announcing `constructing`)."""

    release: ClassVar[threading.Event] = threading.Event()
    running: ClassVar[threading.Event] = threading.Event()
    construct: ClassVar[threading.Event | None] = None
    constructing: ClassVar[threading.Event] = threading.Event()
    calls: ClassVar[list[str]] = []

    def __init__(self, openai_wrapper: Any, prompt_spec_name: str, **_: Any) -> None:
        gate = type(self).construct
        if gate is not None:
            type(self).constructing.set()
            assert gate.wait(BOUND)

    @classmethod
    def reset(cls) -> None:
        cls.release = threading.Event()
        cls.running = threading.Event()
        cls.construct = None
        cls.constructing = threading.Event()
        cls.calls = []

    async def run_conversation(self, scenario: dict[str, Any], *_: Any) -> dict[str, Any]:
        return await self.run_conversation_with_tools(scenario)

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], *_: Any
    ) -> dict[str, Any]:
        type(self).calls.append(scenario["name"])
        type(self).running.set()
        while not type(self).release.is_set():
            await asyncio.sleep(0.005)
        return completed_result(scenario, duration_seconds=0.01)


@pytest.fixture(autouse=True)
def _reset() -> None:
    GatedEngine.reset()


def create_batch(out: Path) -> str:
    async def main() -> str:
        wrapper = OpenAIWrapper.simulated()
        try:
            processor = BatchProcessor(wrapper, COUNT, engine=GATED, output_dir=out, evaluate=False)
            items = [{"name": f"s{index}", "variables": {"SEED": index}} for index in range(COUNT)]
            return processor.create_batch_job(items, prompt_spec_name=SPEC)
        finally:
            await wrapper.aclose()

    return asyncio.run(main())


def resume_in_a_thread(out: Path, batch_id: str, outcomes: dict[str, Any], name: str) -> Any:
    """`resume_batch` in its own thread and event loop, with its own processor."""

    def target() -> None:
        async def main() -> Any:
            wrapper = OpenAIWrapper.simulated()
            try:
                processor = BatchProcessor(
                    wrapper, COUNT, engine=GATED, output_dir=out, evaluate=False
                )
                return await processor.resume_batch(batch_id)
            except UserInputError as error:
                return error
            finally:
                await wrapper.aclose()

        outcomes[name] = asyncio.run(main())

    thread = threading.Thread(target=target, name=f"resume-{name}", daemon=True)
    thread.start()
    return thread


def keys_on_disk(batch_dir: Path) -> Counter[tuple[int, int]]:
    lines = (batch_dir / RESULTS_FILE).read_bytes().splitlines()
    return Counter((row["scenario_index"], row["trial"]) for row in map(json.loads, lines))


def assert_each_exactly_once(batch_dir: Path) -> None:
    assert keys_on_disk(batch_dir) == Counter((index, 0) for index in range(COUNT))
    assert sorted(GatedEngine.calls) == [f"s{index}" for index in range(COUNT)]
    assert json.loads((batch_dir / JOB_FILE).read_text())["status"] == "completed"


def test_a_second_resume_while_the_first_runs_is_refused(tmp_path: Path) -> None:
    batch_id = create_batch(tmp_path)
    outcomes: dict[str, Any] = {}
    first = resume_in_a_thread(tmp_path, batch_id, outcomes, "first")
    assert GatedEngine.running.wait(BOUND)  # the first holds the lock, its runs in flight
    second = resume_in_a_thread(tmp_path, batch_id, outcomes, "second")
    second.join(BOUND)
    assert isinstance(outcomes["second"], UserInputError)
    assert "being run by another process" in str(outcomes["second"])
    GatedEngine.release.set()
    first.join(BOUND)
    assert outcomes["first"]["status"] == "completed"
    assert_each_exactly_once(tmp_path / batch_id)


def test_a_second_resume_that_gets_the_lock_after_the_first_runs_nothing_twice(
    tmp_path: Path,
) -> None:
    batch_id = create_batch(tmp_path)
    outcomes: dict[str, Any] = {}
    first = resume_in_a_thread(tmp_path, batch_id, outcomes, "first")
    assert GatedEngine.running.wait(BOUND)  # the first holds the lock, its runs in flight
    # The second starts now, but reaches the lock only after the first has finished.
    GatedEngine.construct = threading.Event()
    second = resume_in_a_thread(tmp_path, batch_id, outcomes, "second")
    assert GatedEngine.constructing.wait(BOUND)
    GatedEngine.release.set()
    first.join(BOUND)
    assert outcomes["first"]["status"] == "completed"
    GatedEngine.construct.set()
    second.join(BOUND)
    assert not first.is_alive() and not second.is_alive()
    assert outcomes["second"]["status"] == "completed"
    assert_each_exactly_once(tmp_path / batch_id)


# ------------------------------------------------------------------ two processes


def test_two_resume_processes_run_each_scenario_trial_once(tmp_path: Path) -> None:
    smoke = json.loads(
        (Path(__file__).resolve().parents[2] / "fixtures" / "scenarios" / "smoke.json").read_text()
    )
    items = []
    for index in range(6):
        item = json.loads(json.dumps(smoke[index % len(smoke)]))
        item["name"] = f"scenario {index}"
        item["variables"]["SEED"] = 100 + index
        items.append(item)
    scenarios = tmp_path / "scenarios.json"
    scenarios.write_text(json.dumps(items))
    out = tmp_path / "out"
    # Slow enough replies that the first resume still holds the lock when the second process
    # is up (about a second of imports): at 40 ms a resume could finish before it.
    with serving_in_background(SimulationConfig(latency_ms=150)) as server:
        env = served_env(base_url(server))

        def cli(*args: str) -> subprocess.Popen[str]:
            return start(*args, env=env)

        # Interrupt a batch after its first row, so that there is something to resume.
        process = cli("batch", str(scenarios), "--no-eval", "--concurrency", "1", "--out", str(out))
        deadline = time.monotonic() + BOUND
        while not list(out.glob(f"*/{RESULTS_FILE}")) or not any(
            log.read_bytes().count(b"\n") >= 1 for log in out.glob(f"*/{RESULTS_FILE}")
        ):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        process.send_signal(2)
        process.communicate(timeout=BOUND)
        (batch_dir,) = [path.parent for path in out.glob(f"*/{JOB_FILE}")]

        first = cli("batch", "--resume", batch_dir.name, "--no-eval", "--concurrency", "1",
                    "--out", str(out))  # fmt: skip
        lock_taken = time.monotonic() + BOUND
        while json.loads((batch_dir / JOB_FILE).read_text()).get("status") != "running":
            assert time.monotonic() < lock_taken and first.poll() is None
            time.sleep(0.02)
        second = cli("batch", "--resume", batch_dir.name, "--no-eval", "--out", str(out))
        _, second_err = second.communicate(timeout=BOUND)
        first_out, first_err = first.communicate(timeout=BOUND * 2)
    assert first.returncode == 0, first_out + first_err
    assert second.returncode == 2, second_err
    assert "being run by another process" in " ".join(second_err.split())
    assert keys_on_disk(batch_dir) == Counter((index, 0) for index in range(6))
