"""Local worker processes (`WorkerExecutor`): the guarantees of the in-process batch.

The batch's driver runs here (a `BatchProcessor` with the executor), its workers are real
processes talking to the simulated model (in each worker, or served over HTTP with latency
so that a batch is mid-run when a worker is killed)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.executors.workers import WorkerExecutor
from conversation_engine.batch.storage import JOB_FILE, RESULTS_FILE
from conversation_engine.core.settings import Settings
from tests.batch.executors.conftest import (
    BOUND,
    keys_on_disk,
    row_count,
    scenario_items,
    started_batch,
    wait_until_gone,
)
from tests.batch.executors.engines import CRASHING

SPEC = "multiagent_prompts"


async def run_batch(
    out: Path,
    items: list[dict[str, Any]],
    executor: WorkerExecutor | None,
    *,
    settings: Settings | None = None,
    engine: str = "autogen",
    evaluate: bool = True,
    concurrency: int = 8,
) -> tuple[BatchProcessor, str, dict[str, Any]]:
    processor = BatchProcessor(
        None,
        concurrency,
        engine=engine,
        output_dir=out,
        evaluate=evaluate,
        settings=settings or Settings(OPENAI_API_KEY=None, OPENAI_BASE_URL=None),
        executor=executor,
    )
    try:
        batch_id = processor.create_batch_job(items, prompt_spec_name=SPEC)
        summary = await asyncio.wait_for(processor.run_batch(batch_id), BOUND)
    finally:
        await processor.aclose()
    return processor, batch_id, summary


def comparable(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["scenario_index"], row["trial"], row["status"], row["total_turns"], row["score"])


async def test_workers_store_each_row_once_with_the_scores_of_one_process(tmp_path: Path) -> None:
    items = scenario_items(12)
    executor = WorkerExecutor(2)
    _, batch_id, summary = await run_batch(tmp_path / "workers", items, executor)
    _, _, alone = await run_batch(tmp_path / "one", items, None)

    assert summary["status"] == "completed" and summary["successful_scenarios"] == 12
    assert keys_on_disk(tmp_path / "workers" / batch_id) == {(i, 0): 1 for i in range(12)}
    assert all(row["evaluation_status"] == "success" for row in summary["results"])
    assert [comparable(row) for row in summary["results"]] == [
        comparable(row) for row in alone["results"]
    ]
    assert executor.worker_pids() == []  # stopped with the batch


async def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_duplicated(
    tmp_path: Path, model_url: str
) -> None:
    executor = WorkerExecutor(2)
    processor, batch_id, run = started_batch(
        executor, tmp_path, model_url, concurrency=8, scenarios=16
    )
    log = tmp_path / batch_id / RESULTS_FILE
    async with asyncio.timeout(BOUND):
        while row_count(log) < 2 or len(executor.worker_pids()) < 2:
            await asyncio.sleep(0.02)
    victim = executor.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    summary = await asyncio.wait_for(run, BOUND)
    await processor.aclose()

    assert summary["status"] == "completed", summary
    assert keys_on_disk(tmp_path / batch_id) == {(i, 0): 1 for i in range(16)}
    assert {row["status"] for row in summary["results"]} == {"completed"}  # rerun, not failed
    assert victim not in executor.worker_pids()


async def test_a_unit_that_kills_its_worker_is_failed_after_two_deaths(tmp_path: Path) -> None:
    items = scenario_items(8, crash=3)
    _, batch_id, summary = await run_batch(
        tmp_path, items, WorkerExecutor(2), engine=CRASHING, evaluate=False
    )

    assert summary["status"] == "completed"
    assert keys_on_disk(tmp_path / batch_id) == {(i, 0): 1 for i in range(8)}
    rows = {row["scenario_index"]: row for row in summary["results"]}
    crashed = rows.pop(3)
    assert crashed["status"] == "failed"
    assert "died 2 times" in crashed["error"] and "exit code 3" in crashed["error"]
    # The others were in flight beside it when it crashed their worker: played again, alone.
    assert {row["status"] for row in rows.values()} == {"completed"}


async def test_cancel_stops_the_workers_within_seconds(tmp_path: Path, model_url: str) -> None:
    executor = WorkerExecutor(2)
    processor, batch_id, run = started_batch(
        executor, tmp_path, model_url, concurrency=4, scenarios=40
    )
    async with asyncio.timeout(BOUND):
        while row_count(tmp_path / batch_id / RESULTS_FILE) < 1:
            await asyncio.sleep(0.02)
    pids = set(executor.worker_pids())
    assert processor.cancel_batch(batch_id, "interrupted")
    summary = await asyncio.wait_for(run, 10)
    await processor.aclose()

    assert summary["status"] == "cancelled"
    assert not await asyncio.to_thread(wait_until_gone, pids)
    done = keys_on_disk(tmp_path / batch_id)
    assert 1 <= len(done) < 40 and set(done.values()) == {1}
    assert json.loads((tmp_path / batch_id / JOB_FILE).read_text())["status"] == "cancelled"
