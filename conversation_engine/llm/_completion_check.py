"""What counts as a chat completion, checked once on the wire for every caller.

The `openai` SDK does not validate a response's fields: it builds its models leniently, and a
reply with `choices: []`, a `message` that is a string or a tool call without a `function`
reaches the caller as odd objects. The legacy engine, the evaluator and AutoGen's model
client then each failed in their own way (`IndexError`, `AttributeError`, `TypeError`, a
pydantic error, or a tool task that died and left the Swarm waiting forever).

`check_chat_completion` is an httpx response hook on the model endpoint's client: every
successful (2xx) answer to `POST .../chat/completions` is parsed and checked before any SDK
sees it, and one that is not a chat completion raises `MalformedResponseError` naming the
field. The SDK lets exceptions raised by the HTTP client through as they are, without retrying
them, so every engine and the evaluator report the same `error_type` for the same reply.

What is accepted, beyond a JSON object:

* `choices`: a non-empty list; `choices[0]` an object with a `message` object;
  `finish_reason` a string or null; `logprobs` null or well-formed;
* `message.content` (and `reasoning_content`, if sent) a string or null; no deprecated
  `function_call`;
* `message.tool_calls` null or a list of objects, each with a string `id`, a `type` that is
  `function` if given, and a `function` object whose `name` is a non-empty string and whose
  `arguments` is a string or null
  (missing or null counts as no arguments, `{}`: `tool_call_arguments`). What the string
  holds is the model's business: text that is no JSON object becomes that call's error
  result, and the conversation goes on;
* `usage` null, or an object whose `prompt_tokens` and `completion_tokens` (and
  `total_tokens`, if sent) are non-negative integers.

Each endpoint's client has its own `CompletionCheck`, which also notes whether a reply came
from the simulated LLM (its `system_fingerprint` is `SIMULATED_FINGERPRINT`), served in
process or over HTTP: such calls have no price (`OpenAIWrapper.simulated_replies`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from conversation_engine.core._safe_text import without_surrogates
from conversation_engine.core.errors import MALFORMED_RESPONSE_MESSAGE, MalformedResponseError

CHAT_COMPLETIONS_PATH = "/chat/completions"

#: The `system_fingerprint` of every reply of the simulated LLM (`testing/simulated_llm/model.py`).
SIMULATED_FINGERPRINT = "fp_simulated"

_TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


def tool_call_arguments(raw: Any) -> str:
    """A tool call's `arguments` as the JSON text both engines record and execute.

    A string is kept; a blank one (which models send for tools without parameters) and null
    mean `{}`. Any other value (which `check_chat_completion` refuses on the wire) becomes
    its JSON text.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return "{}"
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, ensure_ascii=False, default=str)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _logprobs_problem(logprobs: Any) -> str | None:
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        return f"choices[0].logprobs is {_type_name(logprobs)}, not an object"
    content = logprobs.get("content")
    if content is None:
        return None
    if not isinstance(content, list):
        return f"choices[0].logprobs.content is {_type_name(content)}, not a list"
    for index, entry in enumerate(content):
        where = f"choices[0].logprobs.content[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            return f"{where} has no string token"
        top = entry.get("top_logprobs") or []
        if not isinstance(top, list):
            return f"{where}.top_logprobs is not a list"
        for item in [entry, *top]:
            if not isinstance(item, dict):
                return f"{where}.top_logprobs holds {_type_name(item)}"
            logprob = item.get("logprob")
            if isinstance(logprob, bool) or not isinstance(logprob, int | float):
                return f"{where} has a logprob that is not a number"
            raw_bytes = item.get("bytes")
            if raw_bytes is not None and not (
                isinstance(raw_bytes, list) and all(_is_count(b) for b in raw_bytes)
            ):
                return f"{where} has bytes that are not a list of integers"
    return None


def _tool_calls_problem(tool_calls: Any) -> str | None:
    if tool_calls is None:
        return None
    if not isinstance(tool_calls, list):
        return f"message.tool_calls is {_type_name(tool_calls)}, not a list"
    for index, call in enumerate(tool_calls):
        where = f"message.tool_calls[{index}]"
        if not isinstance(call, dict):
            return f"{where} is {_type_name(call)}, not an object"
        if not isinstance(call.get("id"), str):
            return f"{where}.id is {_type_name(call.get('id'))}, not a string"
        if call.get("type") not in (None, "function"):
            return f"{where}.type is not 'function' (only function tools are offered)"
        function = call.get("function")
        if not isinstance(function, dict):
            return f"{where}.function is {_type_name(function)}, not an object"
        name = function.get("name")
        if not isinstance(name, str) or not name.strip():
            return f"{where}.function.name is {_type_name(name)}, not a tool name"
        arguments = function.get("arguments")
        if not isinstance(arguments, str | None):
            return f"{where}.function.arguments is {_type_name(arguments)}, not a JSON string"
    return None


def completion_problem(body: Any) -> str | None:
    """Why the parsed JSON `body` is not a chat completion, or None when it is one."""
    if not isinstance(body, dict):
        return f"the body is {_type_name(body)}, not an object"
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return "it has no choices" if choices in (None, []) else "choices is not a list"
    choice = choices[0]
    if not isinstance(choice, dict):
        return f"choices[0] is {_type_name(choice)}, not an object"
    if not isinstance(choice.get("finish_reason"), str | None):
        return "choices[0].finish_reason is not a string"
    problem = _logprobs_problem(choice.get("logprobs"))
    if problem:
        return problem
    message = choice.get("message")
    if not isinstance(message, dict):
        return f"choices[0].message is {_type_name(message)}, not an object"
    for key in ("content", "reasoning_content"):
        if not isinstance(message.get(key), str | None):
            return f"message.{key} is {_type_name(message.get(key))}, not a string"
    if message.get("function_call") is not None:
        return "message.function_call (deprecated) is set; only tool_calls are supported"
    problem = _tool_calls_problem(message.get("tool_calls"))
    if problem:
        return problem
    usage = body.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            return f"usage is {_type_name(usage)}, not an object"
        for key in _TOKEN_FIELDS:
            required = key != "total_tokens"
            if (required or key in usage) and not _is_count(usage.get(key)):
                return f"usage.{key} is {_type_name(usage.get(key))}, not a token count"
    return None


def parse_completion(content: bytes) -> dict[str, Any]:
    """The chat completion in `content`; raises `MalformedResponseError` if it is none."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # invalid JSON, invalid UTF-8, absurd nesting
        raise MalformedResponseError(MALFORMED_RESPONSE_MESSAGE) from None
    problem = completion_problem(body)
    if problem is not None:
        raise MalformedResponseError(
            f"The model endpoint's reply is not a valid chat completion: {problem}."
        )
    return body  # type: ignore[no-any-return]


def is_chat_completion_response(
    response: httpx.Response, request: httpx.Request | None = None
) -> bool:
    """A 2xx answer to `POST .../chat/completions` (`request`: where the response does not
    know its request yet, as inside a transport)."""
    request = request or response.request
    return (
        response.is_success
        and request.method == "POST"
        and request.url.path.rstrip("/").endswith(CHAT_COMPLETIONS_PATH)
    )


async def check_chat_completion(response: httpx.Response) -> dict[str, Any] | None:
    """httpx response hook: raise `MalformedResponseError` for a 2xx reply that is no completion.

    The checked completion is returned (httpx ignores it); None for a response that is not
    checked: not a 2xx answer to a chat completion request, or streamed (`text/event-stream`
    replies are left to the SDK).
    """
    if not is_chat_completion_response(response):
        return None
    if "text/event-stream" in response.headers.get("content-type", ""):
        return None
    await response.aread()
    return parse_completion(response.content)


class CompletionCheck:
    """One endpoint's response hook: `check_chat_completion`, and a note of whether the
    simulated LLM answered (`simulated`, set for good by the first reply with its fingerprint).
    """

    def __init__(self) -> None:
        self.simulated = False
        """A reply carried `SIMULATED_FINGERPRINT`: the endpoint is the simulated LLM."""

    async def __call__(self, response: httpx.Response) -> None:
        body = await check_chat_completion(response)
        if body is not None and body.get("system_fingerprint") == SIMULATED_FINGERPRINT:
            self.simulated = True


#: A JSON `\uXXXX` escape of a surrogate code point: paired (an emoji) or lone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _without_lone_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_lone_surrogates(item) for key, item in value.items()}
    return value


class SurrogateSafeTransport(httpx.AsyncBaseTransport):
    """Replaces lone surrogates in a chat completion's text by U+FFFD before anyone reads it.

    JSON may carry a lone surrogate (`"\\ud800"`): it parses, but the string it becomes can
    never be encoded as UTF-8 again, so the *next* request, which sends that text back to the
    model as history, failed with `UnicodeEncodeError` in every engine. Replacing it once, on
    the wire, keeps every caller (the SDK, AutoGen, the evaluator) whole. A reply with no
    surrogate escape at all is passed on untouched, byte for byte; valid pairs (emoji) are
    kept.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        streamed = "text/event-stream" in response.headers.get("content-type", "")
        if streamed or not is_chat_completion_response(response, request):
            return response
        body = await response.aread()
        if not _SURROGATE_ESCAPE.search(body):
            return response
        try:
            parsed = json.loads(body)
        except ValueError:
            return response  # not JSON: the completion check names what is wrong
        cleaned = _without_lone_surrogates(parsed)
        if cleaned == parsed:
            return response
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=json.dumps(cleaned).encode(),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
