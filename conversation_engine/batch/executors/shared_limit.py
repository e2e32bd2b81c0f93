"""One rate limit for a whole batch, whatever process or node makes the calls.

`RATE_LIMIT_RPM` / `RATE_LIMIT_TPM` and a 429's `Retry-After` are the provider's limits on the
account, not on a process: N workers each with their own `RateLimiter` would send N times the
limit. So the batch has one `RateLimiter` (the driver's, or a Ray actor's), and each worker's
endpoint gets a `SharedRateLimiter`: the same interface to `RateLimitedTransport`, every
decision delegated to the one schedule (`acquire` waits for its permission; `settle` and
`pause` are told to it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from conversation_engine.llm.rate_limit import RateLimiter

Ask = Callable[[int], Awaitable[None]]
"""Wait for the batch's limiter to let a request costing this many tokens start."""
Tell = Callable[..., None]
"""Tell the batch's limiter `("settle", estimated, actual)` or `("pause", seconds)`."""


class SharedRateLimiter(RateLimiter):
    """A worker's view of the batch's `RateLimiter`: asks it, never decides alone."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        ask: Ask,
        tell: Tell,
    ) -> None:
        super().__init__(requests_per_minute, tokens_per_minute)
        self._ask = ask
        self._tell = tell

    async def acquire(self, estimated_tokens: int = 0) -> None:
        await self._ask(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self.tokens_per_second:
            self._tell("settle", estimated_tokens, actual_tokens)

    def pause(self, seconds: float) -> None:
        self.pauses += 1
        self._tell("pause", seconds)


def apply(limiter: RateLimiter, method: str, *args: Any) -> None:
    """Apply a worker's `settle` or `pause` to the batch's limiter (anything else is ignored:
    a worker's message must not be able to call arbitrary methods)."""
    if method == "settle":
        limiter.settle(int(args[0]), int(args[1]))
    elif method == "pause":
        limiter.pause(float(args[0]))
