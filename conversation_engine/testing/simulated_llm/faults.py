"""Which request gets which fault, and what an HTTP-level fault looks like on the wire.

The plan is the only stateful part of the simulated endpoint: it counts, per fault, the
requests that matched it and the faults it injected, so `on_calls` and `times` work. It is
guarded by a lock because the HTTP server answers from several threads.

Error bodies follow OpenAI's `{"error": {"message", "type", "param", "code"}}` shape, so the
SDK raises its usual exception for each status.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from conversation_engine.testing.simulated_llm.config import Fault, FaultKind, Role

GEO_BLOCK_ERROR = {
    "code": "unsupported_country_region_territory",
    "message": "Country, region, or territory not supported",
    "type": "request_forbidden",
}

NON_JSON_BODY = b"<html><body><h1>502 Bad Gateway</h1>upstream sent garbage</body></html>"

#: kind → (status, error type, error code, message)
_HTTP_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "rate_limit": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for the simulated model. Please try again later.",
    ),
    "server_error": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "bad_gateway": (502, "server_error", None, "Bad gateway."),
    "service_unavailable": (
        503,
        "server_error",
        None,
        "The engine is currently overloaded, please try again later.",
    ),
    "unauthorized": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided.",
    ),
    "context_length": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in more tokens. Please reduce the length of the messages.",
    ),
}


@dataclass(frozen=True)
class HTTPError:
    """A complete error response: status, headers and body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def http_error(fault: Fault) -> HTTPError:
    """The response an HTTP-level fault produces (not for `timeout` / `connection_reset`)."""
    if fault.kind == "non_json":
        return HTTPError(200, {"content-type": "text/html; charset=utf-8"}, NON_JSON_BODY)
    if fault.kind == "geo_block":
        error: dict[str, object] = {**GEO_BLOCK_ERROR, "param": None}
        status = 403
    else:
        status, error_type, code, message = _HTTP_ERRORS[fault.kind]
        error = {"message": message, "type": error_type, "param": None, "code": code}
    if fault.kind == "context_length":
        error["param"] = "messages"
    headers = {"content-type": "application/json"}
    if fault.kind == "rate_limit":
        headers["retry-after"] = f"{fault.retry_after:g}"
    return HTTPError(status, headers, json.dumps({"error": error}).encode())


class FaultPlan:
    """Decides, request by request, which configured fault (if any) fires."""

    def __init__(self, faults: list[Fault]) -> None:
        self._faults = list(faults)
        self._matched = [0] * len(self._faults)
        self._injected = [0] * len(self._faults)
        self._seen: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._draws = any(fault.probability < 1.0 for fault in self._faults)

    def select(
        self, role: Role, digest: bytes, applies: Callable[[FaultKind], bool]
    ) -> Fault | None:
        """The first fault that fires for this request; every matching fault counts it."""
        if not self._faults:
            return None
        with self._lock:
            occurrence = 0
            if self._draws:
                # A retried identical request draws afresh, yet runs stay reproducible.
                occurrence = self._seen.get(digest, 0)
                self._seen[digest] = occurrence + 1
            chosen: Fault | None = None
            for index, fault in enumerate(self._faults):
                if fault.role not in (None, role) or not applies(fault.kind):
                    continue
                self._matched[index] += 1
                if chosen is not None:
                    continue
                if fault.on_calls is not None and self._matched[index] not in fault.on_calls:
                    continue
                if fault.times is not None and self._injected[index] >= fault.times:
                    continue
                if (
                    fault.probability < 1.0
                    and _draw(digest, index, occurrence) >= fault.probability
                ):
                    continue
                self._injected[index] += 1
                chosen = fault
            return chosen


def _draw(digest: bytes, fault_index: int, occurrence: int) -> float:
    """A uniform number in [0, 1) from the request content (never Python's `hash()`)."""
    material = digest + fault_index.to_bytes(4, "big") + occurrence.to_bytes(4, "big")
    value = int.from_bytes(hashlib.sha256(material).digest()[:8], "big")
    return value / 2**64
