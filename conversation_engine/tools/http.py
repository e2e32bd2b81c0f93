"""`HttpToolBackend`: the legacy HTTP tool API (Retell-AI custom-function format).

Each business tool is `POST {base_url}/{tool}` with the body
`{"call": {"retell_llm_dynamic_variables": {"session_id": ...}}, "args": {...}}`; cart and
address state live server-side under that session id. Like the legacy `ToolEmulator` it
retries gateway errors, timeouts and transport errors with a growing wait, and never
raises: every failure becomes a `{"result": "..."}` value the model can read.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from conversation_engine.core._redaction import (
    hide_credentials_in_http_logs,
    redact_secrets,
    register_url_credentials,
)
from conversation_engine.observability.events import tool_call_retried
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, strip_execution_message

logger = logging.getLogger(__name__)

#: Tool name -> path under the base URL. `call_transfer` and `end_call` are not served.
ROUTES: dict[str, str] = {name: f"/{name}" for name in BUSINESS_TOOLS}
RETRYABLE_STATUSES = frozenset({502, 503, 504})
REQUEST_FAILED = "Tool request failed"


class _AttemptFailed(Exception):
    """One attempt failed; `retryable` says whether another attempt may succeed."""

    def __init__(self, kind: str, details: str, *, retryable: bool) -> None:
        details = redact_secrets(details)  # a tool API may echo its credentials
        super().__init__(f"{kind}, {details}")
        self.kind = kind
        self.details = details
        self.retryable = retryable


async def _sleep(seconds: float) -> None:
    if seconds > 0:  # no wait at all, not even a yield to the loop, when backoff is 0
        await asyncio.sleep(seconds)


class HttpToolBackend:
    """Calls the business tools of the legacy HTTP tool API; never raises.

    `max_retries=3` means up to four attempts; attempt `n` (0-based) uses
    `timeouts[n]` (the last one repeats) and is followed, when it fails in a retryable
    way, by a wait of `(n + 1) * backoff_seconds`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        timeouts: Sequence[float] = (15, 20, 25, 30),
        backoff_seconds: float = 3.0,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if not timeouts or any(timeout <= 0 for timeout in timeouts):
            raise ValueError("timeouts must be a non-empty sequence of positive seconds")
        if backoff_seconds < 0:
            raise ValueError("backoff_seconds must be 0 or more")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.timeouts = tuple(float(timeout) for timeout in timeouts)
        self.backoff_seconds = backoff_seconds
        # A client handed in belongs to the caller (it may be shared); only ours is closed.
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient()
        hide_credentials_in_http_logs()  # the URL may carry a user and password
        register_url_credentials(base_url)  # ... which an error message may echo

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        return dict(BUSINESS_TOOLS)

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        """The tool's parsed JSON, `{"raw_text": ...}`, or a `{"result": ...}` fallback."""
        try:
            route = ROUTES.get(tool_name)
            if route is None:
                return {"result": f"Unknown tool {tool_name}"}
            body = {
                "call": {"retell_llm_dynamic_variables": {"session_id": session_id}},
                "args": strip_execution_message(dict(arguments or {})),
            }
            return await self._post_with_retries(tool_name, self.base_url + route, body)
        except Exception:
            # The legacy contract: a tool failure is a result, never an exception.
            logger.exception("Tool request %s failed unexpectedly", tool_name)
            return {"result": REQUEST_FAILED}

    async def _post_with_retries(self, tool_name: str, url: str, body: dict[str, Any]) -> Any:
        attempts = self.max_retries + 1
        # Attempt n (0-based) uses timeouts[n]; past the end, the last one repeats.
        timeouts = itertools.chain(self.timeouts, itertools.repeat(self.timeouts[-1]))

        def log_retry(state: RetryCallState) -> None:
            tool_call_retried(state.attempt_number)  # the tool call's span counts its retries
            failure = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.info(
                "Tool %s attempt %d/%d failed (%s); retrying in %.1f s",
                tool_name,
                state.attempt_number,
                attempts,
                failure,
                wait,
            )

        # A fresh AsyncRetrying per call: its iteration state must not be shared by calls
        # that run concurrently.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self._backoff,
            retry=retry_if_exception(lambda exc: isinstance(exc, _AttemptFailed) and exc.retryable),
            before_sleep=log_retry,
            sleep=_sleep,
            reraise=True,  # the last (or a non-retryable) failure itself, not a RetryError
        )

        async def attempt() -> Any:  # a coroutine function: tenacity 9.2 calls others unawaited
            return await self._attempt(url, body, next(timeouts))

        try:
            return await retrying(attempt)
        except _AttemptFailed as failure:
            logger.warning("Tool %s failed: %s", tool_name, failure)
            return {"result": f"Tool {tool_name} failed: {failure.kind}, {failure.details}"}

    def _backoff(self, state: RetryCallState) -> float:
        """The wait after attempt n (1-based) failed: n * backoff_seconds."""
        return state.attempt_number * self.backoff_seconds

    async def _attempt(self, url: str, body: dict[str, Any], timeout: float) -> Any:
        try:
            response = await self._client.post(url, json=body, timeout=httpx.Timeout(timeout))
        except httpx.TimeoutException as exc:
            raise _AttemptFailed(
                type(exc).__name__, f"no response within {timeout:g} s", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise _AttemptFailed(type(exc).__name__, str(exc) or repr(exc), retryable=True) from exc
        if response.status_code != 200:
            text = response.text.strip()[:200]
            details = ": ".join(part for part in (response.reason_phrase, text) if part)
            raise _AttemptFailed(
                f"HTTP {response.status_code}",
                details or "no details",
                retryable=response.status_code in RETRYABLE_STATUSES,
            )
        try:
            return response.json()
        except ValueError:
            return {"raw_text": response.text}

    async def aclose(self) -> None:
        """Close the HTTP client if this backend created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpToolBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
