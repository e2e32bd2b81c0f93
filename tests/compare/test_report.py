"""The comparison's files: comparison.json, report.md and a self-contained report.html."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.compare.analysis import Comparison, compare_rows
from conversation_engine.compare.report import (
    HTML_FILE,
    JSON_FILE,
    MARKDOWN_FILE,
    render_html,
    render_markdown,
    write_reports,
)
from tests.compare.batch_rows import row

HOSTILE_LINE = '<script>alert("owned")</script> <img src=x onerror="alert(1)"> & "quotes"'
HOSTILE_NAME = "Pipes | and <i>tags</i>"


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the contents of <style>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    def plain(self) -> str:
        """The text as a reader sees it, whitespace collapsed."""
        return " ".join("".join(self.text).split())

    def having(self, tag: str, css_class: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and css_class in (attrs.get("class") or "").split()
        ]


def rows_for(engine: str) -> list[dict[str, Any]]:
    """Six scenarios; B takes two more turns everywhere, so turns differ for real."""
    turns = 4 if engine == "a" else 6
    rows = [row(s, turns=turns, duration=0.5 + 0.1 * s, name=f"Scenario {s}") for s in range(6)]
    rows[0] = row(0, turns=turns, client_line=HOSTILE_LINE, name=HOSTILE_NAME)
    if engine == "b":
        rows[5] = row(5, status="failed", end_reason="error", turns=turns, name="Scenario 5")
        rows.append(row(6, turns=turns, name="Only on B"))
    return rows


@pytest.fixture
def report(tmp_path: Path) -> tuple[Comparison, dict[str, Path]]:
    rows_a, rows_b = rows_for("a"), rows_for("b")
    comparison = compare_rows(
        rows_a, rows_b, label_a="legacy", label_b="autogen", spec="multiagent_prompts"
    )
    return comparison, write_reports(comparison, rows_a, rows_b, tmp_path / "out")


def test_the_three_files_are_written(report: tuple[Comparison, dict[str, Path]]) -> None:
    comparison, paths = report
    out = paths["html"].parent
    assert {path.name for path in out.iterdir()} == {JSON_FILE, MARKDOWN_FILE, HTML_FILE}
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written == comparison.model_dump(mode="json")
    assert Comparison.model_validate(written) == comparison
    assert {"a", "b", "paired", "breakdowns", "scenarios", "bootstrap"} <= set(written)


def test_markdown_has_the_verdict_every_metric_and_the_breakdowns(
    report: tuple[Comparison, dict[str, Path]],
) -> None:
    comparison, paths = report
    markdown = paths["md"].read_text(encoding="utf-8")
    assert markdown.startswith("# A/B comparison: legacy (A) vs autogen (B)")
    verdict = markdown.split("## Verdict")[1].split("## Metrics")[0]
    assert "**Turns per conversation**: autogen higher, +2" in verdict
    assert verdict.count("\n- ") == len(comparison.significant())
    for item in (*comparison.paired, *comparison.breakdowns):
        assert f"| {item.metric.label}" in markdown
    for heading in (
        "## Status and end reasons",
        "## Wall time and tokens",
        "## Tools and handoffs",
        "## pass^k (k = 1)",
        "## Contract violations",
        "## Scenarios",
    ):
        assert heading in markdown
    assert "| wall time p95 (s) |" in markdown
    assert "Pipes \\| and <i>tags</i>" in markdown  # a pipe must not split the table cell
    assert "(missing)" in markdown  # scenario 6 never ran on A


def test_markdown_says_so_when_nothing_differs() -> None:
    rows = [row(s) for s in range(6)]
    markdown = render_markdown(compare_rows(rows, rows))
    assert "No real difference: every interval includes 0." in markdown
    assert "**yes**" not in markdown


def test_html_is_self_contained(report: tuple[Comparison, dict[str, Path]]) -> None:
    html = report[1]["html"].read_text(encoding="utf-8")
    page = Page(html)
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "img", "base"}
    for tag, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("src", "href", "xlink:href", "action"):
            assert attrs.get(name) is None, (tag, attrs)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    style = "".join(page.styles)
    assert style and "url(" not in style and "@import" not in style
    assert html.lstrip().startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html


def test_html_has_the_charts(report: tuple[Comparison, dict[str, Path]]) -> None:
    html = report[1]["html"].read_text(encoding="utf-8")
    charts = re.findall(r'<svg [^>]*class="chart".*?</svg>', html, re.DOTALL)
    titles = [re.search(r"<title>(.*?)</title>", chart).group(1) for chart in charts]  # type: ignore[union-attr]
    assert titles == [
        "Evaluator scores",
        "Turns per conversation",
        "Turns (box plot)",
        "Wall time per conversation",
        "Wall time (box plot)",
    ]
    for chart in charts:
        assert "legacy" in chart and "autogen" in chart
        assert re.search(r'<rect [^>]*height="[1-9]', chart), "a chart without a drawn bar or box"
    # Six runs on A scored 3; on B five completed runs scored 3 and the failed one 1.
    assert "<title>legacy: 3 → 6</title>" in charts[0]
    assert "<title>autogen: 3 → 6</title>" in charts[0]
    assert "<title>autogen: 1 → 1</title>" in charts[0]
    assert "<title>legacy: 4 → 6</title>" in charts[1]
    assert "<title>autogen: 6 → 7</title>" in charts[1]


def test_html_has_side_by_side_transcripts_per_scenario(
    report: tuple[Comparison, dict[str, Path]],
) -> None:
    comparison, paths = report
    page = Page(paths["html"].read_text(encoding="utf-8"))
    scenarios = page.having("details", "scenario")
    assert len(scenarios) == len(comparison.scenarios) == 7
    assert "open" in scenarios[0]  # the first transcript shows without a click
    assert len(page.having("div", "pair")) == 7
    assert len(page.having("div", "side")) == 14
    # Six runs with a history on A, five on B (the failed run has none), two entries each.
    assert len(page.having("div", "entry")) == (6 + 6) * 2
    text = page.plain()
    assert "Only on B" in text and "no result" in text
    assert "backend down" in text  # the failed run's error
    assert "Let me look that up." in text and "rag_find_products" in text


def test_transcript_content_is_escaped_not_interpreted(
    report: tuple[Comparison, dict[str, Path]],
) -> None:
    html = report[1]["html"].read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html and "<i>tags</i>" not in html
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html
    page = Page(html)
    text = "".join(page.text)
    assert HOSTILE_LINE in text  # shown to the reader exactly as the client said it
    assert HOSTILE_NAME in text
    assert not {tag for tag, _ in page.tags} & {"script", "img", "i"}


def test_html_shows_the_verdict_and_marks_real_differences() -> None:
    rows_a, rows_b = rows_for("a"), rows_for("b")
    comparison = compare_rows(rows_a, rows_b, label_a="legacy", label_b="autogen")
    page = Page(render_html(comparison, rows_a, rows_b))
    real_rows = page.having("tr", "real")
    assert len(real_rows) == len(comparison.significant()) > 0
    text = page.plain()
    assert "Turns per conversation: autogen higher, +2 (interval [+2, +2])" in text
    same = [row(s) for s in range(6)]
    quiet = Page(render_html(compare_rows(same, same), same, same))
    assert not quiet.having("tr", "real")
    assert "No real difference" in quiet.plain()


def test_html_says_why_too_few_scenarios_flag_nothing() -> None:
    rows_a = [row(s, turns=3) for s in range(2)]
    rows_b = [row(s, turns=9) for s in range(2)]
    html = render_html(compare_rows(rows_a, rows_b), rows_a, rows_b)
    text = Page(html).plain()
    assert (
        "No real difference: the intervals that exclude 0 rest on fewer than 5 scenarios, "
        "too few to call a difference real." in text
    )
    markdown = render_markdown(compare_rows(rows_a, rows_b))
    assert "the intervals that exclude 0 rest on fewer than 5 scenarios" in markdown
