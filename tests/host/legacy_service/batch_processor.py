"""The service's `BatchProcessor` (reference 7.1-7.4).

For every scenario it builds a fresh `ConversationEngine(self.openai_wrapper,
job.prompt_spec_name)` and `ConversationEvaluator(self.openai_wrapper, job.prompt_spec_name)`,
never closes them, runs `run_conversation_with_tools(scenario)` (or `run_conversation` when the
job does not use tools) without `max_turns` or `timeout_sec`, evaluates `completed` and
`timeout` results, and combines everything into one result dict per scenario. All scenarios
run through `asyncio.gather(..., return_exceptions=True)` under a semaphore.

The engine class is whatever `conversation_engine_import.ConversationEngine` is when a
scenario starts: the service's `from src.conversation_engine import ConversationEngine` line
lives in that module (as the drop-in import), and tests swap the class by patching it there.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from . import conversation_engine_import
from .config import Config
from .evaluator import ConversationEvaluator
from .logging_utils import get_logger
from .openai_wrapper import OpenAIWrapper
from .persistent_storage import PersistentBatchStorage

EVALUATED_STATUSES = ("completed", "timeout")
STAGE_WEIGHTS = {"started": 0.1, "conversation": 0.4, "evaluation": 0.8, "done": 1.0}


class BatchStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class BatchJob:
    batch_id: str
    scenarios: list[dict[str, Any]]
    status: BatchStatus
    created_at: datetime
    prompt_version: str = "v1.0"
    prompt_spec_name: str = "default_prompts"
    use_tools: bool = True
    started_at: datetime | None = None
    completed_at: datetime | None = None
    total_scenarios: int = 0
    completed_scenarios: int = 0
    failed_scenarios: int = 0
    progress_percentage: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)
    error_message: str | None = None
    current_stage: str = "pending"
    scenarios_in_progress: int = 0
    # scenario index -> stage weight of the scenarios in flight
    _sub_progress: dict[int, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.total_scenarios:
            self.total_scenarios = len(self.scenarios)


class BatchProcessor:
    """Runs batches of scenarios; one shared `OpenAIWrapper` for every engine and evaluator."""

    def __init__(self, openai_api_key: str, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or Config.CONCURRENCY
        self.logger = get_logger()
        self.openai_wrapper = OpenAIWrapper(openai_api_key)
        self.persistent_storage = PersistentBatchStorage()
        self.active_jobs: dict[str, BatchJob] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        self._load_existing_batches()
        self.logger.log_info(f"BatchProcessor initialized with concurrency: {self.concurrency}")

    # ---- persistence

    def _load_existing_batches(self) -> None:
        for batch_id, data in self.persistent_storage.load_all_batches().items():
            try:
                self.active_jobs[batch_id] = BatchJob(
                    batch_id=batch_id,
                    scenarios=data.get("scenarios", []),
                    status=BatchStatus(data["status"]),
                    created_at=datetime.fromisoformat(str(data["created_at"])),
                    prompt_version=data.get("prompt_version", "v1.0"),
                    prompt_spec_name=data.get("prompt_spec_name", "default_prompts"),
                    use_tools=data.get("use_tools", True),
                    total_scenarios=data.get("total_scenarios", 0),
                    completed_scenarios=data.get("completed_scenarios", 0),
                    failed_scenarios=data.get("failed_scenarios", 0),
                    progress_percentage=data.get("progress_percentage", 0.0),
                    results=data.get("results", []),
                    error_message=data.get("error_message"),
                    current_stage=data.get("current_stage", "pending"),
                )
            except (KeyError, ValueError) as error:
                self.logger.log_error(
                    "Failed to load a stored batch", error, {"batch_id": batch_id}
                )

    def _save(self, job: BatchJob) -> None:
        try:
            self.persistent_storage.save_batch_metadata(
                {
                    "batch_id": job.batch_id,
                    "scenarios": job.scenarios,
                    "status": job.status.value,
                    "created_at": job.created_at.isoformat(),
                    "prompt_version": job.prompt_version,
                    "prompt_spec_name": job.prompt_spec_name,
                    "use_tools": job.use_tools,
                    "started_at": job.started_at.isoformat() if job.started_at else None,
                    "completed_at": job.completed_at.isoformat() if job.completed_at else None,
                    "total_scenarios": job.total_scenarios,
                    "completed_scenarios": job.completed_scenarios,
                    "failed_scenarios": job.failed_scenarios,
                    "progress_percentage": job.progress_percentage,
                    "results": job.results,
                    "error_message": job.error_message,
                    "current_stage": job.current_stage,
                    "scenarios_in_progress": job.scenarios_in_progress,
                }
            )
        except Exception as error:
            self.logger.log_error("Failed to save batch", error, {"batch_id": job.batch_id})

    # ---- jobs

    def create_batch_job(
        self,
        scenarios: list[dict[str, Any]],
        prompt_version: str = "v1.0",
        use_tools: bool = True,
        prompt_spec_name: str = "default_prompts",
    ) -> str:
        batch_id = str(uuid.uuid4())
        job = BatchJob(
            batch_id=batch_id,
            scenarios=scenarios,
            status=BatchStatus.PENDING,
            created_at=datetime.now(),
            prompt_version=prompt_version,
            prompt_spec_name=prompt_spec_name,
            use_tools=use_tools,
            total_scenarios=len(scenarios),
        )
        self.active_jobs[batch_id] = job
        self._save(job)
        self.logger.log_info(
            "Created batch job", {"batch_id": batch_id, "total_scenarios": len(scenarios)}
        )
        return batch_id

    def get_batch_status(self, batch_id: str) -> dict[str, Any] | None:
        job = self.active_jobs.get(batch_id)
        if job is None:
            return None
        return {
            "batch_id": batch_id,
            "status": job.status.value,
            "prompt_version": job.prompt_version,
            "prompt_spec_name": job.prompt_spec_name,
            "use_tools": job.use_tools,
            "progress": job.progress_percentage,
            "total_scenarios": job.total_scenarios,
            "completed_scenarios": job.completed_scenarios,
            "failed_scenarios": job.failed_scenarios,
            "current_stage": job.current_stage,
            "scenarios_in_progress": job.scenarios_in_progress,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "completed_at": job.completed_at.isoformat() if job.completed_at else None,
            "error_message": job.error_message,
        }

    def get_batch_results(self, batch_id: str) -> list[dict[str, Any]] | None:
        job = self.active_jobs.get(batch_id)
        return job.results if job is not None else None

    def cancel_batch(self, batch_id: str) -> bool:
        job = self.active_jobs.get(batch_id)
        if job is None or job.status not in (BatchStatus.PENDING, BatchStatus.RUNNING):
            return False
        job.status = BatchStatus.CANCELLED
        job.completed_at = datetime.now()
        self._save(job)
        return True

    def cleanup_completed_jobs(self, max_age_hours: int = 24) -> int:
        cutoff = datetime.now() - timedelta(hours=max_age_hours)
        finished = (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)
        old = [
            batch_id
            for batch_id, job in self.active_jobs.items()
            if job.status in finished and job.completed_at and job.completed_at < cutoff
        ]
        for batch_id in old:
            del self.active_jobs[batch_id]
            self.persistent_storage.delete_batch(batch_id)
        return len(old)

    # ---- running

    def _get_semaphore(self) -> asyncio.Semaphore:
        """The concurrency cap, rebuilt when the batch runs on another event loop."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._semaphore_loop = loop
        return self._semaphore

    async def run_batch(
        self, batch_id: str, progress_callback: Callable[..., Any] | None = None
    ) -> dict[str, Any]:
        job = self.active_jobs.get(batch_id)
        if job is None:
            raise ValueError(f"Batch job {batch_id} not found")
        if job.status != BatchStatus.PENDING:
            raise ValueError(f"Batch job {batch_id} is not in pending status")
        # The batch's own token log, `tokens_<ts>_<batch id>.log`, which get_cost_estimate reads.
        self.logger = get_logger(batch_id)
        job.status = BatchStatus.RUNNING
        job.started_at = datetime.now()
        job.current_stage = "initializing"
        self._save(job)
        semaphore = self._get_semaphore()
        lock = asyncio.Lock()
        try:
            job.current_stage = "processing_scenarios"
            tasks = [
                self._process_single_scenario(
                    job, index, scenario, semaphore, lock, progress_callback
                )
                for index, scenario in enumerate(job.scenarios)
            ]
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            job.current_stage = "finalizing"
            results: list[dict[str, Any]] = []
            failed = 0
            for index, outcome in enumerate(outcomes):
                if isinstance(outcome, BaseException):
                    self.logger.log_error(
                        f"Scenario {index} failed", outcome, {"batch_id": batch_id}
                    )
                    failed += 1
                    results.append(
                        {
                            "scenario_index": index,
                            "scenario": job.scenarios[index].get("name", f"scenario_{index}"),
                            "session_id": None,
                            "status": "failed",
                            "total_turns": 0,
                            "error": str(outcome),
                            "score": 1,
                            "comment": f"Ошибка обработки: {outcome}",
                        }
                    )
                else:
                    if outcome["status"] != "completed":
                        failed += 1
                    results.append(outcome)
            job.results = results
            job.failed_scenarios = failed
            job.completed_scenarios = len(results)
            job.progress_percentage = 100.0
            job.status = BatchStatus.COMPLETED
            job.current_stage = "completed"
            job.completed_at = datetime.now()
            self._save(job)
            duration = (job.completed_at - job.started_at).total_seconds()
            return {
                "batch_id": batch_id,
                "status": "completed",
                "total_scenarios": job.total_scenarios,
                "successful_scenarios": len(results) - failed,
                "failed_scenarios": failed,
                "duration_seconds": duration,
                "results": results,
            }
        except Exception as error:
            job.status = BatchStatus.FAILED
            job.current_stage = "failed"
            job.error_message = str(error)
            job.completed_at = datetime.now()
            self._save(job)
            self.logger.log_error("Batch processing failed", error, {"batch_id": batch_id})
            raise

    async def _set_stage(self, job: BatchJob, index: int, stage: str, lock: asyncio.Lock) -> None:
        async with lock:
            job._sub_progress[index] = STAGE_WEIGHTS[stage]
            job.scenarios_in_progress = sum(1 for w in job._sub_progress.values() if w < 1.0)
            job.current_stage = f"processing ({job.scenarios_in_progress} active)"
            job.progress_percentage = (
                100.0 * sum(job._sub_progress.values()) / max(job.total_scenarios, 1)
            )
            self._save(job)

    async def _process_single_scenario(
        self,
        job: BatchJob,
        index: int,
        scenario: dict[str, Any],
        semaphore: asyncio.Semaphore,
        lock: asyncio.Lock,
        progress_callback: Callable[..., Any] | None,
    ) -> dict[str, Any]:
        async with semaphore:
            name = scenario.get("name", f"scenario_{index}")
            await self._set_stage(job, index, "started", lock)
            engine = conversation_engine_import.ConversationEngine(
                self.openai_wrapper, job.prompt_spec_name
            )
            evaluator = ConversationEvaluator(self.openai_wrapper, job.prompt_spec_name)
            await self._set_stage(job, index, "conversation", lock)
            if job.use_tools:
                result = await engine.run_conversation_with_tools(scenario)
            else:
                result = await engine.run_conversation(scenario)
            status = result.get("status")
            combined: dict[str, Any] = {
                "scenario_index": index,
                "scenario": name,
                "session_id": result.get("session_id"),
                "status": status,
                "total_turns": result.get("total_turns", 0),
            }
            if status in EVALUATED_STATUSES:
                await self._set_stage(job, index, "evaluation", lock)
                evaluation = await evaluator.evaluate_conversation(result)
                combined.update(
                    {
                        "duration_seconds": result.get("duration_seconds"),
                        "score": evaluation.get("score"),
                        "comment": evaluation.get("comment"),
                        "evaluation_status": evaluation.get("evaluation_status"),
                        "start_time": result.get("start_time"),
                        "end_time": result.get("end_time"),
                        "conversation_history": result.get("conversation_history"),
                    }
                )
            elif status == "failed_api_blocked":
                partial = bool(result.get("partial_completion"))
                combined.update(
                    {
                        "score": 2 if partial else 1,
                        "comment": (
                            "Разговор прерван: OpenAI API заблокирован по географическому "
                            "признаку" + (" (частично выполнен)" if partial else "")
                        ),
                        "graceful_degradation": True,
                    }
                )
            else:
                error = result.get("error", "неизвестная ошибка")
                combined.update(
                    {
                        "status": "failed",
                        "error": error,
                        "score": 1,
                        "comment": f"Разговор не завершен: {error}",
                    }
                )
            await self._set_stage(job, index, "done", lock)
            async with lock:
                done = sum(1 for weight in job._sub_progress.values() if weight >= 1.0)
            if progress_callback is not None:
                outcome = progress_callback(done, job.total_scenarios)
                if inspect.isawaitable(outcome):
                    await outcome
            return combined
