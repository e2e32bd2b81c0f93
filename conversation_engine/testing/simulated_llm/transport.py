"""The simulated model as an httpx transport: plug it into any `httpx` client.

    transport = SimulatedLLMTransport(SimulationConfig(latency_ms=5))
    client = openai.AsyncOpenAI(
        api_key="sim",
        base_url="http://simulated.local/v1",
        http_client=httpx.AsyncClient(transport=transport),
    )

Only the wire is replaced, so the SDK's parsing, retries and error mapping run as they do
against a real endpoint. Latency uses `asyncio.sleep` (cancellable); a `timeout` fault hangs
and then raises `httpx.ReadTimeout`, a `connection_reset` fault raises
`httpx.RemoteProtocolError`, as a dropped connection does.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from conversation_engine.testing.simulated_llm.config import SimulationConfig
from conversation_engine.testing.simulated_llm.endpoint import (
    Outcome,
    SimulatedEndpoint,
    SimulationStats,
)
from conversation_engine.testing.simulated_llm.model import SimulatedModel


class SimulatedLLMTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Answers OpenAI Chat Completions requests in-process (async and sync clients)."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self._endpoint = SimulatedEndpoint(config)

    @property
    def config(self) -> SimulationConfig:
        return self._endpoint.config

    @property
    def stats(self) -> SimulationStats:
        """Live counters: requests, by role, faults injected, CPU spent computing replies."""
        return self._endpoint.stats

    @property
    def model(self) -> SimulatedModel:
        return self._endpoint.model

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        outcome = self._endpoint.handle(request.method, request.url.path, body)
        if outcome.latency_seconds:
            await asyncio.sleep(outcome.latency_seconds)
        if outcome.action == "timeout":
            await asyncio.sleep(outcome.hang_seconds)
        return self._finish(request, outcome)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        outcome = self._endpoint.handle(request.method, request.url.path, body)
        if outcome.latency_seconds:
            time.sleep(outcome.latency_seconds)
        if outcome.action == "timeout":
            time.sleep(outcome.hang_seconds)
        return self._finish(request, outcome)

    @staticmethod
    def _finish(request: httpx.Request, outcome: Outcome) -> httpx.Response:
        if outcome.action == "timeout":
            raise httpx.ReadTimeout("The simulated model did not answer in time.", request=request)
        if outcome.action == "reset":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            outcome.status, headers=outcome.headers, content=outcome.body, request=request
        )
