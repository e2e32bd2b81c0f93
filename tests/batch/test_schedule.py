"""The shared schedule of an A/B comparison: one interleaved start order, one set of slots."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from conversation_engine.batch.rows import RowKey
from conversation_engine.batch.schedule import (
    HeldSlot,
    SharedSchedule,
    Unit,
    interleaved_order,
)

KEYS = [RowKey(index, trial) for index in range(7) for trial in range(2)]


def test_each_pair_runs_back_to_back_and_a_goes_first_in_half_of_them() -> None:
    order = interleaved_order(KEYS, ("a", "b"), seed=11)
    assert len(order) == 2 * len(KEYS)
    pairs = [order[i : i + 2] for i in range(0, len(order), 2)]
    assert all(first[1] == second[1] and first[0] != second[0] for first, second in pairs)
    assert sorted(first[1] for first, _ in pairs) == sorted(KEYS)
    assert Counter(first[0] for first, _ in pairs) == {"a": 7, "b": 7}


def test_the_order_is_drawn_from_the_seed() -> None:
    assert interleaved_order(KEYS, ("a", "b"), 1) == interleaved_order(KEYS, ("a", "b"), 1)
    assert interleaved_order(KEYS, ("a", "b"), 1) != interleaved_order(KEYS, ("a", "b"), 2)
    # Not the scenario order: warm-up must not fall on the first scenarios of both sides.
    assert [key for _, key in interleaved_order(KEYS, ("a", "b"), 1)[::2]] != KEYS


async def _drain(
    schedule: SharedSchedule, lane_name: str, started: list[Unit], workers: int
) -> None:
    lane = schedule.lane(lane_name)

    async def worker() -> None:
        while (key := await lane.next()) is not None:
            async with HeldSlot(lane):
                started.append((lane_name, key))
                await asyncio.sleep(0.001)

    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await lane.close()


async def _run_lanes(
    schedule: SharedSchedule, registered: dict[str, list[RowKey]], workers: int = 3
) -> list[Unit]:
    started: list[Unit] = []

    async def side(name: str) -> None:
        await schedule.lane(name).register(registered[name])
        await _drain(schedule, name, started, workers)

    await asyncio.wait_for(asyncio.gather(*(side(name) for name in registered)), timeout=10)
    return started


@pytest.mark.parametrize("concurrency", [1, 2, 5])
async def test_runs_start_in_the_schedule_order_on_shared_slots(concurrency: int) -> None:
    order = interleaved_order(KEYS, ("a", "b"), seed=3)
    schedule = SharedSchedule(order, concurrency)
    started = await _run_lanes(schedule, {"a": KEYS, "b": KEYS})
    assert started == order
    assert schedule.slots._value == concurrency  # every slot given back


async def test_a_resumed_side_skips_the_runs_it_already_has() -> None:
    order = interleaved_order(KEYS, ("a", "b"), seed=5)
    done_in_a = set(KEYS[:9])
    schedule = SharedSchedule(order, 2)
    started = await _run_lanes(
        schedule, {"a": [key for key in KEYS if key not in done_in_a], "b": KEYS}
    )
    assert started == [unit for unit in order if not (unit[0] == "a" and unit[1] in done_in_a)]


async def test_a_side_that_stops_never_leaves_the_other_waiting() -> None:
    order = interleaved_order(KEYS, ("a", "b"), seed=7)
    schedule = SharedSchedule(order, 2)
    started: list[Unit] = []
    await schedule.lane("a").register(KEYS)
    await schedule.lane("a").close()  # failed before it ran anything
    await schedule.lane("b").register(KEYS)
    await asyncio.wait_for(_drain(schedule, "b", started, 2), timeout=10)
    assert started == [unit for unit in order if unit[0] == "b"]


async def test_a_side_waits_until_the_other_has_registered() -> None:
    order = interleaved_order(KEYS, ("a", "b"), seed=2)
    head_lane = order[0][0]
    other = "b" if head_lane == "a" else "a"
    schedule = SharedSchedule(order, 2)
    await schedule.lane(other).register(KEYS)
    waiting = asyncio.ensure_future(schedule.lane(other).next())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the head belongs to a side that has not said what it will run
    await schedule.lane(head_lane).register([])  # it has nothing left: its runs are skipped
    assert await asyncio.wait_for(waiting, timeout=5) == order[1][1]
    schedule.lane(other).done()


def test_a_schedule_needs_a_slot_and_known_lanes() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SharedSchedule([], 0)
    with pytest.raises(ValueError, match="no lane 'c'"):
        SharedSchedule(interleaved_order(KEYS, ("a", "b"), 1), 1).lane("c")
