"""One row per scenario-trial: how an engine result and its evaluation become a batch row.

The row is the legacy per-scenario result of the batch processor (legacy 7.3), keyed by status:

| status | keys |
|---|---|
| always | `scenario_index`, `scenario`, `session_id`, `status`, `total_turns` |
| `completed` / `timeout` | + `duration_seconds`, `score`, `comment`, `evaluation_status`, `start_time`, `end_time`, `conversation_history` |
| `failed_api_blocked` | not evaluated; `score` 2 if `partial_completion` else 1, a comment, `graceful_degradation` |
| `failed` | + `error`; `score` 1; `comment` "Разговор не завершен: <error>"; no history |

Additive keys on every row: `trial`, `seed`, `end_reason`, `usage`, `engine`, `prompt_version`,
`batch_id`, `duration_seconds` (also on failures, for latency statistics) and
`contract_violations` (what `contract_violations()` found in the engine's raw result). Where
they apply: `error`/`error_type` on timeouts and blocks, `partial_completion` and the partial
history on blocks, `evaluation_usage` (the evaluator's tokens). A batch run with evaluation
switched off has no `score` and `evaluation_status: "skipped"` on evaluable rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from conversation_engine.batch.evaluator import EVALUATED_STATUSES
from conversation_engine.outcome import seed_of

FAILED_STATUSES = ("failed", "failed_api_blocked")
"""Statuses that count as failed scenarios in the job counters and summaries."""
KNOWN_STATUSES = (*EVALUATED_STATUSES, *FAILED_STATUSES)

#: The legacy comment of a failed conversation; consumers match on it, keep it byte-for-byte.
FAILED_COMMENT = "Разговор не завершен: {error}"
API_BLOCKED_COMMENT = "Разговор прерван: API заблокирован по географическому признаку"
API_BLOCKED_PARTIAL_COMMENT = (
    "Разговор прерван: API заблокирован по географическому признаку; часть разговора состоялась"
)


def scenario_seed(scenario: Mapping[str, Any]) -> int:
    """The seed trial 0 runs with: the scenario's `SEED`, else one derived from its name.

    The derived seed is a stable hash (never Python's `hash()`), so every run and every engine
    of an A/B comparison gets the same one.
    """
    variables = scenario.get("variables") or {}
    seed = seed_of(dict(variables))
    if seed is not None:
        return seed
    digest = hashlib.sha256(str(scenario.get("name", "")).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def trial_scenario(scenario: Mapping[str, Any], trial: int) -> tuple[dict[str, Any], int]:
    """The scenario dict trial `trial` runs with, and its seed.

    Trial 0 keeps the scenario as it is (its own `SEED`); trial i runs with `SEED + i`. A
    scenario without a `SEED` gets the name-derived seed written into its variables, so the
    engine uses, and reports, the seed recorded on the row.
    """
    seed = scenario_seed(scenario) + trial
    variables = dict(scenario.get("variables") or {})
    has_seed = seed_of(variables) is not None
    if trial or not has_seed:
        variables.pop("seed", None)
        variables["SEED"] = seed
    return {**scenario, "variables": variables}, seed


def build_row(
    result: Mapping[str, Any],
    *,
    scenario_index: int,
    trial: int,
    seed: int,
    evaluation: Mapping[str, Any] | None,
    evaluate: bool,
    violations: list[str],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The batch row for an engine result (see the module docstring for the keys)."""
    status = str(result.get("status"))
    row: dict[str, Any] = {
        "scenario_index": scenario_index,
        "trial": trial,
        "scenario": result.get("scenario"),
        "session_id": result.get("session_id"),
        "status": status,
        "total_turns": result.get("total_turns", 0),
        "duration_seconds": result.get("duration_seconds"),
    }
    if status in EVALUATED_STATUSES:
        if evaluation is not None:
            row["score"] = evaluation.get("score")
            row["comment"] = evaluation.get("comment", "")
            row["evaluation_status"] = evaluation.get("evaluation_status")
            if evaluation.get("usage"):
                row["evaluation_usage"] = evaluation["usage"]
        elif not evaluate:
            row["evaluation_status"] = "skipped"
        row["start_time"] = result.get("start_time")
        row["end_time"] = result.get("end_time")
        row["conversation_history"] = result.get("conversation_history") or []
        for key in ("error", "error_type"):
            if key in result:
                row[key] = result[key]
    elif status == "failed_api_blocked":
        partial = bool(result.get("partial_completion"))
        row["score"] = 2 if partial else 1
        row["comment"] = API_BLOCKED_PARTIAL_COMMENT if partial else API_BLOCKED_COMMENT
        row["graceful_degradation"] = True
        row["partial_completion"] = partial
        row["error"] = result.get("error", "")
        if result.get("conversation_history"):
            row["conversation_history"] = result["conversation_history"]
    else:
        error = str(result.get("error") or f"the engine returned status '{status}'")
        row["status"] = "failed"
        row["error"] = error
        row["error_type"] = result.get("error_type", "Error")
        row["score"] = 1
        row["comment"] = FAILED_COMMENT.format(error=error)
    row["seed"] = seed
    row["end_reason"] = result.get("end_reason")
    row["usage"] = result.get("usage")
    row["contract_violations"] = violations
    row.update(extra)
    return {key: value for key, value in row.items() if value is not None}


def exception_result(
    error: BaseException, scenario: Mapping[str, Any], duration_seconds: float
) -> dict[str, Any]:
    """A `failed` result for an exception that escaped an engine (the batch goes on)."""
    return {
        "session_id": "",
        "scenario": str(scenario.get("name", "unknown")),
        "status": "failed",
        "total_turns": 0,
        "duration_seconds": round(duration_seconds, 3),
        "error": str(error) or type(error).__name__,
        "error_type": type(error).__name__,
        "end_reason": "error",
    }


def is_failed(row: Mapping[str, Any]) -> bool:
    return row.get("status") in FAILED_STATUSES
