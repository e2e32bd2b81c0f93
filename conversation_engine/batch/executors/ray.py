"""Ray: a batch spread over a Ray cluster (`batch --ray auto|ADDRESS`), an optional extra.

`ray.init(address=...)` joins a running cluster (`auto`: the one this machine belongs to,
else a local one). Each worker is an async actor (one CPU) with its own event loop,
endpoint, engine and evaluator (`player.Player`), playing many units at once; the batch's
rate limit is one more actor (`RateLimiterActor`) that every worker's `SharedRateLimiter`
asks. Rows come back to the driver as the results of the actors' calls and the driver alone
stores them, as with local workers. An actor that dies (its node lost, its process killed)
fails its calls with `RayActorError`: it is replaced and its units go through `UnitLedger`.

The engine and the scenarios travel to the actors by pickle: a custom engine
(`package.module:Class`) must be importable on every node (the same image, or Ray's
`runtime_env`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from conversation_engine.batch._gc_tuning import batch_gc
from conversation_engine.batch.executors.base import (
    Executor,
    UnitLedger,
    UnitSink,
    WorkerSlot,
    share,
)
from conversation_engine.batch.executors.player import Player, WorkerSpec
from conversation_engine.batch.executors.shared_limit import SharedRateLimiter, apply
from conversation_engine.batch.rows import BatchRow, RowKey
from conversation_engine.core.errors import UserInputError
from conversation_engine.llm.rate_limit import RateLimiter

INSTALL_HINT = "--ray needs Ray, an optional extra: pip install 'conversation-engine[ray]'."

#: Seconds to wait for an actor to build its engine before the batch gives it up.
_READY_SECONDS = 120.0
#: Seconds between checks of `sink.stopping()` while every actor is busy.
_POLL_SECONDS = 1.0
#: Concurrent calls the rate-limiter actor serves (each a request waiting for its slot).
_LIMITER_CONCURRENCY = 10_000


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class RayWorker:
    """An async actor: one worker's `Player`, many units at once on the actor's loop."""

    def __init__(self, spec: WorkerSpec, limiter: Any) -> None:
        # Many conversations at once, as in a batch in one process: the same collector
        # thresholds, for the actor's whole life (it is killed, never closed).
        self._tuning = ExitStack()
        self._tuning.enter_context(batch_gc())
        shared = None
        if spec.rate_limit is not None and limiter is not None:

            async def ask(tokens: int) -> None:
                await limiter.acquire.remote(tokens)

            def tell(*message: Any) -> None:
                limiter.tell.remote(*message)

            shared = SharedRateLimiter(*spec.rate_limit, ask=ask, tell=tell)
        self._player = Player(spec, shared)

    async def ready(self) -> int:
        return os.getpid()

    async def play(self, index: int, trial: int) -> dict[str, Any]:
        return await self._player.play(RowKey(index, trial))


class RateLimiterActor:
    """The batch's one `RateLimiter`, for every actor to ask."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self._limiter = RateLimiter(requests_per_minute, tokens_per_minute)

    async def acquire(self, tokens: int) -> None:
        await self._limiter.acquire(tokens)

    async def tell(self, method: str, *args: Any) -> None:
        apply(self._limiter, method, *args)


@dataclass(eq=False)
class _Actor:
    handle: Any
    slot: WorkerSlot
    pid: int | None = None
    calls: dict[asyncio.Future[Any], RowKey] = field(default_factory=dict)


class RayExecutor(Executor):
    """Plays a batch on Ray actors: `workers` of them (default: the cluster's CPUs)."""

    name = "ray"

    def __init__(self, address: str = "auto", workers: int | None = None) -> None:
        if not ray_available():
            raise UserInputError(INSTALL_HINT)
        self.address = address
        self.workers = workers
        self._live: list[_Actor] = []

    def worker_pids(self) -> list[int]:
        return [actor.pid for actor in self._live if actor.pid is not None]

    async def run(self, processor: Any, job: Any, units: Sequence[RowKey], sink: UnitSink) -> None:
        import ray

        if not units:
            return
        if not ray.is_initialized():
            await asyncio.to_thread(ray.init, address=self.address, include_dashboard=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = max(1, min(self.workers or cpus, len(units)))
        spec = WorkerSpec.of(processor, job, share(processor.concurrency, count))
        ledger = UnitLedger(units, spec.concurrency)
        remote: Any = ray.remote  # its stubs do not know the actor options
        limiter = None
        if spec.rate_limit is not None:
            limiter = remote(max_concurrency=_LIMITER_CONCURRENCY, num_cpus=0)(
                RateLimiterActor
            ).remote(*spec.rate_limit)
        # One CPU each; no restarts: a dead actor's units go through the ledger, not Ray's retry.
        actor_class = remote(num_cpus=1, max_concurrency=spec.concurrency + 1, max_restarts=0)(
            RayWorker
        )
        spec_ref = ray.put(spec)
        numbers = itertools.count()
        try:
            # Side by side: each actor's start-up (imports, engine) is a second or more of CPU.
            started = await asyncio.gather(
                *(
                    self._start(ray, actor_class, spec_ref, limiter, next(numbers))
                    for _ in range(count)
                ),
                return_exceptions=True,
            )
            for outcome in started:
                if isinstance(outcome, BaseException):
                    raise outcome
            while True:
                if not sink.stopping():
                    self._fill(ledger, sink)
                calls = {call: actor for actor in self._live for call in actor.calls}
                if not calls and (not ledger.busy or sink.stopping()):
                    break
                finished, _ = await asyncio.wait(
                    calls, timeout=_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for call in finished:
                    actor = calls[call]
                    key = actor.calls.pop(call, None)
                    if key is None:  # the actor died and was handled with an earlier call
                        continue
                    try:
                        row = call.result()
                    except ray.exceptions.RayActorError as error:
                        await self._died(ray, actor, error, ledger, sink)
                        if ledger.busy and not sink.stopping():
                            await self._start(ray, actor_class, spec_ref, limiter, next(numbers))
                        continue
                    if ledger.done(actor.slot, key):
                        await sink.finished(BatchRow.of(row))
        finally:
            self._stop_all(ray, limiter)

    async def _start(
        self, ray: Any, actor_class: Any, spec_ref: Any, limiter: Any, number: int
    ) -> None:
        handle = actor_class.remote(spec_ref, limiter)
        actor = _Actor(handle, WorkerSlot(number))
        actor.pid = await asyncio.wait_for(_awaitable(handle.ready.remote()), _READY_SECONDS)
        self._live.append(actor)

    def _fill(self, ledger: UnitLedger, sink: UnitSink) -> None:
        actors = {actor.slot.number: actor for actor in self._live}
        for slot, key in ledger.deal([actor.slot for actor in actors.values()]):
            actor = actors[slot.number]
            call = asyncio.ensure_future(
                _awaitable(actor.handle.play.remote(key.scenario_index, key.trial))
            )
            actor.calls[call] = key
            sink.started(key)

    async def _died(
        self, ray: Any, actor: _Actor, error: Exception, ledger: UnitLedger, sink: UnitSink
    ) -> None:
        if actor in self._live:
            self._live.remove(actor)
        for call in actor.calls:
            call.cancel()
        actor.calls.clear()
        how = f"Ray actor died: {type(error).__name__}"
        for key in ledger.worker_died(actor.slot, how):
            await sink.lost(key, ledger.death_error(key))
        with contextlib.suppress(Exception):
            ray.kill(actor.handle, no_restart=True)

    def _stop_all(self, ray: Any, limiter: Any) -> None:
        actors, self._live = self._live, []
        for actor in actors:
            for call in actor.calls:
                call.cancel()
            with contextlib.suppress(Exception):
                ray.kill(actor.handle, no_restart=True)
        if limiter is not None:
            with contextlib.suppress(Exception):
                ray.kill(limiter, no_restart=True)


async def _awaitable(ref: Any) -> Any:
    """An `ObjectRef` awaited on this loop (Ray makes refs awaitable)."""
    return await ref
