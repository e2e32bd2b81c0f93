"""One rate limit for the whole batch: N worker processes against `RATE_LIMIT_RPM` send what
one process may send, and a 429's `Retry-After` pauses every worker.

The simulated model is served over HTTP from this process and notes when each chat request
arrives, so the requests are counted at the wire, whichever worker sent them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_engine.batch import BatchProcessor
from conversation_engine.batch.executors.workers import WorkerExecutor
from conversation_engine.testing.simulated_llm import (
    Fault,
    SimulationConfig,
    base_url,
    serving_in_background,
)
from conversation_engine.testing.simulated_llm.arrivals import ArrivalsEndpoint, most_in_a_window
from tests.batch.executors.conftest import BOUND, scenario_items, served_settings

RPM = 600
PER_SECOND = RPM / 60
#: The limiter lets a caller spend up to this much unused capacity at once (its default).
BURST_SECONDS = 1.0
#: Requests a window may hold beyond the limit: grants crossing the pipes can bunch up.
SLACK = 2


def serve(config: SimulationConfig | None = None) -> Iterator[tuple[str, ArrivalsEndpoint]]:
    endpoint = ArrivalsEndpoint(config)
    with serving_in_background(endpoint=endpoint) as server:
        yield base_url(server), endpoint


@pytest.fixture
def wire() -> Iterator[tuple[str, ArrivalsEndpoint]]:
    yield from serve()


async def run_on_workers(out: Path, url: str, scenarios: int) -> dict[str, object]:
    settings = served_settings(url, RATE_LIMIT_RPM=RPM)
    processor = BatchProcessor(
        None, 16, output_dir=out, evaluate=False, settings=settings, executor=WorkerExecutor(2)
    )
    try:
        batch_id = processor.create_batch_job(
            scenario_items(scenarios), prompt_spec_name="multiagent_prompts"
        )
        return await asyncio.wait_for(processor.run_batch(batch_id), BOUND)
    finally:
        await processor.aclose()


async def test_two_workers_send_no_more_than_the_batch_limit(
    tmp_path: Path, wire: tuple[str, ArrivalsEndpoint]
) -> None:
    url, endpoint = wire
    summary = await run_on_workers(tmp_path, url, scenarios=8)

    assert summary["status"] == "completed" and summary["successful_scenarios"] == 8
    arrivals = endpoint.arrivals
    assert len(arrivals) >= 3 * PER_SECOND  # enough requests for the limit to bind
    # In any window, at most what the limit allows, plus the burst it lets a batch start with:
    # two workers each with their own limiter would send twice that.
    for seconds in (1.0, 2.0, 3.0):
        allowed = PER_SECOND * (seconds + BURST_SECONDS) + SLACK
        assert most_in_a_window(arrivals, seconds) <= allowed, seconds
    span = max(arrivals) - min(arrivals)
    assert len(arrivals) <= PER_SECOND * (span + BURST_SECONDS) + SLACK


async def test_a_429_pauses_every_worker_for_its_retry_after(tmp_path: Path) -> None:
    pause = 1.0
    config = SimulationConfig(faults=[Fault(kind="rate_limit", on_calls=[12], retry_after=pause)])
    for url, endpoint in serve(config):
        summary = await run_on_workers(tmp_path, url, scenarios=4)

        assert summary["status"] == "completed"
        limited = endpoint.statuses.index(429)
        after = endpoint.arrivals[limited + 1 :]
        # Requests granted before the 429 reached its worker may still land just after it;
        # nothing else may come before the pause is over.
        early = [t for t in after if t - endpoint.arrivals[limited] < pause - 0.05]
        assert len(early) <= SLACK, early
