"""The CI gate of `compare --fail-on`: B worse than A, by the report's own decision rule.

A metric fails the gate only when the comparison *flags* it (the scenario-level permutation
test, Holm-corrected over the whole report, with enough scenarios: see `analysis`) and the
flagged difference goes the bad way for B. So the gate never fails on noise the report itself
would not call real, and it cannot be tuned to a laxer rule than the report's.
"""

from __future__ import annotations

from collections.abc import Iterable

from conversation_engine.compare.analysis import Comparison, MetricComparison
from conversation_engine.compare.wording import metric_value
from conversation_engine.core.errors import UserInputError

#: Names `--fail-on` accepts, and the metric each means.
GATE_METRICS: dict[str, str] = {
    "score": "score",
    "pass_rate": "passed",
    "failure_rate": "failed",
    "pass_k": "pass_k",
    "contract_violations": "contract_violations",
    "tokens": "total_tokens",
    "cost": "cost_usd",
    "wall_time": "duration_seconds",
    "wall_time_p50": "duration_p50",
    "wall_time_p95": "duration_p95",
}

#: What `--fail-on regression` means: every quality metric, none of time or cost (a prompt
#: change that is slower but better should not fail a pull request by default).
REGRESSION = ("score", "pass_rate", "failure_rate", "pass_k", "contract_violations")

#: Exit code of `compare` when the gate fails.
GATE_FAILED_EXIT_CODE = 3


def parse_fail_on(text: str) -> list[str]:
    """The metric names of a `--fail-on` value (`regression`, or names separated by commas);
    a `UserInputError` naming the known names for anything else."""
    names: list[str] = []
    for part in (item.strip() for item in text.split(",")):
        if not part:
            continue
        if part == "regression":
            names.extend(REGRESSION)
        elif part in GATE_METRICS:
            names.append(part)
        else:
            known = ", ".join(["regression", *GATE_METRICS])
            raise UserInputError(f"--fail-on: unknown metric '{part}'; use one of: {known}.")
    if not names:
        raise UserInputError("--fail-on needs 'regression' or at least one metric name.")
    return list(dict.fromkeys(names))


def gate_failures(comparison: Comparison, names: Iterable[str]) -> list[str]:
    """One sentence per named metric on which B is flagged as worse than A; empty: it passes."""
    by_key = {item.metric.key: item for item in comparison.paired}
    failures = []
    for name in names:
        item = by_key.get(GATE_METRICS[name])
        if item is not None and _flagged_worse(item):
            failures.append(_sentence(name, item, comparison))
    return failures


def _flagged_worse(item: MetricComparison) -> bool:
    estimate = item.difference.estimate
    if not item.difference.significant or estimate is None or item.metric.better is None:
        return False
    return estimate < 0 if item.metric.better == "higher" else estimate > 0


def _sentence(name: str, item: MetricComparison, comparison: Comparison) -> str:
    adjusted = item.difference.adjusted_p
    evidence = f" (adjusted p = {adjusted:.2g})" if adjusted is not None else ""
    value_b = metric_value(item.metric, item.value_b, unit=True)
    value_a = metric_value(item.metric, item.value_a, unit=True)
    return (
        f"{name}: {comparison.b.label} is worse than {comparison.a.label}, "
        f"{value_b} against {value_a}{evidence}."
    )
