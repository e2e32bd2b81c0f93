"""The Ray executor on a local Ray cluster this module starts and stops itself (2 CPUs): a
batch stored once with its scores, and an actor killed mid-batch loses and duplicates nothing.
Ray's startup costs seconds, so the tests are few and share one cluster."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.storage import RESULTS_FILE
from tests.batch.executors.conftest import (
    BOUND,
    keys_on_disk,
    row_count,
    scenario_items,
    served_settings,
    started_batch,
)

ray = pytest.importorskip("ray")

from conversation_engine.batch.executors.ray import RayExecutor  # noqa: E402

SPEC = "multiagent_prompts"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


async def test_ray_actors_store_each_row_once_with_scores(cluster: None, tmp_path: Path) -> None:
    processor = BatchProcessor(
        None, 8, output_dir=tmp_path, settings=served_settings(None), executor=RayExecutor()
    )
    batch_id = processor.create_batch_job(scenario_items(8), prompt_spec_name=SPEC)
    summary = await asyncio.wait_for(processor.run_batch(batch_id), BOUND)
    await processor.aclose()

    assert summary["status"] == "completed" and summary["successful_scenarios"] == 8
    assert keys_on_disk(tmp_path / batch_id) == {(i, 0): 1 for i in range(8)}
    assert all(row["evaluation_status"] == "success" for row in summary["results"])


async def test_a_killed_actor_is_replaced_and_nothing_is_lost_or_duplicated(
    cluster: None, tmp_path: Path, model_url: str
) -> None:
    executor = RayExecutor()
    processor, batch_id, run = started_batch(
        executor, tmp_path, model_url, concurrency=8, scenarios=16
    )
    async with asyncio.timeout(BOUND):
        while row_count(tmp_path / batch_id / RESULTS_FILE) < 2 or not executor.worker_pids():
            await asyncio.sleep(0.02)
    os.kill(executor.worker_pids()[0], signal.SIGKILL)
    summary = await asyncio.wait_for(run, BOUND)
    await processor.aclose()

    assert summary["status"] == "completed", summary
    assert keys_on_disk(tmp_path / batch_id) == {(i, 0): 1 for i in range(16)}
    assert {row["status"] for row in summary["results"]} == {"completed"}
