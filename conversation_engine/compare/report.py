"""The comparison's outputs: `comparison.json`, `report.md` and a self-contained `report.html`.

Every output opens the same way: which endpoint each side ran on, a warning banner when either
side ran on the simulated LLM (`banner_text`: it ignores prompts, so its quality numbers say
nothing about a prompt change), and the comparison in one sentence (`headline_text`), built
only from the differences the statistics flagged. `comparison.json` carries both as the
`banner` and `headline` of `Comparison`, with `simulated`. Numbers are rounded to meaningful
digits with their units (`number`, `metric_value`); no report shows an absolute path.
"Where A and B differ most" (`differing_pairs`) lists the scenario-trials whose two runs went
most differently, with both transcripts side by side in the HTML.

A comparison that knows its sides (`Comparison.sides`, filled by the harness) shows them in its
header: what it tests (the fields that differ), each side's configuration side by side with the
differing rows marked ≠ (`configuration_rows`), and who the customer and evaluator were. When
the two specs differ, "Prompt changes" shows each changed agent's prompt diff (`diff_lines`):
coloured lines in the HTML, a ```diff block in Markdown whose fence no prompt line can close.
A bare `compare_rows` (no sides) renders none of this.

The HTML report is one file that reads offline: inline CSS, inline SVG charts (`charts`), no
script and no external asset. It is rendered by Jinja2 with autoescaping on, so transcript
text (which comes from a model and may contain markup) is always shown, never interpreted.

No text loses a report: `comparison.json` keeps every string (a lone surrogate as its
`\\uXXXX` escape, `safe_text.json_dumps`); `report.md` and `report.html`, which have no such
escape, show a lone surrogate as U+FFFD.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from conversation_engine.batch.evaluator import tool_arguments_text, tool_result_text
from conversation_engine.batch.rows import BatchRow, RowKey, RowLike, as_rows, rows_by_key
from conversation_engine.compare import charts
from conversation_engine.compare.analysis import (
    Comparison,
    MetricComparison,
    RunBrief,
    ScenarioComparison,
    TrialPair,
    metric_values,
)
from conversation_engine.compare.wording import (
    cost,
    endpoint_text,
    fmt,
    interval_text,
    method_text,
    metric_delta,
    metric_interval,
    metric_label,
    metric_value,
    no_difference_text,
    number,
    schedule_text,
    seconds,
    side_field_label,
    side_fields,
    side_value,
    signed,
    tests_text,
)
from conversation_engine.core._output import replace_file
from conversation_engine.core._safe_text import json_dumps, without_surrogates
from conversation_engine.core.contract import CLIENT_SPEAKER, HANDOFF_PREFIX

JSON_FILE = "comparison.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
DIFFERING_PAIRS = 5
"""How many scenario-trials "Where A and B differ most" shows at most."""
PROMPT_CHANGES_INTRO = (
    "How spec B's prompt, tools and handoffs differ from spec A's, per agent that changed: a "
    'line beginning with "-" is only in A, one beginning with "+" only in B.'
)

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("conversation_engine.compare", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# ------------------------------------------------------------------------------ differ most


@dataclass(frozen=True)
class DifferingPair:
    """One scenario-trial whose two runs went differently, and how."""

    scenario: ScenarioComparison
    pair: TrialPair
    changes: tuple[str, ...]
    """What differs, each as "what A → B" ("status completed → failed")."""

    @property
    def title(self) -> str:
        seed = f", seed {self.pair.seed}" if self.pair.seed is not None else ""
        return f"#{self.scenario.index} {self.scenario.name}, trial {self.pair.trial}{seed}"

    @property
    def summary(self) -> str:
        return f"{self.title}: {'; '.join(self.changes)}"


def _gap(a: RunBrief | None, b: RunBrief | None, field: str) -> float:
    value_a = getattr(a, field) if a is not None else None
    value_b = getattr(b, field) if b is not None else None
    if value_a is None or value_b is None:
        return 0.0
    return abs(float(value_b) - float(value_a))


def _changes(a: RunBrief | None, b: RunBrief | None) -> tuple[str, ...]:
    if a is None or b is None:
        if a is None and b is None:
            return ()
        return ("A has no result",) if a is None else ("B has no result",)
    changes: list[str] = []
    if a.status != b.status:
        changes.append(f"status {a.status} → {b.status}")
    if a.end_reason != b.end_reason:
        changes.append(f"end reason {a.end_reason or '–'} → {b.end_reason or '–'}")
    for field, name in (
        ("score", "score"),
        ("turns", "turns"),
        ("tool_calls", "tool calls"),
        ("handoffs", "handoffs"),
        ("violations", "contract violations"),
    ):
        value_a, value_b = getattr(a, field), getattr(b, field)
        # A value one side lacks (no history, no score) is no difference of its own.
        if value_a is not None and value_b is not None and value_a != value_b:
            changes.append(f"{name} {number(value_a)} → {number(value_b)}")
    return tuple(changes)


def _rank(item: DifferingPair) -> tuple[Any, ...]:
    a, b = item.pair.a, item.pair.b
    outcome = (a is None) != (b is None) or (
        a is not None and b is not None and (a.status, a.end_reason) != (b.status, b.end_reason)
    )
    return (
        not outcome,
        -_gap(a, b, "score"),
        -_gap(a, b, "turns"),
        -_gap(a, b, "tool_calls"),
        -_gap(a, b, "handoffs"),
        -_gap(a, b, "violations"),
        item.scenario.index,
        item.pair.trial,
    )


def differing_pairs(comparison: Comparison, limit: int = DIFFERING_PAIRS) -> list[DifferingPair]:
    """The scenario-trials whose two runs went most differently, at most `limit`: a different
    status or end reason (or a run missing on one side) first, then the largest score gap, then
    the largest gaps in turns and in tool calls (then handoffs and contract violations). Pairs
    that went the same way on both sides are left out."""
    found = [
        DifferingPair(scenario, pair, changes)
        for scenario in comparison.scenarios
        for pair in scenario.trials
        if (changes := _changes(pair.a, pair.b))
    ]
    return sorted(found, key=_rank)[:limit]


def differing_intro(comparison: Comparison, shown: Sequence[DifferingPair]) -> str:
    """What "Where A and B differ most" shows, and says so when few or none differ."""
    runs = sum(len(scenario.trials) for scenario in comparison.scenarios)
    if not shown:
        return (
            f"None: all {runs} scenario-trial(s) went the same way on both sides (status, end "
            "reason, score, turns and tool calls)."
        )
    order = (
        "Ranked by how differently the two sides went: a different status or end reason first, "
        "then the largest score gap, then the largest gaps in turns and tool calls. Each change "
        "reads A → B."
    )
    if len(shown) < DIFFERING_PAIRS:
        return f"Only {len(shown)} of {runs} scenario-trial(s) differ. {order}"
    return f"The {len(shown)} of {runs} scenario-trial(s) that differ most. {order}"


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class ConfigRow:
    """One field of the configuration table: its name, each side's value, whether they differ."""

    key: str
    label: str
    a: str
    b: str
    differs: bool


def configuration_rows(comparison: Comparison) -> list[ConfigRow]:
    """The configuration table, one row per field of `Comparison.sides` (engine, spec, model,
    endpoint, key variable, temperature, tools); a row differs when `differences` names it.
    Empty when the comparison does not know its sides."""
    sides = comparison.sides
    if not sides:
        return []
    side_a, side_b = sides.get("a", {}), sides.get("b", {})
    differing = set(comparison.differences)
    return [
        ConfigRow(
            key=key,
            label=side_field_label(key),
            a=side_value(side_a.get(key)),
            b=side_value(side_b.get(key)),
            differs=key in differing,
        )
        for key in side_fields(sides)
    ]


@dataclass(frozen=True)
class DiffPart:
    """A run of a diff line's text; `kind` "add" or "del" for a change shown as one, else ""."""

    kind: str
    text: str


@dataclass(frozen=True)
class DiffLine:
    """One line of a prompt diff and what it is: "head" (---, +++, @@), "add" (only in B),
    "del" (only in A), "same" (context) or "note" (a tools/handoffs change, an added agent)."""

    kind: str
    parts: tuple[DiffPart, ...]

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts)


_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_LIST_CHANGE = re.compile(r"^(tools|handoffs): (.*)$")


def _list_change(head: str, items: str) -> tuple[DiffPart, ...]:
    """ "tools: -add_to_cart, +get_cart" with each removed and added item marked as such."""
    parts = [DiffPart("", f"{head}: ")]
    for index, item in enumerate(items.split(", ")):
        if index:
            parts.append(DiffPart("", ", "))
        kind = {"-": "del", "+": "add"}.get(item[:1], "")
        parts.append(DiffPart(kind, item))
    return tuple(parts)


def diff_lines(diff: str) -> list[DiffLine]:
    """A prompt diff (`Comparison.prompt_diffs`) line by line, each with its kind.

    Hunk lines are told apart by the counts of their `@@` header, so a prompt line that itself
    begins with "--", "++" or "@@" is still a removed, added or context line; after the hunks
    come the changes of tools and handoffs."""
    lines = diff.split("\n")
    found: list[DiffLine] = []
    old = new = 0
    for index, line in enumerate(lines):
        kind = "note"
        parts: tuple[DiffPart, ...] = (DiffPart("", line),)
        previous = lines[index - 1] if index > 0 else ""
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if old > 0 or new > 0:
            if line.startswith("-") and old > 0:
                kind, old = "del", old - 1
            elif line.startswith("+") and new > 0:
                kind, new = "add", new - 1
            else:
                kind, old, new = "same", max(0, old - 1), max(0, new - 1)
        elif hunk := _HUNK.match(line):
            kind = "head"
            old, new = (1 if count is None else int(count) for count in hunk.groups())
        elif (line.startswith("--- ") and following.startswith("+++ ")) or (
            line.startswith("+++ ") and previous.startswith("--- ")
        ):
            kind = "head"
        elif change := _LIST_CHANGE.match(line):
            parts = _list_change(change.group(1), change.group(2))
        found.append(DiffLine(kind, parts))
    return found


def prompt_changes(comparison: Comparison) -> list[tuple[str, list[DiffLine]]]:
    """Per agent whose prompt, tools or handoffs differ between the specs, its diff lines."""
    return [(agent, diff_lines(diff)) for agent, diff in comparison.prompt_diffs.items()]


_ENV.filters["fmt"] = fmt
_ENV.filters["signed"] = signed
_ENV.filters["number"] = number
_ENV.filters["seconds"] = seconds
_ENV.filters["cost"] = cost  # "unknown" for an unknown cost, never "–" or 0
_ENV.globals.update(
    interval_text=interval_text,
    no_difference_text=no_difference_text,
    metric_value=metric_value,
    metric_delta=metric_delta,
    metric_interval=metric_interval,
    metric_label=metric_label,
    endpoint_text=endpoint_text,
    method_text=method_text,
    schedule_text=schedule_text,
    tests_text=tests_text,
    percent=lambda value: _percent_or_dash(value),
)


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


def _code(text: Any) -> str:
    """Inline code that a backtick in `text` cannot end early."""
    flat = " ".join(str(text).split())
    fence = "``" if "`" in flat else "`"
    return f"{fence} {flat} {fence}" if fence == "``" else f"`{flat}`"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md(cell) for cell in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return lines


def _counts_rows(a: Mapping[str, int], b: Mapping[str, int]) -> list[list[Any]]:
    return [[key, a.get(key, 0), b.get(key, 0)] for key in sorted({*a, *b})]


def render_markdown(comparison: Comparison) -> str:
    """`report.md`: the banner and headline, the verdict, the metric table, the per-engine
    breakdowns and the scenario-trials where A and B differ most."""
    a, b = comparison.a, comparison.b
    lines = [f"# A/B comparison: {_md(a.label)} (A) vs {_md(b.label)} (B)", ""]
    if comparison.banner:
        lines += [f"> **Warning: simulated LLM.** {_md(comparison.banner)}", ""]
    lines += [f"**{_md(comparison.headline)}**", ""]
    lines += [
        f"- **A** {_md(a.label)}: {_md(endpoint_text(a))}",
        f"- **B** {_md(b.label)}: {_md(endpoint_text(b))}",
        "",
    ]
    lines += _configuration_markdown(comparison)
    # With a configuration table, each side's spec is in it; without, the one spec is here.
    about = [] if comparison.sides else [f"Spec {_code(comparison.spec or '–')}"]
    if comparison.scenarios_file:
        about.append(f"scenarios {_code(comparison.scenarios_file)}")
    about.append(
        f"{comparison.scenario_count} scenario(s) × {comparison.repeat} trial(s), pass "
        f"threshold {fmt(comparison.pass_threshold)}; generated {comparison.generated_at}."
    )
    sentence = ", ".join(about)
    lines += [
        sentence[0].upper() + sentence[1:],
        "",
        method_text(comparison),
        "",
        "## Verdict",
        "",
    ]
    real = comparison.significant()
    if real:
        confidence = number(comparison.bootstrap.confidence * 100)
        lines.extend(
            f"- **{_md(item.metric.label)}**: {_md(item.verdict)}, "
            f"{metric_delta(item.metric, item.difference.estimate, unit=True)} "
            f"({confidence} % interval {metric_interval(item)})"
            for item in real
        )
    else:
        lines.append(no_difference_text(comparison))
    lines += _prompt_changes_markdown(comparison)
    header = ["metric", f"A: {a.label}", f"B: {b.label}", "B − A", "interval", "pairs", "real?"]
    lines += ["", "## Metrics", ""]
    lines += _table(header, _metric_rows(comparison.paired))
    if comparison.breakdowns:
        lines += ["", "## Breakdowns: status mix, end reasons, tools", ""]
        lines += _table(header, _metric_rows(comparison.breakdowns))
    lines += _differing_markdown(comparison)
    lines += ["", "## Status and end reasons", ""]
    lines += _table(["status", a.label, b.label], _counts_rows(a.status_counts, b.status_counts))
    lines += [""]
    lines += _table(["end reason", a.label, b.label], _counts_rows(a.end_reasons, b.end_reasons))
    lines += ["", "## Wall time and tokens", ""]
    duration_a, duration_b = a.metrics["duration_seconds"], b.metrics["duration_seconds"]
    time_rows: list[list[Any]] = [
        ["wall time p50 (s)", number(duration_a.p50), number(duration_b.p50)],
        ["wall time p95 (s)", number(duration_a.p95), number(duration_b.p95)],
        [
            "conversation time, total",
            seconds(a.conversation_seconds),
            seconds(b.conversation_seconds),
        ],
    ]
    schedule = schedule_text(comparison)
    if schedule is None and (a.wall_seconds is not None or b.wall_seconds is not None):
        time_rows.append(["batch wall time", seconds(a.wall_seconds), seconds(b.wall_seconds)])
    lines += _table(
        ["", a.label, b.label],
        [
            *time_rows,
            ["tokens", number(a.usage.total_tokens), number(b.usage.total_tokens)],
            ["cost (USD)", cost(a.usage.cost_usd), cost(b.usage.cost_usd)],
            [
                "evaluator tokens",
                number(a.usage.evaluation_tokens),
                number(b.usage.evaluation_tokens),
            ],
        ],
    )
    if schedule:
        lines += ["", schedule]
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
                number(a.tool_calls_per_conversation.get(name)),
                b.tool_calls.get(name, 0),
                number(b.tool_calls_per_conversation.get(name)),
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
            [k + 1, _percent_or_dash(value_a), _percent_or_dash(value_b)]
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
            lines += ["", f"Examples ({_md(summary.label)}):", ""]
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
        f"Batches: A {_code(a.batch_dir or '–')}, B {_code(b.batch_dir or '–')}. "
        "Transcripts are in `report.html`.",
        "",
    ]
    return "\n".join(lines)


def _percent_or_dash(value: float | None) -> str:
    return "–" if value is None else f"{number(value * 100)} %"


def _strong(text: str) -> str:
    """Bold text that an asterisk in `text` cannot end early."""
    return "**" + text.replace("*", "\\*") + "**"


def _configuration_markdown(comparison: Comparison) -> list[str]:
    """What the comparison tests, each side's configuration side by side (the rows that
    differ in bold, marked ≠), and who the customer was; nothing for unknown sides."""
    rows = configuration_rows(comparison)
    lines: list[str] = []
    if rows:
        lines += [tests_text(comparison) or "", ""]
        lines += _table(
            ["", f"A: {comparison.a.label}", f"B: {comparison.b.label}", "≠"],
            [
                [row.label, _strong(row.a), _strong(row.b), "≠"]
                if row.differs
                else [row.label, row.a, row.b, ""]
                for row in rows
            ],
        )
        lines += [""]
    if comparison.customer:
        lines += [_md(comparison.customer), ""]
    return lines


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so none of it can close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _prompt_changes_markdown(comparison: Comparison) -> list[str]:
    if not comparison.prompt_diffs:
        return []
    lines = ["", "## Prompt changes", "", PROMPT_CHANGES_INTRO]
    for agent, diff in comparison.prompt_diffs.items():
        fence = _fence(diff)
        lines += ["", f"### {_md(agent)}", "", f"{fence}diff", diff, fence]
    return lines


def _differing_markdown(comparison: Comparison) -> list[str]:
    shown = differing_pairs(comparison)
    lines = ["", "## Where A and B differ most", "", differing_intro(comparison, shown)]
    if shown:
        lines += [""]
        lines += [f"{rank}. {_md(item.summary)}" for rank, item in enumerate(shown, 1)]
    return lines


def _metric_rows(items: Sequence[MetricComparison]) -> list[list[Any]]:
    return [
        [
            metric_label(item.metric),
            metric_value(item.metric, item.value_a),
            metric_value(item.metric, item.value_b),
            metric_delta(item.metric, item.difference.estimate),
            metric_interval(item),
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
    shown = differing_pairs(comparison)
    differing = [
        {
            "title": item.title,
            "changes": item.changes,
            "a": _row_view(by_a.get(key), comparison.pass_threshold),
            "b": _row_view(by_b.get(key), comparison.pass_threshold),
        }
        for item in shown
        for key in (RowKey(item.scenario.index, item.pair.trial),)
    ]
    template = _ENV.get_template("report.html.j2")
    return template.render(
        c=comparison,
        configuration=configuration_rows(comparison),
        prompt_changes=prompt_changes(comparison),
        prompt_changes_intro=PROMPT_CHANGES_INTRO,
        a=comparison.a,
        b=comparison.b,
        real=comparison.significant(),
        differing=differing,
        differing_intro=differing_intro(comparison, shown),
        charts=build_charts(comparison, typed_a, typed_b),
        scenarios=scenarios,
        colors=charts.COLORS,
        status_keys=sorted({*comparison.a.status_counts, *comparison.b.status_counts}),
        reason_keys=sorted({*comparison.a.end_reasons, *comparison.b.end_reasons}),
        tool_keys=sorted({*comparison.a.tool_calls, *comparison.b.tool_calls}),
        handoff_keys=sorted({*comparison.a.handoffs, *comparison.b.handoffs}),
    )
