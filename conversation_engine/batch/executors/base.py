"""The executor seam: where a batch's pending scenario-trials are played.

`BatchProcessor` hands an `Executor` the units (`RowKey`s) that have no row yet and a
`UnitSink`; the executor plays them wherever it runs conversations (this event loop, worker
processes, a Ray cluster) and gives each finished row back to the sink, which the processor
implements by appending it to the batch's one results log. Rows are written by the driver
process only, so "a unit is done iff its row is in the store" holds on every executor and a
resume from any executor to any other runs exactly what is missing.

A worker process can die (a kill, the OOM killer, an engine that crashes the interpreter).
`UnitLedger` decides what happens to the units it held: each gets a strike and is played
again, alone on a worker, so that a second death can be blamed on that unit only; a unit
with two strikes is given back as lost (`UnitSink.lost`), which the processor records as a
`failed` row naming the deaths, and is not tried again.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conversation_engine.batch.rows import BatchRow, RowKey

#: Deaths of the workers running a unit after which it is recorded `failed`.
MAX_WORKER_DEATHS = 2


class WorkerDiedError(RuntimeError):
    """The worker processes that played a unit died; recorded on its `failed` row."""


@dataclass(frozen=True)
class UnitSink:
    """What an executor tells the processor (all called on the driver's event loop)."""

    started: Callable[[RowKey], None]
    """A unit was handed to a worker (it counts as in flight from then on)."""
    finished: Callable[[BatchRow], Awaitable[None]]
    """A unit's row: the processor stores it (the one writer) and reports progress."""
    lost: Callable[[RowKey, Exception], Awaitable[None]]
    """A unit given up (its workers died twice): the processor stores a `failed` row."""
    stopping: Callable[[], bool]
    """True once nothing more may start (a cancel, a budget reached)."""


class Executor(ABC):
    """Plays a batch's pending units and gives every row back to the sink."""

    name: str = "executor"

    @abstractmethod
    async def run(self, processor: Any, job: Any, units: Sequence[RowKey], sink: UnitSink) -> None:
        """Play `units` of `job` (a `BatchJob`) as `processor` (its `BatchProcessor`) would;
        return once each has been given to `sink.finished` or `sink.lost`, or once
        `sink.stopping()` and nothing is in flight.

        Cancelling the call stops the workers within a few seconds; rows given back before
        are stored, the rest is left to a resume."""

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (empty for the in-process executor)."""
        return []


@dataclass
class WorkerSlot:
    """One worker's share of the batch: its units in flight and whether it runs a suspect."""

    number: int
    inflight: set[RowKey] = field(default_factory=set)
    solo: bool = False
    """Playing one unit that was on a worker that died, alone, so that a second death is its."""


class UnitLedger:
    """Which units wait, run where, and how often their workers died."""

    def __init__(self, units: Iterable[RowKey], capacity: int) -> None:
        self.waiting: deque[RowKey] = deque(units)
        self.suspects: deque[RowKey] = deque()
        self.capacity = max(1, capacity)
        """Units in flight at once on one worker."""
        self.deaths: dict[RowKey, list[str]] = {}

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.suspects)

    def next_for(self, slot: WorkerSlot) -> RowKey | None:
        """The next unit for `slot`, or None when it is full (or has nothing to take)."""
        if slot.solo:
            return None
        if self.suspects and not slot.inflight:
            slot.solo = True
            key = self.suspects.popleft()
        elif self.waiting and len(slot.inflight) < self.capacity:
            key = self.waiting.popleft()
        else:
            return None
        slot.inflight.add(key)
        return key

    def deal(self, slots: Sequence[WorkerSlot]) -> list[tuple[WorkerSlot, RowKey]]:
        """Units for `slots`, each to the one with the fewest in flight, until all are full.

        Dealt one by one, not filled worker by worker: a batch smaller than the workers'
        capacity would otherwise all go to the first worker while the others idle."""
        dealt: list[tuple[WorkerSlot, RowKey]] = []
        open_slots = list(slots)
        while open_slots:
            slot = min(open_slots, key=lambda candidate: len(candidate.inflight))
            key = self.next_for(slot)
            if key is None:
                open_slots.remove(slot)
            else:
                dealt.append((slot, key))
        return dealt

    def give_back(self, slot: WorkerSlot, key: RowKey) -> None:
        """A unit that never reached its worker waits again, at the front, with no strike."""
        self.done(slot, key)
        self.waiting.appendleft(key)

    def done(self, slot: WorkerSlot, key: RowKey) -> bool:
        """A row came back; False if `slot` did not hold `key` (a stray duplicate)."""
        if key not in slot.inflight:
            return False
        slot.inflight.discard(key)
        if not slot.inflight:
            slot.solo = False
        return True

    def worker_died(self, slot: WorkerSlot, how: str, *, blame: bool = True) -> list[RowKey]:
        """The units of a dead worker are played again; the ones given up are returned.

        `blame=False` (the worker never started its engine): nothing it held is at fault."""
        given_up: list[RowKey] = []
        for key in sorted(slot.inflight):
            if not blame:
                self.waiting.appendleft(key)
                continue
            deaths = self.deaths.setdefault(key, [])
            deaths.append(how)
            if len(deaths) >= MAX_WORKER_DEATHS:
                given_up.append(key)
            else:
                self.suspects.append(key)
        slot.inflight.clear()
        slot.solo = False
        return given_up

    def death_error(self, key: RowKey) -> WorkerDiedError:
        deaths = self.deaths.get(key, [])
        return WorkerDiedError(
            f"the worker process playing it died {len(deaths)} times ({'; '.join(deaths)}); "
            "it is not tried again"
        )


def default_workers() -> int:
    """Worker processes when none are asked for: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def share(concurrency: int, workers: int) -> int:
    """Conversations in flight per worker: the batch's concurrency split over its workers."""
    return max(1, -(-concurrency // max(1, workers)))
