"""`SharedSchedule`: several batches run as one, in one interleaved order, on one set of slots.

An A/B comparison runs two batches (one per side) over the same scenario-trials. Run one after
the other, warm-up, machine drift and a noisy neighbour land on one side only and show up as a
difference; run side by side but each in its own order, the same happens more subtly. Here
both batches take their runs from one order, decided before anything runs: the scenario-trials
shuffled, and within each pair the side that goes first drawn so that A goes first in exactly
half of them (`interleaved_order`). The runs *start* strictly in that order, on one shared set
of `concurrency` slots, so whatever changes over time changes for both sides alike and cancels
in the paired differences.

Each batch joins through its `Lane`: it registers the runs it still has to do (a resumed batch
registers fewer), takes its next run when that run is at the head of the order and a slot is
free, and leaves when it stops for any reason, so the other batch is never left waiting on it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from types import TracebackType

from conversation_engine.batch.rows import RowKey

Unit = tuple[str, RowKey]
"""`(lane, run)`: one run of one batch."""


def interleaved_order(keys: Sequence[RowKey], lanes: tuple[str, str], seed: int) -> list[Unit]:
    """Every run of both lanes: the pairs shuffled, each pair's two runs back to back, with the
    first lane going first in exactly half of the pairs (rounded down), all drawn from `seed`."""
    rng = random.Random(seed)
    pairs = list(keys)
    rng.shuffle(pairs)
    first_goes_first = [index < len(pairs) // 2 for index in range(len(pairs))]
    rng.shuffle(first_goes_first)
    order: list[Unit] = []
    for key, straight in zip(pairs, first_goes_first, strict=True):
        first, second = lanes if straight else lanes[::-1]
        order.extend(((first, key), (second, key)))
    return order


class SharedSchedule:
    """One start order and `concurrency` slots, shared by the lanes named in `order`."""

    def __init__(self, order: Iterable[Unit], concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._order = list(order)
        self._head = 0
        self._lanes = {lane for lane, _ in self._order}
        self._pending: dict[str, set[RowKey]] = {}
        """The runs each registered lane still has to start."""
        self._closed: set[str] = set()
        self._turn = asyncio.Condition()
        self.slots = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency

    def lane(self, name: str) -> Lane:
        if name not in self._lanes:
            raise ValueError(f"no lane {name!r} in this schedule; lanes: {sorted(self._lanes)}")
        return Lane(self, name)

    async def _register(self, lane: str, keys: Iterable[RowKey]) -> None:
        async with self._turn:
            self._pending[lane] = set(keys)
            self._turn.notify_all()

    async def _close(self, lane: str) -> None:
        async with self._turn:
            self._closed.add(lane)
            self._pending.pop(lane, None)
            self._turn.notify_all()

    def _advance(self) -> Unit | None:
        """The head of the order, after dropping runs nobody will start; None at the end.

        A run is dropped when its lane has closed or registered without it (a resumed batch
        that already has its row). While the head's lane has not registered yet, the head
        stays: nobody can know whether that run is wanted.
        """
        while self._head < len(self._order):
            lane, key = self._order[self._head]
            if lane in self._closed or (lane in self._pending and key not in self._pending[lane]):
                self._head += 1
                continue
            return lane, key
        return None

    async def _next(self, lane: str) -> RowKey | None:
        async with self._turn:
            while True:
                if lane in self._closed:
                    return None
                head = self._advance()
                if head is None:
                    return None
                if head[0] == lane:
                    break
                await self._turn.wait()
            # Holding the turn while a slot frees keeps the start order strict.
            await self.slots.acquire()
            _, key = head
            self._pending[lane].discard(key)
            self._head += 1
            self._turn.notify_all()
            return key


class Lane:
    """One batch's place in a `SharedSchedule`."""

    def __init__(self, schedule: SharedSchedule, name: str) -> None:
        self.schedule = schedule
        self.name = name

    @property
    def concurrency(self) -> int:
        return self.schedule.concurrency

    async def register(self, keys: Iterable[RowKey]) -> None:
        """The runs this batch still has to do; runs of the order not among them are skipped."""
        await self.schedule._register(self.name, keys)

    async def next(self) -> RowKey | None:
        """This batch's next run once it heads the order and holds a slot (release it with
        `done`); None when this batch has nothing left to start."""
        return await self.schedule._next(self.name)

    def done(self) -> None:
        """A run taken with `next` finished: its slot is free again."""
        self.schedule.slots.release()

    async def close(self) -> None:
        """This batch starts nothing more (finished, cancelled or failed)."""
        await self.schedule._close(self.name)


class HeldSlot:
    """`async with` over a slot `Lane.next` already took: entering waits for nothing, leaving
    frees the slot. It stands where a batch on its own uses its semaphore."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.lane.done()
