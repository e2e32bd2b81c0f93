"""What a worker process needs to play units: the batch's job and how its processor was built
(`WorkerSpec`, picklable), and the processor it builds from it (`Player`).

A worker builds its own endpoint from the settings (the configured model, or the simulated
LLM) and its own engine and evaluator, once, and plays many units on its own event loop. Its
rate limiter is a `SharedRateLimiter` whose schedule lives with the driver (or a Ray actor),
so the batch's limits bind all workers together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conversation_engine.batch._gc_tuning import conversation_finished
from conversation_engine.batch.executors.shared_limit import SharedRateLimiter
from conversation_engine.batch.job import BatchJob
from conversation_engine.batch.rows import RowKey
from conversation_engine.core.errors import UserInputError
from conversation_engine.core.settings import Settings


@dataclass(frozen=True)
class WorkerSpec:
    """How to rebuild a batch's processor in another process."""

    job: BatchJob
    engine: str
    concurrency: int
    """Conversations in flight in this worker."""
    settings: Settings
    evaluator_spec: str | None
    side: str | None
    rate_limit: tuple[float | None, float | None] | None
    """(requests, tokens) per minute of the batch's limiter, None when it has none."""

    @classmethod
    def of(cls, processor: Any, job: BatchJob, concurrency: int) -> WorkerSpec:
        """The spec of `processor` (a `BatchProcessor`); refuses what cannot leave it."""
        kept = [
            name
            for name, value in (
                ("a tool backend", processor.tool_backend),
                ("engine options", processor.engine_options),
                ("an evaluator endpoint", processor.evaluator_endpoint),
            )
            if value
        ]
        if kept:
            raise UserInputError(
                f"This batch has {', '.join(kept)}, which live in this process; run it without "
                "worker processes (no executor) or configure them through settings."
            )
        limiter = getattr(processor.openai, "rate_limiter", None)
        rate_limit = None
        if limiter is not None:
            rate_limit = (
                limiter.requests_per_second * 60 or None,
                limiter.tokens_per_second * 60 or None,
            )
        return cls(
            job=job,
            engine=job.engine,
            concurrency=concurrency,
            settings=processor.settings,
            evaluator_spec=processor.evaluator_spec,
            side=processor.side,
            rate_limit=rate_limit,
        )


class Player:
    """A worker's processor for one batch: plays units, returns their rows as plain dicts.

    A worker holds many conversations at once, as a batch in one process does: the process
    that plays with it should raise the collector's thresholds for its whole life
    (`_gc_tuning.batch_gc`; without them a worker spends about a tenth more CPU per
    conversation than one process does)."""

    def __init__(self, spec: WorkerSpec, limiter: SharedRateLimiter | None) -> None:
        from conversation_engine.batch.processor import BatchProcessor
        from conversation_engine.llm.endpoint import OpenAIWrapper

        self.job = spec.job
        self._concurrency = spec.concurrency
        self._wrapper = OpenAIWrapper.from_settings(spec.settings, rate_limiter=limiter)
        self._processor = BatchProcessor(
            self._wrapper,
            spec.concurrency,
            engine=spec.engine,
            settings=spec.settings,
            max_turns=spec.job.max_turns,
            timeout_sec=spec.job.timeout_sec,
            evaluate=spec.job.evaluate,
            evaluator_spec=spec.evaluator_spec,
            side=spec.side,
        )

    async def play(self, key: RowKey) -> dict[str, Any]:
        """The row of one unit, as the dict the driver stores (never raises for the run)."""
        row = await self._processor.play_unit(self.job, key)
        # Its reference cycles go now and then, not when the worker ends (_gc_tuning).
        conversation_finished(self._concurrency)
        return row.to_dict()

    async def aclose(self) -> None:
        await self._wrapper.aclose()
