"""The words and numbers of a comparison: how values, differences and intervals are written
for people, the banner of a simulated run, the one-sentence headline and the method, and
what the comparison tests (the fields of its sides that differ).

Shared by `analysis` (which stores the banner and headline in `comparison.json`) and `report`
(which renders them); it needs nothing of either at run time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conversation_engine.compare.analysis import (
        Comparison,
        EngineSummary,
        Metric,
        MetricComparison,
    )


# ------------------------------------------------------------------------------ numbers


def fmt(value: Any, digits: int = 2) -> str:
    """A number for people: no trailing zeros, "–" for none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 10 ** (-digits):
            return f"{value:.{digits}g}"
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def signed(value: Any, digits: int = 2) -> str:
    text = fmt(value, digits)
    return f"+{text}" if isinstance(value, int | float) and value > 0 else text


def number(value: float | None, digits: int = 3, *, sign: bool = False) -> str:
    """`value` to `digits` significant digits (whole numbers stay whole), thousands separated,
    no trailing zeros; "–" for none; a leading "+" for a positive value when `sign`."""
    if value is None or isinstance(value, bool):
        return "–"
    if not math.isfinite(value):
        return str(value)
    text = "0"
    if value != 0:
        magnitude = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - magnitude)
        text = f"{round(value, decimals):,.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text in ("-0", "0"):
            text = "0"
    return f"+{text}" if sign and text != "0" and value > 0 else text


UNKNOWN_COST = "unknown"
"""How a cost that is not known (the simulated LLM, a model without a price) is written: never
"–" (which reads as "nothing") nor 0."""


def cost(value: float | None) -> str:
    """A cost in USD for people, as `number`; `UNKNOWN_COST` for an unknown (None) cost."""
    return UNKNOWN_COST if value is None else number(value)


def seconds(value: float | None) -> str:
    """A duration for people: "0.523 s", "42.1 s", "3 min 05 s", "1 h 02 min"."""
    if value is None:
        return "–"
    if value < 60:
        return f"{number(value)} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


_UNITS = {"total_tokens": "tokens"}
"""Units the metric definitions leave implicit."""


def is_rate(metric: Metric) -> bool:
    """A share or probability, shown in % (and its differences in percentage points)."""
    return metric.key in ("passed", "failed", "pass_k") or metric.key.startswith(
        ("status:", "end_reason:")
    )


def unit_of(metric: Metric) -> str:
    return "%" if is_rate(metric) else metric.unit or _UNITS.get(metric.key, "")


def metric_value(metric: Metric, value: float | None, *, unit: bool = False) -> str:
    """One engine's figure of `metric`: rates in %, the rest to 3 significant digits; with its
    unit when `unit` (a rate always has its %). A cost without a value is unknown."""
    if value is None:
        return UNKNOWN_COST if metric.key == "cost_usd" else "–"
    if is_rate(metric):
        return f"{number(value * 100)} %"
    text = number(value)
    suffix = unit_of(metric)
    return f"{text} {suffix}" if unit and suffix else text


def metric_delta(metric: Metric, value: float | None, *, unit: bool = False) -> str:
    """A difference B − A of `metric`, signed: rates in percentage points ("pp")."""
    if value is None:
        return "–"
    if is_rate(metric):
        return f"{number(value * 100, sign=True)} pp"
    text = number(value, sign=True)
    suffix = unit_of(metric)
    return f"{text} {suffix}" if unit and suffix else text


def metric_interval(item: MetricComparison) -> str:
    """The displayed interval of a difference, in the metric's terms; "–" without one."""
    low, high = item.difference.low, item.difference.high
    if low is None or high is None:
        return "–"
    if is_rate(item.metric):
        return f"[{number(low * 100, sign=True)}, {number(high * 100, sign=True)}] pp"
    return f"[{number(low, sign=True)}, {number(high, sign=True)}]"


def metric_label(metric: Metric) -> str:
    """The metric's label with its unit, for a table's first column."""
    unit = unit_of(metric)
    return f"{metric.label} ({unit})" if unit and unit not in ("%", "tokens") else metric.label


def interval_text(item: MetricComparison, digits: int = 2) -> str:
    interval = item.difference
    if interval.low is None or interval.high is None:
        return "–"
    return f"[{signed(interval.low, digits)}, {signed(interval.high, digits)}]"


# ------------------------------------------------------------------------------ what it says


def endpoint_text(summary: EngineSummary) -> str:
    """Which endpoint a side ran on: "simulated LLM (offline test double), model simulated" or
    "OpenAI-compatible endpoint api.openai.com, model gpt-4o-mini"."""
    endpoint = summary.endpoint
    if endpoint is None:
        return "endpoint not recorded"
    shown_host = endpoint.host and not endpoint.simulated
    parts = [f"{endpoint.kind} {endpoint.host}" if shown_host else endpoint.kind]
    if endpoint.model:
        parts.append(f"model {endpoint.model}")
    return ", ".join(parts)


def banner_text(comparison: Comparison) -> str | None:
    """The warning of a comparison that ran (in part) on the simulated LLM; None otherwise."""
    sides = [
        (name, summary)
        for name, summary in (("A", comparison.a), ("B", comparison.b))
        if summary.endpoint is not None and summary.endpoint.simulated
    ]
    if not sides:
        return None
    who = (
        "Both sides"
        if len(sides) == 2
        else f"{sides[0][0]} ({sides[0][1].label}), not the other side,"
    )
    text = (
        f"{who} ran on the simulated LLM, an offline rule-based test double that ignores "
        "prompts: a prompt telling the bot to refuse everything scores exactly like the "
        "shipped one. Its quality metrics (evaluator score, pass rate, pass^k) are not "
        "meaningful for prompt changes. What this run does measure: the plumbing and the "
        "output contract, failures, tool-call and handoff mechanics, and relative tokens and "
        "overhead."
    )
    if len(sides) == 1:
        text += " The two sides did not run on the same model, so no difference between them "
        text += "can be put down to the engines."
    return text + " Set OPENAI_API_KEY or OPENAI_BASE_URL to measure quality."


QUALITY_KEYS = ("score", "passed", "failed", "pass_k")
"""Quality metrics, in the order the headline names them."""
TIME_KEYS = ("duration_seconds", "duration_p50", "duration_p95")
COST_KEYS = (*TIME_KEYS, "total_tokens", "cost_usd")


def paired_scenarios(comparison: Comparison) -> int:
    """How many scenarios both sides ran (and so could decide a difference)."""
    return max((item.difference.n_scenarios for item in comparison.paired), default=0)


def _both(a: float | None, b: float | None, show: Any) -> str:
    """B's value "vs" A's, with as many digits as it takes to tell them apart (up to 4)."""
    for digits in (2, 3, 4):
        text_a, text_b = show(a, digits), show(b, digits)
        if text_a != text_b:
            break
    return f"{text_b} vs {text_a}"


def _quality_clause(item: MetricComparison) -> str:
    higher = (item.difference.estimate or 0) > 0

    def percent(value: float | None, digits: int) -> str:
        return "–" if value is None else f"{number(value * 100, digits)} %"

    def plain(value: float | None, digits: int) -> str:
        return number(value, digits)

    key = item.metric.key
    if key == "score":
        values = _both(item.value_a, item.value_b, plain)
        return f"scores {'higher' if higher else 'lower'} ({values})"
    values = _both(item.value_a, item.value_b, percent)
    if key == "passed":
        return f"passes {'more' if higher else 'less'} often ({values})"
    if key == "failed":
        return f"fails {'more' if higher else 'less'} often ({values})"
    name = item.metric.label.split()[0]  # "pass^3"
    return f"has a {'higher' if higher else 'lower'} {name} ({values})"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return b / a


def _times(ratio: float) -> str:
    return f"{number(ratio, 2)}×"


def _percent(ratio: float) -> str:
    return f"{number(abs(ratio - 1) * 100, 2)} %"


def _cost_clause(item: MetricComparison) -> str:
    key, estimate = item.metric.key, item.difference.estimate or 0
    more = estimate > 0
    ratio = _ratio(item.value_a, item.value_b)
    if key in TIME_KEYS:
        where = {"duration_p50": " at the median", "duration_p95": " at p95"}.get(key, "")
        word = "slower" if more else "faster"
        if ratio is None:
            return f"is {seconds(abs(estimate))} {word}{where} per conversation"
        factor = ratio if more else 1 / ratio
        size = _times(factor) if factor >= 2 else _percent(ratio)
        return f"is {size} {word} in wall time{where}"
    if key == "total_tokens":
        if ratio is None:
            return f"uses {number(abs(estimate))} {'more' if more else 'fewer'} tokens per conversation"
        if more and ratio >= 2:
            return f"uses {_times(ratio)} the tokens"
        return f"uses {_percent(ratio)} {'more' if more else 'fewer'} tokens"
    if ratio is None:
        return f"costs {number(abs(estimate))} USD {'more' if more else 'less'} per conversation"
    if more and ratio >= 2:
        return f"costs {_times(ratio)} as much"
    return f"costs {_percent(ratio)} {'more' if more else 'less'}"


def _join(clauses: Sequence[str]) -> str:
    if len(clauses) <= 1:
        return "".join(clauses)
    return f"{', '.join(clauses[:-1])} and {clauses[-1]}"


def headline_text(comparison: Comparison) -> str:
    """The comparison in one sentence, from the flagged differences only: quality (score, pass
    rate, failure rate, pass^k) first, then time, tokens and cost as ratios or percentages,
    then how many other differences were flagged. A difference that was not flagged is never
    stated as one; too few scenarios to flag anything is said as such."""
    scenarios = paired_scenarios(comparison)
    needed = comparison.bootstrap.min_scenarios
    if scenarios < needed:
        return (
            f"Too few scenarios ({scenarios}) to call any difference; at least {needed} are needed."
        )
    flagged = {item.metric.key: item for item in comparison.significant()}
    quality = [_quality_clause(flagged[key]) for key in QUALITY_KEYS if key in flagged]
    time_key = next((key for key in TIME_KEYS if key in flagged), None)
    cost = [
        _cost_clause(flagged[key])
        for key in (time_key, "total_tokens", "cost_usd")
        if key is not None and key in flagged
    ]
    said = {*QUALITY_KEYS, *COST_KEYS}
    if "failed" in flagged:  # the share of failed runs is the failure rate again
        said |= {"status:failed", "status:failed_api_blocked"}
    others = [item for key, item in flagged.items() if key not in said]
    simulated = comparison.simulated
    if not (quality or cost or others) and not simulated:
        return "No difference found in quality, cost, speed or anything else measured."
    parts: list[str] = []
    if quality:
        parts.append(("On the simulated LLM, B " if simulated else "B ") + _join(quality))
    elif simulated:
        parts.append("Quality not measurable on the simulated LLM")
    else:
        parts.append("No quality difference")
    subject = "it" if quality else "B"
    if cost:
        parts.append(f"{subject} {_join(cost)}")
        subject = "it"
    if others:
        named = [
            f"{item.metric.label[0].lower()}{item.metric.label[1:]} "
            f"({metric_value(item.metric, item.value_b, unit=True)} vs "
            f"{metric_value(item.metric, item.value_a, unit=True)})"
            for item in others[:2]
        ]
        if len(others) > 2:
            named.append(f"{len(others) - 2} more (see the tables)")
        parts.append(f"{subject} also differs in {_join(named)}")
    elif not cost:
        parts.append("no other difference")
    sentence = "; ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def method_text(comparison: Comparison) -> str:
    """How the differences were estimated and decided, in two sentences."""
    boot = comparison.bootstrap
    count = len(comparison.paired) + len(comparison.breakdowns)
    return (
        "Differences are B − A, paired by scenario and trial (both sides ran each scenario with "
        f"the same seed). The intervals are {number(boot.confidence * 100)} % bootstrap "
        f"intervals over whole scenarios ({boot.resamples} resamples, seed {boot.seed}) and "
        f"show how large a difference plausibly is. A difference is flagged as real only when "
        f"a {boot.test} test, {boot.correction.capitalize()}-corrected over all {count} "
        f"differences of this report, gives p < {number(boot.alpha)}, and at least "
        f"{boot.min_scenarios} scenarios were paired."
    )


def no_difference_text(comparison: Comparison) -> str:
    """The verdict when nothing was flagged, and why."""
    scenarios = paired_scenarios(comparison)
    needed = comparison.bootstrap.min_scenarios
    if scenarios < needed:
        return (
            f"No difference can be called real: only {scenarios} scenario(s) were paired, "
            f"and at least {needed} are needed."
        )
    return (
        "No real difference: no difference passed the test after the correction for the "
        "number of differences compared."
    )


def schedule_text(comparison: Comparison) -> str | None:
    """The one schedule both sides shared (the harness interleaves them), if known."""
    a, b = comparison.a.wall_seconds, comparison.b.wall_seconds
    if a is None or a != b:
        return None
    return (
        f"Both sides ran interleaved in one schedule of {seconds(a)} (wall clock); "
        "the conversation times are each side's conversations summed."
    )


# ------------------------------------------------------------------------------ configuration


SIDE_FIELD_LABELS = {
    "engine": "engine",
    "spec": "spec",
    "model": "model",
    "endpoint": "endpoint",
    "base_url": "base URL",
    "api_key_env": "key variable",
    "temperature": "temperature",
    "tools": "tools",
    "tools_url": "tools URL",
}
"""How a report names each field of `Comparison.sides`, in the order it lists them."""


def side_field_label(key: str) -> str:
    """A field of `Comparison.sides` as a report names it ("api_key_env" → "key variable")."""
    return SIDE_FIELD_LABELS.get(key, key.replace("_", " "))


def side_fields(sides: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The fields of both sides in report order: the known ones first, then any other."""
    found = dict.fromkeys(key for side in ("a", "b") for key in sides.get(side, {}))
    return [key for key in SIDE_FIELD_LABELS if key in found] + [
        key for key in found if key not in SIDE_FIELD_LABELS
    ]


def side_value(value: Any) -> str:
    """A side's value of a field, for a table cell: "–" for none, numbers without zeros."""
    if value is None or value == "":
        return "–"
    return fmt(value)


def tests_text(comparison: Comparison) -> str | None:
    """What the comparison tests, from the fields that differ between its sides: "This
    comparison tests: spec, model." or, when none does, that it is an A/A comparison. None for
    a comparison that does not know its sides."""
    if not comparison.sides:
        return None
    if not comparison.differences:
        return "Both sides are configured alike (an A/A comparison)."
    return f"This comparison tests: {', '.join(map(side_field_label, comparison.differences))}."
