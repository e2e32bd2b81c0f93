"""From the batch rows of two engines to a comparison: per-engine figures and paired differences.

Rows are paired by `(scenario_index, trial)`: both engines ran the same scenario with the same
seed. Every difference is B − A. What is measured per conversation:

* `score`: the evaluator's score (rows whose *evaluation* failed are left out: that is the
  evaluator's outage, not the engine's; a failed conversation keeps its legacy score 1);
* `passed`: 1 when the score is at least the pass threshold;
* `turns`, `tool_calls` (agent-side calls other than handoffs), `handoffs` (`handoff_*` calls),
  `total_tokens`, `cost_usd`, `duration_seconds`, `failed` (status `failed` or
  `failed_api_blocked`) and `contract_violations` (how many the raw result had).

pass^k per scenario is the chance that all k trials of the scenario pass (`stats.pass_hat_k`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from conversation_engine.batch.rows import is_failed
from conversation_engine.compare.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MIN_SCENARIOS,
    Distribution,
    Interval,
    paired_bootstrap,
    pass_hat_k,
)
from conversation_engine.contract import CLIENT_SPEAKER, HANDOFF_PREFIX

Row = Mapping[str, Any]
Better = Literal["higher", "lower"] | None


class Metric(BaseModel):
    """A per-conversation quantity the comparison measures."""

    key: str
    label: str
    unit: str = ""
    better: Better = None
    """Which direction is an improvement; None when neither is (more turns is not worse)."""


METRICS: tuple[Metric, ...] = (
    Metric(key="score", label="Evaluator score (1-3)", better="higher"),
    Metric(key="passed", label="Pass rate", better="higher"),
    Metric(key="failed", label="Failure rate", better="lower"),
    Metric(key="turns", label="Turns per conversation"),
    Metric(key="tool_calls", label="Tool calls per conversation"),
    Metric(key="handoffs", label="Handoffs per conversation"),
    Metric(key="total_tokens", label="Tokens per conversation", better="lower"),
    Metric(key="cost_usd", label="Cost per conversation", unit="USD", better="lower"),
    Metric(key="duration_seconds", label="Wall time per conversation", unit="s", better="lower"),
    Metric(key="contract_violations", label="Contract violations per result", better="lower"),
)
PASS_K_METRIC = Metric(key="pass_k", label="pass^k per scenario", better="higher")


# ------------------------------------------------------------------------------ per row


def tool_calls_of(row: Row) -> list[str]:
    """Names of the agent-side tool calls of a conversation, handoffs included, in order."""
    names: list[str] = []
    for entry in row.get("conversation_history") or []:
        if not isinstance(entry, Mapping) or entry.get("speaker") == CLIENT_SPEAKER:
            continue
        for call in entry.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                names.append(function["name"])
    return names


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def score_of(row: Row) -> float | None:
    if row.get("evaluation_status") in ("failed", "skipped"):
        return None
    return _number(row.get("score"))


def metric_values(row: Row, pass_threshold: float) -> dict[str, float | None]:
    """Every metric of one conversation; None where it does not apply."""
    calls = tool_calls_of(row)
    handoffs = sum(name.startswith(HANDOFF_PREFIX) for name in calls)
    usage = row.get("usage") if isinstance(row.get("usage"), Mapping) else {}
    score = score_of(row)
    has_history = "conversation_history" in row
    return {
        "score": score,
        "passed": None if score is None else float(score >= pass_threshold),
        "failed": float(is_failed(row)),
        "turns": _number(row.get("total_turns")),
        "tool_calls": float(len(calls) - handoffs) if has_history else None,
        "handoffs": float(handoffs) if has_history else None,
        "total_tokens": _number(usage.get("total_tokens")) if usage else None,
        "cost_usd": _number(usage.get("cost_usd")) if usage else None,
        "duration_seconds": _number(row.get("duration_seconds")),
        "contract_violations": float(len(row.get("contract_violations") or [])),
    }


# ------------------------------------------------------------------------------ models


class PassK(BaseModel):
    k: int
    mean: float | None
    """pass^k averaged over the scenarios that have at least k trials."""
    curve: list[float | None]
    """The average pass^j for j = 1 .. k."""
    per_scenario: dict[int, float | None]


class UsageTotals(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    evaluation_tokens: int = 0
    """Tokens the evaluator used (not part of the engine's cost)."""


class EngineSummary(BaseModel):
    """What one engine did over all scenarios and trials."""

    label: str
    batch_id: str | None = None
    batch_dir: str | None = None
    wall_seconds: float | None = None
    """Wall-clock time of the whole batch."""
    runs: int
    status_counts: dict[str, int]
    end_reasons: dict[str, int]
    evaluation_failures: int
    metrics: dict[str, Distribution]
    tool_calls: dict[str, int]
    """Calls per tool name over all conversations (handoffs excluded)."""
    tool_calls_per_conversation: dict[str, float]
    handoffs: dict[str, int]
    """Handoffs per target agent."""
    pass_k: PassK
    usage: UsageTotals
    contract_violations: int
    conversations_with_violations: int
    violation_examples: list[str]


class MetricComparison(BaseModel):
    """One metric: both engines' means and the paired difference B − A."""

    metric: Metric
    mean_a: float | None
    mean_b: float | None
    difference: Interval
    verdict: str
    """Plain words: which engine is higher (better or worse), or "no real difference"."""


class RunBrief(BaseModel):
    session_id: str | None = None
    status: str | None = None
    end_reason: str | None = None
    score: float | None = None
    turns: float | None = None
    tool_calls: float | None = None
    handoffs: float | None = None
    duration_seconds: float | None = None
    violations: int = 0


class TrialPair(BaseModel):
    trial: int
    seed: int | None
    a: RunBrief | None
    b: RunBrief | None


class ScenarioComparison(BaseModel):
    index: int
    name: str
    pass_k_a: float | None
    pass_k_b: float | None
    score_mean_a: float | None
    score_mean_b: float | None
    trials: list[TrialPair]


class BootstrapSettings(BaseModel):
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED
    min_scenarios: int = MIN_SCENARIOS


class Comparison(BaseModel):
    """The whole A/B comparison, as written to `comparison.json`."""

    generated_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    spec: str | None = None
    scenarios_file: str | None = None
    use_tools: bool = True
    repeat: int
    pass_threshold: float
    scenario_count: int
    bootstrap: BootstrapSettings
    a: EngineSummary
    b: EngineSummary
    paired: list[MetricComparison]
    scenarios: list[ScenarioComparison]

    def significant(self) -> list[MetricComparison]:
        return [item for item in self.paired if item.difference.significant]


# ------------------------------------------------------------------------------ building


def _by_key(rows: Sequence[Row]) -> dict[tuple[int, int], Row]:
    return {(int(row.get("scenario_index", -1)), int(row.get("trial", 0))): row for row in rows}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pass_k(rows: Sequence[Row], k: int, pass_threshold: float) -> PassK:
    trials: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        passed = metric_values(row, pass_threshold)["passed"]
        # A run whose evaluation failed cannot be judged; a failed conversation did not pass.
        if passed is not None:
            trials[int(row.get("scenario_index", -1))].append(passed)
        elif is_failed(row):
            trials[int(row.get("scenario_index", -1))].append(0.0)
    per_scenario = {
        index: pass_hat_k(int(sum(results)), len(results), k)
        for index, results in sorted(trials.items())
    }
    curve: list[float | None] = []
    for j in range(1, k + 1):
        values = [pass_hat_k(int(sum(r)), len(r), j) for r in trials.values()]
        curve.append(_mean([v for v in values if v is not None]))
    known = [value for value in per_scenario.values() if value is not None]
    return PassK(k=k, mean=_mean(known), curve=curve, per_scenario=per_scenario)


def summarize_engine(
    rows: Sequence[Row],
    label: str,
    *,
    k: int,
    pass_threshold: float,
    batch_id: str | None = None,
    batch_dir: str | None = None,
    wall_seconds: float | None = None,
) -> EngineSummary:
    """The per-engine half of the comparison."""
    values = [metric_values(row, pass_threshold) for row in rows]
    metrics = {
        metric.key: Distribution.of(
            [v for v in (item[metric.key] for item in values) if v is not None]
        )
        for metric in METRICS
    }
    tools: Counter[str] = Counter()
    handoffs: Counter[str] = Counter()
    with_history = 0
    for row in rows:
        if "conversation_history" in row:
            with_history += 1
        for name in tool_calls_of(row):
            if name.startswith(HANDOFF_PREFIX):
                handoffs[name[len(HANDOFF_PREFIX) :]] += 1
            else:
                tools[name] += 1
    violations = [str(v) for row in rows for v in row.get("contract_violations") or []]
    usage = UsageTotals()
    for row in rows:
        row_usage = row.get("usage") if isinstance(row.get("usage"), Mapping) else {}
        usage.prompt_tokens += int(row_usage.get("prompt_tokens") or 0)
        usage.completion_tokens += int(row_usage.get("completion_tokens") or 0)
        usage.total_tokens += int(row_usage.get("total_tokens") or 0)
        usage.cost_usd += float(row_usage.get("cost_usd") or 0.0)
        evaluation = row.get("evaluation_usage")
        if isinstance(evaluation, Mapping):
            usage.evaluation_tokens += int(evaluation.get("total_tokens") or 0)
    return EngineSummary(
        label=label,
        batch_id=batch_id,
        batch_dir=batch_dir,
        wall_seconds=wall_seconds,
        runs=len(rows),
        status_counts=dict(Counter(str(row.get("status")) for row in rows)),
        end_reasons=dict(Counter(str(row.get("end_reason")) for row in rows)),
        evaluation_failures=sum(row.get("evaluation_status") == "failed" for row in rows),
        metrics=metrics,
        tool_calls=dict(sorted(tools.items())),
        tool_calls_per_conversation={
            name: count / with_history for name, count in sorted(tools.items()) if with_history
        },
        handoffs=dict(sorted(handoffs.items())),
        pass_k=_pass_k(rows, k, pass_threshold),
        usage=usage,
        contract_violations=len(violations),
        conversations_with_violations=sum(bool(row.get("contract_violations")) for row in rows),
        violation_examples=list(dict.fromkeys(violations))[:8],
    )


def _verdict(metric: Metric, interval: Interval, label_a: str, label_b: str) -> str:
    if not interval.significant or interval.estimate is None:
        return "no real difference"
    higher = interval.estimate > 0
    direction = "higher" if higher else "lower"
    if metric.better is None:
        return f"{label_b} {direction}"
    better = (metric.better == "higher") == higher
    return f"{label_b} {direction} ({'better' if better else 'worse'} than {label_a})"


def _paired(
    metric: Metric,
    differences: list[tuple[int, float]],
    a_values: list[float],
    b_values: list[float],
    bootstrap: BootstrapSettings,
    label_a: str,
    label_b: str,
) -> MetricComparison:
    interval = paired_bootstrap(
        differences,
        resamples=bootstrap.resamples,
        confidence=bootstrap.confidence,
        seed=bootstrap.seed,
        min_scenarios=bootstrap.min_scenarios,
    )
    return MetricComparison(
        metric=metric,
        mean_a=_mean(a_values),
        mean_b=_mean(b_values),
        difference=interval,
        verdict=_verdict(metric, interval, label_a, label_b),
    )


def _brief(row: Row | None, pass_threshold: float) -> RunBrief | None:
    if row is None:
        return None
    values = metric_values(row, pass_threshold)
    return RunBrief(
        session_id=row.get("session_id"),
        status=row.get("status"),
        end_reason=row.get("end_reason"),
        score=values["score"],
        turns=values["turns"],
        tool_calls=values["tool_calls"],
        handoffs=values["handoffs"],
        duration_seconds=values["duration_seconds"],
        violations=len(row.get("contract_violations") or []),
    )


def compare_rows(
    rows_a: Sequence[Row],
    rows_b: Sequence[Row],
    *,
    label_a: str = "A",
    label_b: str = "B",
    pass_threshold: float = 3,
    repeat: int | None = None,
    bootstrap: BootstrapSettings | None = None,
    scenario_names: Sequence[str] | None = None,
    extra_a: Mapping[str, Any] | None = None,
    extra_b: Mapping[str, Any] | None = None,
    **meta: Any,
) -> Comparison:
    """Compare two engines' batch rows of the same scenarios and seeds.

    `repeat` is k of pass^k (default: the most trials any scenario has). `extra_a`/`extra_b`
    add `batch_id`, `batch_dir`, `wall_seconds` to the engine summaries; `meta` sets
    `spec`, `scenarios_file`, `use_tools` on the comparison.
    """
    bootstrap = bootstrap or BootstrapSettings()
    by_a, by_b = _by_key(rows_a), _by_key(rows_b)
    trials_per_scenario: Counter[int] = Counter(index for index, _ in {*by_a, *by_b})
    k = repeat or max(trials_per_scenario.values(), default=1)
    summary_a = summarize_engine(
        rows_a, label_a, k=k, pass_threshold=pass_threshold, **dict(extra_a or {})
    )
    summary_b = summarize_engine(
        rows_b, label_b, k=k, pass_threshold=pass_threshold, **dict(extra_b or {})
    )
    values_a = {key: metric_values(row, pass_threshold) for key, row in by_a.items()}
    values_b = {key: metric_values(row, pass_threshold) for key, row in by_b.items()}
    paired: list[MetricComparison] = []
    for metric in METRICS:
        differences: list[tuple[int, float]] = []
        a_values: list[float] = []
        b_values: list[float] = []
        for key in sorted(set(values_a) & set(values_b)):
            value_a, value_b = values_a[key][metric.key], values_b[key][metric.key]
            if value_a is None or value_b is None:
                continue
            differences.append((key[0], value_b - value_a))
            a_values.append(value_a)
            b_values.append(value_b)
        paired.append(_paired(metric, differences, a_values, b_values, bootstrap, label_a, label_b))
    pass_a, pass_b = summary_a.pass_k.per_scenario, summary_b.pass_k.per_scenario
    common = [
        i
        for i in sorted(set(pass_a) & set(pass_b))
        if pass_a[i] is not None and pass_b[i] is not None
    ]
    pass_metric = PASS_K_METRIC.model_copy(update={"label": f"pass^{k} per scenario"})
    paired.append(
        _paired(
            pass_metric,
            [(i, pass_b[i] - pass_a[i]) for i in common],  # type: ignore[operator]
            [pass_a[i] for i in common],  # type: ignore[misc]
            [pass_b[i] for i in common],  # type: ignore[misc]
            bootstrap,
            label_a,
            label_b,
        )
    )
    scenarios = _scenario_table(by_a, by_b, summary_a, summary_b, pass_threshold, scenario_names)
    return Comparison(
        repeat=k,
        pass_threshold=pass_threshold,
        scenario_count=len(trials_per_scenario),
        bootstrap=bootstrap,
        a=summary_a,
        b=summary_b,
        paired=paired,
        scenarios=scenarios,
        **meta,
    )


def _scenario_table(
    by_a: Mapping[tuple[int, int], Row],
    by_b: Mapping[tuple[int, int], Row],
    summary_a: EngineSummary,
    summary_b: EngineSummary,
    pass_threshold: float,
    scenario_names: Sequence[str] | None,
) -> list[ScenarioComparison]:
    keys = sorted({*by_a, *by_b})
    indexes = sorted({index for index, _ in keys})
    table: list[ScenarioComparison] = []
    for index in indexes:
        trial_keys = [key for key in keys if key[0] == index]
        rows = [row for key in trial_keys for row in (by_a.get(key), by_b.get(key)) if row]
        name = (
            scenario_names[index]
            if scenario_names is not None and 0 <= index < len(scenario_names)
            else str(rows[0].get("scenario", f"scenario {index}"))
        )
        scores: dict[str, list[float]] = {"a": [], "b": []}
        trials: list[TrialPair] = []
        for key in trial_keys:
            row_a, row_b = by_a.get(key), by_b.get(key)
            for side, row in (("a", row_a), ("b", row_b)):
                score = score_of(row) if row is not None else None
                if score is not None:
                    scores[side].append(score)
            seed_source = row_a or row_b or {}
            trials.append(
                TrialPair(
                    trial=key[1],
                    seed=seed_source.get("seed"),
                    a=_brief(row_a, pass_threshold),
                    b=_brief(row_b, pass_threshold),
                )
            )
        table.append(
            ScenarioComparison(
                index=index,
                name=name,
                pass_k_a=summary_a.pass_k.per_scenario.get(index),
                pass_k_b=summary_b.pass_k.per_scenario.get(index),
                score_mean_a=_mean(scores["a"]),
                score_mean_b=_mean(scores["b"]),
                trials=trials,
            )
        )
    return table
