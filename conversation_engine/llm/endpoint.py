"""The one LLM endpoint object both engines use.

`OpenAIWrapper` keeps the legacy constructor and methods and adds what the AutoGen engine
needs. Every request of a wrapper, whether it comes from the plain `openai` SDK (legacy engine,
evaluator) or from AutoGen's `OpenAIChatCompletionClient`, goes through one shared, pooled
`httpx.AsyncClient`. That makes connection reuse explicit, lets the simulated LLM plug in as an
httpx transport, and lets `respx` intercept every call: openai 3.x talks through `httpx2`,
which respx does not patch, but it accepts a classic `httpx.AsyncClient`, which respx does.
"""

from __future__ import annotations

import json
import logging
import ssl
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import httpx
import openai

from conversation_engine.core._redaction import register_secret
from conversation_engine.core.contract import FunctionCall, ToolCall, Usage, is_geo_block
from conversation_engine.core.errors import (
    MALFORMED_RESPONSE_MESSAGE,
    APIBlockedError,
    MalformedResponseError,
    ReplayDivergence,
    ReplayRanDry,
)
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.llm._completion_check import (
    CompletionCheck,
    SurrogateSafeTransport,
    tool_call_arguments,
)
from conversation_engine.llm._sdk_fast_path import skipping_request_transform
from conversation_engine.llm.rate_limit import (
    RateLimitedTransport,
    RateLimiter,
    RetryAfterTooLongError,
)
from conversation_engine.observability.model_calls import ObservedTransport
from conversation_engine.observability.prices import PRICES_PER_1K as PRICES_PER_1K  # legacy home
from conversation_engine.observability.prices import cost_usd

logger = logging.getLogger(__name__)

SIMULATED_BASE_URL = "http://simulated-llm.local/v1"
SIMULATED_MODEL = "simulated"


#: Where each model call's usage is reported besides the conversation's own count: the host
#: service's `log_token_usage(session_id, model, prompt, completion, total, cost_estimate)`.
#: Its `cost_estimate` is a float in the legacy signature, so an unknown cost is sent as 0.0.
UsageLog = Callable[[str, str, int, int, int, float], Any]


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The cost in USD of these tokens on `model`; None when the price table does not know it.

    A simulated LLM's calls have no price whatever model name they were sent with: price them
    with `OpenAIWrapper.cost_of`, which knows whether the simulated LLM answered.
    """
    # One table for the package (`observability.prices`), with the user's `MODEL_PRICES`.
    return cost_usd(model, prompt_tokens, completion_tokens, get_settings().MODEL_PRICES)


@lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    # Building one costs ~20 ms; every service client of the process can share it.
    return httpx.create_ssl_context()


def as_blocked_error(error: BaseException) -> APIBlockedError | None:
    """An `APIBlockedError` when `error` is a geographic block, else None."""
    text = str(error)
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        text = f"{text} {json.dumps(body)}"
    if is_geo_block(text):
        return APIBlockedError(f"OpenAI API blocked due to geographic restrictions: {error}")
    return None


def wire_error_of(error: openai.APIError) -> BaseException:
    """The error our HTTP client raised on the wire, if the SDK wrapped it; else `error`.

    Our transport and response hook raise deliberate errors (`MalformedResponseError`, a
    `Retry-After` too long to wait). openai 2.x and 3.x let them through as they are; openai
    1.x turns every exception of the HTTP client into `APIConnectionError` (after retrying it),
    so the original is taken back from the chain to report the same `error_type` on every SDK.
    """
    cause = error.__cause__
    if isinstance(error, openai.APIConnectionError) and isinstance(
        cause, MalformedResponseError | RetryAfterTooLongError | ReplayDivergence | ReplayRanDry
    ):
        return cause
    return error


class OpenAIWrapper:
    """One model endpoint: key, base URL, model, sampling, retries and a pooled HTTP client.

    The legacy call `OpenAIWrapper(api_key, model=None, max_retries=3)` still works. Use
    `OpenAIWrapper.simulated()` for the offline test double and `OpenAIWrapper.from_settings()`
    for whatever the environment configures.
    """

    def __init__(
        self,
        api_key: str | None = None,
        model: str | None = None,
        max_retries: int = 3,
        *,
        base_url: str | None = None,
        model_info: Mapping[str, Any] | None = None,
        temperature: float = 0.7,
        timeout: float = 60.0,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        wire_layer: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
        rate_limiter: RateLimiter | None = None,
        usage_log: UsageLog | None = None,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.model = model or settings.OPENAI_MODEL
        self.base_url = base_url or settings.OPENAI_BASE_URL
        self.temperature = temperature
        self.max_retries = max_retries
        self.timeout = timeout
        self.organization = organization
        self.project = project
        self.default_headers = dict(default_headers or {})
        self.usage_log = usage_log
        # A local gateway (Ollama, vLLM) needs no key, but the SDK insists on one.
        self._api_key = api_key or settings.OPENAI_API_KEY or "not-needed"
        register_secret(self._api_key)  # an endpoint may echo it in an error (redaction.py)
        self.model_info = model_info
        """What an agent framework is told about the model; None: decided by the framework
        client (`autogen.model_client` knows OpenAI's models and assumes the rest)."""
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        wire = transport or httpx.AsyncHTTPTransport(limits=limits)
        if wire_layer is not None:
            # Recording or replay (`conversation_engine.replay`): beneath the rate limiter, so
            # that it sees each attempt that reaches the model, retries included.
            wire = wire_layer(wire)
        self._completion_check = CompletionCheck()
        if rate_limiter is None and (settings.RATE_LIMIT_RPM or settings.RATE_LIMIT_TPM):
            rate_limiter = RateLimiter(
                settings.RATE_LIMIT_RPM or None, settings.RATE_LIMIT_TPM or None
            )
        self.rate_limiter = rate_limiter
        if rate_limiter is not None:
            wire = RateLimitedTransport(wire, rate_limiter)
        # Every chat completion is reported to the event stream when something listens
        # (tracing, `--follow`, a budget); otherwise this layer only forwards.
        wire = ObservedTransport(wire)
        # Outermost, so that every reader, hooks included, gets text that encodes again.
        wire = SurrogateSafeTransport(wire)
        self.http_client = httpx.AsyncClient(
            transport=wire,
            limits=limits,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            # A 2xx reply that is no chat completion raises MalformedResponseError here, the
            # same for every caller (completion_check.py); a reply of the simulated LLM is
            # noted (`simulated_replies`).
            event_hooks={"response": [self._completion_check]},
        )
        self.transport = transport
        self.client = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=max_retries,
            timeout=timeout,
            organization=organization,
            project=project,
            default_headers=self.default_headers or None,
            # openai 3.x types this as `httpx2.AsyncClient` but accepts a classic one, which is
            # what lets respx see the SDK's requests.
            http_client=self.http_client,  # type: ignore[arg-type]
        )
        self._usage: dict[str, Usage] = {}
        self._service_client: httpx.AsyncClient | None = None

    @classmethod
    def simulated(
        cls, config: Any = None, *, model: str = SIMULATED_MODEL, **kwargs: Any
    ) -> OpenAIWrapper:
        """A wrapper served by the offline simulated LLM (`config`: a `SimulationConfig`)."""
        from conversation_engine.testing.simulated_llm import SimulatedLLMTransport

        kwargs.setdefault("max_retries", 0)
        return cls(
            "simulated",
            model,
            base_url=SIMULATED_BASE_URL,
            transport=SimulatedLLMTransport(config),
            **kwargs,
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> OpenAIWrapper:
        """The configured endpoint, or the simulated LLM when no key or base URL is set."""
        settings = settings or get_settings()
        if not settings.uses_real_endpoint:
            return cls.simulated(settings=settings, **kwargs)
        return cls(settings.OPENAI_API_KEY, settings.OPENAI_MODEL, settings=settings, **kwargs)

    @property
    def service_http_client(self) -> httpx.AsyncClient:
        """The pooled client for the business services: the HTTP tool API, the client-data webhook.

        Not `http_client`, whose transport is the model's wire (the simulated LLM, the rate
        limiter): tool and webhook calls must reach the network and not count as model requests.
        """
        if self._service_client is None:
            self._service_client = httpx.AsyncClient(verify=_default_ssl_context())
        return self._service_client

    @property
    def is_simulated(self) -> bool:
        """The in-process simulated LLM (`simulated()`)."""
        return self.base_url == SIMULATED_BASE_URL

    @property
    def simulated_replies(self) -> bool:
        """The replies come from the simulated LLM: the in-process one (`is_simulated`), or
        one served over HTTP (`conversation-engine simulated-llm serve`), known once a reply
        carried its `system_fingerprint`. Its calls have no price (`cost_of`)."""
        return self.is_simulated or self._completion_check.simulated

    def __repr__(self) -> str:
        # Never show the key.
        return f"OpenAIWrapper(model={self.model!r}, base_url={self.base_url!r})"

    # Usage -----------------------------------------------------------------------------

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The cost in USD of these tokens on this endpoint; None when it is unknown: the
        simulated LLM answered (`simulated_replies`), or the model is not in the price table."""
        if self.simulated_replies:
            return None
        return estimate_cost(self.model, prompt_tokens, completion_tokens)

    def record_usage(self, session_id: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Count a `chat_completion` call against its session, and log it (`log_usage`)."""
        cost = self.cost_of(prompt_tokens, completion_tokens)
        self._usage.setdefault(session_id, Usage()).add(prompt_tokens, completion_tokens, cost)
        self.log_usage(session_id, prompt_tokens, completion_tokens)

    def log_usage(self, session_id: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Report one model call to `usage_log` (the host's token log), if there is one.

        The host's log feeds its own cost report, so a failing logger must not end a
        conversation: its error is logged and the call counts as made.
        """
        if self.usage_log is None:
            return
        # The host's legacy signature takes a float cost: an unknown one (simulated LLM, model
        # not in the price table) is reported as 0.0 there, and as None in our own `Usage`.
        cost = self.cost_of(prompt_tokens, completion_tokens) or 0.0
        total = prompt_tokens + completion_tokens
        try:
            self.usage_log(session_id, self.model, prompt_tokens, completion_tokens, total, cost)
        except Exception as error:
            logger.warning("The host's token logger failed: %s: %s", type(error).__name__, error)

    def usage(self, session_id: str) -> Usage:
        """What `chat_completion`/`json_completion` calls for this session used so far."""
        return self._usage.get(session_id, Usage()).model_copy()

    def pop_usage(self, session_id: str) -> Usage:
        """The session's usage, forgotten afterwards (so long batches do not accumulate)."""
        return self._usage.pop(session_id, Usage())

    # Legacy calls -----------------------------------------------------------------------

    async def chat_completion(
        self,
        messages: Sequence[dict[str, Any]],
        session_id: str,
        temperature: float | None = None,
        seed: int | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> tuple[Any, dict[str, int]]:
        """Legacy: `(content, usage)`, or `(message, usage)` when tools were called."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature if temperature is None else temperature,
            **extra,
        }
        if seed is not None:
            request["seed"] = seed
        if tools:
            request["tools"] = list(tools)
            request["tool_choice"] = "auto"
            request["parallel_tool_calls"] = False
        try:
            # The SDK's request transform is skipped where it would change nothing
            # (`_sdk_fast_path`): it was over half of this call's CPU.
            with skipping_request_transform():
                response = await self.client.chat.completions.create(**request)
        except openai.APIError as error:
            blocked = as_blocked_error(error)
            if blocked is not None:
                raise blocked from error
            cause = wire_error_of(error)
            if cause is not error:
                raise cause from None
            raise
        if isinstance(response, str):
            # The SDK hands back the raw text when the body is not JSON.
            raise MalformedResponseError(MALFORMED_RESPONSE_MESSAGE)
        if not getattr(response, "choices", None):
            raise MalformedResponseError(
                f"The model endpoint returned no choices: {str(response)[:200]}"
            )
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        if response.usage is not None:
            # A count the endpoint left out is 0, as AutoGen's client takes it.
            usage = {key: getattr(response.usage, key, None) or 0 for key in usage}
        self.record_usage(session_id, usage["prompt_tokens"], usage["completion_tokens"])
        message = response.choices[0].message
        if tools and message.tool_calls:
            return message, usage
        return message.content, usage

    async def json_completion(
        self,
        messages: Sequence[dict[str, Any]],
        session_id: str,
        temperature: float = 0.3,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Legacy: JSON mode; invalid JSON gives `{"error": "invalid_json", "content": ...}`."""
        content, _ = await self.chat_completion(
            messages, session_id, temperature, seed, response_format={"type": "json_object"}
        )
        try:
            parsed = json.loads(content or "")
        except (TypeError, ValueError):
            return {"error": "invalid_json", "content": content}
        return parsed if isinstance(parsed, dict) else {"error": "invalid_json", "content": content}

    # For other clients of the endpoint ------------------------------------------------

    def client_options(self) -> dict[str, Any]:
        """What another OpenAI client needs to reach this endpoint exactly as this one does:
        key, base URL, organization, project, headers, timeout, retries, the shared HTTP
        client, model and temperature (`openai.AsyncOpenAI` and chat-completion arguments)."""
        options: dict[str, Any] = {
            "model": self.model,
            "api_key": self._api_key,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "http_client": self.http_client,
            "temperature": self.temperature,
        }
        for option in ("organization", "project", "base_url"):
            if getattr(self, option):
                options[option] = getattr(self, option)
        if self.default_headers:
            options["default_headers"] = self.default_headers
        return options

    async def aclose(self) -> None:
        await self.http_client.aclose()
        if self._service_client is not None:
            await self._service_client.aclose()

    async def __aenter__(self) -> OpenAIWrapper:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def reply_text(reply: Any) -> str:
    """The spoken text of a `chat_completion` reply (a string or a message); never None."""
    if reply is None or isinstance(reply, str):
        return reply or ""
    return getattr(reply, "content", None) or ""


def reply_tool_calls(reply: Any) -> list[ToolCall]:
    """A `chat_completion` reply's tool calls in contract shape (arguments stay JSON text)."""
    if reply is None or isinstance(reply, str):
        return []
    calls: list[ToolCall] = []
    for raw in getattr(reply, "tool_calls", None) or []:
        function = getattr(raw, "function", None)
        name = getattr(function, "name", None)
        if not name:
            continue
        calls.append(
            ToolCall(
                id=getattr(raw, "id", None) or f"call_{uuid.uuid4().hex[:24]}",
                function=FunctionCall(
                    name=name, arguments=tool_call_arguments(getattr(function, "arguments", None))
                ),
            )
        )
    return calls
