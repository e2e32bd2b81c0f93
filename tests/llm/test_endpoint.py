from __future__ import annotations

import json

import httpx
import openai
import pytest
import respx

from conversation_engine.core.errors import APIBlockedError
from conversation_engine.llm.endpoint import OpenAIWrapper, estimate_cost

BASE = "http://llm.test/v1"


def completion(
    content: str | None = "Hello", tool_calls: list | None = None, model: str = "test-model"
) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "message": message,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


async def test_chat_completion_sends_sampling_and_counts_usage(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("Hi there"))
    )
    content, usage = await wire_wrapper.chat_completion(
        [{"role": "user", "content": "hi"}], "s-1", seed=42
    )
    assert content == "Hi there"
    assert usage == {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    body = json.loads(route.calls.last.request.content)
    assert body["temperature"] == 0.2 and body["seed"] == 42 and body["model"] == "test-model"
    assert "tools" not in body
    assert wire_wrapper.usage("s-1").calls == 1
    assert wire_wrapper.usage("s-1").total_tokens == 120
    assert wire_wrapper.usage("other").calls == 0


async def test_chat_completion_returns_message_with_tool_calls(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_cart", "arguments": "{}"}}
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion(None, [call]))
    )
    tools = [
        {
            "type": "function",
            "function": {"name": "get_cart", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    message, _ = await wire_wrapper.chat_completion(
        [{"role": "user", "content": "cart?"}], "s-1", tools=tools
    )
    assert message.tool_calls[0].function.name == "get_cart"
    body = json.loads(route.calls.last.request.content)
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False


async def test_geo_block_raises_distinct_error(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    body = {
        "error": {
            "code": "unsupported_country_region_territory",
            "message": "Country, region, or territory not supported",
        }
    }
    respx_mock.post(f"{BASE}/chat/completions").mock(return_value=httpx.Response(403, json=body))
    with pytest.raises(APIBlockedError, match="geographic"):
        await wire_wrapper.chat_completion([{"role": "user", "content": "hi"}], "s-1")


async def test_other_errors_surface_as_sdk_errors(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(500, json={"error": {"message": "boom"}})
    )
    with pytest.raises(openai.InternalServerError):
        await wire_wrapper.chat_completion([{"role": "user", "content": "hi"}], "s-1")


async def test_json_completion_parses_and_reports_invalid_json(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        side_effect=[
            httpx.Response(200, json=completion('{"score": 3, "comment": "ok"}')),
            httpx.Response(200, json=completion("not json")),
        ]
    )
    assert await wire_wrapper.json_completion([{"role": "user", "content": "x"}], "s-1") == {
        "score": 3,
        "comment": "ok",
    }
    body = json.loads(route.calls.last.request.content)
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0.3
    assert await wire_wrapper.json_completion([{"role": "user", "content": "x"}], "s-1") == {
        "error": "invalid_json",
        "content": "not json",
    }


async def test_sdk_retries_go_through_the_shared_client(respx_mock: respx.MockRouter) -> None:
    wire_wrapper = OpenAIWrapper(api_key="k", model="test-model", base_url=BASE, max_retries=2)
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        side_effect=[
            httpx.Response(
                429, headers={"retry-after": "0"}, json={"error": {"message": "slow down"}}
            ),
            httpx.Response(200, json=completion("ok")),
        ]
    )
    content, _ = await wire_wrapper.chat_completion([{"role": "user", "content": "hi"}], "s")
    assert content == "ok" and route.call_count == 2
    await wire_wrapper.aclose()


def test_cost_table() -> None:
    assert estimate_cost("gpt-4o-mini", 1000, 1000) == pytest.approx(0.00075)
    assert estimate_cost("llama3", 1000, 1000) == 0.0


def test_repr_hides_the_key() -> None:
    wire_wrapper = OpenAIWrapper(api_key="sk-very-secret-key", model="gpt-4o-mini")
    assert "sk-very-secret-key" not in repr(wire_wrapper)
