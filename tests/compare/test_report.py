"""The comparison's files: comparison.json, report.md and a self-contained report.html."""

from __future__ import annotations

import difflib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conversation_engine.compare.analysis import Comparison, EndpointInfo, compare_rows
from conversation_engine.compare.harness import ComparisonRun, EngineRun, endpoint_info
from conversation_engine.compare.report import (
    HTML_FILE,
    JSON_FILE,
    MARKDOWN_FILE,
    diff_lines,
    differing_pairs,
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


def section(html: str, section_id: str) -> Page:
    """The `<section id=...>` of a report, parsed on its own."""
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.DOTALL)
    assert found, f"no section {section_id}"
    return Page(found.group(1))


SIMULATED = EndpointInfo(
    kind="simulated LLM (offline test double)",
    host="simulated-llm.local",
    model="simulated",
    simulated=True,
)
REAL = EndpointInfo(
    kind="OpenAI-compatible endpoint", host="api.openai.com", model="gpt-4o-mini", simulated=False
)
SCENARIOS = range(12)
"""Enough scenarios for a constant shift to be flagged (at least `MIN_SCENARIOS`)."""


def on(endpoint: EndpointInfo | None, **extra: Any) -> dict[str, Any]:
    """A side's `extra` for `compare_rows`: its endpoint and anything else."""
    return {"endpoint": endpoint, **extra}


def compared(
    rows_a: list[dict[str, Any]],
    rows_b: list[dict[str, Any]],
    endpoint: EndpointInfo | None = REAL,
    **options: Any,
) -> Comparison:
    options.setdefault("extra_a", on(endpoint))
    options.setdefault("extra_b", on(endpoint))
    return compare_rows(rows_a, rows_b, label_a="legacy", label_b="autogen", **options)


def rows_for(engine: str) -> list[dict[str, Any]]:
    """Twelve scenarios; B takes two more turns everywhere, so turns differ for real."""
    turns = 4 if engine == "a" else 6
    rows = [row(s, turns=turns, duration=0.5 + 0.1 * s, name=f"Scenario {s}") for s in SCENARIOS]
    rows[0] = row(0, turns=turns, client_line=HOSTILE_LINE, name=HOSTILE_NAME)
    if engine == "b":
        rows[5] = row(5, status="failed", end_reason="error", turns=turns, name="Scenario 5")
        rows.append(row(12, turns=turns, name="Only on B"))
    return rows


@pytest.fixture
def report(tmp_path: Path) -> tuple[Comparison, dict[str, Path]]:
    rows_a, rows_b = rows_for("a"), rows_for("b")
    comparison = compared(rows_a, rows_b, spec="multiagent_prompts")
    return comparison, write_reports(comparison, rows_a, rows_b, tmp_path / "out")


def test_the_three_files_are_written(report: tuple[Comparison, dict[str, Path]]) -> None:
    comparison, paths = report
    out = paths["html"].parent
    assert {path.name for path in out.iterdir()} == {JSON_FILE, MARKDOWN_FILE, HTML_FILE}
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written == comparison.model_dump(mode="json")
    assert Comparison.model_validate(written) == comparison
    assert {"a", "b", "paired", "breakdowns", "scenarios", "bootstrap"} <= set(written)
    # What a reader of comparison.json needs to judge it, beside the numbers.
    assert written["simulated"] is False and written["banner"] is None
    assert written["headline"] == comparison.headline
    for side in ("a", "b"):
        assert written[side]["endpoint"] == {
            "kind": "OpenAI-compatible endpoint",
            "host": "api.openai.com",
            "model": "gpt-4o-mini",
            "simulated": False,
        }
    # Each side's conversations summed: row 0 and the extra run on B take the default 1 s.
    assert (written["a"]["conversation_seconds"], written["b"]["conversation_seconds"]) == (
        13.1,
        14.1,
    )


def test_a_comparison_json_without_the_new_fields_still_reads() -> None:
    rows = [row(s) for s in range(3)]
    written = compare_rows(rows, rows).model_dump(mode="json")
    for side in ("a", "b"):
        del written[side]["endpoint"]
    for key in ("simulated", "banner", "headline"):
        del written[key]
    old = Comparison.model_validate(written)
    assert old.a.endpoint is None and not old.simulated and old.banner is None


def test_markdown_has_the_verdict_every_metric_and_the_breakdowns(
    report: tuple[Comparison, dict[str, Path]],
) -> None:
    comparison, paths = report
    markdown = paths["md"].read_text(encoding="utf-8")
    assert markdown.startswith("# A/B comparison: legacy (A) vs autogen (B)")
    verdict = markdown.split("## Verdict")[1].split("## Metrics")[0]
    assert "**Turns per conversation**: autogen higher, +2 (95 % interval [+2, +2])" in verdict
    assert verdict.count("\n- ") == len(comparison.significant())
    for item in (*comparison.paired, *comparison.breakdowns):
        assert f"| {item.metric.label}" in markdown
    for heading in (
        "## Status and end reasons",
        "## Wall time and tokens",
        "## Tools and handoffs",
        "## pass^k (k = 1)",
        "## Contract violations",
        "## Where A and B differ most",
        "## Scenarios",
    ):
        assert heading in markdown
    assert "| wall time p95 (s) |" in markdown
    assert "| Pass rate | 100 % | 91.7 % | -8.33 pp |" in markdown  # rates in %, in points
    assert "Pipes \\| and <i>tags</i>" in markdown  # a pipe must not split the table cell
    assert "(missing)" in markdown  # scenario 12 never ran on A


def test_markdown_says_so_when_nothing_differs() -> None:
    rows = [row(s) for s in SCENARIOS]
    markdown = render_markdown(compared(rows, rows))
    assert "No real difference: no difference passed the test" in markdown
    assert "**yes**" not in markdown


def test_an_unknown_cost_is_shown_as_unknown_in_every_report(tmp_path: Path) -> None:
    rows_a = [row(s, cost=None) for s in SCENARIOS]  # e.g. the simulated LLM
    rows_b = [row(s, cost=0.02) for s in SCENARIOS]
    comparison = compared(rows_a, rows_b)
    paths = write_reports(comparison, rows_a, rows_b, tmp_path / "out")
    markdown = paths["md"].read_text(encoding="utf-8")
    assert "| cost (USD) | unknown | 0.24 |" in markdown
    assert "| Cost per conversation (USD) | unknown | 0.02 | – | – | 0 | no |" in markdown
    html = Page(paths["html"].read_text(encoding="utf-8")).plain()
    cells = "".join(html.split())  # the table cells' text, run together
    assert "cost(USD)unknown0.24" in cells
    assert "Costperconversation(USD)unknown0.02" in cells
    stored = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert stored["a"]["usage"]["cost_usd"] is None
    assert stored["b"]["usage"]["cost_usd"] == pytest.approx(0.24)
    for text in (markdown, cells):
        assert "$0" not in text
    assert "| cost (USD) | –" not in markdown and "cost(USD)–" not in cells
    # Never flagged, so never in the headline or the verdict.
    assert "costs" not in comparison.headline
    assert all(item.metric.key != "cost_usd" for item in comparison.significant())


def test_a_known_cost_is_shown_as_a_number() -> None:
    rows = [row(s, cost=0.01) for s in SCENARIOS]
    markdown = render_markdown(compared(rows, rows))
    assert "| cost (USD) | 0.12 | 0.12 |" in markdown
    assert "unknown" not in markdown


def test_the_batch_time_is_the_one_shared_schedule_and_each_side_its_conversations() -> None:
    rows_a = [row(s, duration=1.0) for s in SCENARIOS]
    rows_b = [row(s, duration=2.5) for s in SCENARIOS]
    comparison = compared(
        rows_a,
        rows_b,
        extra_a=on(REAL, wall_seconds=21.04),
        extra_b=on(REAL, wall_seconds=21.04),
    )
    assert (comparison.a.conversation_seconds, comparison.b.conversation_seconds) == (12, 30)
    markdown = render_markdown(comparison)
    assert "whole batch" not in markdown
    assert "| conversation time, total | 12 s | 30 s |" in markdown
    sentence = "Both sides ran interleaved in one schedule of 21 s (wall clock)"
    assert markdown.count(sentence) == 1
    html = render_html(comparison, rows_a, rows_b)
    text = Page(html).plain()
    assert "whole batch" not in text and text.count(sentence) == 1
    assert re.search(r"<td>conversation time, total</td><td[^>]*>12 s</td><td[^>]*>30 s</td>", html)


# ------------------------------------------------------------------------------ endpoints


def test_each_side_names_its_endpoint_in_every_report(tmp_path: Path) -> None:
    rows = [row(s) for s in range(3)]
    comparison = compared(rows, rows, extra_a=on(SIMULATED), extra_b=on(REAL))
    paths = write_reports(comparison, rows, rows, tmp_path)
    markdown = paths["md"].read_text(encoding="utf-8")
    assert "- **A** legacy: simulated LLM (offline test double), model simulated" in markdown
    assert "- **B** autogen: OpenAI-compatible endpoint api.openai.com, model gpt-4o-mini" in (
        markdown
    )
    text = Page(paths["html"].read_text(encoding="utf-8")).plain()
    assert "A legacy: simulated LLM (offline test double), model simulated" in text
    assert "B autogen: OpenAI-compatible endpoint api.openai.com, model gpt-4o-mini" in text
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written["a"]["endpoint"]["simulated"] and not written["b"]["endpoint"]["simulated"]


def test_an_endpoint_is_named_by_its_host_only() -> None:
    secret = "sk-live-0123456789"
    wrapper = SimpleNamespace(
        is_simulated=False,
        base_url=f"https://team:{secret}@gateway.example.com:8443/v1/openai?api-key={secret}",
        model="gpt-4.1-mini",
    )
    info = endpoint_info(wrapper)
    assert info == EndpointInfo(
        kind="OpenAI-compatible endpoint",
        host="gateway.example.com:8443",
        model="gpt-4.1-mini",
        simulated=False,
    )
    assert secret not in info.model_dump_json() and "team" not in info.model_dump_json()
    simulated = endpoint_info(
        SimpleNamespace(is_simulated=True, base_url="http://simulated-llm.local/v1", model="sim")
    )
    assert simulated.simulated and simulated.kind == "simulated LLM (offline test double)"
    assert endpoint_info(SimpleNamespace()).host is None  # a wrapper that says nothing


def test_an_unknown_endpoint_is_said_to_be_unknown() -> None:
    rows = [row(s) for s in range(3)]
    markdown = render_markdown(compare_rows(rows, rows))  # a caller that passes no endpoint
    assert "- **A** A: endpoint not recorded" in markdown
    assert "Warning: simulated LLM" not in markdown


# ------------------------------------------------------------------------------ the banner


def test_a_simulated_run_carries_the_banner_in_every_report(tmp_path: Path) -> None:
    rows = [row(s) for s in range(3)]
    comparison = compared(rows, rows, endpoint=SIMULATED)
    assert comparison.simulated
    banner = comparison.banner
    assert banner is not None
    for said in (
        "Both sides ran on the simulated LLM",
        "ignores prompts",
        "(evaluator score, pass rate, pass^k) are not meaningful for prompt changes",
        "the plumbing and the output contract, failures, tool-call and handoff mechanics, "
        "and relative tokens and overhead",
    ):
        assert said in banner
    paths = write_reports(comparison, rows, rows, tmp_path)

    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written["simulated"] is True and written["banner"] == banner

    markdown = paths["md"].read_text(encoding="utf-8").splitlines()
    assert markdown[0].startswith("# A/B comparison")
    assert markdown[2] == f"> **Warning: simulated LLM.** {banner}"  # a blockquote at the top

    html = paths["html"].read_text(encoding="utf-8")
    page = Page(html)
    (shown,) = page.having("div", "banner")
    assert shown["role"] == "note"
    text = page.plain()
    assert f"Warning: simulated LLM. {banner}" in text
    # At the top: before the headline, the endpoints and the verdict.
    assert html.index('class="banner"') < html.index('class="headline"') < html.index("Verdict")
    assert ".banner {" in "".join(page.styles)  # styled as a warning


def test_one_simulated_side_is_named_and_said_not_comparable() -> None:
    rows = [row(s) for s in range(3)]
    comparison = compared(rows, rows, extra_a=on(REAL), extra_b=on(SIMULATED))
    assert comparison.banner is not None
    assert comparison.banner.startswith("B (autogen), not the other side, ran on the simulated")
    assert "did not run on the same model" in comparison.banner


def test_a_real_endpoint_has_no_banner(tmp_path: Path) -> None:
    rows = [row(s) for s in range(3)]
    comparison = compared(rows, rows, endpoint=REAL)
    assert not comparison.simulated and comparison.banner is None
    paths = write_reports(comparison, rows, rows, tmp_path)
    assert "simulated LLM" not in paths["md"].read_text(encoding="utf-8")
    page = Page(paths["html"].read_text(encoding="utf-8"))
    assert not page.having("div", "banner") and "simulated LLM" not in page.plain()
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written["simulated"] is False and written["banner"] is None


# ------------------------------------------------------------------------------ the headline


def test_the_headline_says_too_few_scenarios() -> None:
    rows_a = [row(s, turns=3, duration=1.0) for s in range(2)]
    rows_b = [row(s, turns=9, duration=9.0) for s in range(2)]
    comparison = compared(rows_a, rows_b)
    assert comparison.headline == (
        "Too few scenarios (2) to call any difference; at least 10 are needed."
    )
    assert render_markdown(comparison).splitlines()[2] == f"**{comparison.headline}**"


def test_the_headline_states_a_flagged_slowdown_as_a_ratio_and_tokens_in_percent() -> None:
    rows_a = [row(s, duration=1.0, tokens=1000) for s in SCENARIOS]
    rows_b = [row(s, duration=4.5, tokens=1056) for s in SCENARIOS]
    comparison = compared(rows_a, rows_b)
    assert comparison.headline == (
        "No quality difference; B is 4.5× slower in wall time and uses 5.6 % more tokens."
    )
    html = render_html(comparison, rows_a, rows_b)
    assert Page(html).plain().count(comparison.headline) == 1
    assert html.index('class="headline"') < html.index("<h2>Verdict</h2>")


def test_the_headline_of_a_faster_cheaper_side() -> None:
    rows_a = [row(s, duration=3.0, tokens=2000, cost=0.02) for s in SCENARIOS]
    rows_b = [row(s, duration=2.4, tokens=500, cost=0.005) for s in SCENARIOS]
    assert compared(rows_a, rows_b).headline == (
        "No quality difference; B is 20 % faster in wall time, uses 75 % fewer tokens and "
        "costs 75 % less."
    )


def test_the_headline_puts_quality_first_and_says_nothing_else_differs() -> None:
    rows_a = [row(s, score=3) for s in SCENARIOS]
    rows_b = [row(s, score=2) for s in SCENARIOS]
    assert compared(rows_a, rows_b).headline == (
        "B scores lower (2 vs 3), passes less often (0 % vs 100 %) and has a lower pass^1 "
        "(0 % vs 100 %); no other difference."
    )


def test_the_headline_names_other_flagged_differences(
    report: tuple[Comparison, dict[str, Path]],
) -> None:
    comparison, _ = report
    assert comparison.headline == (
        "No quality difference; B also differs in turns per conversation (6 vs 4)."
    )


def test_the_headline_never_states_a_difference_that_was_not_flagged() -> None:
    rows_a = [row(s, duration=1.0) for s in SCENARIOS]
    rows_b = [row(s, duration=1.0) for s in SCENARIOS]
    rows_b[3] = row(3, duration=30.0, score=1)  # one slow, poorly scored run is not a pattern
    comparison = compared(rows_a, rows_b)
    assert not comparison.significant()
    assert comparison.headline == (
        "No difference found in quality, cost, speed or anything else measured."
    )


def test_the_headline_of_a_simulated_run_claims_no_quality_tie() -> None:
    rows_a = [row(s, duration=1.0, tokens=1000) for s in SCENARIOS]
    rows_b = [row(s, duration=4.5, tokens=1056) for s in SCENARIOS]
    comparison = compared(rows_a, rows_b, endpoint=SIMULATED)
    assert comparison.headline == (
        "Quality not measurable on the simulated LLM; B is 4.5× slower in wall time and uses "
        "5.6 % more tokens."
    )
    same = [row(s) for s in SCENARIOS]
    assert compared(same, same, endpoint=SIMULATED).headline == (
        "Quality not measurable on the simulated LLM; no other difference."
    )


# ------------------------------------------------------------------------------ paths


def test_no_report_shows_an_absolute_path(tmp_path: Path) -> None:
    home = "/home/someone/projects/shop"
    rows = [row(s) for s in range(3)]
    comparison = compare_rows(
        rows,
        rows,
        spec=f"{home}/specs/checkout.yaml",
        scenarios_file=f"{home}/scenarios/regression.json",
        extra_a={"batch_dir": str(tmp_path / "out" / "batches" / "a1"), "endpoint": REAL},
        extra_b={"batch_dir": "batches/b1", "endpoint": REAL},
    )
    paths = write_reports(comparison, rows, rows, tmp_path / "out")
    for kind, path in paths.items():
        text = path.read_text(encoding="utf-8")
        assert home not in text and str(tmp_path) not in text, kind
        assert not re.search(r"(?<![\w.:/])/(home|tmp|Users|var|root)/", text), kind
        assert "regression.json" in text and "checkout.yaml" in text, kind
        assert "batches/b1" in text, kind
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert (written["spec"], written["scenarios_file"]) == ("checkout.yaml", "regression.json")
    assert (written["a"]["batch_dir"], written["b"]["batch_dir"]) == ("a1", "batches/b1")
    relative = compare_rows(rows, rows, scenarios_file="scenarios/regression.json")
    assert relative.scenarios_file == "scenarios/regression.json"  # as typed, relative


# ------------------------------------------------------------------------------ differ most


def differing_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Twelve scenarios; 0-6 go differently on B, each in its own way, 7-11 the same."""
    rows_a = [row(s, name=f"Scenario {s}") for s in SCENARIOS]
    rows_b = [row(s, name=f"Scenario {s}") for s in SCENARIOS]
    rows_b[0] = row(0, score=2, name="Scenario 0")  # score gap 1
    rows_b[1] = row(1, status="failed", end_reason="error", name="Scenario 1")  # status, gap 2
    rows_b[2] = row(2, end_reason="max_turns", name="Scenario 2")  # end reason only
    rows_b[3] = row(3, turns=8, name="Scenario 3")  # 4 more turns
    rows_b[4] = row(4, turns=6, tools=("rag_find_products",), name="Scenario 4")  # 2 turns
    rows_b[5] = row(5, tools=(), name="Scenario 5")  # 2 tool calls fewer, nothing else
    rows_b[6] = row(6, score=1, name="Scenario 6")  # score gap 2
    return rows_a, rows_b


def test_the_differing_scenarios_are_ranked_outcome_then_score_then_turns_then_tools() -> None:
    rows_a, rows_b = differing_rows()
    comparison = compared(rows_a, rows_b)
    ranked = differing_pairs(comparison, limit=12)
    # Outcome first (1 also has the larger score gap), then score, then turns, then tools.
    assert [item.scenario.index for item in ranked] == [1, 2, 6, 0, 3, 4, 5]
    assert ranked[0].changes == (
        "status completed → failed",
        "end reason client_end_call → error",
        "score 3 → 1",
    )
    assert ranked[1].changes == ("end reason client_end_call → max_turns",)
    assert ranked[5].changes == ("turns 4 → 6", "tool calls 2 → 1")
    assert [item.scenario.index for item in differing_pairs(comparison)] == [1, 2, 6, 0, 3]

    markdown = render_markdown(comparison)
    listed = markdown.split("## Where A and B differ most")[1].split("\n## ")[0]
    assert "The 5 of 12 scenario-trial(s) that differ most." in listed
    lines = [line for line in listed.splitlines() if re.match(r"\d\. ", line)]
    assert [line.split(" ", 2)[1] for line in lines] == ["#1", "#2", "#6", "#0", "#3"]
    assert lines[0] == (
        "1. #1 Scenario 1, trial 0, seed 101: status completed → failed; end reason "
        "client_end_call → error; score 3 → 1"
    )

    html = render_html(comparison, rows_a, rows_b)
    differ = section(html, "differ-most")
    shown = differ.having("details", "differ")
    assert len(shown) == 5 and all("open" in attrs for attrs in shown)
    assert len(differ.having("div", "pair")) == 5 and len(differ.having("div", "side")) == 10
    summaries = re.findall(r"<summary>(.*?)</summary>", html.split('id="differ-most"')[1])[:5]
    assert [s.split(" ", 2)[1] for s in summaries] == ["#1", "#2", "#6", "#0", "#3"]
    assert "backend down" in differ.plain()  # B's failed run, beside A's transcript
    assert html.index('id="differ-most"') < html.index('id="scenarios"')


def test_the_differing_section_says_when_few_or_none_differ() -> None:
    rows = [row(s) for s in SCENARIOS]
    same = compared(rows, rows)
    assert differing_pairs(same) == []
    none = "None: all 12 scenario-trial(s) went the same way on both sides"
    assert none in render_markdown(same)
    html = render_html(same, rows, rows)
    assert none in section(html, "differ-most").plain()
    assert not section(html, "differ-most").having("details", "differ")

    rows_b = [*rows]
    rows_b[4] = row(4, turns=7)
    rows_b[9] = row(9, score=2)
    few = compared(rows, rows_b)
    assert [item.scenario.index for item in differing_pairs(few)] == [9, 4]
    assert "Only 2 of 12 scenario-trial(s) differ." in render_markdown(few)


# ------------------------------------------------------------------------------ html


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
    # Twelve runs on A scored 3; on B twelve completed runs scored 3 and the failed one 1.
    assert "<title>legacy: 3 → 12</title>" in charts[0]
    assert "<title>autogen: 3 → 12</title>" in charts[0]
    assert "<title>autogen: 1 → 1</title>" in charts[0]
    assert "<title>legacy: 4 → 12</title>" in charts[1]
    assert "<title>autogen: 6 → 13</title>" in charts[1]
    assert (
        "<title>legacy: min 0.6 s, p25 0.875 s, median 1.05 s, p75 1.32 s, max 1.6 s</title>"
        in (charts[4])
    )


def test_html_has_side_by_side_transcripts_per_scenario(
    report: tuple[Comparison, dict[str, Path]],
) -> None:
    comparison, paths = report
    html = paths["html"].read_text(encoding="utf-8")
    page = section(html, "scenarios")
    scenarios = page.having("details", "scenario")
    assert len(scenarios) == len(comparison.scenarios) == 13
    assert "open" in scenarios[0]  # the first transcript shows without a click
    assert len(page.having("div", "pair")) == 13
    assert len(page.having("div", "side")) == 26
    # Twelve runs with a history on A, twelve on B (the failed run has none), two entries each.
    assert len(page.having("div", "entry")) == (12 + 12) * 2
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
    comparison = compared(rows_a, rows_b)
    page = Page(render_html(comparison, rows_a, rows_b))
    real_rows = page.having("tr", "real")
    assert len(real_rows) == len(comparison.significant()) > 0
    text = page.plain()
    assert "Turns per conversation: autogen higher, +2 (95 % interval [+2, +2])" in text
    same = [row(s) for s in SCENARIOS]
    quiet = Page(render_html(compared(same, same), same, same))
    assert not quiet.having("tr", "real")
    assert "No real difference" in quiet.plain()


def test_html_says_why_too_few_scenarios_flag_nothing() -> None:
    rows_a = [row(s, turns=3) for s in range(2)]
    rows_b = [row(s, turns=9) for s in range(2)]
    comparison = compared(rows_a, rows_b)
    text = Page(render_html(comparison, rows_a, rows_b)).plain()
    why = "No difference can be called real: only 2 scenario(s) were paired, and at least 10"
    assert why in text
    assert why in render_markdown(comparison)


# ------------------------------------------------------------------------------ configuration

SIDE_A = {
    "engine": "autogen",
    "spec": "multiagent_prompts",
    "model": "gpt-4o-mini",
    "endpoint": "api.openai.com",
    "api_key_env": "(shared)",
    "temperature": 0.7,
    "tools": "(shared)",
}
SIDE_B = {**SIDE_A, "spec": "polite.json", "model": "gpt-4o"}
CUSTOMER = (
    "Both sides faced the same simulated customer and evaluator: the 'client' and 'evaluator' "
    "prompts of spec multiagent_prompts (side A), on model gpt-4o-mini."
)
PROMPT_A = [
    "You are the sales assistant.",
    "Be brief.",
    "-- old rule",  # removed: "--- old rule", like a file header
    "Say goodbye.",
]
PROMPT_B = [
    "You are the sales assistant.",
    "Be thorough.",
    "++ new rule",  # added: "+++ new rule", like a file header
    "@@ -1 +1 @@ not a hunk",
    "Say goodbye.",
]
HOSTILE_PROMPT = [
    '<script>alert("owned")</script> & <b>bold</b>',
    "```",
    "Close the fence: ````",
    "```diff",
]


def unified(a: list[str], b: list[str], agent: str, *extra: str) -> str:
    """A prompt diff as the harness writes it (`sides.spec_diff`)."""
    lines = difflib.unified_diff(a, b, fromfile=f"A {agent}", tofile=f"B {agent}", lineterm="")
    return "\n".join([*lines, *extra])


AGENT_DIFF = unified(PROMPT_A, PROMPT_B, "agent", "tools: -add_to_cart, +get_cart")
HOSTILE_DIFF = unified(
    ["Hello.", "````", "Bye."], ["Hello.", "````", *HOSTILE_PROMPT, "Bye."], "support"
)
"""Its context line " ````" would close a fence of up to four backticks."""


def configured(comparison: Comparison, **update: Any) -> Comparison:
    """`comparison` as the harness fills it: sides, what differs, prompt diffs, the customer."""
    fields: dict[str, Any] = {
        "sides": {"a": SIDE_A, "b": SIDE_B},
        "differences": ["spec", "model"],
        "prompt_diffs": {"agent": AGENT_DIFF, "support": HOSTILE_DIFF},
        "customer": CUSTOMER,
    }
    return comparison.model_copy(update={**fields, **update})


@pytest.fixture
def two_specs() -> tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]]:
    rows_a, rows_b = rows_for("a"), rows_for("b")
    return configured(compared(rows_a, rows_b, spec="multiagent_prompts")), rows_a, rows_b


def configuration_html(html: str) -> str:
    """The configuration block of a report's header."""
    found = re.search(r'<div class="configuration" id="configuration">(.*?)</div>', html, re.S)
    assert found, "no configuration table"
    return found.group(1)


class Cells(HTMLParser):
    """The rows of a table: the class of each `<tr>` and the text of its cells."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


class DiffView(HTMLParser):
    """The lines of a `<pre class="diff">`: each line's kind, its text and its marked parts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[dict[str, Any]] = []
        self._part: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "span" and "line" in classes:
            kind = next(name for name in classes if name.startswith("diff-"))
            self.lines.append({"kind": kind, "text": "", "parts": []})
        elif tag == "span":
            self._part = next(name for name in classes if name.startswith("diff-"))
            self.lines[-1]["parts"].append((self._part, ""))

    def handle_endtag(self, tag: str) -> None:
        self._part = None

    def handle_data(self, data: str) -> None:
        if not self.lines:
            return
        self.lines[-1]["text"] += data
        if self._part is not None:
            kind, text = self.lines[-1]["parts"][-1]
            self.lines[-1]["parts"][-1] = (kind, text + data)


def diffs_of(html: str) -> dict[str, DiffView]:
    """Per agent, the diff shown under "Prompt changes"."""
    changes = re.search(r'<section id="prompt-changes">(.*?)</section>', html, re.S)
    assert changes, "no prompt changes"
    blocks = re.findall(r"<h3>(.*?)</h3>\s*<pre class=\"diff\">(.*?)</pre>", changes.group(1), re.S)
    return {agent: DiffView(block) for agent, block in blocks}


def test_the_configuration_table_sets_the_sides_side_by_side_and_marks_what_differs(
    two_specs: tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    comparison, rows_a, rows_b = two_specs
    html = render_html(comparison, rows_a, rows_b)
    header, *body = Cells(configuration_html(html)).rows
    assert header[1] == ["", "A legacy", "B autogen", "≠"]
    assert [cells for _, cells in body] == [
        ["engine", "autogen", "autogen", ""],
        ["spec", "multiagent_prompts", "polite.json", "≠"],
        ["model", "gpt-4o-mini", "gpt-4o", "≠"],
        ["endpoint", "api.openai.com", "api.openai.com", ""],
        ["key variable", "(shared)", "(shared)", ""],
        ["temperature", "0.7", "0.7", ""],
        ["tools", "(shared)", "(shared)", ""],
    ]
    # Exactly the rows that differ are highlighted, by a class with a visible background.
    assert [cells[0] for css, cells in body if "differs" in css.split()] == ["spec", "model"]
    style = "".join(Page(html).styles)
    assert re.search(r"tr\.differs (th|td)[^{]*\{[^}]*background: #", style)
    text = Page(html).plain()
    assert "This comparison tests: spec, model." in text
    assert CUSTOMER in text
    # In the header: after the headline and the endpoints, before the first section.
    headline = html.index('id="headline"')
    endpoints = html.index('class="endpoints"')
    assert headline < endpoints < html.index('id="configuration"') < html.index("</header>")
    assert html.index(CUSTOMER.replace("'", "&#39;")) < html.index("</header>")


def test_markdown_sets_the_sides_side_by_side_with_the_differences_in_bold(
    two_specs: tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    markdown = render_markdown(two_specs[0])
    head = markdown.split("## Verdict")[0]
    table = [line for line in head.splitlines() if line.startswith("|")]
    assert table == [
        "|  | A: legacy | B: autogen | ≠ |",
        "|---|---|---|---|",
        "| engine | autogen | autogen |  |",
        "| spec | **multiagent_prompts** | **polite.json** | ≠ |",
        "| model | **gpt-4o-mini** | **gpt-4o** | ≠ |",
        "| endpoint | api.openai.com | api.openai.com |  |",
        "| key variable | (shared) | (shared) |  |",
        "| temperature | 0.7 | 0.7 |  |",
        "| tools | (shared) | (shared) |  |",
    ]
    tests = head.index("This comparison tests: spec, model.")
    assert head.index("- **B** autogen:") < tests < head.index("| engine") < head.index(CUSTOMER)
    # The spec of each side is in the table, so the summary line names none.
    assert "Spec `" not in head and "\n13 scenario(s) × 1 trial(s)" in head


def test_an_a_a_comparison_says_so_and_highlights_nothing(
    two_specs: tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    comparison, rows_a, rows_b = two_specs
    alike = comparison.model_copy(
        update={"sides": {"a": SIDE_A, "b": SIDE_A}, "differences": [], "prompt_diffs": {}}
    )
    html = render_html(alike, rows_a, rows_b)
    sentence = "Both sides are configured alike (an A/A comparison)."
    assert sentence in Page(html).plain()
    assert not Page(configuration_html(html)).having("tr", "differs")
    assert 'id="prompt-changes"' not in html
    markdown = render_markdown(alike)
    assert sentence in markdown and "≠ |\n|---" in markdown  # the column, never a mark
    assert "| ≠ |" not in markdown.replace("| B: autogen | ≠ |", "")
    assert "**(shared)**" not in markdown and "## Prompt changes" not in markdown


def test_the_prompt_changes_colour_added_and_removed_lines(
    two_specs: tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    comparison, rows_a, rows_b = two_specs
    html = render_html(comparison, rows_a, rows_b)
    assert html.index('id="prompt-changes"') < html.index("<h2>Metrics</h2>")
    lines = diffs_of(html)["agent"].lines
    assert [(line["kind"], line["text"]) for line in lines] == [
        ("diff-head", "--- A agent\n"),
        ("diff-head", "+++ B agent\n"),
        ("diff-head", "@@ -1,4 +1,5 @@\n"),
        ("diff-same", " You are the sales assistant.\n"),
        ("diff-del", "-Be brief.\n"),
        ("diff-del", "--- old rule\n"),
        ("diff-add", "+Be thorough.\n"),
        ("diff-add", "+++ new rule\n"),
        ("diff-add", "+@@ -1 +1 @@ not a hunk\n"),
        ("diff-same", " Say goodbye.\n"),
        ("diff-note", "tools: -add_to_cart, +get_cart\n"),
    ]
    assert lines[-1]["parts"] == [("diff-del", "-add_to_cart"), ("diff-add", "+get_cart")]
    style = "".join(Page(html).styles)
    for kind in ("diff-add", "diff-del", "diff-head"):
        assert re.search(rf"\.line\.{kind} \{{[^}}]*(background|color): ", style), kind
    assert "spec B's prompt, tools and handoffs differ from spec A's" in Page(html).plain()


def test_a_diff_line_is_told_by_the_hunk_counts() -> None:
    lines = diff_lines("--- A x\n+++ B x\n@@ -0,0 +1 @@\n+--- added\nhandoffs: +support")
    assert [line.kind for line in lines] == ["head", "head", "head", "add", "note"]
    assert [(part.kind, part.text) for part in lines[-1].parts] == [
        ("", "handoffs: "),
        ("add", "+support"),
    ]
    assert [line.kind for line in diff_lines("agent added in B")] == ["note"]


def test_markup_in_a_prompt_is_shown_as_text(
    two_specs: tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    comparison, rows_a, rows_b = two_specs
    html = render_html(comparison, rows_a, rows_b)
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    support = diffs_of(html)["support"].lines
    shown = [line["text"].rstrip("\n") for line in support if line["kind"] == "diff-add"]
    assert shown == [f"+{line}" for line in HOSTILE_PROMPT]
    assert not {tag for tag, _ in Page(html).tags} & {"script", "b"}


def fenced_blocks(markdown: str) -> list[tuple[str, list[str]]]:
    """The fenced code blocks of `markdown` as CommonMark closes them: the info string and the
    lines up to the first line of only backticks, at least as many as the opening fence."""
    blocks: list[tuple[str, list[str]]] = []
    lines = iter(markdown.splitlines())
    for line in lines:
        opening = re.match(r"^ {0,3}(`{3,})([^`]*)$", line)
        if not opening:
            continue
        fence, body = opening.group(1), []
        for inner in lines:
            if re.match(rf"^ {{0,3}}`{{{len(fence)},}}\s*$", inner):
                break
            body.append(inner)
        blocks.append((opening.group(2).strip(), body))
    return blocks


def test_a_markdown_prompt_diff_cannot_break_out_of_its_fence(
    two_specs: tuple[Comparison, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    markdown = render_markdown(two_specs[0])
    changes = markdown.split("## Prompt changes")[1].split("## Metrics")[0]
    assert "### agent" in changes and "### support" in changes
    assert fenced_blocks(changes) == [
        ("diff", AGENT_DIFF.split("\n")),
        ("diff", HOSTILE_DIFF.split("\n")),
    ]
    assert "\n`````diff\n" in changes  # one backtick more than the prompt's longest run
    # The Verdict comes before the prompt changes, the metrics after.
    assert markdown.index("## Verdict") < markdown.index("## Prompt changes")


def test_a_comparison_without_its_sides_renders_nothing_new(tmp_path: Path) -> None:
    rows_a, rows_b = rows_for("a"), rows_for("b")
    comparison = compared(rows_a, rows_b, spec="multiagent_prompts")
    assert comparison.sides == {} and comparison.prompt_diffs == {}
    assert comparison.customer is None
    html = render_html(comparison, rows_a, rows_b)
    for absent in ('id="configuration"', 'id="prompt-changes"', "≠", "This comparison tests"):
        assert absent not in html
    assert "Spec <code>multiagent_prompts</code> · " in html
    markdown = render_markdown(comparison)
    for absent in ("≠", "This comparison tests", "configured alike", "## Prompt changes"):
        assert absent not in markdown
    assert "Spec `multiagent_prompts`, 13 scenario(s) × 1 trial(s)" in markdown
    # With the sides but no prompt diff (the same spec), no "Prompt changes" either.
    same_spec = configured(comparison, prompt_diffs={}, customer=None)
    assert "Prompt changes" not in render_html(same_spec, rows_a, rows_b)
    paths = write_reports(configured(comparison), rows_a, rows_b, tmp_path)
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written["sides"] == {"a": SIDE_A, "b": SIDE_B}
    assert written["differences"] == ["spec", "model"]
    assert written["prompt_diffs"]["support"] == HOSTILE_DIFF


# ------------------------------------------------------------------------------ terminal


def printed(comparison: Comparison, tmp_path: Path) -> str:
    """What `conversation-engine compare` prints for `comparison`, as plain text."""
    from conversation_engine.cli import _terminal
    from conversation_engine.cli.compare import _print_comparison

    run = EngineRun("legacy", "a1", "batches/a1", [], 1.0, "completed")
    result = ComparisonRun(comparison, run, run, {k: tmp_path / k for k in ("html", "md", "json")})
    with _terminal.console.capture() as captured:
        _print_comparison(result)
    return " ".join(captured.get().split())


def test_the_terminal_shows_banner_headline_and_endpoints_before_the_table(
    tmp_path: Path,
) -> None:
    rows_a = [row(s, duration=1.0, tokens=1000) for s in SCENARIOS]
    rows_b = [row(s, duration=4.5, tokens=1056) for s in SCENARIOS]
    shown = printed(compared(rows_a, rows_b, endpoint=SIMULATED), tmp_path)
    banner = shown.index("Warning: simulated LLM. Both sides ran on the simulated LLM")
    headline = shown.index("Quality not measurable on the simulated LLM; B is 4.5× slower")
    endpoint = shown.index("A: legacy on simulated LLM (offline test double), model simulated")
    assert banner < headline < endpoint < shown.index("Paired differences (B − A)")
    assert "Real difference in wall time per conversation: autogen higher" in shown

    real = printed(compared(rows_a, rows_b, endpoint=REAL), tmp_path)
    assert "simulated" not in real
    assert "No quality difference; B is 4.5× slower in wall time" in real
    assert "B: autogen on OpenAI-compatible endpoint api.openai.com, model gpt-4o-mini" in real
