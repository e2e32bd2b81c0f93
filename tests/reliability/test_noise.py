"""Failures say what happened once, the same way on both engines, and leak no secret.

* A refused connection prints one line per failed conversation on stderr (AutoGen's runtime
  tracebacks go to DEBUG unless `--debug`).
* A reply that is not a chat completion is a `MalformedResponseError` on both engines (it was
  `IndexError`, `AttributeError`, `TypeError` or a pydantic error on one and not the other).
* An endpoint that echoes the API key, or a tool API that echoes its Basic credentials, in an
  error message has them redacted from results, exports, reports and output.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core._redaction import REDACTED
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import get_settings
from conversation_engine.engines import resolve_engine
from conversation_engine.tools.shop import EmulatedShop
from tests.reliability.role_wire import ALWAYS, BASE_URL, RoleWire, wrapper_for

ENGINES = ["autogen", "legacy"]

SCENARIO = {
    "name": "noise",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet"],
        "SEED": 5,
    },
}


async def converse(engine: str, wire: RoleWire, **options: Any) -> dict[str, Any]:
    wrapper = wrapper_for(wire, **options)
    try:
        runner = resolve_engine(engine)(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
        result = await runner.run_conversation_with_tools(SCENARIO, timeout_sec=20)
    finally:
        await wrapper.aclose()
    assert contract_violations(result, basic_mode=False) == []
    return result


# One line per failed conversation ---------------------------------------------------------------


def test_a_refused_connection_prints_one_line_per_failed_conversation(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "TOOLS_URL", "WEBHOOK_URL"))
    }
    env.update(OPENAI_BASE_URL="http://127.0.0.1:9", RESULTS_DIR=str(tmp_path))
    smoke = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"
    completed = subprocess.run(
        [sys.executable, "-c", "from conversation_engine.cli import app; app()", "run", str(smoke)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 2, completed.stderr[:3000]
    assert all(re.fullmatch(r"Conversation \S+ failed: APIConnectionError", line) for line in lines)
    assert "Traceback" not in completed.stdout


# The same error type on both engines -------------------------------------------------------------


def _completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "simulated",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        **extra,
    }


def _call(function: Any, call_id: Any = "call_1") -> dict[str, Any]:
    return _completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "function": function}],
        }
    )


NOT_A_COMPLETION: dict[str, Any] = {
    "no choices": {"id": "x", "choices": []},
    "choices null": {"id": "x", "choices": None},
    "choices missing": {"id": "x", "object": "chat.completion"},
    "choices an object": {"choices": {"0": {"message": {"content": "hi"}}}},
    "a choice that is text": {"choices": ["hello"]},
    "message null": {"choices": [{"index": 0, "message": None}]},
    "content a number": _completion({"role": "assistant", "content": 5}),
    "content a list of parts": _completion({"content": [{"type": "text", "text": "hi"}]}),
    "tool_calls an object": _completion({"content": None, "tool_calls": {}}),
    "tool_calls a string": _completion({"content": None, "tool_calls": "get_cart"}),
    "tool_calls holding a number": _completion({"content": None, "tool_calls": [5]}),
    "function null": _call(None),
    "function name null": _call({"name": None, "arguments": "{}"}),
    "function name empty": _call({"name": "", "arguments": "{}"}),
    "tool call id null": _call({"name": "get_cart", "arguments": "{}"}, None),
    "arguments a number": _call({"name": "get_cart", "arguments": 42}),
    "arguments an object": _call({"name": "get_cart", "arguments": {"a": 1}}),
    "deprecated function_call": _completion(
        {"content": None, "function_call": {"name": "get_cart", "arguments": "{}"}}
    ),
    "usage tokens a string": _completion({"content": "hi"}, usage={"prompt_tokens": "10"}),
    "usage a string": _completion({"content": "hi"}, usage="lots"),
    "usage without completion tokens": _completion({"content": "hi"}, usage={"prompt_tokens": 5}),
    "a custom tool call": _completion(
        {"content": None, "tool_calls": [{"id": "c", "type": "custom", "function": {"name": "f"}}]}
    ),
    "finish_reason a number": {"choices": [{"message": {"content": "hi"}, "finish_reason": 7}]},
    "logprobs a string": {"choices": [{"message": {"content": "hi"}, "logprobs": "x"}]},
    "body a list": [],
    "body a string": "hello",
    "body not JSON": b"<html>502 Bad Gateway</html>",
    "body not UTF-8": b'{"choices": [{"message": {"content": "\xff\xfe"}}]}',
    "body nested too deep": b"[" * 100_000 + b"]" * 100_000,
}


def _reply(body: Any) -> Any:
    if isinstance(body, bytes):
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})
    return httpx.Response(200, json=body)


@pytest.mark.parametrize("fault", sorted(NOT_A_COMPLETION))
async def test_a_reply_that_is_no_chat_completion_is_the_same_error_on_both_engines(
    fault: str,
) -> None:
    results = {}
    for engine in ENGINES:
        wire = RoleWire(agent={2: lambda _b, _c: _reply(NOT_A_COMPLETION[fault])})
        results[engine] = await converse(engine, wire)
    for engine, result in results.items():
        assert result["status"] == "failed", (engine, result.get("error"))
        assert result["error_type"] == "MalformedResponseError", (engine, result.get("error"))
        assert result["error_context"]["completed_turns"] >= 1
    assert results["autogen"]["error"] == results["legacy"]["error"]


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_evaluator_scores_a_malformed_reply_as_a_failed_evaluation(engine: str) -> None:
    from conversation_engine.batch.evaluator import ConversationEvaluator
    from conversation_engine.inputs.specs import load_prompt_spec

    wire = RoleWire(evaluator={ALWAYS: lambda _b, _c: _reply({"choices": []})})
    wrapper = wrapper_for(wire)
    try:
        evaluator = ConversationEvaluator(
            wrapper, "multiagent_prompts", spec=load_prompt_spec("multiagent_prompts")
        )
        evaluation = await evaluator.evaluate_conversation(
            {"session_id": "s", "scenario": "x", "status": "completed"}
        )
    finally:
        await wrapper.aclose()
    assert evaluation["evaluation_status"] == "failed"
    assert "MalformedResponseError" in evaluation["comment"]


# Secrets an endpoint echoes ------------------------------------------------------------------------

MARKER = "ECHOLEAK"
API_KEY = f"sk-test-{MARKER}-9a8b7c6d5e4f3a2b1c0d"
TOOLS_USER, TOOLS_PASSWORD = "tools-user", f"{MARKER}-tools-pw-41f2"
BASIC = base64.b64encode(f"{TOOLS_USER}:{TOOLS_PASSWORD}".encode()).decode()
SECRETS = [MARKER, API_KEY, TOOLS_PASSWORD, BASIC]


def _echo_401(wire: RoleWire) -> Any:
    def reply(_: dict[str, Any], __: dict[str, Any]) -> httpx.Response:
        assert wire.request is not None
        header = wire.request.headers.get("authorization", "")
        message = f"Incorrect API key provided in header '{header}'."
        return httpx.Response(
            401, json={"error": {"message": message, "type": "invalid_request_error"}}
        )

    return reply


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:12]}...) leaked into {where}"


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_echoed_api_key_is_redacted_from_the_result(engine: str) -> None:
    wire = RoleWire()
    wire.plans["agent"] = {2: _echo_401(wire)}
    result = await converse(engine, wire, api_key=API_KEY)
    assert result["status"] == "failed" and result["error_type"] == "AuthenticationError"
    assert f"Bearer {REDACTED}" in result["error"]
    assert_no_secret("the result", json.dumps(result))


class EchoingWire:
    """respx routes: the model echoes the key in a 401 on the agent's 3rd call and on every
    evaluator call; the tool API echoes its Basic credentials in a 401 on its first call."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.model = RoleWire()
        self.model.plans["agent"] = {3: _echo_401(self.model)}
        self.model.plans["evaluator"] = {ALWAYS: _echo_401(self.model)}
        self.shop = EmulatedShop()
        self.tool_calls = 0
        router.post(f"{BASE_URL}/chat/completions").mock(side_effect=self.model)
        router.post(host="tools.test").mock(side_effect=self.tools)

    async def tools(self, request: httpx.Request) -> httpx.Response:
        self.tool_calls += 1
        if self.tool_calls == 1:
            header = request.headers.get("authorization", "")
            return httpx.Response(401, text=f"Unauthorized: {header} is not allowed")
        body = json.loads(request.content)
        tool = request.url.path.rsplit("/", 1)[-1]
        session_id = body["call"]["retell_llm_dynamic_variables"]["session_id"]
        return httpx.Response(200, json=await self.shop.call(tool, body["args"], session_id))


@pytest.fixture
def echoing(monkeypatch: pytest.MonkeyPatch) -> Iterator[EchoingWire]:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    monkeypatch.setenv("OPENAI_MODEL", "simulated")
    monkeypatch.setenv("TOOLS_URL", f"https://{TOOLS_USER}:{TOOLS_PASSWORD}@tools.test/api")
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    get_settings.cache_clear()
    with respx.mock(assert_all_called=False) as router:
        yield EchoingWire(router)
    get_settings.cache_clear()


def _files_leak_nothing(out: Path) -> int:
    files = [path for path in out.rglob("*") if path.is_file()]
    for path in files:
        assert_no_secret(str(path), path.read_text(encoding="utf-8", errors="replace"))
    return len(files)


def test_a_batch_and_a_comparison_store_and_print_no_echoed_secret(
    echoing: EchoingWire, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    scenarios = get_settings().FIXTURES_DIR / "scenarios" / "smoke.json"
    batch = CliRunner().invoke(
        app, ["batch", str(scenarios), "--out", str(tmp_path / "batch"), "--max-turns", "4"]
    )
    assert batch.exit_code == 0, batch.output
    rows = [
        json.loads(line)
        for line in next((tmp_path / "batch").glob("*/results.ndjson")).read_text().splitlines()
    ]
    assert any(row.get("error_type") == "AuthenticationError" for row in rows)
    assert REDACTED in json.dumps(rows)  # the echoes were there, and were redacted
    assert _files_leak_nothing(tmp_path / "batch") >= 4

    compare = CliRunner().invoke(
        app,
        ["compare", str(scenarios), "--out", str(tmp_path / "ab"), "--max-turns", "4"],
    )
    assert compare.exit_code == 0, compare.output
    assert (tmp_path / "ab" / "report.html").is_file()
    _files_leak_nothing(tmp_path / "ab")

    assert_no_secret("the batch command's output", batch.output)
    assert_no_secret("the compare command's output", compare.output)
    assert_no_secret("the logs", caplog.text)
