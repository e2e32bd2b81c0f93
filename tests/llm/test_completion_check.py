"""completion_check: what counts as a chat completion, checked on the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.core.errors import MalformedResponseError
from conversation_engine.llm._completion_check import (
    completion_problem,
    parse_completion,
    tool_call_arguments,
)
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm.model import SimulatedModel
from tests.sdk_behaviour import sdk_retries_client_errors

GOOD = SimulatedModel().complete(
    {"model": "m", "messages": [{"role": "system", "content": "You sell food."}]}
)


def with_message(**fields: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(GOOD))
    body["choices"][0]["message"].update(fields)
    return body


def test_a_simulated_completion_is_a_completion() -> None:
    assert completion_problem(GOOD) is None
    assert parse_completion(json.dumps(GOOD).encode()) == GOOD


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"choices": []}, "no choices"),
        ({"choices": "x"}, "choices is not a list"),
        ({"choices": [None]}, "choices[0] is null"),
        ({"choices": [{"message": "hi"}]}, "choices[0].message is a string"),
        (with_message(content=3), "message.content is a number"),
        (with_message(reasoning_content=[]), "message.reasoning_content is a list"),
        (with_message(function_call={"name": "f"}), "function_call"),
        (with_message(tool_calls={}), "message.tool_calls is an object"),
        (with_message(tool_calls=[1]), "message.tool_calls[0] is a number"),
        (with_message(tool_calls=[{"id": 1, "function": {"name": "f"}}]), "[0].id is a number"),
        (with_message(tool_calls=[{"id": "c", "function": []}]), "[0].function is a list"),
        (with_message(tool_calls=[{"id": "c", "function": {"name": " "}}]), "not a tool name"),
        (
            with_message(tool_calls=[{"id": "c", "function": {"name": "f", "arguments": {}}}]),
            "arguments is an object, not a JSON string",
        ),
        ({**GOOD, "usage": {"prompt_tokens": -1}}, "usage.prompt_tokens"),
        ({**GOOD, "usage": {"prompt_tokens": 1}}, "usage.completion_tokens is null"),
        (
            with_message(tool_calls=[{"id": "c", "type": "custom", "function": {"name": "f"}}]),
            "type is not 'function'",
        ),
        (
            {**GOOD, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": True}},
            "usage.total_tokens is a boolean",
        ),
        ({"choices": [{"message": {}, "finish_reason": 1}]}, "finish_reason"),
        ({"choices": [{"message": {}, "logprobs": {"content": [{"token": 1}]}}]}, "token"),
        ([GOOD], "the body is a list"),
    ],
)
def test_what_is_not_a_completion_is_named(body: Any, named: str) -> None:
    problem = completion_problem(body)
    assert problem is not None and named in problem
    with pytest.raises(MalformedResponseError, match="not a valid chat completion"):
        parse_completion(json.dumps(body).encode())


@pytest.mark.parametrize("content", [b"<html>", b"\xff\xfe{}", b"[" * 50_000, b""])
def test_bodies_that_are_not_json_are_malformed(content: bytes) -> None:
    with pytest.raises(MalformedResponseError, match="not JSON"):
        parse_completion(content)


def test_tolerated_deviations() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "get_cart"}}  # no arguments
    assert completion_problem(with_message(tool_calls=[call], content=None)) is None
    assert completion_problem(with_message(tool_calls=None)) is None
    assert completion_problem({**GOOD, "usage": None}) is None


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (None, "{}"),
        ("", "{}"),
        ("  ", "{}"),
        ('{"a": 1}', '{"a": 1}'),
        ("[1", "[1"),
        ({"a": 1}, '{"a": 1}'),
    ],
)
def test_tool_call_arguments(raw: Any, text: str) -> None:
    assert tool_call_arguments(raw) == text


async def test_the_wrapper_raises_malformed_before_the_sdk_parses() -> None:
    wrapper = OpenAIWrapper("sk-test", "simulated", base_url="http://llm.test/v1", max_retries=2)
    try:
        with respx.mock() as router:
            route = router.post("http://llm.test/v1/chat/completions").mock(
                return_value=httpx.Response(200, json={"choices": []})
            )
            with pytest.raises(MalformedResponseError, match="no choices"):
                await wrapper.chat_completion([{"role": "user", "content": "hi"}], "s")
            # Not retried, except by an SDK that retries its HTTP client's errors (openai 1.x).
            assert route.call_count == (3 if sdk_retries_client_errors() else 1)
            # Errors keep the SDK's own types: the hook only looks at successful replies.
            route.mock(return_value=httpx.Response(500, json={"error": {"message": "x"}}))
            wrapper.client = wrapper.client.with_options(max_retries=0)
            with pytest.raises(openai.InternalServerError):
                await wrapper.chat_completion([{"role": "user", "content": "hi"}], "s")
    finally:
        await wrapper.aclose()


# ------------------------------------------------------------------ lone surrogates on the wire


def _completion_bytes(content: str) -> bytes:
    """A chat completion as JSON with `\\uXXXX` escapes (how a server sends a lone surrogate)."""
    body = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
    }
    return json.dumps(body).encode()


async def _through_transport(raw: bytes) -> httpx.Response:
    from conversation_engine.llm._completion_check import SurrogateSafeTransport

    inner = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=raw, headers={"content-type": "application/json"}
        )
    )
    request = httpx.Request("POST", "http://llm.test/v1/chat/completions", json={})
    response = await SurrogateSafeTransport(inner).handle_async_request(request)
    await response.aread()
    return response


@pytest.mark.parametrize("content", ["plain text", "emoji \U0001f600 pair", "кириллица"])
async def test_a_reply_without_lone_surrogates_passes_byte_for_byte(content: str) -> None:
    raw = _completion_bytes(content)
    assert (await _through_transport(raw)).content == raw


@given(
    st.text(
        alphabet=st.one_of(
            st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
            st.characters(codec="utf-8"),
        ),
        max_size=40,
    )
)
@settings(max_examples=60, deadline=None)
async def test_any_reply_text_comes_out_encodable(content: str) -> None:
    response = await _through_transport(_completion_bytes(content))
    text = json.loads(response.content)["choices"][0]["message"]["content"]
    text.encode("utf-8")  # never raises: lone surrogates became U+FFFD
    if not any("\ud800" <= char <= "\udfff" for char in content):
        assert text == content  # nothing to replace: the text is untouched
