"""Secrets never reach results, exports, reports or logs.

A batch and an A/B comparison run through the command line with a recognisable fake API key,
tool API credentials (in `TOOLS_URL`, which httpx sends as a Basic auth header) and a
webhook token (in `WEBHOOK_URL`'s query). The model is the simulated LLM served over real
HTTP, so the SDK sends the key on the wire as it would to OpenAI; the tool API and the
webhook are mocked at the wire and answer with errors too, so failure paths log. Then every
file written under `--out`, the command's output and every log record (DEBUG, all loggers,
httpx and openai included) are searched for the secrets.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from conversation_engine.cli import app
from conversation_engine.core.settings import get_settings
from conversation_engine.testing.simulated_llm import (
    Fault,
    SimulationConfig,
    base_url,
    serving_in_background,
)
from conversation_engine.tools.shop import EmulatedShop

MARKER = "LEAKCHECK"
API_KEY = f"sk-test-{MARKER}-5f1b7c9d3e2a4b6c8d0e1f2a3b4c"
TOOLS_USER, TOOLS_PASSWORD = "tool-user", f"{MARKER}-tools-pw-8c2e"
HOOK_TOKEN = f"{MARKER}-hook-token-3d7f"
BASIC = base64.b64encode(f"{TOOLS_USER}:{TOOLS_PASSWORD}".encode()).decode()
SECRETS = [MARKER, API_KEY, TOOLS_PASSWORD, HOOK_TOKEN, BASIC]

TOOLS_URL = f"https://{TOOLS_USER}:{TOOLS_PASSWORD}@tools.test/api"
WEBHOOK_URL = f"https://crm.test/webhook?token={HOOK_TOKEN}"


@pytest.fixture
def model_url() -> Iterator[str]:
    # One agent request is refused as unauthorized, so an authentication error is recorded.
    config = SimulationConfig(faults=[Fault(kind="unauthorized", role="agent", on_calls=[6])])
    with serving_in_background(config) as server:
        yield base_url(server)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, model_url: str) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", model_url)
    monkeypatch.setenv("OPENAI_MODEL", "simulated")
    monkeypatch.setenv("TOOLS_URL", TOOLS_URL)
    monkeypatch.setenv("WEBHOOK_URL", WEBHOOK_URL)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class Wire:
    """respx routes: the model passes through to the local server (its auth header noted),
    the tool API is an emulated shop that fails its first call, the webhook fails once."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.model_auth: set[str] = set()
        self.tools_auth: set[str] = set()
        self.shop = EmulatedShop()
        self.tool_calls = 0
        router.route(host="127.0.0.1").mock(side_effect=self.model)
        router.post(host="tools.test").mock(side_effect=self.tools)
        router.post(host="crm.test").mock(
            side_effect=[httpx.Response(500, text="CRM down")]
            + [httpx.Response(200, json={"call_inbound": {"dynamic_variables": {"name": "Ann"}}})]
            * 10
        )

    def model(self, request: httpx.Request) -> httpx.Request:
        self.model_auth.add(request.headers.get("authorization", ""))
        return request  # pass through to the simulated LLM server

    async def tools(self, request: httpx.Request) -> httpx.Response:
        self.tools_auth.add(request.headers.get("authorization", ""))
        self.tool_calls += 1
        if self.tool_calls == 1:
            return httpx.Response(500, text="Internal error")
        body = json.loads(request.content)
        tool = request.url.path.rsplit("/", 1)[-1]
        session_id = body["call"]["retell_llm_dynamic_variables"]["session_id"]
        return httpx.Response(200, json=await self.shop.call(tool, body["args"], session_id))


@pytest.fixture
def wire(environment: None) -> Iterator[Wire]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield Wire(router)


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    smoke = json.loads((get_settings().FIXTURES_DIR / "scenarios" / "smoke.json").read_text())
    smoke[0]["variables"]["client_id"] = "C-1001"  # looked up through the webhook
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(smoke * 2), encoding="utf-8")
    return path


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:12]}...) leaked into {where}"


def assert_nothing_written_leaks(out: Path) -> int:
    files = [path for path in out.rglob("*") if path.is_file()]
    for path in files:
        assert_no_secret(
            str(path.relative_to(out)), path.read_text(encoding="utf-8", errors="replace")
        )
    return len(files)


def test_a_batch_writes_and_logs_no_secret(
    wire: Wire, scenarios: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        # One at a time, so the failing tool call (the first) and the refused model call (the
        # sixth agent call) land in different conversations: a failed row keeps no history.
        app,
        ["batch", str(scenarios), "--out", str(out), "--max-turns", "4", "--concurrency", "1"],
    )
    assert result.exit_code == 0, result.output

    # The secrets were in use: the key went to the model, the credentials to the tool API.
    assert wire.model_auth == {f"Bearer {API_KEY}"}
    assert wire.tools_auth == {f"Basic {BASIC}"}
    rows = [
        json.loads(line) for line in next(out.glob("*/results.ndjson")).read_text().splitlines()
    ]
    statuses = sorted(row["status"] for row in rows)
    assert statuses == ["completed", "completed", "completed", "failed"]
    assert {row.get("error_type") for row in rows} >= {"AuthenticationError"}
    assert any("failed: HTTP 500" in json.dumps(row) for row in rows)  # the tool error row
    assert "using the fallback variables" in caplog.text  # the webhook error was logged

    assert assert_nothing_written_leaks(out) >= 5  # batch.json, ndjson, csv, json, summary
    assert_no_secret("the command's output", result.output)
    assert_no_secret("the logs", caplog.text)
    for record in caplog.records:
        assert_no_secret(f"log record {record.name}", repr(record.args) + str(record.msg))


def test_a_comparison_writes_and_logs_no_secret(
    wire: Wire, scenarios: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "compare"
    result = CliRunner().invoke(
        app,
        ["compare", str(scenarios), "--out", str(out), "--max-turns", "4", "--resamples", "100"],
    )
    assert result.exit_code == 0, result.output
    assert wire.model_auth == {f"Bearer {API_KEY}"}
    assert {path.name for path in out.iterdir()} >= {"report.html", "report.md", "comparison.json"}

    assert assert_nothing_written_leaks(out) >= 3
    assert_no_secret("the command's output", result.output)
    assert_no_secret("the logs", caplog.text)
