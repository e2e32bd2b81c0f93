"""`ObservedTransport`: every chat completion on the wire, reported as a model call.

It sits in each endpoint's transport chain (`llm.endpoint`), so the legacy engine, AutoGen's
model client, the customer and the evaluator are all seen at the same place, with the call
context (`core.call_context`) saying whose call it is. With nothing listening
(`events.observed()` false) it only forwards the request. Listening, it reads the requested
model from the request body and the tokens and finish reason from the answer, which it reads
in full first (a chat completion is not streamed here; the reader after it gets the same
bytes from the response's cache).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from conversation_engine.observability.events import (
    ModelCallEnded,
    ModelCallStarted,
    emit,
    next_id,
    observed,
)

_CHAT_PATH = "/chat/completions"


def _json(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def answer_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What a chat completion body says of itself: model, tokens, finish reason."""
    raw_usage = body.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else {}
    finish = first.get("finish_reason") if isinstance(first, dict) else None
    model = body.get("model")
    return {
        "response_model": model if isinstance(model, str) else None,
        "input_tokens": _count(usage.get("prompt_tokens")),
        "output_tokens": _count(usage.get("completion_tokens")),
        "finish_reason": finish if isinstance(finish, str) else None,
    }


class ObservedTransport(httpx.AsyncBaseTransport):
    """Forwards to `inner`; reports each chat completion to the event stream when observed."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not observed() or not request.url.path.endswith(_CHAT_PATH):
            return await self.inner.handle_async_request(request)
        model = str(_json(request.content).get("model") or "")
        call_id = next_id()
        emit(ModelCallStarted(call_id=call_id, model=model))
        try:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
        except BaseException as failure:
            emit(ModelCallEnded(call_id=call_id, model=model, error=type(failure).__name__))
            raise
        fields = answer_fields(_json(body)) if response.is_success else {}
        emit(
            ModelCallEnded(
                call_id=call_id,
                model=model,
                status_code=response.status_code,
                error=None if response.is_success else f"HTTP {response.status_code}",
                **fields,
            )
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
