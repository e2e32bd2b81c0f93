"""Client-side rate limiting shared by every conversation that uses one endpoint.

A hosted model has per-minute request and token limits. Without a shared limiter a large
batch fires until the provider answers 429, every conversation retries at once, and the storm
repeats. `RateLimiter` spaces requests so the process stays under its limits, and when the
provider still answers 429 it pauses *all* callers for the `Retry-After` the provider gave.

It sits in the HTTP transport (`RateLimitedTransport`), so it covers the `openai` SDK and
AutoGen's model client alike, and retries made by the SDK are limited too.

A pause is capped at `MAX_RETRY_AFTER_SECONDS`: a `Retry-After` longer than that (a
misconfigured proxy once answered `Retry-After: 100000`, which paused every request of the
process for 28 hours) pauses everyone for the cap only, and the request that received it
fails at once with `RetryAfterTooLongError` (a `openai.RateLimitError`), which the SDK does
not retry: that conversation fails, the process goes on.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable

import httpx
import openai

#: Tokens assumed for a reply before its real usage is known.
DEFAULT_COMPLETION_ESTIMATE = 256

#: The longest a 429's `Retry-After` may pause the process; a longer one fails its request.
MAX_RETRY_AFTER_SECONDS = 60.0

#: The pause after a 429 that says nothing usable about when to retry.
DEFAULT_PAUSE_SECONDS = 1.0


class RetryAfterTooLongError(openai.RateLimitError):
    """A 429 asked to wait longer than `MAX_RETRY_AFTER_SECONDS`; the request is given up."""


class RateLimiter:
    """Requests per minute and tokens per minute, as a schedule of start times.

    Each request reserves a start time no earlier than the previous reservation allows
    (generic cell rate algorithm); up to `burst_seconds` of unused capacity may be spent at
    once. Token costs are estimated from the request body (about four characters a token)
    and corrected once the response reports its usage.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not requests_per_minute and not tokens_per_minute:
            raise ValueError("A rate limiter needs requests_per_minute or tokens_per_minute.")
        self.requests_per_second = (requests_per_minute or 0) / 60
        self.tokens_per_second = (tokens_per_minute or 0) / 60
        self.burst_seconds = burst_seconds
        self._clock = clock
        self._sleep = sleep
        self._request_free_at = 0.0
        self._token_free_at = 0.0
        self._paused_until = 0.0
        self.waited_seconds = 0.0
        """Total time callers spent waiting for the limiter (for reports and tests)."""
        self.pauses = 0
        """How many 429 responses paused every caller."""

    def _reserve(self, tokens: int) -> float:
        """The start time for a request costing `tokens`; books its capacity."""
        now = self._clock()
        start = max(now, self._paused_until)
        if self.requests_per_second:
            slot = max(start, self._request_free_at - self.burst_seconds)
            self._request_free_at = max(self._request_free_at, slot) + 1 / self.requests_per_second
            start = max(start, slot)
        if self.tokens_per_second:
            slot = max(start, self._token_free_at - self.burst_seconds)
            self._token_free_at = max(self._token_free_at, slot) + tokens / self.tokens_per_second
            start = max(start, slot)
        return start

    async def acquire(self, estimated_tokens: int = 0) -> None:
        """Wait until a request costing `estimated_tokens` may start."""
        delay = self._reserve(estimated_tokens) - self._clock()
        if delay > 0:
            self.waited_seconds += delay
            await self._sleep(delay)
        # A 429 that came while this request waited for its slot pauses it too.
        while (pause := self._paused_until - self._clock()) > 0:
            self.waited_seconds += pause
            await self._sleep(pause)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct a reservation once the real token count is known."""
        if self.tokens_per_second:
            self._token_free_at += (actual_tokens - estimated_tokens) / self.tokens_per_second

    def pause(self, seconds: float) -> None:
        """Stop every caller for `seconds` (the provider said Retry-After)."""
        self.pauses += 1
        self._paused_until = max(self._paused_until, self._clock() + seconds)


def estimate_tokens(request: httpx.Request) -> int:
    """A request's likely total tokens: its body at ~4 characters a token, plus the reply."""
    completion = DEFAULT_COMPLETION_ESTIMATE
    try:
        body = json.loads(request.content or b"{}")
        completion = int(body.get("max_tokens") or body.get("max_completion_tokens") or completion)
    except (ValueError, TypeError, AttributeError):
        pass
    return len(request.content or b"") // 4 + completion


def _retry_after(response: httpx.Response) -> float | None:
    seconds: float | None = None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            seconds = float(value) / 1000
        except ValueError:
            return None
    else:
        value = response.headers.get("retry-after")
        if value:
            try:
                seconds = float(value)
            except ValueError:
                return None
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return None
    return seconds


def _total_tokens(content: bytes, fallback: int) -> int:
    try:
        return int(json.loads(content)["usage"]["total_tokens"])
    except (ValueError, TypeError, KeyError):
        return fallback


class RateLimitedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that waits for the limiter before each request it forwards."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        limiter: RateLimiter,
        *,
        max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.max_retry_after = max_retry_after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        estimate = estimate_tokens(request)
        await self.limiter.acquire(estimate)
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            retry_after = _retry_after(response)
            wait = DEFAULT_PAUSE_SECONDS if retry_after is None else retry_after
            self.limiter.pause(min(wait, self.max_retry_after))
            self.limiter.settle(estimate, 0)
            if wait > self.max_retry_after:
                await response.aread()
                await response.aclose()
                response.request = request
                raise RetryAfterTooLongError(
                    f"The endpoint answered 429 with Retry-After {wait:g} s, more than the "
                    f"{self.max_retry_after:g} s this process waits; the request is given up.",
                    response=response,  # type: ignore[arg-type]
                    body=None,
                )
        elif response.status_code == 200 and self.limiter.tokens_per_second:
            # The body is small and read anyway; reading it here lets the bucket use real usage.
            await response.aread()
            self.limiter.settle(estimate, _total_tokens(response.content, estimate))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
