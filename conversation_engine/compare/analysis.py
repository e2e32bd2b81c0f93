"""From the batch rows of two engines to a comparison: per-engine figures and paired differences.

Rows are paired by their key (`BatchRow.key`: scenario index and trial): both engines ran the
same scenario with the same seed. Every difference is B − A. What is measured per conversation
(read through `BatchRow`'s typed accessors):

* `score`: the evaluator's score (rows whose *evaluation* failed are left out: that is the
  evaluator's outage, not the engine's; a failed conversation keeps its legacy score 1);
* `passed`: 1 when the score is at least the pass threshold;
* `turns`, `tool_calls` (agent-side calls other than handoffs), `handoffs` (`handoff_*` calls),
  `total_tokens`, `cost_usd`, `duration_seconds`, `failed` (status `failed` or
  `failed_api_blocked`) and `contract_violations` (how many the raw result had).

A cost is unknown (`cost_usd` null: the simulated LLM, a model without a price); when any
row of either side has an unknown cost, that side's cost total is unknown (`EngineUsage`) and
the cost metric is not compared at all: no per-engine figures, no pairs, never flagged.

pass^k per scenario is the chance that all k trials of the scenario pass (`stats.pass_hat_k`).
Wall time is also compared by its p50 and p95 (the difference of the quantiles over the paired
runs). The breakdowns compare the share of each status and each end reason, and the calls per
conversation of each tool, the same way as the metrics.

Each difference gets a clustered bootstrap interval (shown) and a scenario sign-flip permutation
p-value (`stats`). Every difference of one comparison, metrics and breakdowns alike, is then
decided together: flagged when its Holm-adjusted p-value is below α = 1 − confidence and at least
`min_scenarios` scenarios were paired (`stats.decide`), so a comparison of an engine with
itself flags anything at all at most α of the time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, computed_field

from conversation_engine.batch.rows import (
    BatchRow,
    RowKey,
    RowLike,
    UsageTotals,
    as_rows,
    rows_by_key,
)
from conversation_engine.compare.stats import (
    CORRECTION,
    DEFAULT_CONFIDENCE,
    DEFAULT_PERMUTATIONS,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MIN_SCENARIOS,
    TEST,
    Distribution,
    Interval,
    alpha_of,
    decide,
    paired_bootstrap,
    paired_quantile_bootstrap,
    pass_hat_k,
    quantile,
)
from conversation_engine.compare.wording import banner_text, headline_text
from conversation_engine.core.contract import HANDOFF_PREFIX

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
DURATION_QUANTILES: tuple[tuple[Metric, float], ...] = (
    (Metric(key="duration_p50", label="Wall time p50", unit="s", better="lower"), 0.5),
    (Metric(key="duration_p95", label="Wall time p95", unit="s", better="lower"), 0.95),
)
"""Compared as the difference of the quantiles of `duration_seconds` over the paired runs."""
PASS_K_METRIC = Metric(key="pass_k", label="pass^k per scenario", better="higher")


# ------------------------------------------------------------------------------ per row


def metric_values(row: RowLike, pass_threshold: float) -> dict[str, float | None]:
    """Every metric of one conversation; None where it does not apply."""
    row = BatchRow.of(row)
    calls = row.tool_call_names()
    handoffs = sum(name.startswith(HANDOFF_PREFIX) for name in calls)
    score = row.evaluator_score
    has_history = row.has_history
    return {
        "score": score,
        "passed": None if score is None else float(score >= pass_threshold),
        "failed": float(row.is_failed),
        "turns": row.turns,
        "tool_calls": float(len(calls) - handoffs) if has_history else None,
        "handoffs": float(handoffs) if has_history else None,
        "total_tokens": row.usage_value("total_tokens"),
        "cost_usd": row.usage_value("cost_usd"),
        "duration_seconds": row.duration,
        "contract_violations": float(len(row.contract_violations)),
    }


def breakdown_metrics(rows: Sequence[RowLike]) -> list[Metric]:
    """One metric per status, per end reason and per tool seen in `rows` (both engines')."""
    rows = as_rows(rows)
    statuses = sorted({str(row.status) for row in rows})
    reasons = sorted({str(row.end_reason) for row in rows})
    tools = sorted(
        {
            name
            for row in rows
            for name in row.tool_call_names()
            if not name.startswith(HANDOFF_PREFIX)
        }
    )
    return [
        *(
            Metric(
                key=f"status:{status}",
                label=f"Share with status {status}",
                better="higher" if status == "completed" else "lower",
            )
            for status in statuses
        ),
        *(Metric(key=f"end_reason:{reason}", label=f"Share ending {reason}") for reason in reasons),
        *(Metric(key=f"tool:{tool}", label=f"{tool} calls per conversation") for tool in tools),
    ]


def breakdown_value(row: RowLike, key: str) -> float | None:
    """The value of breakdown metric `key` (`status:…`, `end_reason:…`, `tool:…`) for a row."""
    row = BatchRow.of(row)
    kind, _, name = key.partition(":")
    if kind == "status":
        return float(str(row.status) == name)
    if kind == "end_reason":
        return float(str(row.end_reason) == name)
    if kind == "tool":
        return float(row.tool_call_names().count(name)) if row.has_history else None
    raise ValueError(f"unknown breakdown metric {key!r}")


# ------------------------------------------------------------------------------ models


class PassK(BaseModel):
    k: int
    mean: float | None
    """pass^k averaged over the scenarios that have at least k trials."""
    curve: list[float | None]
    """The average pass^j for j = 1 .. k."""
    per_scenario: dict[int, float | None]


class EngineUsage(BaseModel):
    """An engine's tokens and cost (`rows.UsageTotals` of its rows), and the evaluator's tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0
    """None (`null`) when any of the engine's conversations has an unknown cost."""
    evaluation_tokens: int = 0
    """Tokens the evaluator used (not part of the engine's cost)."""

    @classmethod
    def of(cls, rows: Sequence[BatchRow]) -> EngineUsage:
        engine = UsageTotals.of(row.usage for row in rows)
        return cls(
            **engine.model_dump(exclude={"calls"}),
            evaluation_tokens=UsageTotals.of(row.evaluation_usage for row in rows).total_tokens,
        )


def portable_path(value: str | None) -> str | None:
    """A path a report may show: an absolute one (of the machine it ran on) becomes its file
    name; a relative one (to the comparison folder, or as the user typed it) stays."""
    if not value:
        return value
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute():
        return PureWindowsPath(value).name or value.strip("/\\") or None
    if value.startswith("~"):
        return PureWindowsPath(value).name or None
    return value


PortablePath = Annotated[str | None, AfterValidator(portable_path)]
"""A path as reports keep it: never absolute (`_portable_path`)."""


class EndpointInfo(BaseModel):
    """The model endpoint one side ran on: what a reader needs to judge its numbers."""

    kind: str
    """"simulated LLM (offline test double)" or "OpenAI-compatible endpoint"."""
    host: str | None = None
    """Only the host (and port) of the base URL: never its credentials, path or query."""
    model: str | None = None
    simulated: bool = False
    """The offline simulated LLM: a rule-based test double that ignores prompts."""


class EngineSummary(BaseModel):
    """What one engine did over all scenarios and trials."""

    label: str
    batch_id: str | None = None
    batch_dir: PortablePath = None
    """Relative to the comparison's folder (`batches/<id>`); never absolute."""
    endpoint: EndpointInfo | None = None
    """The model endpoint this side ran on; None when the caller did not say."""
    wall_seconds: float | None = None
    """Wall-clock time of the whole run. The harness runs both sides interleaved in one
    schedule, so both sides have the same value: the schedule's."""
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
    usage: EngineUsage
    contract_violations: int
    conversations_with_violations: int
    violation_examples: list[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def conversation_seconds(self) -> float | None:
        """The conversations' time summed (their `duration_seconds`): this side's share of
        the work, where `wall_seconds` is the one schedule both sides shared."""
        duration = self.metrics.get("duration_seconds")
        if duration is None or duration.mean is None:
            return None
        return round(duration.mean * duration.n, 3)


class MetricComparison(BaseModel):
    """One metric: both engines' figures and the paired difference B − A."""

    metric: Metric
    value_a: float | None
    """A's mean over the paired runs (its quantile, for a quantile metric). For a cost that
    is not compared (unknown on a side), each side's own mean, None where unknown."""
    value_b: float | None
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
    """How the differences were estimated and decided (recorded in `comparison.json`)."""

    resamples: int = DEFAULT_RESAMPLES
    """Bootstrap resamples of the displayed intervals."""
    confidence: float = DEFAULT_CONFIDENCE
    """Of the displayed intervals; the flags are decided at α = 1 − confidence."""
    seed: int = DEFAULT_SEED
    """Seeds the bootstrap and any drawn permutations: the same seed, the same report."""
    min_scenarios: int = MIN_SCENARIOS
    """Below this many paired scenarios a difference is never flagged."""
    permutations: int = DEFAULT_PERMUTATIONS
    """Arrangements of the permutation test: exact when 2^scenarios is at most this."""
    test: Literal["scenario sign-flip permutation"] = TEST
    """Paired permutation test, swapping A and B of whole scenarios, two-sided."""
    correction: Literal["holm"] = CORRECTION
    """Holm's step-down correction over every difference of the comparison that can be
    flagged (family-wise error rate)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alpha(self) -> float:
        """A difference is flagged when its Holm-adjusted p-value is below this."""
        return alpha_of(self.confidence)

    def estimate_options(self) -> dict[str, Any]:
        """The keyword arguments of `paired_bootstrap` and `paired_quantile_bootstrap`."""
        return self.model_dump(
            include={"resamples", "confidence", "seed", "min_scenarios", "permutations"}
        )


class Comparison(BaseModel):
    """The whole A/B comparison, as written to `comparison.json`."""

    generated_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    spec: PortablePath = None
    """The spec's name, or its path (a file name when given as an absolute path)."""
    scenarios_file: PortablePath = None
    """As given when relative, else its file name: a report shows no absolute path."""
    use_tools: bool = True
    repeat: int
    pass_threshold: float
    scenario_count: int
    bootstrap: BootstrapSettings
    a: EngineSummary
    b: EngineSummary
    paired: list[MetricComparison]
    """The metrics of `METRICS`, wall time p50 and p95, and pass^k."""
    breakdowns: list[MetricComparison] = Field(default_factory=list)
    """Share of each status and end reason, calls per conversation of each tool."""
    scenarios: list[ScenarioComparison]
    sides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """What each side ran (`sides.SideConfig.described`): engine, spec, model, endpoint host,
    the name of its key's variable, temperature and tools; empty for a bare `compare_rows`."""
    differences: list[str] = Field(default_factory=list)
    """The fields of `sides` whose values differ: what this comparison tests."""
    prompt_diffs: dict[str, str] = Field(default_factory=dict)
    """Per agent, how spec B's prompt, tools and handoffs differ from spec A's."""
    customer: str | None = None
    """Who the customer and the evaluator were (the same on both sides)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def simulated(self) -> bool:
        """Either side ran on the simulated LLM: quality metrics say nothing about prompts."""
        sides = (self.a.endpoint, self.b.endpoint)
        return any(endpoint is not None and endpoint.simulated for endpoint in sides)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def banner(self) -> str | None:
        """The warning every report shows when `simulated`, else None (`wording.banner_text`)."""
        return banner_text(self)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def headline(self) -> str:
        """The comparison in one sentence, from the flagged differences only
        (`wording.headline_text`)."""
        return headline_text(self)

    def significant(self) -> list[MetricComparison]:
        """The differences called real (metrics, then breakdowns): flagged after Holm's
        correction over all of them, see `BootstrapSettings`."""
        return [item for item in chain(self.paired, self.breakdowns) if item.difference.significant]


# ------------------------------------------------------------------------------ building


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pass_k(rows: Sequence[BatchRow], k: int, pass_threshold: float) -> PassK:
    trials: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        passed = metric_values(row, pass_threshold)["passed"]
        # A run whose evaluation failed cannot be judged; a failed conversation did not pass.
        if passed is not None:
            trials[row.key.scenario_index].append(passed)
        elif row.is_failed:
            trials[row.key.scenario_index].append(0.0)
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
    rows: Sequence[RowLike],
    label: str,
    *,
    k: int,
    pass_threshold: float,
    batch_id: str | None = None,
    batch_dir: str | None = None,
    wall_seconds: float | None = None,
    endpoint: EndpointInfo | None = None,
) -> EngineSummary:
    """The per-engine half of the comparison."""
    rows = as_rows(rows)
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
        if row.has_history:
            with_history += 1
        for name in row.tool_call_names():
            if name.startswith(HANDOFF_PREFIX):
                handoffs[name[len(HANDOFF_PREFIX) :]] += 1
            else:
                tools[name] += 1
    violations = [str(v) for row in rows for v in row.contract_violations]
    usage = EngineUsage.of(rows)
    if usage.cost_usd is None:
        metrics["cost_usd"] = Distribution.of([])  # a partial figure would mislead
    return EngineSummary(
        label=label,
        batch_id=batch_id,
        batch_dir=batch_dir,
        endpoint=endpoint,
        wall_seconds=wall_seconds,
        runs=len(rows),
        status_counts=dict(Counter(str(row.status) for row in rows)),
        end_reasons=dict(Counter(str(row.end_reason) for row in rows)),
        evaluation_failures=sum(row.evaluation_status == "failed" for row in rows),
        metrics=metrics,
        tool_calls=dict(sorted(tools.items())),
        tool_calls_per_conversation={
            name: count / with_history for name, count in sorted(tools.items()) if with_history
        },
        handoffs=dict(sorted(handoffs.items())),
        pass_k=_pass_k(rows, k, pass_threshold),
        usage=usage,
        contract_violations=len(violations),
        conversations_with_violations=sum(bool(row.contract_violations) for row in rows),
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


Pair = tuple[int, float, float]
"""`(scenario_index, value_a, value_b)` of one scenario-trial both engines ran."""


def _pairs(
    values_a: Mapping[RowKey, Mapping[str, float | None]],
    values_b: Mapping[RowKey, Mapping[str, float | None]],
    key: str,
) -> list[Pair]:
    pairs: list[Pair] = []
    for run in sorted(set(values_a) & set(values_b)):
        value_a, value_b = values_a[run][key], values_b[run][key]
        if value_a is not None and value_b is not None:
            pairs.append((run.scenario_index, value_a, value_b))
    return pairs


def _mean_comparison(
    metric: Metric, pairs: list[Pair], bootstrap: BootstrapSettings, label_a: str, label_b: str
) -> MetricComparison:
    interval = paired_bootstrap([(s, b - a) for s, a, b in pairs], **bootstrap.estimate_options())
    return MetricComparison(
        metric=metric,
        value_a=_mean([a for _, a, _ in pairs]),
        value_b=_mean([b for _, _, b in pairs]),
        difference=interval,
        verdict=_verdict(metric, interval, label_a, label_b),
    )


def _quantile_comparison(
    metric: Metric,
    q: float,
    pairs: list[Pair],
    bootstrap: BootstrapSettings,
    label_a: str,
    label_b: str,
) -> MetricComparison:
    interval = paired_quantile_bootstrap(pairs, q, **bootstrap.estimate_options())
    return MetricComparison(
        metric=metric,
        value_a=quantile([a for _, a, _ in pairs], q),
        value_b=quantile([b for _, _, b in pairs], q),
        difference=interval,
        verdict=_verdict(metric, interval, label_a, label_b),
    )


def _brief(row: BatchRow | None, pass_threshold: float) -> RunBrief | None:
    if row is None:
        return None
    values = metric_values(row, pass_threshold)
    return RunBrief(
        session_id=row.session_id,
        status=row.status,
        end_reason=row.end_reason,
        score=values["score"],
        turns=values["turns"],
        tool_calls=values["tool_calls"],
        handoffs=values["handoffs"],
        duration_seconds=values["duration_seconds"],
        violations=len(row.contract_violations),
    )


def compare_rows(
    rows_a: Sequence[RowLike],
    rows_b: Sequence[RowLike],
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
    rows_a, rows_b = as_rows(rows_a), as_rows(rows_b)
    by_a, by_b = rows_by_key(rows_a), rows_by_key(rows_b)
    trials_per_scenario: Counter[int] = Counter(key.scenario_index for key in {*by_a, *by_b})
    k = repeat or max(trials_per_scenario.values(), default=1)
    summary_a = summarize_engine(
        rows_a, label_a, k=k, pass_threshold=pass_threshold, **dict(extra_a or {})
    )
    summary_b = summarize_engine(
        rows_b, label_b, k=k, pass_threshold=pass_threshold, **dict(extra_b or {})
    )
    breakdowns = breakdown_metrics([*rows_a, *rows_b])

    def values(row: BatchRow) -> dict[str, float | None]:
        found = metric_values(row, pass_threshold)
        found.update((metric.key, breakdown_value(row, metric.key)) for metric in breakdowns)
        return found

    values_a = {key: values(row) for key, row in by_a.items()}
    values_b = {key: values(row) for key, row in by_b.items()}
    labels = (label_a, label_b)
    # An unknown cost on either side: the cost is not compared (no pairs), not partly.
    cost_known = summary_a.usage.cost_usd is not None and summary_b.usage.cost_usd is not None
    paired: list[MetricComparison] = []
    for metric in METRICS:
        if metric.key == "cost_usd" and not cost_known:
            # Each side's own figure where it is known (None: unknown), no difference.
            uncompared = _mean_comparison(metric, [], bootstrap, *labels)
            paired.append(
                uncompared.model_copy(
                    update={
                        "value_a": summary_a.metrics["cost_usd"].mean,
                        "value_b": summary_b.metrics["cost_usd"].mean,
                    }
                )
            )
            continue
        pairs = _pairs(values_a, values_b, metric.key)
        paired.append(_mean_comparison(metric, pairs, bootstrap, *labels))
        if metric.key == "duration_seconds":
            paired.extend(
                _quantile_comparison(quantile_metric, q, pairs, bootstrap, *labels)
                for quantile_metric, q in DURATION_QUANTILES
            )
    pass_a, pass_b = summary_a.pass_k.per_scenario, summary_b.pass_k.per_scenario
    pass_pairs: list[Pair] = []
    for index in sorted(set(pass_a) & set(pass_b)):
        value_a, value_b = pass_a[index], pass_b[index]
        if value_a is not None and value_b is not None:
            pass_pairs.append((index, value_a, value_b))
    pass_metric = PASS_K_METRIC.model_copy(update={"label": f"pass^{k} per scenario"})
    paired.append(_mean_comparison(pass_metric, pass_pairs, bootstrap, *labels))
    compared_breakdowns = [
        _mean_comparison(metric, _pairs(values_a, values_b, metric.key), bootstrap, *labels)
        for metric in breakdowns
    ]
    # One family: every difference the report can flag is corrected with every other.
    family = _decide_family([*paired, *compared_breakdowns], bootstrap, *labels)
    scenarios = _scenario_table(by_a, by_b, summary_a, summary_b, pass_threshold, scenario_names)
    return Comparison(
        repeat=k,
        pass_threshold=pass_threshold,
        scenario_count=len(trials_per_scenario),
        bootstrap=bootstrap,
        a=summary_a,
        b=summary_b,
        paired=family[: len(paired)],
        breakdowns=family[len(paired) :],
        scenarios=scenarios,
        **meta,
    )


def _decide_family(
    items: Sequence[MetricComparison], bootstrap: BootstrapSettings, label_a: str, label_b: str
) -> list[MetricComparison]:
    """Decide the differences together (Holm, `stats.decide`) and word their verdicts again."""
    decided = decide(
        [item.difference for item in items],
        alpha=bootstrap.alpha,
        min_scenarios=bootstrap.min_scenarios,
    )
    return [
        item.model_copy(
            update={
                "difference": interval,
                "verdict": _verdict(item.metric, interval, label_a, label_b),
            }
        )
        for item, interval in zip(items, decided, strict=True)
    ]


def _scenario_table(
    by_a: Mapping[RowKey, BatchRow],
    by_b: Mapping[RowKey, BatchRow],
    summary_a: EngineSummary,
    summary_b: EngineSummary,
    pass_threshold: float,
    scenario_names: Sequence[str] | None,
) -> list[ScenarioComparison]:
    keys = sorted({*by_a, *by_b})
    indexes = sorted({key.scenario_index for key in keys})
    table: list[ScenarioComparison] = []
    for index in indexes:
        trial_keys = [key for key in keys if key.scenario_index == index]
        rows = [row for key in trial_keys for row in (by_a.get(key), by_b.get(key)) if row]
        name = (
            scenario_names[index]
            if scenario_names is not None and 0 <= index < len(scenario_names)
            else str(rows[0].scenario if rows[0].has("scenario") else f"scenario {index}")
        )
        scores: dict[str, list[float]] = {"a": [], "b": []}
        trials: list[TrialPair] = []
        for key in trial_keys:
            row_a, row_b = by_a.get(key), by_b.get(key)
            for side, row in (("a", row_a), ("b", row_b)):
                score = row.evaluator_score if row is not None else None
                if score is not None:
                    scores[side].append(score)
            seed_source = row_a or row_b
            trials.append(
                TrialPair(
                    trial=key.trial,
                    seed=seed_source.seed if seed_source is not None else None,
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
