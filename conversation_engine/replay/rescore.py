"""Scoring a stored batch again: the evaluator only, over the transcripts already stored.

A new evaluator prompt (a spec's `evaluator` agent) or a new model is tried on conversations
that cost money to produce without producing them again. The scores go to a rescore file
beside the batch (`<batch dir>/rescores/<time>.ndjson`, one line per row, each appended and
`fsync`ed as it is scored), not into the batch itself: the batch keeps the scores its run gave,
and several rescores (one per prompt or model tried) sit side by side, each naming its spec
and model. Only rows the evaluator scores at all (completed and timed-out conversations) are
scored again; each line holds the old score next to the new one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from conversation_engine.batch.evaluator import EVALUATED_STATUSES, ConversationEvaluator
from conversation_engine.batch.rows import trial_scenario
from conversation_engine.batch.storage import ResultStorage
from conversation_engine.core._safe_text import json_dumps
from conversation_engine.core.call_context import ConversationRef, in_conversation

RESCORES_DIR = "rescores"


class RescoreSummary(BaseModel):
    """What a rescore did: where its scores are and how they moved."""

    batch_id: str
    path: Path
    rescored: int
    changed: int
    failed: int
    old_mean: float | None
    new_mean: float | None


async def rescore_batch(
    batch_id: str,
    storage: ResultStorage,
    evaluator: ConversationEvaluator,
    *,
    concurrency: int = 4,
    label: Mapping[str, Any] | None = None,
) -> RescoreSummary:
    """Score every evaluable row of a stored batch again with `evaluator`.

    `label`: what to note on every line about this rescore (the spec, the model).
    """
    rows = [
        row for row in storage.read_results(batch_id) if row.get("status") in EVALUATED_STATUSES
    ]
    scenarios = storage.load_scenarios(batch_id)
    directory = storage.batch_dir(batch_id) / RESCORES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.ndjson"
    gate = asyncio.Semaphore(max(1, concurrency))
    scored: list[tuple[Any, Any, str | None]] = []
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    async def score(row: dict[str, Any]) -> None:
        index, trial = int(row.get("scenario_index", -1)), int(row.get("trial") or 0)
        variables: Any = None
        if 0 <= index < len(scenarios):
            variables = trial_scenario(scenarios[index], trial)[0].get("variables")
        async with gate:
            ref = ConversationRef(scenario=str(row.get("scenario") or index), trial=trial)
            with in_conversation(ref):
                evaluation = await evaluator.evaluate_conversation(row, variables)
        line = {
            "scenario_index": index,
            "trial": trial,
            "scenario": row.get("scenario"),
            "session_id": row.get("session_id"),
            "old_score": row.get("score"),
            "score": evaluation.get("score"),
            "comment": evaluation.get("comment"),
            "evaluation_status": evaluation.get("evaluation_status"),
            "evaluation_usage": evaluation.get("usage"),
            **dict(label or {}),
        }
        os.write(fd, (json_dumps(line) + "\n").encode("utf-8"))
        os.fsync(fd)
        scored.append((row.get("score"), evaluation.get("score"), line["evaluation_status"]))

    try:
        await asyncio.gather(*(score(row) for row in rows))
    finally:
        os.close(fd)
    return RescoreSummary(
        batch_id=batch_id,
        path=path,
        rescored=len(scored),
        changed=sum(1 for old, new, _ in scored if old != new),
        failed=sum(1 for _, _, status in scored if status != "success"),
        old_mean=_mean(old for old, _, _ in scored),
        new_mean=_mean(new for _, new, _ in scored),
    )


def _mean(values: Any) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(numbers) / len(numbers) if numbers else None
