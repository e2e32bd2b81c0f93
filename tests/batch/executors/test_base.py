"""The unit ledger: how a batch's units are dealt to workers, and what a worker's death does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.batch.executors.base import MAX_WORKER_DEATHS, UnitLedger, WorkerSlot
from conversation_engine.batch.rows import RowKey


def keys(count: int) -> list[RowKey]:
    return [RowKey(index, 0) for index in range(count)]


def test_a_batch_smaller_than_the_capacity_is_shared_evenly() -> None:
    # 300 units, 256 a worker: filled worker by worker, the second worker would get 44.
    ledger = UnitLedger(keys(300), capacity=256)
    first, second = WorkerSlot(0), WorkerSlot(1)

    dealt = ledger.deal([first, second])

    assert len(dealt) == 300 and not ledger.busy
    assert (len(first.inflight), len(second.inflight)) == (150, 150)
    assert [key.scenario_index for _, key in dealt] == list(range(300))  # in the batch's order


def test_dealing_stops_at_each_workers_capacity_and_resumes_as_rows_come_back() -> None:
    ledger = UnitLedger(keys(10), capacity=3)
    first, second = WorkerSlot(0), WorkerSlot(1)

    assert len(ledger.deal([first, second])) == 6
    assert ledger.deal([first, second]) == []  # both full
    done = next(iter(second.inflight))
    assert ledger.done(second, done)

    assert ledger.deal([first, second]) == [(second, RowKey(6, 0))]
    assert len(ledger.waiting) == 3


def test_a_dead_workers_units_are_played_again_alone_and_given_up_after_two_deaths() -> None:
    ledger = UnitLedger(keys(2), capacity=4)
    doomed = WorkerSlot(0)
    ledger.deal([doomed])

    assert ledger.worker_died(doomed, "killed by SIGKILL") == []
    replacement = WorkerSlot(1)
    first_suspect = ledger.deal([replacement])
    assert first_suspect == [(replacement, RowKey(0, 0))] and replacement.solo  # alone

    given_up = ledger.worker_died(replacement, "killed by SIGKILL")
    assert MAX_WORKER_DEATHS == 2 and given_up == [RowKey(0, 0)]
    assert "died 2 times (killed by SIGKILL; killed by SIGKILL)" in str(
        ledger.death_error(RowKey(0, 0))
    )
    last = WorkerSlot(2)
    assert [key for _, key in ledger.deal([last])] == [RowKey(1, 0)] and last.solo


def test_a_unit_given_back_waits_at_the_front_without_a_strike() -> None:
    ledger = UnitLedger(keys(3), capacity=1)
    slot = WorkerSlot(0)
    [(_, key)] = ledger.deal([slot])

    ledger.give_back(slot, key)

    assert ledger.waiting[0] == key and not slot.inflight and ledger.deaths == {}


@settings(max_examples=200, deadline=None)
@given(
    units=st.integers(min_value=0, max_value=400),
    capacity=st.integers(min_value=1, max_value=64),
    workers=st.integers(min_value=1, max_value=6),
    preloaded=st.lists(st.integers(min_value=0, max_value=64), max_size=6),
)
def test_dealing_never_overfills_never_repeats_and_keeps_loads_within_one(
    units: int, capacity: int, workers: int, preloaded: list[int]
) -> None:
    ledger = UnitLedger(keys(units), capacity)
    slots = [WorkerSlot(number) for number in range(workers)]
    for slot, count in zip(slots, preloaded, strict=False):  # some already busy
        slot.inflight.update(RowKey(10_000 + slot.number * 100 + n, 0) for n in range(count))
    before = [len(slot.inflight) for slot in slots]

    dealt = ledger.deal(slots)

    assert (
        len({key for _, key in dealt})
        == len(dealt)
        == min(units, sum(max(0, capacity - load) for load in before))
    )
    assert all(
        len(slot.inflight) <= max(capacity, load) for slot, load in zip(slots, before, strict=True)
    )
    took = [slot for slot, load in zip(slots, before, strict=True) if len(slot.inflight) > load]
    open_loads = [len(slot.inflight) for slot in slots if len(slot.inflight) < capacity]
    receivers = [len(slot.inflight) for slot in took]
    if open_loads and receivers:
        # Each unit went to the least loaded: whoever received ends within one of the lightest.
        assert max(receivers) - min(open_loads) <= 1
