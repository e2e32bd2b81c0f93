"""The service's `OpenAIWrapper` (reference section 6).

`OpenAIWrapper(api_key, model=None, max_retries=3)` wraps `openai.AsyncOpenAI(api_key=...)`
with no `base_url`, so the SDK takes the `OPENAI_BASE_URL` environment variable. Every call is
retried by the wrapper (on top of the SDK's own retries), throttled to 200 requests a second,
logged (`log_openai_request`, `log_openai_response`) and its usage written as a token line
with a cost estimate. An error mentioning a geographic block (or 403) is not retried.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from openai import AsyncOpenAI

from .config import Config
from .logging_utils import get_logger

#: USD per 1K tokens; any other model costs 0.
TOKEN_COSTS: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.00015, "output": 0.0006},
    "gpt-4.1-mini": {"input": 0.0003, "output": 0.0012},
    "gpt-4o": {"input": 0.005, "output": 0.015},
    "gpt-4": {"input": 0.03, "output": 0.06},
    "gpt-3.5-turbo": {"input": 0.0015, "output": 0.002},
}

GEO_BLOCK_MESSAGE = "OpenAI API blocked due to geographic restrictions after {n} attempts"


class _Throttler:
    """At most `rate` requests per `period` seconds (a sliding window; no lock, loop-agnostic)."""

    def __init__(self, rate: int, period: float) -> None:
        self.rate = rate
        self.period = period
        self._sent: list[float] = []

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            self._sent = [t for t in self._sent if now - t < self.period]
            if len(self._sent) < self.rate:
                self._sent.append(now)
                return
            await asyncio.sleep(self.period - (now - self._sent[0]))


class OpenAIWrapper:
    """The service's model wrapper: `.client` (an `AsyncOpenAI`), `.model`, `.logger`."""

    def __init__(self, api_key: str, model: str | None = None, max_retries: int = 3) -> None:
        self.client = AsyncOpenAI(api_key=api_key)
        self.model = model or Config.OPENAI_MODEL
        self.max_retries = max_retries
        self.throttler = _Throttler(rate=200, period=1.0)
        self.logger = get_logger()
        self.token_costs = TOKEN_COSTS

    def _calculate_cost(self, usage: dict[str, int]) -> float:
        costs = self.token_costs.get(self.model)
        if costs is None:
            return 0.0
        return (usage["prompt_tokens"] / 1000) * costs["input"] + (
            usage["completion_tokens"] / 1000
        ) * costs["output"]

    async def _make_request_with_retry(
        self,
        messages: list[dict[str, Any]],
        session_id: str,
        temperature: float = 0.7,
        seed: int | None = None,
        response_format: dict[str, str] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> tuple[Any, dict[str, int]]:
        for attempt in range(self.max_retries):
            try:
                await self.throttler.wait()
                params: dict[str, Any] = {
                    "model": self.model,
                    "messages": messages,
                    "temperature": temperature,
                }
                if seed is not None:
                    params["seed"] = seed
                if response_format:
                    params["response_format"] = response_format
                if tools:
                    params["tools"] = tools
                    params["tool_choice"] = "auto"
                self.logger.log_openai_request(session_id, self.model, messages, tools, temperature)
                started = time.monotonic()
                response = await self.client.chat.completions.create(**params)
                message = response.choices[0].message
                content: Any = message
                if not (tools and getattr(message, "tool_calls", None)):
                    content = message.content
                usage = {
                    "prompt_tokens": response.usage.prompt_tokens if response.usage else 0,
                    "completion_tokens": response.usage.completion_tokens if response.usage else 0,
                    "total_tokens": response.usage.total_tokens if response.usage else 0,
                }
                self.logger.log_openai_response(
                    session_id, self.model, content, usage, time.monotonic() - started
                )
                self.logger.log_token_usage(
                    session_id=session_id,
                    model=self.model,
                    prompt_tokens=usage["prompt_tokens"],
                    completion_tokens=usage["completion_tokens"],
                    total_tokens=usage["total_tokens"],
                    cost_estimate=self._calculate_cost(usage),
                )
                return content, usage
            except Exception as error:
                text = str(error)
                context = {
                    "session_id": session_id,
                    "model": self.model,
                    "attempt": attempt + 1,
                    "max_retries": self.max_retries,
                    "error_type": type(error).__name__,
                }
                if "unsupported_country_region_territory" in text or "403" in text:
                    self.logger.log_error(
                        "OpenAI API blocked (geographic restriction)", error, context
                    )
                    raise Exception(GEO_BLOCK_MESSAGE.format(n=attempt + 1)) from error
                self.logger.log_error(
                    f"OpenAI API request failed (attempt {attempt + 1}/{self.max_retries})",
                    error,
                    context,
                )
                if attempt == self.max_retries - 1:
                    raise
                if "rate_limit" in text.lower():
                    wait = 2 ** (attempt + 2) + random.uniform(2, 5)
                else:
                    wait = 2**attempt + random.uniform(0, 1)
                await asyncio.sleep(wait)
        raise Exception(f"Failed to complete OpenAI request after {self.max_retries} attempts")

    async def chat_completion(
        self,
        messages: list[dict[str, Any]],
        session_id: str,
        temperature: float = 0.7,
        seed: int | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> tuple[Any, dict[str, int]]:
        """`(content, usage)`; content is the whole message when tools were offered and used."""
        return await self._make_request_with_retry(
            messages, session_id, temperature=temperature, seed=seed, tools=tools
        )

    async def json_completion(
        self,
        messages: list[dict[str, Any]],
        session_id: str,
        temperature: float = 0.3,
        seed: int | None = None,
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """`(parsed JSON, usage)`; `{"error": "invalid_json", "content": ...}` on bad JSON."""
        content, usage = await self._make_request_with_retry(
            messages,
            session_id,
            temperature=temperature,
            seed=seed,
            response_format={"type": "json_object"},
        )
        try:
            return json.loads(content), usage
        except (TypeError, ValueError) as error:
            self.logger.log_error(
                "Failed to parse JSON response from OpenAI",
                error,
                {"session_id": session_id, "content": content},
            )
            return {"error": "invalid_json", "content": content}, usage
