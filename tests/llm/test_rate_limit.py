from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.llm.rate_limit import (
    MAX_RETRY_AFTER_SECONDS,
    RateLimitedTransport,
    RateLimiter,
    RetryAfterTooLongError,
    estimate_tokens,
)
from conversation_engine.testing.simulated_llm import Fault, SimulatedLLMTransport, SimulationConfig


class FakeClock:
    """Time that only moves when someone sleeps, so schedules are exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.starts: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_requests_per_minute_spaces_requests_after_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, burst_seconds=1.0, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        await limiter.acquire()
        starts.append(clock.now)
    # One second of burst lets two requests go at once, then one per second.
    assert starts == [0.0, 0.0, 1.0, 2.0, 3.0]
    assert limiter.waited_seconds == pytest.approx(3.0)


async def test_tokens_per_minute_charges_the_estimate_and_settles_the_real_usage() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        tokens_per_minute=600, burst_seconds=0, clock=clock, sleep=clock.sleep
    )  # 10 tokens/s
    await limiter.acquire(100)  # books 10 s
    limiter.settle(100, 50)  # only 50 were used: 5 s given back
    await limiter.acquire(10)
    assert clock.now == pytest.approx(5.0)


async def test_retry_after_pauses_every_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=6000, clock=clock, sleep=clock.sleep)
    limiter.pause(2.5)
    await asyncio.gather(limiter.acquire(), limiter.acquire())
    assert clock.now >= 2.5 and limiter.pauses == 1


def test_a_limiter_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="requests_per_minute or tokens_per_minute"):
        RateLimiter()


def test_token_estimate_counts_body_and_reply() -> None:
    request = httpx.Request(
        "POST",
        "http://x/v1/chat/completions",
        json={"messages": [{"content": "x" * 400}], "max_tokens": 50},
    )
    assert estimate_tokens(request) == len(request.content) // 4 + 50


async def test_a_429_through_the_wrapper_pauses_the_limiter_and_the_sdk_retries() -> None:
    simulated = SimulatedLLMTransport(
        SimulationConfig(faults=[Fault(kind="rate_limit", times=1, retry_after=0)])
    )
    limiter = RateLimiter(requests_per_minute=6000, tokens_per_minute=10_000_000)
    wrapper = OpenAIWrapper(
        "k",
        "simulated",
        max_retries=2,
        base_url="http://sim.test/v1",
        transport=simulated,
        rate_limiter=limiter,
    )
    try:
        _content, usage = await wrapper.chat_completion(
            [
                {"role": "system", "content": "You are an agent."},
                {"role": "user", "content": "Hello"},
            ],
            "s1",
        )
    finally:
        await wrapper.aclose()
    assert limiter.pauses == 1
    assert simulated.stats.requests == 2 and usage["total_tokens"] > 0
    # The limiter sits in the wire's chain of transports (each layer keeps the next as `inner`).
    layers = []
    layer = wrapper.http_client._transport
    while layer is not None:
        layers.append(layer)
        layer = getattr(layer, "inner", None)
    assert any(isinstance(layer, RateLimitedTransport) for layer in layers)


def test_settings_turn_the_limiter_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from conversation_engine.core.settings import Settings

    wrapper = OpenAIWrapper("k", "gpt-4o-mini", settings=Settings(RATE_LIMIT_RPM=500))
    assert (
        wrapper.rate_limiter is not None
        and wrapper.rate_limiter.requests_per_second == pytest.approx(500 / 60)
    )
    assert OpenAIWrapper("k", "gpt-4o-mini", settings=Settings()).rate_limiter is None


def _answer_429(retry_after: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(
            429, headers={"retry-after": retry_after}, json={"error": {"message": "slow down"}}
        )
    )


async def test_an_absurd_retry_after_pauses_everyone_for_the_cap_only_and_fails_its_request() -> (
    None
):
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=6000, clock=clock, sleep=clock.sleep)
    transport = RateLimitedTransport(_answer_429("100000"), limiter)
    request = httpx.Request("POST", "http://x/v1/chat/completions", json={"messages": []})
    with pytest.raises(RetryAfterTooLongError, match="Retry-After 100000 s") as raised:
        await transport.handle_async_request(request)
    assert isinstance(raised.value, openai.RateLimitError)  # the SDK will not retry it
    await limiter.acquire()
    assert clock.now == pytest.approx(MAX_RETRY_AFTER_SECONDS) == 60


@pytest.mark.parametrize("header", ["nan", "-5", "soon", "inf"])
async def test_retry_after_values_that_make_no_sense_never_pause_past_the_cap(header: str) -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=6000, clock=clock, sleep=clock.sleep)
    transport = RateLimitedTransport(_answer_429(header), limiter)
    request = httpx.Request("POST", "http://x/v1/chat/completions", json={"messages": []})
    try:
        await transport.handle_async_request(request)
    except RetryAfterTooLongError:
        assert header == "inf"
    await limiter.acquire()
    assert 0 < clock.now <= MAX_RETRY_AFTER_SECONDS
