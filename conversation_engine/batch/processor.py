"""`BatchProcessor`: many scenarios through one engine, bounded concurrency, scores, durable rows.

The legacy API (`create_batch_job`, `run_batch`, `get_batch_status`, `get_batch_results`,
`cancel_batch`, `cleanup_completed_jobs`) with these additions:

* any engine honouring the contract (`autogen`, `legacy`, `package.module:Class`), constructed
  once per batch and spec, so a bad engine or spec is an error before anything runs;
* `max_turns` / `timeout_sec` are passed to the engine (legacy never passed them);
* `repeat=k` trials per scenario, trial i seeded `SEED + i` (see `rows.trial_scenario`);
* every finished row is appended durably to `results.ndjson` at once, and `resume_batch` runs
  only the scenario-trials missing from it, so after a crash or kill each runs exactly once;
  the rows are read *under the batch's lock*, so two resumes of one batch (two processes)
  never run a scenario-trial twice: the second is refused while the first runs, and after it
  finds nothing missing;
* `cancel_batch` stops launching runs and cancels those in flight; rows already written stay
  and a resume finishes the rest;
* a write that fails (a full disk) stops the batch at once: it ends `failed` with the error in
  `batch.json` and the result's `error`, every row written before stays, and a resume runs the
  rest. Nothing is raised for it.

Nothing one scenario does stops the batch: an exception escaping the engine becomes a
`failed` row, and no text a row holds can stop it being stored.

Scale: the scenarios are written once (`scenarios.json`); the status file (`batch.json`) is a
few hundred bytes whatever the batch size, saved at most every `_SAVE_INTERVAL` seconds while
runs finish, from a worker thread (`asyncio.to_thread`), never blocking the event loop. A
batch runs through `concurrency` worker tasks, not one task per scenario-trial, and the
counters move per row: the cost per conversation does not grow with the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

from conversation_engine.batch._gc_tuning import batch_gc, conversation_finished
from conversation_engine.batch.evaluator import EVALUATED_STATUSES, ConversationEvaluator
from conversation_engine.batch.executors.base import Executor, UnitSink
from conversation_engine.batch.job import BatchJob, BatchProgress, BatchStatus
from conversation_engine.batch.rows import (
    BatchRow,
    RowKey,
    build_row,
    exception_result,
    trial_scenario,
)
from conversation_engine.batch.schedule import HeldSlot, Lane
from conversation_engine.batch.storage import (
    BatchNotFoundError,
    ResultsLog,
    ResultStorage,
    now_iso,
)
from conversation_engine.core._output import check_output_dir
from conversation_engine.core.call_context import ConversationRef, in_conversation
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.errors import OutputTargetError, UserInputError
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.engines import create_engine, engine_label, resolve_engine
from conversation_engine.inputs.scenario import Scenario, check_variables, parse_scenario
from conversation_engine.inputs.specs import PromptSpec
from conversation_engine.observability.budget import Budget
from conversation_engine.observability.events import observing

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], Any]
"""Legacy: `(completed, total)` after each finished run; may be sync or async."""
ProgressListener = Callable[[BatchProgress], Any]
"""Richer: a `BatchProgress` whenever a run starts or finishes; may be sync or async."""

# Legacy sub-progress weights of a run in flight, by stage.
_STAGE_STARTED = 0.1
_STAGE_CONVERSATION = 0.4
_STAGE_EVALUATION = 0.8

#: Seconds between two saves of batch.json while runs finish (state changes always save).
_SAVE_INTERVAL = 0.5


class BatchProcessor:
    """Runs batches of scenarios through one engine with bounded concurrency.

    `openai_wrapper`: an `OpenAIWrapper` (default `OpenAIWrapper.from_settings()`, which is the
    simulated LLM when no key or base URL is configured), or, as in the legacy signature, an
    OpenAI API key string. `concurrency`: conversations in flight at once (default
    `CONCURRENCY`), shared by all batches of this processor. `engine`: `autogen`, `legacy` or
    `package.module:Class`. `output_dir`: where batch folders go (default `RESULTS_DIR`).
    `max_turns` / `timeout_sec`: passed to every conversation (None: the engine's defaults).
    `tool_backend`: passed to engines that accept it. `evaluate`: score completed and
    timed-out conversations with the spec's evaluator. `engine_options`: more keyword options
    for engines that accept them (`customer_endpoint`, `customer_spec`). `evaluator_endpoint`
    and `evaluator_spec`: where the evaluator runs and whose `evaluator` prompt it uses
    (default: this processor's endpoint and the batch's spec), so the two sides of an A/B
    comparison are scored by the same evaluator.
    """

    def __init__(
        self,
        openai_wrapper: Any = None,
        concurrency: int | None = None,
        *,
        engine: str = "autogen",
        output_dir: Any = None,
        max_turns: int | None = None,
        timeout_sec: float | None = None,
        tool_backend: Any = None,
        evaluate: bool = True,
        settings: Settings | None = None,
        engine_options: Mapping[str, Any] | None = None,
        evaluator_endpoint: Any = None,
        evaluator_spec: str | None = None,
        side: str | None = None,
        budget: Budget | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.side = side
        """The comparison side ("a"/"b") this processor plays, None outside a comparison: it
        is part of each conversation's key (`core.call_context`), as recordings file them."""
        self._owns_wrapper = not _is_wrapper(openai_wrapper)
        self.openai = _make_wrapper(openai_wrapper, self.settings)
        self.concurrency = concurrency if concurrency is not None else self.settings.CONCURRENCY
        if self.concurrency < 1:
            raise UserInputError(
                f"Concurrency must be at least 1 (got {self.concurrency}); it is how many "
                "conversations run at once."
            )
        self.engine_class = resolve_engine(engine)
        self.engine = engine_label(self.engine_class)
        self.storage = ResultStorage(output_dir or self.settings.RESULTS_DIR)
        self.max_turns = max_turns
        self.timeout_sec = timeout_sec
        self.tool_backend = tool_backend
        self.evaluate = evaluate
        self.engine_options = dict(engine_options or {})
        self.evaluator_endpoint = evaluator_endpoint
        self.evaluator_spec = evaluator_spec
        self.budget = budget
        """A spending cap (`observability.budget`), shared by every batch this processor runs
        (and by both sides of a comparison, given the same one): at the cap no run starts."""
        self.executor = executor
        """Where the runs are played (`batch.executors`): None plays them on this event loop;
        local worker processes or a Ray cluster give their rows back to this process, which
        alone writes the results log."""
        if budget is not None:
            budget.check_priced(self._models())
        self._explicit_settings = settings
        self.jobs: dict[str, BatchJob] = {}
        self._engines: dict[tuple[str, str], Any] = {}
        self._evaluators: dict[tuple[str, str], ConversationEvaluator] = {}
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()
        self._tasks: dict[str, set[asyncio.Task[Any]]] = {}
        self._loops: dict[str, asyncio.AbstractEventLoop] = {}
        self._cancelled: set[str] = set()
        self._last_save: dict[str, float] = {}
        # Status saves: numbered when taken, written in order by any thread, stale ones dropped.
        self._generations = itertools.count(1)
        self._written: dict[str, int] = {}
        self._status_lock = threading.Lock()
        self._storage_errors: dict[str, OSError] = {}
        self._inline_scenarios: set[str] = set()

    # ------------------------------------------------------------------------------ jobs

    def create_batch_job(
        self,
        scenarios: Iterable[Mapping[str, Any] | Scenario],
        prompt_version: str = "v1.0",
        use_tools: bool = True,
        prompt_spec_name: str = "default_prompts",
        *,
        repeat: int = 1,
        source: str | None = None,
    ) -> str:
        """Validate the scenarios, engine and spec, save the job; its batch id (a uuid4).

        Raises `UserInputError` (a `ScenarioError`, a `SpecError`, a `TemplateVariableError`
        for a scenario that lacks a variable the prompts use, ...) for anything wrong with the
        input, before anything runs or is written. `source`, the scenario file, is named in
        those errors.
        """
        if repeat < 1:
            raise UserInputError(f"repeat must be at least 1 (got {repeat}): trials per scenario.")
        items = [
            item
            if isinstance(item, Scenario)
            else parse_scenario(item, where=f"scenario [{index}]")
            for index, item in enumerate(scenarios)
        ]
        parsed = [item.model_dump() for item in items]
        if not parsed:
            raise UserInputError("The batch has no scenarios; give it at least one.")
        job = BatchJob(
            batch_id=str(uuid.uuid4()),
            scenarios=parsed,
            created_at=now_iso(),
            prompt_version=prompt_version,
            prompt_spec_name=prompt_spec_name,
            use_tools=use_tools,
            total_scenarios=len(parsed) * repeat,
            engine=self.engine,
            repeat=repeat,
            max_turns=self.max_turns,
            timeout_sec=self.timeout_sec,
            evaluate=self.evaluate,
        )
        engine, _ = self._components(job)  # a bad engine or spec fails here, not in every run
        spec = getattr(engine, "prompt_specification", None)
        if isinstance(spec, PromptSpec):
            check_variables(spec, items, source=source)
        check_output_dir(self.storage.root, "The output directory")
        try:
            self.storage.save_scenarios(job.batch_id, parsed)
            self._save(job, force=True)
        except OSError as error:
            raise OutputTargetError(
                f"Batch {job.batch_id} could not be written to "
                f"'{self.storage.batch_dir(job.batch_id)}' ({error.strerror or error}); free "
                "some space or choose another output directory."
            ) from error
        self.jobs[job.batch_id] = job
        return job.batch_id

    def get_batch_status(self, batch_id: str) -> dict[str, Any] | None:
        """The job's state and counters (no scenarios, no results); None for an unknown id."""
        try:
            return self._job(batch_id).status_dict()
        except BatchNotFoundError:
            return None

    def get_batch_results(self, batch_id: str) -> list[dict[str, Any]] | None:
        """The rows so far, in scenario and trial order, as plain dicts; None for an unknown id.

        Read from the batch's `results.ndjson` (the processor keeps no rows in memory)."""
        try:
            self._job(batch_id)
        except BatchNotFoundError:
            return None
        return [row.to_dict() for row in self.storage.iter_rows_in_key_order(batch_id)]

    def list_batches(self) -> list[dict[str, Any]]:
        """The status of every batch in memory or in the output directory."""
        ids = dict.fromkeys([*self.jobs, *self.storage.list_batch_ids()])
        statuses = (self.get_batch_status(batch_id) for batch_id in ids)
        return [status for status in statuses if status is not None]

    def cancel_batch(self, batch_id: str, reason: str = "cancelled") -> bool:
        """Stop a pending or running batch: no new runs start, runs in flight are cancelled.

        Rows already written stay; `resume_batch` runs the rest. False if the batch is unknown
        or already finished. Safe to call from another thread or a signal handler.
        """
        try:
            job = self._job(batch_id)
        except BatchNotFoundError:
            return False
        if job.status not in (BatchStatus.PENDING, BatchStatus.RUNNING):
            return False
        self._cancelled.add(batch_id)
        job.status = BatchStatus.CANCELLED
        job.current_stage = "cancelled"
        job.error_message = reason
        loop = self._loops.get(batch_id)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel_tasks, batch_id)
        try:
            self._save(job, force=True)  # small, once; the batch saves again when it stops
        except OSError as error:
            logger.warning("Could not save the cancellation of batch %s: %s", batch_id, error)
        return True

    def cleanup_completed_jobs(self, max_age_hours: float = 24) -> int:
        """Forget finished jobs older than `max_age_hours` (their files stay); how many."""
        cutoff = time.time() - max_age_hours * 3600
        stale = [
            batch_id
            for batch_id, job in self.jobs.items()
            if job.status in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)
            and _timestamp(job.completed_at or job.created_at) < cutoff
        ]
        for batch_id in stale:
            del self.jobs[batch_id]
        return len(stale)

    # ------------------------------------------------------------------------------ running

    async def run_batch(
        self,
        batch_id: str,
        progress_callback: ProgressCallback | None = None,
        *,
        on_progress: ProgressListener | None = None,
        lane: Lane | None = None,
        return_rows: bool = True,
    ) -> dict[str, Any]:
        """Run a pending batch; `{batch_id, status, total_scenarios, successful_scenarios,
        failed_scenarios, duration_seconds, results}` (plus `output_dir`).

        With a `lane` of a `SharedSchedule` the runs start in the schedule's order, on its
        slots, interleaved with the other batches of the schedule (an A/B comparison).

        No row is kept in memory while the batch runs: each goes to `results.ndjson` as it
        finishes. `results` (the legacy return) is read back from there at the end, every
        row at once; with `return_rows=False` it is left out, and the rows are read from the
        store one at a time instead (`self.storage.iter_rows(batch_id)`): memory stays flat
        whatever the batch size.
        """
        try:
            job = self._job(batch_id)
            if job.status is not BatchStatus.PENDING:
                raise UserInputError(
                    f"Batch {batch_id} is {job.status.value}; only a pending batch can be run. "
                    "Use resume_batch (CLI: --resume) to finish an interrupted one."
                )
            return await self._execute(
                job, progress_callback, on_progress, lane, resume=False, return_rows=return_rows
            )
        finally:
            if lane is not None:
                await lane.close()

    async def resume_batch(
        self,
        batch_id: str,
        progress_callback: ProgressCallback | None = None,
        *,
        on_progress: ProgressListener | None = None,
        lane: Lane | None = None,
        return_rows: bool = True,
    ) -> dict[str, Any]:
        """Run the scenario-trials of a batch that have no row in `results.ndjson` yet.

        Works after a crash, a kill, a cancel or a full disk, in this process or a new one:
        the job is read back from `batch.json` and `scenarios.json`, the rows from
        `results.ndjson` (an incomplete last line does not count), all under the batch's lock.
        A batch with nothing missing just gets its exports written again. `lane` and
        `return_rows`: as for `run_batch`.
        """
        try:
            if self._tasks.get(batch_id):
                raise UserInputError(
                    f"Batch {batch_id} is running in this process; wait for it or cancel it first."
                )
            job = self._job(batch_id)
            return await self._execute(
                job, progress_callback, on_progress, lane, resume=True, return_rows=return_rows
            )
        finally:
            if lane is not None:
                await lane.close()

    async def _execute(
        self,
        job: BatchJob,
        progress_callback: ProgressCallback | None,
        on_progress: ProgressListener | None,
        lane: Lane | None,
        *,
        resume: bool,
        return_rows: bool,
    ) -> dict[str, Any]:
        batch_id = job.batch_id
        engine, evaluator = self._components(job)  # a bad engine or spec fails before the lock
        clock = time.monotonic()
        with batch_gc(), self.storage.lock(batch_id):
            # What is done is read only now, under the lock: rows another process wrote before
            # it released the lock count, so no scenario-trial runs twice.
            if resume:
                job = self._reload(batch_id, count=False)
                job.resumed_count += 1
            scan = self.storage.scan_rows(batch_id)  # the keys and counts, not the rows
            self._recount(job, scan.keys, scan.failed)
            done = scan.keys
            pairs = [
                key
                for key in (
                    RowKey(index, trial)
                    for index in range(len(job.scenarios))
                    for trial in range(job.repeat)
                )
                if key not in done
            ]
            self._cancelled.discard(batch_id)
            self._storage_errors.pop(batch_id, None)
            job.status = BatchStatus.RUNNING
            job.started_at = job.started_at or now_iso()
            job.completed_at = None
            job.error_message = None
            job.current_stage = "initializing"
            run = _RunState(job, progress_callback, on_progress)
            try:
                with self.storage.open_results(batch_id) as log:
                    await self._save_async(job, force=True)
                    with self._spending(job, resume=resume):
                        await self._run_pairs(job, engine, evaluator, pairs, log, run, lane)
                if batch_id not in self._storage_errors and batch_id not in self._cancelled:
                    job.current_stage = "finalizing"
                    await self._save_async(job, force=True)
                    await asyncio.to_thread(self.storage.write_exports, batch_id)
                    job.status = BatchStatus.COMPLETED
                    job.current_stage = "completed"
                    job.completed_at = now_iso()
                    job.progress_percentage = 100.0
                    await self._save_async(job, force=True)
            except OSError as error:  # our own files: opening the log, a save, the exports
                self._storage_errors.setdefault(batch_id, error)
            storage_error = self._storage_errors.pop(batch_id, None)
            if storage_error is not None:
                await self._mark_failed(job, storage_error)
            elif batch_id in self._cancelled:
                self._mark_cancelled(job, job.error_message or "cancelled")
        summary: dict[str, Any] = {
            "batch_id": batch_id,
            "status": job.status.value,
            "total_scenarios": job.total_scenarios,
            "successful_scenarios": job.successful_scenarios,
            "failed_scenarios": job.failed_scenarios,
            "duration_seconds": round(time.monotonic() - clock, 3),
            "output_dir": str(self.storage.batch_dir(batch_id)),
        }
        if self.budget is not None:
            summary["budget"] = self.budget.summary()
        if return_rows:
            rows = self.storage.iter_rows_in_key_order(batch_id)
            summary["results"] = await asyncio.to_thread(lambda: [row.to_dict() for row in rows])
        if job.status is BatchStatus.FAILED:
            summary["error"] = job.error_message
        return summary

    async def _run_pairs(
        self,
        job: BatchJob,
        engine: Any,
        evaluator: ConversationEvaluator | None,
        pairs: Sequence[RowKey],
        log: ResultsLog,
        run: _RunState,
        lane: Lane | None = None,
    ) -> None:
        """Run `pairs` through at most `concurrency` worker tasks (not one task per pair), in
        order on this processor's slots, or in the order and on the slots of `lane`."""
        batch_id = job.batch_id
        if self.executor is not None and lane is None:
            await self._run_on_executor(self.executor, job, pairs, log, run)
            return
        semaphore = self._semaphore()
        self._loops[batch_id] = asyncio.get_running_loop()
        pending = iter(pairs)

        async def worker() -> None:
            for index, trial in pending:
                if batch_id in self._cancelled:
                    return
                await self._guarded_run(job, engine, evaluator, index, trial, semaphore, log, run)

        async def lane_worker(lane: Lane) -> None:
            # `next` hands out a run with its slot taken; `_guarded_run` frees it, whatever
            # happens (a cancelled batch returns at once).
            while (key := await lane.next()) is not None:
                await self._guarded_run(
                    job, engine, evaluator, key.scenario_index, key.trial, HeldSlot(lane), log, run
                )

        if lane is not None:
            await lane.register(pairs)
        workers = {
            asyncio.create_task(
                worker() if lane is None else lane_worker(lane),
                name=f"batch-{batch_id[:8]}-worker-{number}",
            )
            for number in range(min(self.concurrency, len(pairs)))
        }
        self._tasks[batch_id] = workers
        job.current_stage = "processing_scenarios"
        try:
            outcomes = await asyncio.gather(*workers, return_exceptions=True)
        except asyncio.CancelledError:
            # The caller cancelled run_batch itself: stop the runs, keep what was written.
            self._cancel_tasks(batch_id)
            await asyncio.gather(*workers, return_exceptions=True)
            self._mark_cancelled(job, "the batch task was cancelled")
            raise
        finally:
            self._tasks.pop(batch_id, None)
            self._loops.pop(batch_id, None)
        errors = [
            outcome
            for outcome in outcomes
            if isinstance(outcome, BaseException)
            and not isinstance(outcome, asyncio.CancelledError)
        ]
        if errors:
            # A bug in our own machinery (storage failures are handled): stop loudly.
            job.status = BatchStatus.FAILED
            job.current_stage = "failed"
            job.error_message = f"{type(errors[0]).__name__}: {errors[0]}"
            job.completed_at = now_iso()
            self._save(job, force=True)
            raise errors[0]

    async def _guarded_run(
        self,
        job: BatchJob,
        engine: Any,
        evaluator: ConversationEvaluator | None,
        index: int,
        trial: int,
        semaphore: contextlib.AbstractAsyncContextManager[Any],
        log: ResultsLog,
        run: _RunState,
    ) -> None:
        async with semaphore:
            if job.batch_id in self._cancelled or self._stop_for_budget(job):
                return
            key = RowKey(index, trial)
            run.stage(key, _STAGE_STARTED)
            await run.report(None)
            try:
                row = await self._run_one(job, engine, evaluator, index, trial, run)
            except Exception as error:  # a bug outside the engine must not stop the batch either
                logger.exception("Run %s of batch %s failed", key, job.batch_id)
                row = self._exception_row(job, key, error)
            finally:
                run.stage(key, None)
            if job.batch_id in self._cancelled and row.is_failed:
                # Most likely the cancellation itself, caught by the engine: let a resume rerun it.
                return
            # No await between here and the append: a cancel cannot split a row from its count.
            if not self._append(job, log, row):
                return
            # Its reference cycles go now and then, not at the end of the batch (_gc_tuning).
            conversation_finished(self.concurrency)
        await self._save_and_report(job, run, row)

    async def _run_on_executor(
        self,
        executor: Executor,
        job: BatchJob,
        pairs: Sequence[RowKey],
        log: ResultsLog,
        run: _RunState,
    ) -> None:
        """Hand `pairs` to the executor; every row it gives back is appended here, by this
        process only, so the results log keeps one writer whatever plays the runs."""
        batch_id = job.batch_id

        async def finished(row: BatchRow) -> None:
            run.stage(row.key, None)
            if batch_id in self._storage_errors or (batch_id in self._cancelled and row.is_failed):
                return  # as in `_guarded_run`: a cancelled run is left to a resume
            if not self._append(job, log, row):
                return
            if self.budget is not None:  # the workers' calls are not seen here: count the row's
                self._charge(self.budget, row)
            await self._save_and_report(job, run, row)

        async def lost(key: RowKey, error: Exception) -> None:
            await finished(self._exception_row(job, key, error))

        def stopping() -> bool:
            return batch_id in self._cancelled or self._stop_for_budget(job)

        sink = UnitSink(
            started=lambda key: run.stage(key, _STAGE_STARTED),
            finished=finished,
            lost=lost,
            stopping=stopping,
        )
        task = asyncio.create_task(
            executor.run(self, job, pairs, sink), name=f"batch-{batch_id[:8]}"
        )
        self._tasks[batch_id] = {task}
        self._loops[batch_id] = asyncio.get_running_loop()
        job.current_stage = "processing_scenarios"
        try:
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
        except asyncio.CancelledError:
            self._cancel_tasks(batch_id)
            await asyncio.gather(task, return_exceptions=True)
            self._mark_cancelled(job, "the batch task was cancelled")
            raise
        finally:
            self._tasks.pop(batch_id, None)
            self._loops.pop(batch_id, None)
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            job.status = BatchStatus.FAILED
            job.current_stage = "failed"
            job.error_message = f"{type(outcome).__name__}: {outcome}"
            job.completed_at = now_iso()
            self._save(job, force=True)
            raise outcome

    async def play_unit(self, job: BatchJob, key: RowKey) -> BatchRow:
        """One scenario-trial played here and returned, not stored: what an executor's worker
        runs (the driver stores the row). Never raises for what the run does."""
        engine, evaluator = self._components(job)
        try:
            return await self._run_one(
                job, engine, evaluator, key.scenario_index, key.trial, _RunState(job, None, None)
            )
        except Exception as error:
            logger.exception("Run %s of batch %s failed", key, job.batch_id)
            return self._exception_row(job, key, error)

    def _exception_row(self, job: BatchJob, key: RowKey, error: Exception) -> BatchRow:
        """The `failed` row of a run that raised outside the engine (or whose worker died)."""
        scenario = job.scenarios[key.scenario_index]
        return build_row(
            exception_result(error, scenario, 0.0),
            scenario_index=key.scenario_index,
            trial=key.trial,
            seed=trial_scenario(scenario, key.trial)[1],
            evaluation=None,
            evaluate=job.evaluate,
            violations=[],
            extra=self._row_extra(job),
        )

    async def _run_one(
        self,
        job: BatchJob,
        engine: Any,
        evaluator: ConversationEvaluator | None,
        index: int,
        trial: int,
        run: _RunState,
    ) -> BatchRow:
        scenario, seed = trial_scenario(job.scenarios[index], trial)
        run.stage(RowKey(index, trial), _STAGE_CONVERSATION)
        # The conversation's model calls, the evaluator's included, are known as this row's.
        ref = ConversationRef(
            scenario=str(scenario.get("name") or index), trial=trial, side=self.side
        )
        with in_conversation(ref):
            return await self._play_row(job, engine, evaluator, index, trial, run, scenario, seed)

    async def _play_row(
        self,
        job: BatchJob,
        engine: Any,
        evaluator: ConversationEvaluator | None,
        index: int,
        trial: int,
        run: _RunState,
        scenario: dict[str, Any],
        seed: int,
    ) -> BatchRow:
        method_name = "run_conversation_with_tools" if job.use_tools else "run_conversation"
        started = time.monotonic()
        try:
            result: Any = await getattr(engine, method_name)(
                scenario, job.max_turns, job.timeout_sec
            )
            violations = contract_violations(result, basic_mode=not job.use_tools)
        except Exception as error:  # engines must not raise; a batch survives one that does
            logger.warning("%s raised on scenario %d: %r", method_name, index, error)
            result = exception_result(error, scenario, time.monotonic() - started)
            violations = [
                f"{method_name} raised {type(error).__name__}: {error}; an engine must return a "
                "'failed' result instead"
            ]
        if not isinstance(result, Mapping):
            violations = [f"{method_name} returned a {type(result).__name__}, not a dict"]
            result = exception_result(
                TypeError(f"the engine returned a {type(result).__name__}, not a result dict"),
                scenario,
                time.monotonic() - started,
            )
        if "duration_seconds" not in result:
            result = {**result, "duration_seconds": round(time.monotonic() - started, 3)}
        evaluation = None
        if evaluator is not None and result.get("status") in EVALUATED_STATUSES:
            run.stage(RowKey(index, trial), _STAGE_EVALUATION)
            evaluation = await evaluator.evaluate_conversation(result, scenario.get("variables"))
        return build_row(
            result,
            scenario_index=index,
            trial=trial,
            seed=seed,
            evaluation=evaluation,
            evaluate=job.evaluate,
            violations=violations,
            extra=self._row_extra(job),
        )

    # ------------------------------------------------------------------------------ budget

    def _models(self) -> list[str]:
        """The model names this processor's calls ask for (what a budget prices)."""
        endpoints = [
            self.openai,
            self.evaluator_endpoint,
            self.engine_options.get("customer_endpoint"),
        ]
        models = [getattr(endpoint, "model", None) for endpoint in endpoints]
        return list(dict.fromkeys(m for m in models if isinstance(m, str)))

    @contextlib.contextmanager
    def _spending(self, job: BatchJob, *, resume: bool) -> Iterator[None]:
        """Count the block's model calls against the budget (and, on resume, what the rows
        written before cost, at this processor's models' prices)."""
        if self.budget is None:
            yield
            return
        if resume:
            for row in self.storage.iter_rows(job.batch_id):
                self._charge(self.budget, row)
        with observing(self.budget):
            yield

    def _charge(self, budget: Budget, row: BatchRow) -> None:
        """Count a stored row's spend, at this processor's models' prices: the conversation's
        tokens at the engine's model, the evaluation's at the evaluator's."""
        evaluator_model = getattr(self.evaluator_endpoint, "model", None) or self.openai.model
        budget.add_usage(self.openai.model, row.usage)
        budget.add_usage(evaluator_model, row.evaluation_usage)

    def _stop_for_budget(self, job: BatchJob) -> bool:
        """At the budget's cap: start nothing more (those in flight finish); the batch ends
        cancelled with the reason, and a resume with a higher cap runs the rest."""
        if self.budget is None or not self.budget.reached:
            return False
        if job.batch_id not in self._cancelled:
            self._cancelled.add(job.batch_id)
            job.error_message = (
                f"budget reached: ${self.budget.spent_usd:.4f} spent of ${self.budget.cap_usd:.4f}"
            )
        return True

    # ------------------------------------------------------------------------------ helpers

    @staticmethod
    def _row_extra(job: BatchJob) -> dict[str, Any]:
        return {
            "engine": job.engine,
            "prompt_version": job.prompt_version,
            "batch_id": job.batch_id,
        }

    def _components(self, job: BatchJob) -> tuple[Any, ConversationEvaluator | None]:
        """The batch's one engine (and evaluator), built once per engine and spec."""
        key = (job.engine, job.prompt_spec_name)
        engine = self._engines.get(key)
        if engine is None:
            engine_class = (
                self.engine_class if job.engine == self.engine else resolve_engine(job.engine)
            )
            try:
                engine = create_engine(
                    engine_class,
                    self.openai,
                    job.prompt_spec_name,
                    tool_backend=self.tool_backend,
                    settings=self._explicit_settings,
                    **self.engine_options,
                )
            except UserInputError:
                raise
            except Exception as error:
                raise UserInputError(
                    f"Engine '{job.engine}' could not be created with spec "
                    f"'{job.prompt_spec_name}' ({type(error).__name__}: {error}); it must accept "
                    "(openai_wrapper, prompt_spec_name)."
                ) from error
            self._engines[key] = engine
        if not job.evaluate:
            return engine, None
        evaluator = self._evaluators.get(key)
        if evaluator is None:
            spec = getattr(engine, "prompt_specification", None)
            evaluator = ConversationEvaluator(
                self.evaluator_endpoint or self.openai,
                self.evaluator_spec or job.prompt_spec_name,
                spec=spec if isinstance(spec, PromptSpec) and not self.evaluator_spec else None,
                timeout_sec=self.settings.EVAL_TIMEOUT_SEC,
            )
            self._evaluators[key] = evaluator
        return engine, evaluator

    def _job(self, batch_id: str) -> BatchJob:
        job = self.jobs.get(batch_id)
        return job if job is not None else self._reload(batch_id)

    def _reload(self, batch_id: str, *, count: bool = True) -> BatchJob:
        """The job as saved, its counters (with `count`) taken from the results log.

        A batch folder from before `scenarios.json` (scenarios inside `batch.json`) gets its
        scenarios moved out; if that cannot be written they stay in `batch.json`.
        """
        data = self.storage.load_job(batch_id)
        inline = "scenarios" in data
        if not inline:
            data["scenarios"] = self.storage.load_scenarios(batch_id)
        try:
            job = BatchJob.model_validate(data)
        except ValueError as error:
            raise BatchNotFoundError(
                f"The batch file of {batch_id} in '{self.storage.root}' is not a batch job "
                f"({error})."
            ) from None
        if inline and not self.storage.has_scenarios(batch_id):
            try:
                self.storage.save_scenarios(batch_id, job.scenarios)
            except OSError as error:
                logger.warning("Could not write the scenarios of batch %s: %s", batch_id, error)
                self._inline_scenarios.add(batch_id)
        if count:
            scan = self.storage.scan_rows(batch_id)
            self._recount(job, scan.keys, scan.failed)
        self.jobs[batch_id] = job
        return job

    @staticmethod
    def _recount(job: BatchJob, keys: Sized, failed: int) -> None:
        job.completed_scenarios = len(keys)
        job.failed_scenarios = failed
        if job.total_scenarios:
            job.progress_percentage = round(100 * job.completed_scenarios / job.total_scenarios, 1)

    @staticmethod
    def _count(job: BatchJob, row: BatchRow) -> None:
        """The counters after one more row: O(1), whatever the batch size."""
        job.completed_scenarios += 1
        job.failed_scenarios += row.is_failed
        if job.total_scenarios:
            job.progress_percentage = round(100 * job.completed_scenarios / job.total_scenarios, 1)

    def _snapshot(self, job: BatchJob, force: bool) -> tuple[int, dict[str, Any]] | None:
        """What to save now (numbered), or None within `_SAVE_INTERVAL` of the last save."""
        now = time.monotonic()
        if not force and now - self._last_save.get(job.batch_id, 0.0) < _SAVE_INTERVAL:
            return None
        self._last_save[job.batch_id] = now
        data = job.model_dump(mode="json")
        if job.batch_id in self._inline_scenarios:
            data["scenarios"] = job.scenarios
        return next(self._generations), data

    def _write_status(self, batch_id: str, generation: int, data: dict[str, Any]) -> None:
        """Write a status snapshot unless a later one is already written (any thread)."""
        with self._status_lock:
            if generation < self._written.get(batch_id, 0):
                return
            self.storage.save_job(batch_id, data)
            self._written[batch_id] = generation

    def _save(self, job: BatchJob, *, force: bool = False) -> None:
        snapshot = self._snapshot(job, force)
        if snapshot is not None:
            self._write_status(job.batch_id, *snapshot)

    async def _save_async(self, job: BatchJob, *, force: bool = False) -> None:
        """`_save` with the write in a worker thread, off the event loop."""
        snapshot = self._snapshot(job, force)
        if snapshot is not None:
            await asyncio.to_thread(self._write_status, job.batch_id, *snapshot)

    def _append(self, job: BatchJob, log: ResultsLog, row: BatchRow) -> bool:
        """Store `row` and count it; False when the store failed (the batch stops)."""
        try:
            log.append(row)
        except OSError as error:
            self._storage_failed(job, error)
            return False
        self._count(job, row)
        return True

    async def _save_and_report(self, job: BatchJob, run: _RunState, row: BatchRow) -> None:
        """Save the job's counts, then show the stored row (not when the save failed)."""
        try:
            await self._save_async(job)
        except OSError as error:
            self._storage_failed(job, error)
            return
        await run.report(row)

    def _storage_failed(self, job: BatchJob, error: OSError) -> None:
        """A row or the status could not be written (a full disk): stop the batch at once."""
        if job.batch_id not in self._storage_errors:
            logger.error("Batch %s stops: %s", job.batch_id, error)
            self._storage_errors[job.batch_id] = error
        self._cancel_tasks(job.batch_id)

    async def _mark_failed(self, job: BatchJob, error: OSError) -> None:
        job.status = BatchStatus.FAILED
        job.current_stage = "failed"
        job.error_message = (
            f"The results could not be written ({error}); the {job.completed_scenarios} rows "
            "written before are kept and a resume runs the rest."
        )
        job.completed_at = now_iso()
        job.scenarios_in_progress = 0
        try:
            await self._save_async(job, force=True)
        except OSError as second:
            logger.error("Batch %s: could not record the failure either: %s", job.batch_id, second)

    def _mark_cancelled(self, job: BatchJob, reason: str) -> None:
        job.status = BatchStatus.CANCELLED
        job.current_stage = "cancelled"
        job.error_message = reason
        job.scenarios_in_progress = 0
        try:
            self._save(job, force=True)
        except OSError as error:
            logger.error("Batch %s: could not record the cancellation: %s", job.batch_id, error)

    def _cancel_tasks(self, batch_id: str) -> None:
        self._cancelled.add(batch_id)
        for task in self._tasks.get(batch_id, ()):
            task.cancel()

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: a semaphore is bound to the loop that first waits on it.
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
        return semaphore

    async def aclose(self) -> None:
        """Close the HTTP client of a wrapper this processor created itself."""
        if self._owns_wrapper:
            await self.openai.aclose()

    async def __aenter__(self) -> BatchProcessor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class _RunState:
    """Runs in flight of one execution, their stages, and progress reporting."""

    def __init__(
        self,
        job: BatchJob,
        progress_callback: ProgressCallback | None,
        on_progress: ProgressListener | None,
    ) -> None:
        self.job = job
        self.progress_callback = progress_callback
        self.on_progress = on_progress
        self.weights: dict[RowKey, float] = {}

    def stage(self, key: RowKey, weight: float | None) -> None:
        if weight is None:
            self.weights.pop(key, None)
        else:
            self.weights[key] = weight
        job = self.job
        job.scenarios_in_progress = len(self.weights)
        if self.weights:
            job.current_stage = f"processing ({len(self.weights)} active)"
        elif job.status is BatchStatus.RUNNING:
            job.current_stage = "processing_scenarios"
        if job.total_scenarios:
            progress = (job.completed_scenarios + sum(self.weights.values())) / job.total_scenarios
            job.progress_percentage = round(100 * progress, 1)

    async def report(self, row: BatchRow | None) -> None:
        job = self.job
        if self.on_progress is not None:
            event = BatchProgress(
                batch_id=job.batch_id,
                done=job.completed_scenarios,
                failed=job.failed_scenarios,
                active=len(self.weights),
                total=job.total_scenarios,
                row=row,
            )
            await _call(self.on_progress, event)
        if row is not None and self.progress_callback is not None:
            await _call(self.progress_callback, job.completed_scenarios, job.total_scenarios)


async def _call(callback: Callable[..., Any], *args: Any) -> None:
    """Call a sync or async callback; its errors are logged, never raised into the batch."""
    try:
        outcome = callback(*args)
        if inspect.isawaitable(outcome):
            await outcome
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("A batch progress callback raised; the batch goes on")


def _is_wrapper(value: Any) -> bool:
    return value is not None and not isinstance(value, str)


def _make_wrapper(value: Any, settings: Settings) -> Any:
    from conversation_engine.llm.endpoint import OpenAIWrapper

    if value is None:
        return OpenAIWrapper.from_settings(settings)
    if isinstance(value, str):
        return OpenAIWrapper(value, settings=settings)  # the legacy `openai_api_key` argument
    return value


def _timestamp(value: str | None) -> float:
    from datetime import datetime

    if not value:
        return 0.0
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value).timestamp()
    return 0.0


__all__ = ["BatchProcessor", "ProgressCallback", "ProgressListener"]
