"""`run --trace otlp` reaches a real viewer: Arize Phoenix, started on loopback by the test.

The CLI runs in a subprocess as a user runs it, configured only by the standard
`OTEL_EXPORTER_OTLP_*` variables, against the simulated LLM served over HTTP with an API key.
The spans are then read back through Phoenix's REST API: the conversation's tree (conversation
> exchange > agent turn > model call, tool call, handoff) with its GenAI attributes, AutoGen's
runtime spans inside the same trace, and no secret (the API key, the OTLP header's token) in
any span name or attribute.

Phoenix has its own large dependency tree, so it lives in a venv of its own (`.ci/run` makes
it from `constraints/phoenix.txt`) and is found through `CONVERSATION_ENGINE_PHOENIX`, the
path of its `phoenix` executable. Without it the test skips, unless
`CONVERSATION_ENGINE_REQUIRE_PHOENIX=1` (set by CI) turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from conversation_engine.testing.simulated_llm.server import base_url, serving_in_background
from tests.shop import HANDOFF_SCENARIO

PHOENIX = os.environ.get("CONVERSATION_ENGINE_PHOENIX")
REQUIRE_PHOENIX = os.environ.get("CONVERSATION_ENGINE_REQUIRE_PHOENIX") == "1"
#: Phoenix creates its database on first start: seconds, more on a busy CI machine.
STARTUP_SECONDS = 120.0
#: From the CLI's exit (its spans all sent) to Phoenix showing them (it inserts in batches).
ARRIVAL_SECONDS = 60.0
RUN_SECONDS = 180.0
#: The traces go to a project of their own, named through the standard resource variable.
PROJECT = "conversation-engine-loopback"
API_KEY = "sk-loopback-secret-7f3a9c0e51d24b68"
OTLP_TOKEN = "otlp-token-secret-2b9d4e7a"
MODEL = "gpt-4o-mini"

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(what: str, check: Callable[[], T | None], seconds: float, log: Path) -> T:
    """Poll `check` until it returns something, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            pytest.fail(f"{what} within {seconds:.0f}s; Phoenix's log ends:\n{tail}")
        time.sleep(0.5)


class Phoenix:
    """A `phoenix serve` process on loopback ports, with its own working directory."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "phoenix.log"
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            # Its OTLP/gRPC receiver is unused here, but must not clash with another's 4317.
            "PHOENIX_GRPC_PORT": str(_free_port()),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [executable, "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthy(self) -> bool | None:
        if self.process.poll() is not None:
            tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
            pytest.fail(f"phoenix serve exited with {self.process.returncode}:\n{tail}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200 or None
        except httpx.TransportError:
            return None

    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of `project` (none when it does not exist yet), page by page."""
        spans: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            response = httpx.get(
                f"{self.url}/v1/projects/{project}/spans", params=params, timeout=10
            )
            if response.status_code == 404:
                return []
            response.raise_for_status()
            page = response.json()
            spans.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return spans

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


@pytest.fixture
def phoenix(tmp_path: Path) -> Iterator[Phoenix]:
    if not PHOENIX:
        reason = (
            "CONVERSATION_ENGINE_PHOENIX (the path of Arize Phoenix's `phoenix` executable) is "
            "not set, so traces were not sent to a real OTLP viewer; .ci/run installs it"
        )
        if REQUIRE_PHOENIX:
            pytest.fail(f"{reason}; CONVERSATION_ENGINE_REQUIRE_PHOENIX=1 requires it")
        pytest.skip(reason)
    server = Phoenix(PHOENIX, tmp_path)
    try:
        _wait_for(
            "phoenix serve did not answer /healthz", server.healthy, STARTUP_SECONDS, server.log
        )
        yield server
    finally:
        server.stop()


def _run_with_otlp(tmp_path: Path, llm_url: str, phoenix: Phoenix) -> dict[str, Any]:
    """`conversation-engine run --trace otlp` on the handoff scenario; its result."""
    scenarios = tmp_path / "scenarios.json"
    scenarios.write_text(json.dumps([HANDOFF_SCENARIO]), encoding="utf-8")
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env.update(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": llm_url,
            "OPENAI_MODEL": MODEL,
            "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {OTLP_TOKEN}",
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
        }
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from conversation_engine.cli import app; app()",
            "run",
            str(scenarios),
            "--engine",
            "autogen",
            "--max-turns",
            "4",
            "--trace",
            "otlp",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["status"] == "completed"
    return result


def test_run_trace_otlp_shows_the_conversation_in_phoenix(tmp_path: Path, phoenix: Phoenix) -> None:
    with serving_in_background() as llm:
        result = _run_with_otlp(tmp_path, base_url(llm), phoenix)
    calls = result["usage"]["calls"]

    def all_arrived() -> list[dict[str, Any]] | None:
        # The CLI flushed every span before it exited; Phoenix stores them in batches. Complete
        # means: the root is there, one chat span per model call, and no span's parent missing.
        spans = phoenix.spans(PROJECT)
        ids = {s["context"]["span_id"] for s in spans}
        roots = [s for s in spans if not s["parent_id"]]
        chats = [s for s in spans if s["name"].startswith("chat ")]
        orphans = [s for s in spans if s["parent_id"] and s["parent_id"] not in ids]
        return spans if roots and len(chats) == calls and not orphans else None

    spans = _wait_for(
        "the run's spans did not all reach Phoenix", all_arrived, ARRIVAL_SECONDS, phoenix.log
    )
    by_id = {s["context"]["span_id"]: s for s in spans}

    def children(span: dict[str, Any]) -> list[dict[str, Any]]:
        kids = [s for s in spans if s["parent_id"] == span["context"]["span_id"]]
        return sorted(kids, key=lambda s: s["start_time"])

    # One trace, rooted at the conversation, carrying the result's identity and outcome.
    (root,) = [s for s in spans if not s["parent_id"]]
    assert root["name"] == "conversation butter and a new date"
    assert {s["context"]["trace_id"] for s in spans} == {root["context"]["trace_id"]}
    attributes = root["attributes"]
    assert attributes["conversation_engine.session_id"] == result["session_id"]
    assert attributes["conversation_engine.status"] == "completed"
    assert attributes["conversation_engine.end_reason"] == result["end_reason"]
    assert attributes["conversation_engine.engine"] == "AutogenConversationEngine"
    assert attributes["conversation_engine.spec"] == "multiagent_prompts"

    # conversation > exchange > agent turn > model call / tool call / handoff.
    exchanges = [s for s in children(root) if s["name"].startswith("exchange ")]
    assert [e["name"] for e in exchanges] == [f"exchange {n}" for n in range(1, len(exchanges) + 1)]
    turns = [t for e in exchanges for t in children(e) if t["name"].startswith("invoke_agent ")]
    assert {t["name"] for t in turns} == {"invoke_agent agent", "invoke_agent support"}
    for turn in turns:
        assert turn["attributes"]["gen_ai.operation.name"] == "invoke_agent"
        assert turn["attributes"]["gen_ai.agent.name"] == turn["name"].removeprefix("invoke_agent ")
    under_turns = [c for t in turns for c in children(t)]
    handoffs = [c for c in under_turns if c["name"].startswith("handoff ")]
    assert [h["name"] for h in handoffs] == ["handoff agent -> support"]
    assert by_id[handoffs[0]["parent_id"]]["name"] == "invoke_agent agent"
    tools = [c for c in under_turns if c["name"].startswith("execute_tool ")]
    assert "execute_tool change_delivery_date" in {t["name"] for t in tools}
    for tool in tools:
        assert tool["attributes"]["gen_ai.operation.name"] == "execute_tool"
        assert tool["attributes"]["conversation_engine.tool.outcome"] == "ok"

    # Every model call: the agents' under their turns, the customer's under its exchange, the
    # evaluator's (none in `run`) nowhere; the tokens add up to the result's usage.
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert len(chats) == calls
    for chat in chats:
        chat_attributes = chat["attributes"]
        assert chat_attributes["gen_ai.operation.name"] == "chat"
        assert chat_attributes["gen_ai.request.model"] == MODEL
        assert chat_attributes["gen_ai.response.finish_reasons"]
        parent = by_id[chat["parent_id"]]
        role = chat_attributes["conversation_engine.role"]
        if role == "client":
            assert parent["name"].startswith("exchange ")
        else:
            assert parent["name"] == f"invoke_agent {role}"
    input_tokens = sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats)
    assert input_tokens == result["usage"]["prompt_tokens"]

    # AutoGen's own runtime spans arrived too, inside the conversation's trace, not beside it.
    autogen = [s for s in spans if s["name"].startswith("autogen ")]
    assert autogen

    # No secret in any span, wherever Phoenix put it.
    text = json.dumps(spans)
    assert API_KEY not in text
    assert OTLP_TOKEN not in text
