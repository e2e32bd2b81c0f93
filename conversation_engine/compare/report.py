"""The comparison's outputs: `comparison.json`, `report.md` and a self-contained `report.html`.

The HTML report is one file that reads offline: inline CSS, inline SVG charts (`charts`), no
script and no external asset. It is rendered by Jinja2 with autoescaping on, so transcript
text (which comes from a model and may contain markup) is always shown, never interpreted.

No text loses a report: `comparison.json` keeps every string (a lone surrogate as its
`\\uXXXX` escape, `safe_text.json_dumps`); `report.md` and `report.html`, which have no such
escape, show a lone surrogate as U+FFFD.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from conversation_engine.batch.evaluator import tool_arguments_text, tool_result_text
from conversation_engine.batch.rows import BatchRow, RowKey, RowLike, as_rows, rows_by_key
from conversation_engine.compare import charts
from conversation_engine.compare.analysis import Comparison, MetricComparison, metric_values
from conversation_engine.core._output import replace_file
from conversation_engine.core._safe_text import json_dumps, without_surrogates
from conversation_engine.core.contract import CLIENT_SPEAKER, HANDOFF_PREFIX

JSON_FILE = "comparison.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("conversation_engine.compare", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


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


def interval_text(item: MetricComparison, digits: int = 2) -> str:
    interval = item.difference
    if interval.low is None or interval.high is None:
        return "–"
    return f"[{signed(interval.low, digits)}, {signed(interval.high, digits)}]"


def no_difference_text(comparison: Comparison) -> str:
    """The verdict when nothing was flagged, and why."""
    items = [*comparison.paired, *comparison.breakdowns]
    if all(
        item.difference.low is None or item.difference.low <= 0 <= (item.difference.high or 0)
        for item in items
    ):
        return "No real difference: every interval includes 0."
    return (
        "No real difference: the intervals that exclude 0 rest on fewer than "
        f"{comparison.bootstrap.min_scenarios} scenarios, too few to call a difference real."
    )


_ENV.filters["fmt"] = fmt
_ENV.filters["signed"] = signed
_ENV.globals["interval_text"] = interval_text
_ENV.globals["no_difference_text"] = no_difference_text


def _write(path: Path, text: str) -> None:
    """Atomically, never over a special file; a lone surrogate becomes U+FFFD (JSON has none)."""
    replace_file(path, without_surrogates(text))


def write_reports(
    comparison: Comparison, rows_a: Sequence[RowLike], rows_b: Sequence[RowLike], out_dir: Path
) -> dict[str, Path]:
    """Write the three report files into `out_dir`; their paths by kind (json, md, html)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / JSON_FILE,
        "md": out_dir / MARKDOWN_FILE,
        "html": out_dir / HTML_FILE,
    }
    _write(paths["json"], json_dumps(comparison.model_dump(mode="json"), indent=2))
    _write(paths["md"], render_markdown(comparison))
    _write(paths["html"], render_html(comparison, rows_a, rows_b))
    return paths


# ------------------------------------------------------------------------------ markdown


def _md(text: Any) -> str:
    """Table-cell safe: pipes escaped, newlines flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md(cell) for cell in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return lines


def _counts_rows(a: Mapping[str, int], b: Mapping[str, int]) -> list[list[Any]]:
    return [[key, a.get(key, 0), b.get(key, 0)] for key in sorted({*a, *b})]


def render_markdown(comparison: Comparison) -> str:
    """`report.md`: the verdict, the metric table and the per-engine breakdowns."""
    a, b = comparison.a, comparison.b
    boot = comparison.bootstrap
    lines = [
        f"# A/B comparison: {a.label} (A) vs {b.label} (B)",
        "",
        f"Spec `{comparison.spec}`, {comparison.scenario_count} scenario(s) × "
        f"{comparison.repeat} trial(s), pass threshold {fmt(comparison.pass_threshold)}; "
        f"generated {comparison.generated_at}.",
        "",
        f"Differences are B − A, paired by scenario and trial (same seed), with "
        f"{fmt(boot.confidence * 100, 0)}% bootstrap intervals ({boot.resamples} resamples of "
        f"whole scenarios, seed {boot.seed}). A difference is called **real** only when its "
        f"interval excludes 0 and at least {boot.min_scenarios} scenarios were paired.",
        "",
        "## Verdict",
        "",
    ]
    real = comparison.significant()
    if real:
        lines.extend(
            f"- **{item.metric.label}**: {item.verdict}, {signed(item.difference.estimate)}"
            f"{' ' + item.metric.unit if item.metric.unit else ''} "
            f"({fmt(boot.confidence * 100, 0)}% interval {interval_text(item)})"
            for item in real
        )
    else:
        lines.append(no_difference_text(comparison))
    header = ["metric", f"A: {a.label}", f"B: {b.label}", "B − A", "interval", "pairs", "real?"]
    lines += ["", "## Metrics", ""]
    lines += _table(header, _metric_rows(comparison.paired))
    if comparison.breakdowns:
        lines += ["", "## Breakdowns: status mix, end reasons, tools", ""]
        lines += _table(header, _metric_rows(comparison.breakdowns))
    lines += ["", "## Status and end reasons", ""]
    lines += _table(["status", a.label, b.label], _counts_rows(a.status_counts, b.status_counts))
    lines += [""]
    lines += _table(["end reason", a.label, b.label], _counts_rows(a.end_reasons, b.end_reasons))
    lines += ["", "## Wall time and tokens", ""]
    duration_a, duration_b = a.metrics["duration_seconds"], b.metrics["duration_seconds"]
    lines += _table(
        ["", a.label, b.label],
        [
            ["wall time p50 (s)", fmt(duration_a.p50, 3), fmt(duration_b.p50, 3)],
            ["wall time p95 (s)", fmt(duration_a.p95, 3), fmt(duration_b.p95, 3)],
            ["whole batch (s)", fmt(a.wall_seconds, 2), fmt(b.wall_seconds, 2)],
            ["tokens", a.usage.total_tokens, b.usage.total_tokens],
            ["cost (USD)", fmt(a.usage.cost_usd, 4), fmt(b.usage.cost_usd, 4)],
            ["evaluator tokens", a.usage.evaluation_tokens, b.usage.evaluation_tokens],
        ],
    )
    lines += ["", "## Tools and handoffs", ""]
    tools = sorted({*a.tool_calls, *b.tool_calls})
    lines += _table(
        [
            "tool",
            f"{a.label} calls",
            f"{a.label} per conversation",
            f"{b.label} calls",
            f"{b.label} per conversation",
        ],
        [
            [
                name,
                a.tool_calls.get(name, 0),
                fmt(a.tool_calls_per_conversation.get(name), 2),
                b.tool_calls.get(name, 0),
                fmt(b.tool_calls_per_conversation.get(name), 2),
            ]
            for name in tools
        ]
        or [["(none)", 0, "–", 0, "–"]],
    )
    lines += [""]
    lines += _table(
        ["handoff to", a.label, b.label], _counts_rows(a.handoffs, b.handoffs) or [["(none)", 0, 0]]
    )
    lines += ["", f"## pass^k (k = {comparison.repeat})", ""]
    lines += _table(
        ["k", a.label, b.label],
        [
            [k + 1, fmt(value_a, 3), fmt(value_b, 3)]
            for k, (value_a, value_b) in enumerate(
                zip(a.pass_k.curve, b.pass_k.curve, strict=False)
            )
        ],
    )
    lines += ["", "## Contract violations", ""]
    lines += _table(
        ["", a.label, b.label],
        [
            ["violations", a.contract_violations, b.contract_violations],
            [
                "results with violations",
                a.conversations_with_violations,
                b.conversations_with_violations,
            ],
        ],
    )
    for summary in (a, b):
        if summary.violation_examples:
            lines += ["", f"Examples ({summary.label}):", ""]
            lines += [f"- {_md(example)}" for example in summary.violation_examples]
    lines += ["", "## Scenarios", ""]
    rows: list[list[Any]] = []
    for scenario in comparison.scenarios:
        for pair in scenario.trials:
            rows.append(
                [
                    scenario.index,
                    scenario.name,
                    pair.trial,
                    pair.seed if pair.seed is not None else "–",
                    _brief_text(pair.a),
                    _brief_text(pair.b),
                ]
            )
    lines += _table(["#", "scenario", "trial", "seed", a.label, b.label], rows)
    lines += [
        "",
        f"Batches: A `{a.batch_dir}`, B `{b.batch_dir}`. Transcripts are in `report.html`.",
        "",
    ]
    return "\n".join(lines)


def _metric_rows(items: Sequence[MetricComparison]) -> list[list[Any]]:
    return [
        [
            item.metric.label + (f" ({item.metric.unit})" if item.metric.unit else ""),
            fmt(item.value_a, 3),
            fmt(item.value_b, 3),
            signed(item.difference.estimate, 3),
            interval_text(item, 3),
            item.difference.n_pairs,
            "**yes**" if item.difference.significant else "no",
        ]
        for item in items
    ]


def _brief_text(brief: Any) -> str:
    if brief is None:
        return "(missing)"
    score = fmt(brief.score, 0) if brief.score is not None else "–"
    return f"{brief.status}, score {score}, {fmt(brief.turns, 0)} turns, {brief.end_reason or '–'}"


# ------------------------------------------------------------------------------ html


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transcript_entries(row: RowLike | None) -> list[dict[str, Any]]:
    """A row's history prepared for the template (text only; the template escapes it)."""
    if row is None:
        return []
    entries: list[dict[str, Any]] = []
    for entry in BatchRow.of(row).history:
        speaker = str(entry.get("speaker", ""))
        results = entry.get("tool_results") or []
        tools: list[dict[str, str]] = []
        for index, call in enumerate(entry.get("tool_calls") or []):
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            name = str(function.get("name", "?"))
            result = results[index] if index < len(results) else None
            tools.append(
                {
                    "name": name,
                    "kind": "handoff" if name.startswith(HANDOFF_PREFIX) else "tool",
                    "arguments": tool_arguments_text(function.get("arguments", "")),
                    "result": "" if result is None else tool_result_text(result),
                    "full": _short(
                        {"arguments": function.get("arguments", ""), "result": result}, 2000
                    ),
                }
            )
        entries.append(
            {
                "turn": entry.get("turn", ""),
                "speaker": speaker,
                "label": speaker,
                "side": "client" if speaker == CLIENT_SPEAKER else "agent",
                "content": str(entry.get("content") or ""),
                "tools": tools,
            }
        )
    return entries


def _row_view(row: BatchRow | None, pass_threshold: float) -> dict[str, Any] | None:
    if row is None:
        return None
    values = metric_values(row, pass_threshold)
    return {
        "status": row.status,
        "end_reason": row.end_reason,
        "score": values["score"],
        "turns": values["turns"],
        "duration": values["duration_seconds"],
        "comment": str(row.comment or ""),
        "error": str(row.error or ""),
        "session_id": str(row.session_id or ""),
        "violations": [str(v) for v in row.contract_violations],
        "entries": transcript_entries(row),
    }


def _values(rows: Sequence[BatchRow], key: str, pass_threshold: float) -> list[float]:
    found = (metric_values(row, pass_threshold)[key] for row in rows)
    return [value for value in found if value is not None]


def build_charts(
    comparison: Comparison, rows_a: Sequence[RowLike], rows_b: Sequence[RowLike]
) -> dict[str, Markup]:
    """The report's SVG charts: score, turn and wall-time distributions, side by side."""
    threshold = comparison.pass_threshold
    labels = (comparison.a.label, comparison.b.label)
    typed_a, typed_b = as_rows(rows_a), as_rows(rows_b)

    def series(key: str) -> list[charts.Series]:
        return [
            charts.Series(labels[0], _values(typed_a, key, threshold)),
            charts.Series(labels[1], _values(typed_b, key, threshold)),
        ]

    score_counts = [
        [sum(1 for v in s.values if v == score) for score in (1, 2, 3)] for s in series("score")
    ]
    return {
        "scores": Markup(
            charts.grouped_bars("Evaluator scores", ["1", "2", "3"], score_counts, labels, "score")
        ),
        "turns": Markup(
            charts.histogram("Turns per conversation", series("turns"), "turns", integer=True)
        ),
        "turns_box": Markup(charts.box_plot("Turns (box plot)", series("turns"))),
        "latency": Markup(
            charts.histogram("Wall time per conversation", series("duration_seconds"), "seconds")
        ),
        "latency_box": Markup(
            charts.box_plot("Wall time (box plot)", series("duration_seconds"), "s")
        ),
    }


def render_html(
    comparison: Comparison, rows_a: Sequence[RowLike], rows_b: Sequence[RowLike]
) -> str:
    """`report.html`: tables, charts and per-scenario side-by-side transcripts."""
    typed_a, typed_b = as_rows(rows_a), as_rows(rows_b)
    by_a, by_b = rows_by_key(typed_a), rows_by_key(typed_b)
    scenarios = [
        {
            "index": scenario.index,
            "name": scenario.name,
            "pass_k_a": scenario.pass_k_a,
            "pass_k_b": scenario.pass_k_b,
            "score_mean_a": scenario.score_mean_a,
            "score_mean_b": scenario.score_mean_b,
            "trials": [
                {
                    "trial": pair.trial,
                    "seed": pair.seed,
                    "a": _row_view(
                        by_a.get(RowKey(scenario.index, pair.trial)), comparison.pass_threshold
                    ),
                    "b": _row_view(
                        by_b.get(RowKey(scenario.index, pair.trial)), comparison.pass_threshold
                    ),
                }
                for pair in scenario.trials
            ],
        }
        for scenario in comparison.scenarios
    ]
    template = _ENV.get_template("report.html.j2")
    return template.render(
        c=comparison,
        a=comparison.a,
        b=comparison.b,
        real=comparison.significant(),
        charts=build_charts(comparison, typed_a, typed_b),
        scenarios=scenarios,
        colors=charts.COLORS,
        status_keys=sorted({*comparison.a.status_counts, *comparison.b.status_counts}),
        reason_keys=sorted({*comparison.a.end_reasons, *comparison.b.end_reasons}),
        tool_keys=sorted({*comparison.a.tool_calls, *comparison.b.tool_calls}),
        handoff_keys=sorted({*comparison.a.handoffs, *comparison.b.handoffs}),
    )
