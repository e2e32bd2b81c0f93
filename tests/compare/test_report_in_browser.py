"""The HTML report in a real browser: headless Chromium renders it with no console error.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no port,
no extra package). Errors are collected from every channel the DevTools console shows:
uncaught exceptions, `console.error`, and browser log entries such as a resource that failed
to load. The checks measure the laid-out page, so a chart or transcript that exists in the
markup but is not drawn fails them: the simulated-LLM banner and the headline at the top of
the page, the two transcripts of "Where A and B differ most" side by side, and in a
comparison of two specs the configuration table in the header (the differing row highlighted)
and the prompt change (removed lines red, added lines green, markup shown as text). A page with
deliberate errors proves the detection works.

Skipped when `chromium` is not installed, unless CONVERSATION_ENGINE_REQUIRE_BROWSER=1 (set by
CI when it could install it), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import copy
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.compare.analysis import EndpointInfo, compare_rows
from conversation_engine.compare.harness import ComparisonRun, run_comparison
from conversation_engine.compare.report import write_reports
from conversation_engine.compare.sides import SideConfig
from conversation_engine.core.settings import get_settings
from conversation_engine.inputs.scenario import load_scenarios

REQUIRE_BROWSER = os.environ.get("CONVERSATION_ENGINE_REQUIRE_BROWSER") == "1"
TIMEOUT_SECONDS = 30.0
HOSTILE_LINE = '<script>console.error("injected")</script><img src="nowhere.png"> & more'

# What the page looks like once laid out. Drawn means visible (not hidden by CSS or inside a
# closed <details>) with a box of some width and height.
PAGE_STATE = """(() => {
  const drawn = element => {
    const box = element.getBoundingClientRect();
    const visible = element.checkVisibility({ opacityProperty: true, visibilityProperty: true });
    return visible && box.width > 0 && box.height > 0;
  };
  const charts = [...document.querySelectorAll("svg.chart")];
  return {
    charts: charts.length,
    chartsDrawn: charts.filter(drawn).length,
    shapesDrawn: charts.map(chart => [...chart.querySelectorAll("rect")].filter(drawn).length),
    scenarios: document.querySelectorAll("details.scenario").length,
    entries: document.querySelectorAll(".entry").length,
    entriesShown: [...document.querySelectorAll(".entry")].filter(drawn).length,
    sidesShown: [...document.querySelectorAll(".pair .side")].filter(drawn).length,
    markupInTranscripts: document.querySelectorAll(".content *").length,
    scripts: document.scripts.length,
    resources: performance.getEntriesByType("resource").map(entry => entry.name),
    text: document.body.innerText,
    banner: (banner => banner && {
      text: banner.innerText,
      drawn: drawn(banner),
      top: banner.getBoundingClientRect().top,
      background: getComputedStyle(banner).backgroundColor,
    })(document.querySelector(".banner")),
    headline: (headline => headline && {
      text: headline.innerText,
      drawn: drawn(headline),
      top: headline.getBoundingClientRect().top,
    })(document.querySelector(".headline")),
    firstSectionTop: document.querySelector("h2").getBoundingClientRect().top,
    differ: (section => section && {
      heading: section.querySelector("h2").innerText,
      text: section.innerText,
      pairs: section.querySelectorAll("details.differ").length,
      sidesShown: [...section.querySelectorAll(".pair .side")].filter(drawn).length,
      entriesShown: [...section.querySelectorAll(".entry")].filter(drawn).length,
      firstPair: [...section.querySelectorAll(".pair")].slice(0, 1).flatMap(pair =>
        [...pair.querySelectorAll(":scope > .side")].map(side => {
          const box = side.getBoundingClientRect();
          return { left: box.left, top: box.top, width: box.width };
        })),
    })(document.querySelector("#differ-most")),
  };
})()"""


# The configuration table in the header and the "Prompt changes" section, as laid out.
CONFIGURATION_STATE = """(() => {
  const drawn = element => {
    const box = element.getBoundingClientRect();
    const visible = element.checkVisibility({ opacityProperty: true, visibilityProperty: true });
    return visible && box.width > 0 && box.height > 0;
  };
  const table = document.querySelector("#configuration table.config");
  const changes = document.querySelector("#prompt-changes");
  const lines = kind => changes ? [...changes.querySelectorAll(`pre.diff .line.diff-${kind}`)] : [];
  const line = element => ({
    text: element.innerText,
    drawn: drawn(element),
    background: getComputedStyle(element).backgroundColor,
  });
  return {
    tests: (tests => tests && tests.innerText)(document.querySelector("#configuration .tests")),
    table: table && {
      drawn: drawn(table),
      top: table.getBoundingClientRect().top,
      columns: [...table.querySelectorAll("thead th")].map(cell => cell.innerText),
      rows: [...table.querySelectorAll("tbody tr")].map(row => ({
        cells: [...row.cells].map(cell => cell.innerText),
        drawn: drawn(row),
        differs: row.classList.contains("differs"),
        background: getComputedStyle(row.cells[1]).backgroundColor,
      })),
    },
    headlineTop: document.querySelector(".headline").getBoundingClientRect().top,
    firstSectionTop: document.querySelector("h2").getBoundingClientRect().top,
    changes: changes && {
      drawn: drawn(changes),
      heading: changes.querySelector("h2").innerText,
      agents: [...changes.querySelectorAll("h3")].map(heading => heading.innerText),
      added: lines("add").map(line),
      removed: lines("del").map(line),
      headers: lines("head").map(line),
      markup: changes.querySelectorAll("pre.diff script, pre.diff b").length,
    },
    scripts: document.scripts.length,
    text: document.body.innerText,
  };
})()"""
REMOVED_RULE = "- When the customer says goodbye, thank them and say goodbye."
ADDED_RULE = '- Greet the customer by name. <script>console.error("injected")</script> <b>now</b>'


class Chromium:
    """Headless Chromium and a DevTools protocol connection over fds 3 and 4."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def pipes_on_3_and_4() -> None:
            # Move both ends clear of 3 and 4 first, so one dup2 cannot clobber the other.
            read_end = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--mute-audio",
                    f"--user-data-dir={profile / 'user-data'}",
                    "--remote-debugging-pipe",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(3, 4),
                preexec_fn=pipes_on_3_and_4,
            )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ protocol

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise AssertionError(f"Chromium did not answer in time; its log:\n{self._tail()}")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError(f"Chromium closed the connection; its log:\n{self._tail()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS

        def seen() -> bool:
            return any(
                event.get("method") == method and event.get("sessionId") == session
                for event in self.events
            )

        while not seen():
            self.events.append(self._receive(deadline))

    def _tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    # ------------------------------------------------------------------ pages

    def open(self, url: str) -> str:
        """Load `url` in a new tab, wait for the load event and a painted frame; the session."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self._wait_for("Page.loadEventFired", session)
        self.evaluate(
            session, "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )
        return session

    def widen(self, session: str, width: int = 1280, height: int = 900) -> None:
        """Lay the tab out at a desktop width (the report stacks its columns below 800 px)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.evaluate(
            session, "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"the check itself failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self, session: str) -> list[str]:
        """What the DevTools console of this tab would show as errors."""
        errors: list[str] = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(details.get("exception", {}).get("description") or details["text"])
            elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] in (
                "error",
                "assert",
            ):
                errors.append(" ".join(str(arg.get("value")) for arg in params["args"]))
            elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                errors.append(f"{entry['text']} ({entry.get('url', '')})")
        return errors

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    executable = shutil.which("chromium")
    if executable is None:
        reason = (
            "chromium is not installed (Debian: apt-get install chromium), so the HTML report "
            "was not opened in a browser"
        )
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason}; CONVERSATION_ENGINE_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    chromium = Chromium(executable, tmp_path_factory.mktemp("chromium"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def comparison_run(tmp_path_factory: pytest.TempPathFactory) -> ComparisonRun:
    """legacy vs autogen on the smoke scenarios, offline with the simulated LLM."""
    scenarios = load_scenarios(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json")
    return asyncio.run(
        run_comparison(
            scenarios,
            engine_a="legacy",
            engine_b="autogen",
            out_dir=tmp_path_factory.mktemp("compare"),
        )
    )


@pytest.fixture(scope="module")
def two_specs_run(tmp_path_factory: pytest.TempPathFactory) -> ComparisonRun:
    """The shipped spec (A) against a copy with one rule of the sales agent changed (B), on the
    same engine, offline with the simulated LLM."""
    folder = tmp_path_factory.mktemp("two-specs")
    shipped = get_settings().PROMPTS_DIR / "multiagent_prompts.json"
    spec = json.loads(shipped.read_text(encoding="utf-8"))
    prompt = spec["agents"]["agent"]["prompt"]
    assert REMOVED_RULE in prompt
    spec["agents"]["agent"]["prompt"] = prompt.replace(REMOVED_RULE, ADDED_RULE)
    changed = folder / "greeting.json"
    changed.write_text(json.dumps(spec), encoding="utf-8")
    scenarios = load_scenarios(get_settings().FIXTURES_DIR / "scenarios" / "smoke.json")
    return asyncio.run(
        run_comparison(
            scenarios,
            side_a=SideConfig(engine="autogen", spec="multiagent_prompts"),
            side_b=SideConfig(engine="autogen", spec=str(changed)),
            out_dir=folder / "compare",
        )
    )


def test_the_report_renders_charts_and_transcripts_with_no_console_error(
    browser: Chromium, comparison_run: ComparisonRun
) -> None:
    session = browser.open(comparison_run.paths["html"].resolve().as_uri())
    assert browser.console_errors(session) == []
    page = browser.evaluate(session, PAGE_STATE)
    assert page["charts"] == page["chartsDrawn"] == 5
    # Every chart draws more than its two legend swatches: bars or boxes.
    assert all(count > 2 for count in page["shapesDrawn"]), page["shapesDrawn"]
    assert page["scenarios"] == 2
    assert page["entries"] > 0 and page["entriesShown"] > 0  # the first scenario is open
    assert page["sidesShown"] >= 2  # legacy and autogen side by side
    assert page["scripts"] == 0 and page["resources"] == []  # nothing fetched, nothing run
    for text in ("Verdict", "Smoke: single item order", "legacy", "autogen", "client"):
        assert text in page["text"]


def test_a_simulated_run_shows_its_banner_headline_and_endpoints_at_the_top(
    browser: Chromium, comparison_run: ComparisonRun
) -> None:
    session = browser.open(comparison_run.paths["html"].resolve().as_uri())
    page = browser.evaluate(session, PAGE_STATE)
    banner, headline = page["banner"], page["headline"]
    assert banner is not None and banner["drawn"], "no visible simulated-LLM banner"
    assert banner["text"].startswith("Warning: simulated LLM. Both sides ran on the simulated LLM")
    assert "not meaningful for prompt changes" in banner["text"]
    assert banner["background"] == "rgb(255, 248, 197)"  # styled as a warning
    assert headline is not None and headline["drawn"]
    assert (
        headline["text"] == "Too few scenarios (2) to call any difference; at least 10 are needed."
    )
    # The banner opens the page: above the headline, and both above the first section.
    assert banner["top"] < headline["top"] < page["firstSectionTop"]
    assert "legacy: simulated LLM (offline test double), model simulated" in page["text"]
    differ = page["differ"]
    assert differ is not None and differ["heading"] == "Where A and B differ most"


def test_the_scenarios_that_differ_most_show_both_transcripts_side_by_side(
    browser: Chromium, comparison_run: ComparisonRun, tmp_path: Path
) -> None:
    rows_a = comparison_run.a.rows
    rows_b = copy.deepcopy(comparison_run.b.rows)
    first = min(rows_b, key=lambda row: (row["scenario_index"], row["trial"]))
    first.update(status="failed", end_reason="error", error="the engine fell over", score=1)
    comparison = comparison_run.comparison
    changed = compare_rows(
        rows_a,
        rows_b,
        label_a=comparison.a.label,
        label_b=comparison.b.label,
        extra_a={"endpoint": comparison.a.endpoint},
        extra_b={"endpoint": comparison.b.endpoint},
    )
    paths = write_reports(changed, rows_a, rows_b, tmp_path)
    session = browser.open(paths["html"].resolve().as_uri())
    browser.widen(session)
    assert browser.console_errors(session) == []
    differ = browser.evaluate(session, PAGE_STATE)["differ"]
    assert differ["pairs"] == 1
    assert "Only 1 of 2 scenario-trial(s) differ." in differ["text"]
    assert (
        "status completed → failed" in differ["text"] and "the engine fell over" in differ["text"]
    )
    assert differ["sidesShown"] == 2 and differ["entriesShown"] > 0
    side_a, side_b = differ["firstPair"]
    assert side_a["top"] == side_b["top"] and side_a["left"] + side_a["width"] <= side_b["left"]


def test_a_report_of_a_real_endpoint_has_no_banner(
    browser: Chromium, comparison_run: ComparisonRun, tmp_path: Path
) -> None:
    real = EndpointInfo(
        kind="OpenAI-compatible endpoint", host="api.openai.com", model="gpt-4o-mini"
    )
    comparison = comparison_run.comparison
    as_real = comparison.model_copy(
        update={
            "a": comparison.a.model_copy(update={"endpoint": real}),
            "b": comparison.b.model_copy(update={"endpoint": real}),
        }
    )
    paths = write_reports(as_real, comparison_run.a.rows, comparison_run.b.rows, tmp_path)
    session = browser.open(paths["html"].resolve().as_uri())
    assert browser.console_errors(session) == []
    page = browser.evaluate(session, PAGE_STATE)
    assert page["banner"] is None and "Warning: simulated LLM" not in page["text"]
    assert page["headline"]["drawn"] and page["headline"]["text"].startswith("Too few scenarios")
    assert "OpenAI-compatible endpoint api.openai.com, model gpt-4o-mini" in page["text"]


def test_transcript_markup_is_shown_as_text_in_the_browser(
    browser: Chromium, comparison_run: ComparisonRun, tmp_path: Path
) -> None:
    rows_a = copy.deepcopy(comparison_run.a.rows)
    first = min(rows_a, key=lambda row: (row["scenario_index"], row["trial"]))
    first["conversation_history"].insert(
        0, {"turn": 0, "speaker": "client", "content": HOSTILE_LINE}
    )
    paths = write_reports(comparison_run.comparison, rows_a, comparison_run.b.rows, tmp_path)
    session = browser.open(paths["html"].resolve().as_uri())
    assert browser.console_errors(session) == []  # the script did not run, the image not load
    page = browser.evaluate(session, PAGE_STATE)
    assert page["markupInTranscripts"] == 0 and page["scripts"] == 0
    assert page["resources"] == []
    assert HOSTILE_LINE in page["text"]


def test_the_check_sees_console_errors(browser: Chromium, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body><p>broken</p>"
        '<script>console.error("logged on purpose"); notDefinedAnywhere();</script>'
        '<img src="missing.png" alt=""></body></html>',
        encoding="utf-8",
    )
    errors = browser.console_errors(browser.open(broken.as_uri()))
    assert len(errors) == 3, errors
    assert any("logged on purpose" in error for error in errors)
    assert any("notDefinedAnywhere is not defined" in error for error in errors)
    assert any("missing.png" in error for error in errors)

    clean = tmp_path / "clean.html"
    clean.write_text("<!DOCTYPE html><html><body><p>fine</p></body></html>", encoding="utf-8")
    assert browser.console_errors(browser.open(clean.as_uri())) == []


def test_a_report_of_two_specs_shows_the_configuration_and_the_prompt_change(
    browser: Chromium, two_specs_run: ComparisonRun
) -> None:
    session = browser.open(two_specs_run.paths["html"].resolve().as_uri())
    browser.widen(session)
    assert browser.console_errors(session) == []  # the prompt's script did not run
    page = browser.evaluate(session, CONFIGURATION_STATE)
    assert page["tests"] == "This comparison tests: spec."
    table = page["table"]
    assert table is not None and table["drawn"], "no visible configuration table"
    # In the header: below the headline, above the first section.
    assert page["headlineTop"] < table["top"] < page["firstSectionTop"]
    assert table["columns"] == ["", "A multiagent_prompts", "B greeting.json", "≠"]
    rows = {row["cells"][0]: row for row in table["rows"]}
    assert list(rows) == [
        "engine",
        "spec",
        "model",
        "endpoint",
        "key variable",
        "temperature",
        "tools",
    ]
    assert all(row["drawn"] for row in rows.values())
    assert rows["spec"]["cells"] == ["spec", "multiagent_prompts", "greeting.json", "≠"]
    assert rows["endpoint"]["cells"][1:] == ["simulated LLM", "simulated LLM", ""]
    assert [name for name, row in rows.items() if row["differs"]] == ["spec"]
    highlighted = rows["spec"]["background"]
    assert highlighted == "rgb(255, 241, 194)"
    assert all(row["background"] != highlighted for row in rows.values() if not row["differs"])
    assert "Both sides faced the same simulated customer and evaluator" in page["text"]

    changes = page["changes"]
    assert changes is not None and changes["drawn"], "no visible prompt changes"
    assert changes["heading"] == "Prompt changes" and changes["agents"] == ["agent"]
    assert [line["text"].strip() for line in changes["removed"]] == [f"-{REMOVED_RULE}"]
    assert [line["text"].strip() for line in changes["added"]] == [f"+{ADDED_RULE}"]
    for line in (*changes["removed"], *changes["added"]):
        assert line["drawn"]
    assert changes["removed"][0]["background"] == "rgb(255, 235, 233)"  # red
    assert changes["added"][0]["background"] == "rgb(218, 251, 225)"  # green
    assert [line["text"].strip()[:3] for line in changes["headers"]][:3] == ["---", "+++", "@@ "]
    assert changes["markup"] == 0 and page["scripts"] == 0  # the prompt's markup is text
