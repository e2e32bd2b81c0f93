"""Fixtures hosting engines in the stand-in of the existing service (`legacy_service`).

Everything is offline and on loopback:

* the simulated LLM runs as a real HTTP server, and `OPENAI_BASE_URL` points at it, so the
  service's own `AsyncOpenAI(api_key=...)` (no base_url) reaches it over HTTP;
* a stand-in of the legacy HTTP tool API (`TOOLS_URL`, Retell body with the session id)
  answers from the emulated shop and records every call with its session id;
* the service's `LOGS_DIR` / `RESULTS_DIR` are the test's `tmp_path`.

The engine class the service's `BatchProcessor` builds is swapped with `use_engine(cls)`,
which patches `legacy_service.conversation_engine_import.ConversationEngine`.
"""

from __future__ import annotations

import asyncio
import json
import socketserver
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.core.settings import get_settings
from conversation_engine.testing.simulated_llm.server import (
    SimulatedLLMServer,
    base_url,
    serving_in_background,
)
from conversation_engine.tools.shop import EmulatedShop
from tests.host.legacy_service import conversation_engine_import, logging_utils
from tests.host.legacy_service.batch_processor import BatchProcessor
from tests.host.legacy_service.config import Config
from tests.host.legacy_service.openai_wrapper import OpenAIWrapper
from tests.host.legacy_service.result_storage import ResultStorage

HOST_DIR = Path(__file__).resolve().parent
SCENARIOS_FILE = HOST_DIR / "scenarios.json"
HOST_API_KEY = "sk-host-service-test"
HOST_MODEL = "gpt-4o-mini"
HOST_MAX_TURNS = 8
HOST_CONCURRENCY = 3

# Our settings read these; the service sets none of them (it has its own Config), so a test
# host must not inherit them from the developer's shell either.
_ENGINE_ENV = (
    "PROMPTS_DIR",
    "FIXTURES_DIR",
    "WEBHOOK_URL",
    "MAX_TURNS",
    "TIMEOUT_SEC",
    "CONCURRENCY",
    "MAX_INTERNAL_MESSAGES",
    "RATE_LIMIT_RPM",
    "RATE_LIMIT_TPM",
    "OPENAI_MODEL",
    "RESULTS_DIR",
    "LOGS_DIR",
)

#: What the service reads of a combined result (reference 7.3, completed / timeout).
COMBINED_KEYS = {
    "scenario_index",
    "scenario",
    "session_id",
    "status",
    "total_turns",
    "duration_seconds",
    "score",
    "comment",
    "evaluation_status",
    "start_time",
    "end_time",
    "conversation_history",
}


def quiet_connection_resets(server: socketserver.BaseServer) -> None:
    """Do not print a traceback when a client drops a keep-alive connection.

    The service never closes its clients, so pools left on a closed event loop reset their
    sockets later. `socketserver` prints such errors from the handler thread, and on CPython
    3.11.7 formatting a traceback runs `ast.parse`, which races with the main thread's own
    (pytest's assertion rewriting) and can fail it with "SystemError: AST constructor
    recursion depth mismatch".
    """
    report = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            report(request, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign]


# ------------------------------------------------------------------------- tool API stand-in


@dataclass
class ToolApiCall:
    tool: str
    session_id: str | None
    args: dict[str, Any]


@dataclass
class ToolApi:
    """The legacy HTTP tool API on loopback: `POST /<tool>` with the Retell body."""

    url: str
    shop: EmulatedShop
    calls: list[ToolApiCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls_for(self, session_id: str) -> list[ToolApiCall]:
        with self.lock:
            return [call for call in self.calls if call.session_id == session_id]


def _tool_api_handler(api: ToolApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            tool = self.path.strip("/").rsplit("/", 1)[-1]
            variables = body.get("call", {}).get("retell_llm_dynamic_variables", {})
            session_id = variables.get("session_id")
            args = body.get("args", {})
            with api.lock:
                api.calls.append(ToolApiCall(tool, session_id, args))
            result = asyncio.run(api.shop.call(tool, args, str(session_id)))
            payload = json.dumps(result, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def tool_api() -> Iterator[ToolApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host, port = server.server_address[:2]
    api = ToolApi(url=f"http://{host!s}:{port}", shop=EmulatedShop())
    server.RequestHandlerClass = _tool_api_handler(api)
    server.daemon_threads = True
    quiet_connection_resets(server)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ------------------------------------------------------------------------------ the service


@pytest.fixture
def simulated_llm() -> Iterator[SimulatedLLMServer]:
    """The simulated model as a real HTTP server on a free loopback port."""
    with serving_in_background() as server:  # it ignores connection resets itself
        yield server


@pytest.fixture
def host_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    simulated_llm: SimulatedLLMServer,
    tool_api: ToolApi,
) -> Iterator[type[Config]]:
    """The service's environment and `Config`, pointed at loopback and `tmp_path`."""
    for name in _ENGINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", HOST_API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", base_url(simulated_llm))
    monkeypatch.setenv("TOOLS_URL", tool_api.url)

    monkeypatch.setattr(Config, "OPENAI_API_KEY", HOST_API_KEY)
    monkeypatch.setattr(Config, "OPENAI_MODEL", HOST_MODEL)
    monkeypatch.setattr(Config, "MAX_TURNS", HOST_MAX_TURNS)
    monkeypatch.setattr(Config, "TIMEOUT_SEC", 60)
    monkeypatch.setattr(Config, "CONCURRENCY", HOST_CONCURRENCY)
    monkeypatch.setattr(Config, "LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(Config, "RESULTS_DIR", str(tmp_path / "results"))

    logging_utils.reset_logging()
    get_settings.cache_clear()
    yield Config
    get_settings.cache_clear()
    logging_utils.reset_logging()


@pytest.fixture
def host_prompts_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host_env: type[Config]
) -> Callable[..., Path]:
    """`copy(*spec_files)`: a fresh prompts directory made the service's `PROMPTS_DIR`."""

    def copy(*spec_files: Path) -> Path:
        directory = tmp_path / "service_prompts"
        directory.mkdir(exist_ok=True)
        for spec_file in spec_files:
            (directory / spec_file.name).write_bytes(spec_file.read_bytes())
        monkeypatch.setattr(Config, "PROMPTS_DIR", str(directory))
        return directory

    return copy


@pytest.fixture
def use_engine(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], None]:
    """Make the service build `engine_class` for every scenario (the drop-in import swap)."""

    def swap(engine_class: type) -> None:
        monkeypatch.setattr(conversation_engine_import, "ConversationEngine", engine_class)

    return swap


@pytest.fixture
async def batch_processor(host_env: type[Config]) -> AsyncIterator[BatchProcessor]:
    """The service's `BatchProcessor`, as its batch routes build it."""
    processor = BatchProcessor(Config.OPENAI_API_KEY, Config.CONCURRENCY)
    yield processor
    # The service never closes anything; the test closes the SDK client it opened.
    await processor.openai_wrapper.client.close()


@pytest.fixture
def host_wrapper(batch_processor: BatchProcessor) -> OpenAIWrapper:
    """The service's shared `OpenAIWrapper`: what every engine and evaluator is given."""
    return batch_processor.openai_wrapper


@pytest.fixture
def result_storage(host_env: type[Config]) -> ResultStorage:
    return ResultStorage()


@pytest.fixture
def host_scenarios() -> list[dict[str, Any]]:
    """The upstream-format scenarios (a JSON array of `{name, variables}`)."""
    return json.loads(SCENARIOS_FILE.read_text(encoding="utf-8"))


def read_token_lines(storage: ResultStorage, batch_id: str | None) -> list[dict[str, Any]]:
    """The token lines of the service's token logs (for a batch: its own files)."""
    lines: list[dict[str, Any]] = []
    for path in storage.token_log_files(batch_id):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                lines.append(json.loads(line.split(" - ", 1)[1]))
    return lines
