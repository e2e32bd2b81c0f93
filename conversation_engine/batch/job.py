"""The batch job model (legacy `BatchJob`/`BatchStatus`) and the progress event.

A job counts *runs*: with `repeat=k` each scenario runs k times (trials), so
`total_scenarios` is `len(scenarios) * repeat` and the counters move once per scenario-trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversation_engine.batch.rows import BatchRow


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
    `results` (`BatchRow`s, in finishing order) lives in memory only; on disk the rows are in
    `results.ndjson`.
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
    results: list[BatchRow] = Field(default_factory=list, exclude=True)
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
