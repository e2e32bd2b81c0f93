"""The live transcript prints each line as it is produced, before the conversation ends."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from conversation_engine.engines.base import ContractEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.observability.events import ConversationEnded, Event, observing
from conversation_engine.observability.follow import FollowPrinter
from conversation_engine.tools.shop import EmulatedShop
from tests.shop import HANDOFF_SCENARIO


class WatchedOutput(io.StringIO):
    """Terminal output that notes, for each line, whether the conversation had ended."""

    def __init__(self) -> None:
        super().__init__()
        self.ended = False
        self.lines: list[tuple[str, bool]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.lines.append((line, self.ended))
        return super().write(text)


async def test_the_first_agent_line_is_shown_before_the_conversation_ends(
    engine_class: type[ContractEngine],
) -> None:
    out = WatchedOutput()
    printer = FollowPrinter(Console(file=out, width=200, color_system=None))

    def watch(event: Event) -> None:
        if isinstance(event, ConversationEnded):
            out.ended = True

    async with OpenAIWrapper.simulated() as wrapper:
        engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
        with observing(printer, watch):
            result = await engine.run_conversation_with_tools(HANDOFF_SCENARIO, 4)

    agent_lines = [(line, ended) for line, ended in out.lines if line.startswith("agent: ")]
    assert agent_lines and agent_lines[0][1] is False
    first_agent_text = next(
        e["content"] for e in result["conversation_history"] if e["speaker"] != "client"
    )
    assert agent_lines[0][0] == f"agent: {first_agent_text}"
    shown = [line for line, _ in out.lines]
    assert any(line.startswith("client: ") for line in shown)
    assert any("⇢ handoff agent → support" in line for line in shown)
    assert any(line.strip().startswith("→ change_delivery_date") for line in shown)
    assert shown[-1].startswith("── completed")


def _offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}


def test_batch_follow_shows_only_the_named_scenario(tmp_path: Path) -> None:
    other = {**HANDOFF_SCENARIO, "name": "someone else"}
    scenarios = tmp_path / "scenarios.json"
    scenarios.write_text(json.dumps([HANDOFF_SCENARIO, other]), encoding="utf-8")
    trace = tmp_path / "spans.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from conversation_engine.cli import app; app()",
            "batch",
            str(scenarios),
            "--engine",
            "legacy",
            "--max-turns",
            "3",
            "--out",
            str(tmp_path / "out"),
            "--follow",
            "butter and a new date",
            "--trace",
            str(trace),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**_offline_env(), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "[butter and a new date #0] agent:" in done.stdout
    assert "[someone else" not in done.stdout
    spans = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    roots = {s["name"] for s in spans if s.get("parent_id") is None}
    assert roots == {"conversation butter and a new date", "conversation someone else"}
    # The evaluator's call belongs to its conversation's trace.
    evaluator = [s for s in spans if s["attributes"].get("conversation_engine.role") == "evaluator"]
    assert len(evaluator) == 2 and all(s.get("parent_id") for s in evaluator)
