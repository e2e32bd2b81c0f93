"""Local workers: a batch spread over the cores of this machine (`batch --workers N`).

Each worker is a process of the standard library's `multiprocessing` (forkserver where the
platform has it, else spawn: never a plain fork of a driver that runs threads and an event
loop) with its own event loop, endpoint, engine and evaluator, playing many units at once.
The driver talks to each over one duplex pipe:

    driver → worker   ("unit", index, trial)   ("grant", n)   ("stop",)
    worker → driver   ("ready", pid)   ("row", index, trial, row)
                      ("acquire", n, tokens)   ("limit", "settle" | "pause", ...)

The driver hands each worker at most its share of the batch's concurrency, stores every row
itself, and owns the batch's `RateLimiter`: a worker's request waits for a `grant`. A worker
that dies (its pipe reaches end of file) is replaced and its units go through `UnitLedger`
(played again alone; given up after two deaths). A driver that dies closes the pipes, and
every worker exits at once: there is nobody left to store what it would play.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from conversation_engine.batch._gc_tuning import batch_gc
from conversation_engine.batch.executors.base import (
    Executor,
    UnitLedger,
    UnitSink,
    WorkerSlot,
    default_workers,
    share,
)
from conversation_engine.batch.executors.player import Player, WorkerSpec
from conversation_engine.batch.executors.shared_limit import SharedRateLimiter, apply
from conversation_engine.batch.rows import BatchRow, RowKey
from conversation_engine.llm.rate_limit import RateLimiter

#: Seconds between checks that the workers live, while no message arrives.
_LIVENESS_SECONDS = 1.0
#: Seconds a worker gets to exit after "stop" (nothing is in flight then) before SIGTERM.
_STOP_GRACE_SECONDS = 5.0
#: Seconds to wait for a terminated worker before SIGKILL, and after it.
_TERMINATE_WAIT_SECONDS = 2.0
#: Workers in a row that die before their engine is built: the batch stops, it is no unit.
_MAX_FAILED_STARTS = 3


class WorkerStartError(RuntimeError):
    """Worker processes die before they can play anything (a broken install, no memory)."""


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    slot: WorkerSlot
    ready: bool = False
    closed: bool = False
    pid: int | None = None
    permits: set[asyncio.Task[None]] = field(default_factory=set)


class WorkerExecutor(Executor):
    """Plays a batch on `workers` local processes (default: the cores this process may use).

    The batch's `concurrency` is split over them, so `--concurrency 512 --workers 2` keeps 512
    conversations in flight, 256 in each worker."""

    name = "workers"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers or default_workers()
        self._live: list[_Worker] = []

    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self._live if worker.pid is not None]

    async def run(self, processor: Any, job: Any, units: Sequence[RowKey], sink: UnitSink) -> None:
        if not units:
            return
        count = min(self.workers, len(units))
        spec = WorkerSpec.of(processor, job, share(processor.concurrency, count))
        ledger = UnitLedger(units, spec.concurrency)
        limiter: RateLimiter | None = getattr(processor.openai, "rate_limiter", None)
        events: asyncio.Queue[tuple[_Worker, tuple[Any, ...] | None]] = asyncio.Queue()
        context = _context()
        numbers = itertools.count()
        failed_starts = 0
        try:
            for _ in range(count):
                self._start(context, spec, next(numbers), events)
            while True:
                if not sink.stopping():
                    self._fill(ledger, sink)
                in_flight = any(worker.slot.inflight for worker in self._live)
                if not in_flight and (not ledger.busy or sink.stopping()):
                    break
                try:
                    worker, message = await asyncio.wait_for(events.get(), _LIVENESS_SECONDS)
                except TimeoutError:
                    for worker in self._live:
                        if not worker.process.is_alive():
                            self._closed(worker, events)
                    continue
                if message is None:
                    if worker not in self._live:
                        continue
                    how = self._reap(worker)
                    if worker.ready:
                        failed_starts = 0
                    else:
                        failed_starts += 1
                        if failed_starts >= _MAX_FAILED_STARTS:
                            raise WorkerStartError(
                                f"{failed_starts} worker processes in a row died before they "
                                f"could play anything (the last: {how}); the batch stops."
                            )
                    for key in ledger.worker_died(worker.slot, how, blame=worker.ready):
                        await sink.lost(key, ledger.death_error(key))
                    if ledger.busy and not sink.stopping():
                        self._start(context, spec, next(numbers), events)
                else:
                    await self._handle(worker, message, ledger, sink, limiter)
        except BaseException:
            self._stop_all(graceful=False)
            raise
        self._stop_all(graceful=True)

    # ------------------------------------------------------------------------------ driver side

    def _start(
        self,
        context: BaseContext,
        spec: WorkerSpec,
        number: int,
        events: asyncio.Queue[tuple[_Worker, tuple[Any, ...] | None]],
    ) -> None:
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(  # type: ignore[attr-defined]
            target=_worker_main,
            args=(theirs, spec),
            name=f"batch-worker-{number}",
            daemon=True,
        )
        process.start()
        theirs.close()  # only the worker holds its end: its death is our end of file
        worker = _Worker(process, ours, WorkerSlot(number))
        self._live.append(worker)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable, worker, events)

    def _readable(
        self, worker: _Worker, events: asyncio.Queue[tuple[_Worker, tuple[Any, ...] | None]]
    ) -> None:
        try:
            while not worker.closed and worker.conn.poll():
                events.put_nowait((worker, worker.conn.recv()))
        except (EOFError, OSError):
            self._closed(worker, events)

    def _closed(
        self, worker: _Worker, events: asyncio.Queue[tuple[_Worker, tuple[Any, ...] | None]]
    ) -> None:
        """The worker is gone (or going): stop reading it, say so once."""
        if worker.closed:
            return
        worker.closed = True
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
        events.put_nowait((worker, None))

    def _fill(self, ledger: UnitLedger, sink: UnitSink) -> None:
        workers = {worker.slot.number: worker for worker in self._live if not worker.closed}
        dying: set[int] = set()
        for slot, key in ledger.deal([worker.slot for worker in workers.values()]):
            if slot.number not in dying:
                try:
                    workers[slot.number].conn.send(("unit", key.scenario_index, key.trial))
                    sink.started(key)
                    continue
                except OSError:  # it is dying; its end of file comes next
                    dying.add(slot.number)
            ledger.give_back(slot, key)

    async def _handle(
        self,
        worker: _Worker,
        message: tuple[Any, ...],
        ledger: UnitLedger,
        sink: UnitSink,
        limiter: RateLimiter | None,
    ) -> None:
        kind = message[0]
        if kind == "row":
            key = RowKey(int(message[1]), int(message[2]))
            if ledger.done(worker.slot, key):
                await sink.finished(BatchRow.of(message[3]))
        elif kind == "acquire":
            if limiter is None:
                _send(worker, ("grant", message[1]))
            else:
                task = asyncio.create_task(_permit(limiter, worker, message[1], message[2]))
                worker.permits.add(task)
                task.add_done_callback(worker.permits.discard)
        elif kind == "limit" and limiter is not None:
            apply(limiter, *message[1:])
        elif kind == "ready":
            worker.ready = True
            worker.pid = int(message[1])

    def _reap(self, worker: _Worker) -> str:
        """Forget a dead worker; how it died, for the rows it may fail."""
        self._live.remove(worker)
        for task in worker.permits:
            task.cancel()
        worker.process.join(_TERMINATE_WAIT_SECONDS)
        if worker.process.is_alive():  # its pipe broke but it lives on: make sure
            worker.process.kill()
            worker.process.join(_TERMINATE_WAIT_SECONDS)
        worker.conn.close()
        return _exit_description(worker.process.exitcode)

    def _stop_all(self, *, graceful: bool) -> None:
        """Stop every worker, within bounded waits: politely when nothing is in flight,
        at once (SIGTERM, then SIGKILL) when the batch was cancelled or failed."""
        workers, self._live = self._live, []
        loop = asyncio.get_running_loop()
        for worker in workers:
            for task in worker.permits:
                task.cancel()
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(worker.conn.fileno())
            if graceful:
                _send(worker, ("stop",))
            else:
                worker.process.terminate()
        deadline = time.monotonic() + (_STOP_GRACE_SECONDS if graceful else 0)
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in workers:
            worker.process.join(_TERMINATE_WAIT_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(_TERMINATE_WAIT_SECONDS)
            worker.conn.close()


async def _permit(limiter: RateLimiter, worker: _Worker, number: int, tokens: int) -> None:
    await limiter.acquire(int(tokens))
    _send(worker, ("grant", number))


def _send(worker: _Worker, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):  # a dead worker: its end of file is handled elsewhere
        worker.conn.send(message)


def _exit_description(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _context() -> BaseContext:
    """forkserver where there is one (a fresh, single-threaded parent for each worker, our
    modules imported once), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


# ---------------------------------------------------------------------------------- worker side


def _worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """A worker process: play the units the driver sends until it says stop."""
    # Ctrl-C reaches the whole process group; the driver decides and stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Many conversations at once, as in a batch in one process: the same collector thresholds.
    with batch_gc():
        try:
            asyncio.run(_serve(conn, spec))
        finally:
            conn.close()
        # Everything it played has been sent. Restoring the thresholds (a collection follows)
        # and tearing down an interpreter that held hundreds of conversations take a few tenths
        # of a second the driver would wait for: flush and leave.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


async def _serve(conn: Connection, spec: WorkerSpec) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def read() -> None:
        # A thread, so that the driver's messages are taken off the pipe while the loop is busy.
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the driver is gone: nothing played here could be stored any more
            loop.call_soon_threadsafe(inbox.put_nowait, message)
            if message[0] == "stop":
                return

    threading.Thread(target=read, name="driver-pipe", daemon=True).start()
    grants: dict[int, asyncio.Future[None]] = {}
    numbers = itertools.count()

    async def ask(tokens: int) -> None:
        number = next(numbers)
        grants[number] = granted = loop.create_future()
        conn.send(("acquire", number, tokens))
        try:
            await granted
        finally:
            grants.pop(number, None)

    def tell(*message: Any) -> None:
        conn.send(("limit", *message))

    limiter = None
    if spec.rate_limit is not None:
        limiter = SharedRateLimiter(*spec.rate_limit, ask=ask, tell=tell)
    player = Player(spec, limiter)
    conn.send(("ready", os.getpid()))
    tasks: set[asyncio.Task[None]] = set()

    async def play(index: int, trial: int) -> None:
        row = await player.play(RowKey(index, trial))
        conn.send(("row", index, trial, row))

    try:
        while True:
            message = await inbox.get()
            if message[0] == "unit":
                task = asyncio.create_task(play(int(message[1]), int(message[2])))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif message[0] == "grant":
                granted = grants.get(int(message[1]))
                if granted is not None and not granted.done():
                    granted.set_result(None)
            elif message[0] == "stop":
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await player.aclose()
