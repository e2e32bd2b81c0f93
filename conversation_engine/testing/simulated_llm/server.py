"""The simulated model over real HTTP, for tools outside this process (another engine, curl).

Standard library only (`http.server.ThreadingHTTPServer`), loopback by default. The server has
no authentication (any API key is accepted), so keep it on loopback. A `timeout` fault hangs
and then closes the connection without an answer; `connection_reset` closes it at once.

    serve(port=8765)                         # blocks until Ctrl-C
    server = make_server(port=0)             # ephemeral port: server.server_address[1]
    with serving_in_background(config) as server:   # for tests driving another process
        url = base_url(server)
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conversation_engine.testing.simulated_llm.config import SimulationConfig
from conversation_engine.testing.simulated_llm.endpoint import SimulatedEndpoint

logger = logging.getLogger(__name__)


class SimulatedLLMServer(ThreadingHTTPServer):
    """A threading HTTP server whose handlers share one `SimulatedEndpoint`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], endpoint: SimulatedEndpoint) -> None:
        self.endpoint = endpoint
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection (a pool closed, a process ending) is no error."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            logger.debug("Client %s dropped the connection: %s", client_address, error)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, each response
    # then waits for the client's delayed ACK (~40 ms on Linux) on a kept-alive connection.
    disable_nagle_algorithm = True
    server: SimulatedLLMServer

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        outcome = self.server.endpoint.handle(self.command, self.path, body)
        if outcome.latency_seconds:
            time.sleep(outcome.latency_seconds)
        if outcome.action != "respond":
            if outcome.action == "timeout":
                time.sleep(outcome.hang_seconds)
            # Nothing is written: the client sees the connection close without a response.
            self.close_connection = True
            return
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.end_headers()
        self.wfile.write(outcome.body)

    def log_message(self, format: str, *args: object) -> None:
        # Per-request lines would swamp benchmark output; keep them for debug logging.
        logger.debug("%s - %s", self.address_string(), format % args)


def make_server(
    host: str = "127.0.0.1", port: int = 8765, config: SimulationConfig | None = None
) -> SimulatedLLMServer:
    """A bound, not yet serving, server; `port=0` picks a free port."""
    return SimulatedLLMServer((host, port), SimulatedEndpoint(config))


def base_url(server: SimulatedLLMServer) -> str:
    """The OpenAI base URL (`.../v1`) a client uses to reach `server`."""
    host, port = server.server_address[:2]
    if isinstance(host, bytes):  # typeshed allows bytes for a socket address
        host = host.decode()
    return f"http://{host}:{port}/v1"


@contextmanager
def serving_in_background(
    config: SimulationConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    endpoint: SimulatedEndpoint | None = None,
) -> Iterator[SimulatedLLMServer]:
    """A server answering from a daemon thread while the block runs (default: a free port).

    `endpoint` serves a given endpoint (one that also notes what it saw, say) instead of a
    new one built from `config`."""
    if endpoint is not None and config is not None:
        raise ValueError("give serving_in_background a config or an endpoint, not both")
    server = SimulatedLLMServer((host, port), endpoint or SimulatedEndpoint(config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(
    host: str = "127.0.0.1", port: int = 8765, config: SimulationConfig | None = None
) -> None:
    """Serve the simulated model at `http://<host>:<port>/v1` until interrupted (blocking)."""
    server = make_server(host, port, config)
    bound_host, bound_port = server.server_address[:2]
    logger.info("Simulated LLM serving on http://%s:%s/v1", bound_host, bound_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
