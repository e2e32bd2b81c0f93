"""One row per scenario-trial: how an engine result and its evaluation become a batch row.

The row is the legacy per-scenario result of the batch processor (legacy 7.3), keyed by status:

| status | keys |
|---|---|
| always | `scenario_index`, `scenario`, `session_id`, `status`, `total_turns` |
| `completed` / `timeout` | + `duration_seconds`, `score`, `comment`, `evaluation_status`, `start_time`, `end_time`, `conversation_history` |
| `failed_api_blocked` | not evaluated; `score` 2 if `partial_completion` else 1, a comment, `graceful_degradation` |
| `failed` | + `error`; `score` 1; `comment` "Разговор не завершен: <error>"; no `conversation_history` |

Additive keys on every row: `trial`, `seed`, `end_reason`, `usage`, `engine`, `prompt_version`,
`batch_id`, `duration_seconds` (also on failures, for latency statistics) and
`contract_violations` (what `contract_violations()` found in the engine's raw result). Where
they apply: `error`/`error_type` on timeouts and blocks, `partial_completion` and the partial
history on blocks, `partial_history` on `failed` rows (what the engine's result kept, when
it kept anything), `evaluation_usage` (the evaluator's tokens). A batch run with evaluation
switched off has no `score` and `evaluation_status: "skipped"` on evaluable rows.

`BatchRow` is that row, typed: the key, status, scores, usage and the rest as fields, other keys
(the legacy combined-result keys, the contract's additive keys) kept as extras. It keeps the
keys in the order they came and only the keys that were there, so a row read back and written
again is the same bytes. Values an engine returned (`total_turns`, `usage`, the history, ...)
are kept exactly as they came, whatever their type (an engine may break the contract, its row
must still be stored); the typed accessors (`turns`, `duration`, `usage_value`,
`tool_call_names`, ...) read them safely. `UsageTotals` adds up usage, for every summary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_serializer, model_validator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from conversation_engine.batch.evaluator import EVALUATED_STATUSES
from conversation_engine.core.contract import CLIENT_SPEAKER, EndReason
from conversation_engine.core.outcome import seed_of

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


def number(value: Any) -> float | None:
    """`value` as a float if it is a number (a bool is not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _cost(value: Any) -> float | None:
    """A usage object's `cost_usd` as a number (a numeric string too); None: unknown."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


class UsageTotals(BaseModel):
    """Usage added up over conversations (or evaluations): the one place usage is summed.

    Each usage is a row's `usage` or `evaluation_usage` object; anything else adds nothing, and
    so does a count that is not a number. A usage object whose `cost_usd` is not a number
    (null: the simulated LLM or a model without a price; missing; junk) has an unknown cost,
    and then so has the total: `cost_usd` None, never a partial sum.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0
    """Estimated cost in USD; None (`null`) when any usage added had an unknown cost."""

    def add(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        self.calls += _count(usage.get("calls"))
        self.prompt_tokens += _count(usage.get("prompt_tokens"))
        self.completion_tokens += _count(usage.get("completion_tokens"))
        self.total_tokens += _count(usage.get("total_tokens"))
        cost = _cost(usage.get("cost_usd"))
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def plus(self, other: UsageTotals) -> UsageTotals:
        """Both totals added up (e.g. a batch's conversations and its evaluations); the cost is
        unknown if either is."""
        total = self.model_copy()
        total.add(other.model_dump())
        return total

    @classmethod
    def of(cls, usages: Iterable[Any]) -> UsageTotals:
        total = cls()
        for usage in usages:
            total.add(usage)
        return total


class RowKey(NamedTuple):
    """What identifies a row within its batch; in a comparison it pairs the two engines' rows
    (both ran the same scenario with the same seed)."""

    scenario_index: int
    trial: int


class BatchRow(BaseModel):
    """One row of a batch (the keys by status are in the module docstring).

    Only the keys a row was given are stored, in the order given (`to_dict`); keys not
    declared here are kept as extras. Values that come from the engine's result are `Any`:
    they are stored as the engine returned them, and read through the typed accessors.
    """

    model_config = ConfigDict(extra="allow")

    scenario_index: int = -1
    """The scenario's position in the batch; with `trial`, the row's `key`."""
    trial: int = 0
    scenario: Any = None
    """The scenario's name, as the engine reported it."""
    session_id: Any = None
    status: str | None = None
    """One of `KNOWN_STATUSES`: an engine's unknown status is stored as `failed`."""
    total_turns: Any = None
    duration_seconds: Any = None
    score: int | float | None = None
    comment: str | None = None
    evaluation_status: str | None = None
    """`success`, `failed` (the evaluator's outage or an unreadable answer) or `skipped`."""
    evaluation_usage: dict[str, Any] | None = None
    start_time: Any = None
    end_time: Any = None
    conversation_history: Any = None
    error: Any = None
    error_type: Any = None
    graceful_degradation: bool | None = None
    partial_completion: bool | None = None
    seed: int | None = None
    end_reason: Any = None
    usage: Any = None
    """The engine's usage object (`calls`, `prompt_tokens`, ..., `cost_usd`)."""
    contract_violations: list[str] = Field(default_factory=list)
    engine: str | None = None
    prompt_version: str | None = None
    batch_id: str | None = None

    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _keep_key_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        row = handler(data)
        if isinstance(data, Mapping) and isinstance(row, BatchRow):
            row._order = tuple(data)
        return row

    @model_serializer(mode="wrap")
    def _only_given_keys(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {name: data[name] for name in self.to_dict() if name in data}

    @classmethod
    def of(cls, row: BatchRow | Mapping[str, Any]) -> BatchRow:
        """`row` as a `BatchRow` (a plain dict row is validated)."""
        return row if isinstance(row, BatchRow) else cls.model_validate(dict(row))

    def to_dict(self) -> dict[str, Any]:
        """The row as stored and exported: the keys it was given, in their order, values as
        they are (a new dict; the values are not copied)."""
        fields = self.__dict__
        extra = self.__pydantic_extra__ or {}
        given = self.model_fields_set
        names = dict.fromkeys((*self._order, *type(self).model_fields, *extra))
        return {
            name: extra[name] if name in extra else fields[name]
            for name in names
            if name in extra or (name in given and name in fields)
        }

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """`dict(row)` is `row.to_dict()`: the given keys only, in their order."""
        return iter(self.to_dict().items())

    # ------------------------------------------------------------------ typed reading

    @property
    def key(self) -> RowKey:
        return RowKey(self.scenario_index, self.trial)

    @property
    def is_failed(self) -> bool:
        """Status `failed` or `failed_api_blocked` (a timeout produced a conversation)."""
        return self.status in FAILED_STATUSES

    @property
    def turns(self) -> float | None:
        return number(self.total_turns)

    @property
    def duration(self) -> float | None:
        return number(self.duration_seconds)

    @property
    def evaluator_score(self) -> float | None:
        """The score, unless the evaluation failed or was skipped (an evaluator's outage is not
        the engine's doing; a failed conversation keeps its legacy score)."""
        if self.evaluation_status in ("failed", "skipped"):
            return None
        return number(self.score)

    def has(self, name: str) -> bool:
        """Whether the row was given the key `name` (a key with a null value counts)."""
        return name in self.model_fields_set

    @property
    def has_history(self) -> bool:
        return self.has("conversation_history")

    @property
    def history(self) -> list[Mapping[str, Any]]:
        """The history entries that are objects."""
        return [entry for entry in self.conversation_history or [] if isinstance(entry, Mapping)]

    def tool_call_names(self) -> list[str]:
        """Names of the agent-side tool calls, handoffs included, in order."""
        names: list[str] = []
        for entry in self.history:
            if entry.get("speaker") == CLIENT_SPEAKER:
                continue
            for call in entry.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                    names.append(function["name"])
        return names

    @property
    def usage_object(self) -> Mapping[str, Any]:
        """`usage` if it is an object, else empty."""
        return self.usage if isinstance(self.usage, Mapping) else {}

    def usage_value(self, name: str) -> float | None:
        """A number from `usage` (`total_tokens`, `cost_usd`, ...); None if there is none."""
        usage = self.usage_object
        return number(usage.get(name)) if usage else None


RowLike = BatchRow | Mapping[str, Any]
"""A `BatchRow`, or a row as the plain dict the legacy API hands out (functions take both)."""


def as_rows(rows: Iterable[RowLike]) -> list[BatchRow]:
    """Rows as `BatchRow`s (plain dict rows, as the legacy API hands them out, are validated)."""
    return [BatchRow.of(row) for row in rows]


def in_key_order(rows: Iterable[RowLike]) -> list[BatchRow]:
    """Rows in scenario order, trials in order (a log holds them in finishing order)."""
    return sorted(as_rows(rows), key=lambda row: row.key)


def rows_by_key(rows: Iterable[RowLike]) -> dict[RowKey, BatchRow]:
    """Rows by their key (a later row with the same key replaces an earlier one)."""
    return {row.key: row for row in as_rows(rows)}


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
) -> BatchRow:
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
        # Not the legacy's: where the conversation got to, for whoever debugs the failure. A
        # key of its own, so that readers of `conversation_history` (the metrics of `compare`,
        # the evaluator, the legacy's consumers) still find none on a failed row.
        if result.get("conversation_history"):
            row["partial_history"] = result["conversation_history"]
    row["seed"] = seed
    row["end_reason"] = result.get("end_reason")
    row["usage"] = result.get("usage")
    row["contract_violations"] = violations
    row.update(extra)
    return BatchRow.model_validate({key: value for key, value in row.items() if value is not None})


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
        "end_reason": EndReason.ERROR.value,
    }
