"""The simulated endpoint's HTTP semantics, independent of how bytes reach it.

`SimulatedEndpoint.handle` turns (method, path, body) into an `Outcome`: a response to send,
a hang followed by a read timeout, or a dropped connection, plus the latency to wait first.
The httpx transport and the stdlib server only carry outcomes out, so both behave the same.

Routes: `POST <any base>/chat/completions`, `GET <any base>/models` and `/models/<id>`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from conversation_engine.testing.simulated_llm.config import HTTP_FAULTS, SimulationConfig
from conversation_engine.testing.simulated_llm.faults import FaultPlan, http_error
from conversation_engine.testing.simulated_llm.model import (
    CREATED,
    SimulatedModel,
    detect_role,
    fault_applies,
    request_digest,
)

_JSON = {"content-type": "application/json"}


class SimulationStats(BaseModel):
    """Counters of one endpoint (one transport or one server), live-updated."""

    requests: int = 0
    """Chat completion requests received, faulted or not."""
    by_role: dict[str, int] = Field(default_factory=dict)
    faults_injected: int = 0
    faults_by_kind: dict[str, int] = Field(default_factory=dict)
    model_cpu_seconds: float = 0.0
    """CPU time spent computing replies (`time.thread_time`), for benchmarks to subtract."""


@dataclass(frozen=True)
class Outcome:
    """What to do with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    latency_seconds: float = 0.0
    """Wait this long before anything else."""
    action: Literal["respond", "timeout", "reset"] = "respond"
    """`timeout`: hang `hang_seconds`, then fail as a read timeout; `reset`: drop the connection."""
    hang_seconds: float = 0.0


def _error_outcome(status: int, message: str, error_type: str = "invalid_request_error") -> Outcome:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return Outcome(status=status, headers=dict(_JSON), body=json.dumps(body).encode())


class SimulatedEndpoint:
    """The model, the fault plan and the counters behind one transport or server."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        self.model = SimulatedModel(self.config.model_name)
        self.stats = SimulationStats()
        self._plan = FaultPlan(self.config.faults)
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, body: bytes) -> Outcome:
        route = path.split("?", 1)[0].rstrip("/")
        if method == "POST" and route.endswith("/chat/completions"):
            return self._chat_completion(body)
        if method == "GET" and route.endswith("/models"):
            listing = {"object": "list", "data": [self._model_card(self.config.model_name)]}
            return Outcome(headers=dict(_JSON), body=json.dumps(listing).encode())
        if method == "GET" and "/models/" in route:
            card = self._model_card(route.rsplit("/", 1)[1])
            return Outcome(headers=dict(_JSON), body=json.dumps(card).encode())
        return _error_outcome(404, f"The simulated model does not serve {method} {route}.")

    @staticmethod
    def _model_card(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "simulated"}

    def _chat_completion(self, raw: bytes) -> Outcome:
        try:
            request = json.loads(raw or b"null")
        except ValueError:
            return _error_outcome(400, "The request body is not valid JSON.")
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            return _error_outcome(400, "The request needs a JSON object with a 'messages' list.")
        if request.get("stream"):
            return _error_outcome(400, "The simulated model does not support stream=true.")

        role = detect_role(request)
        digest = request_digest(request)
        with self._lock:
            self.stats.requests += 1
            self.stats.by_role[role] = self.stats.by_role.get(role, 0) + 1
        fault = self._plan.select(role, digest, lambda kind: fault_applies(kind, role, request))
        if fault is not None:
            with self._lock:
                self.stats.faults_injected += 1
                self.stats.faults_by_kind[fault.kind] = (
                    self.stats.faults_by_kind.get(fault.kind, 0) + 1
                )
        latency = self._latency(digest)

        if fault is not None and fault.kind in HTTP_FAULTS:
            if fault.kind == "timeout":
                return Outcome(
                    latency_seconds=latency, action="timeout", hang_seconds=fault.delay_ms / 1000
                )
            if fault.kind == "connection_reset":
                return Outcome(latency_seconds=latency, action="reset")
            error = http_error(fault)
            return Outcome(error.status, error.headers, error.body, latency_seconds=latency)

        started = time.thread_time()
        completion = self.model.complete(request, fault=fault.kind if fault else None)
        spent = time.thread_time() - started
        with self._lock:
            self.stats.model_cpu_seconds += spent
        body = json.dumps(completion, ensure_ascii=False).encode()
        return Outcome(headers=dict(_JSON), body=body, latency_seconds=latency)

    def _latency(self, digest: bytes) -> float:
        base, jitter = self.config.latency_ms, self.config.latency_jitter_ms
        if jitter:
            base += random.Random(int.from_bytes(digest[:8], "big")).uniform(-jitter, jitter)
        return max(0.0, base) / 1000
