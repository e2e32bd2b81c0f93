"""The batch job model (legacy `BatchJob`/`BatchStatus`), the progress event, and the rule
that a resumed batch keeps its options (`check_resume_options`).

A job counts *runs*: with `repeat=k` each scenario runs k times (trials), so
`total_scenarios` is `len(scenarios) * repeat` and the counters move once per scenario-trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversation_engine.batch.rows import BatchRow
from conversation_engine.core.errors import UserInputError
from conversation_engine.engines import engine_label, resolve_engine


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchJob(BaseModel):
    """One batch: its scenarios, options, state and counters.

    Persisted as `batch.json` (options, state, counters: small, whatever the batch size) and
    `scenarios.json` (the scenarios, written once); `scenarios` is not part of the dump.

    `current_stage` goes `pending` → `initializing` → `processing_scenarios` →
    `processing (N active)` → `finalizing` → `completed` (or `failed` / `cancelled`).
    The rows are not part of the job, in memory or in `batch.json`: each finished run's row
    goes to `results.ndjson` at once and is read back from there (`ResultStorage.iter_rows`),
    so a job's memory does not grow with its batch.
    """

    batch_id: str
    scenarios: list[dict[str, Any]] = Field(exclude=True)
    status: BatchStatus = BatchStatus.PENDING
    created_at: str
    prompt_version: str = "v1.0"
    prompt_spec_name: str = "default_prompts"
    use_tools: bool = True
    started_at: str | None = None
    completed_at: str | None = None
    total_scenarios: int = 0
    """Runs in the batch: scenarios × repeat."""
    completed_scenarios: int = 0
    """Runs finished, whatever their status."""
    failed_scenarios: int = 0
    """Runs finished as `failed` or `failed_api_blocked`."""
    progress_percentage: float = 0.0
    error_message: str | None = None
    current_stage: str = "pending"
    scenarios_in_progress: int = 0
    # Additions to the legacy job: how the runs are made, so a resume repeats them exactly.
    engine: str = "autogen"
    """`autogen`, `legacy` or `package.module:Class`."""
    repeat: int = Field(default=1, ge=1)
    max_turns: int | None = None
    timeout_sec: float | None = None
    evaluate: bool = True
    resumed_count: int = 0
    """How many times the batch was resumed."""

    @property
    def successful_scenarios(self) -> int:
        return self.completed_scenarios - self.failed_scenarios

    def status_dict(self) -> dict[str, Any]:
        """The job as the legacy status API showed it: everything but scenarios and results."""
        data = self.model_dump(mode="json", exclude={"scenarios"})
        data["successful_scenarios"] = self.successful_scenarios
        return data


@dataclass(frozen=True)
class BatchProgress:
    """A progress event: runs done (of which failed), running now, and the total."""

    batch_id: str
    done: int
    failed: int
    active: int
    total: int
    row: BatchRow | None = None
    """The row that just finished, if the event is for a finished run."""


def check_resume_options(
    job: dict[str, Any],
    batch_id: str,
    *,
    engine: str | None = None,
    spec: str | None = None,
    repeat: int | None = None,
    max_turns: int | None = None,
    timeout: float | None = None,
    basic: bool = False,
    no_eval: bool = False,
) -> None:
    """Refuse options that conflict with the ones a batch was started with.

    `job` is the stored job (`ResultStorage.load_job`); the keyword arguments are what the
    user gave for the resume (`None`/`False`: not given). A resumed batch keeps its engine,
    spec, repeat, max turns, timeout, mode and evaluation, so giving any of them with another
    value raises `UserInputError` naming each conflict by its command-line option. `engine`
    is resolved first, so a bad one raises as `resolve_engine` does.
    """
    given: dict[str, Any] = {
        "--engine": engine_label(resolve_engine(engine)) if engine is not None else None,
        "--spec": spec,
        "--repeat": repeat,
        "--max-turns": max_turns,
        "--timeout": timeout,
    }
    stored = {
        "--engine": job.get("engine"),
        "--spec": job.get("prompt_spec_name"),
        "--repeat": job.get("repeat"),
        "--max-turns": job.get("max_turns"),
        "--timeout": job.get("timeout_sec"),
    }
    conflicts = [
        f"{option} {given[option]} (the batch has {stored[option]})"
        for option in stored
        if given[option] is not None and given[option] != stored[option]
    ]
    if basic and job.get("use_tools", True):
        conflicts.append("--basic (the batch runs in tools mode)")
    if no_eval and job.get("evaluate", True):
        conflicts.append("--no-eval (the batch evaluates)")
    if conflicts:
        raise UserInputError(
            f"--resume continues batch {batch_id} with the options it was started with; drop "
            f"{', '.join(conflicts)}."
        )
