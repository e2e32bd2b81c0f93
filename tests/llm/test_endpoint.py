from __future__ import annotations

import json

import httpx
import openai
import pytest
import respx

from conversation_engine.core.errors import APIBlockedError
from conversation_engine.llm._completion_check import SIMULATED_FINGERPRINT
from conversation_engine.llm.endpoint import SIMULATED_MODEL, OpenAIWrapper, estimate_cost

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


def test_cost_table_prices_known_models_and_calls_the_rest_unknown() -> None:
    assert estimate_cost("gpt-4o-mini", 1000, 1000) == pytest.approx(0.00075)
    assert estimate_cost("gpt-4o", 2000, 0) == pytest.approx(0.01)
    # Not in the price table: unknown, not free.
    assert estimate_cost("llama3", 1000, 1000) is None
    assert estimate_cost(SIMULATED_MODEL, 1000, 1000) is None
    assert estimate_cost("gpt-4o-mini-2024-07-18", 1000, 1000) is None


def fingerprinted(body: dict, fingerprint: str | None) -> dict:
    return body if fingerprint is None else {**body, "system_fingerprint": fingerprint}


@pytest.mark.parametrize(
    ("fingerprint", "simulated"),
    [(SIMULATED_FINGERPRINT, True), ("fp_44709d6fcb", False), (None, False)],
)
async def test_a_reply_of_the_simulated_llm_makes_the_cost_unknown(
    respx_mock: respx.MockRouter, fingerprint: str | None, simulated: bool
) -> None:
    logged: list[tuple] = []
    wrapper = OpenAIWrapper(
        api_key="sk-test",
        model="gpt-4o-mini",  # priced: only the fingerprint tells the simulated LLM apart
        base_url=BASE,
        max_retries=0,
        usage_log=lambda *line: logged.append(line),
    )
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=fingerprinted(completion("Hi"), fingerprint))
    )
    async with wrapper:
        assert not wrapper.is_simulated and not wrapper.simulated_replies
        await wrapper.chat_completion([{"role": "user", "content": "hi"}], "s-1")
        await wrapper.chat_completion([{"role": "user", "content": "again"}], "s-1")
        assert wrapper.simulated_replies is simulated
        assert not wrapper.is_simulated  # still not the in-process one
        usage = wrapper.usage("s-1")
    assert usage.calls == 2 and usage.total_tokens == 240
    priced = estimate_cost("gpt-4o-mini", 100, 20)
    assert priced is not None and priced > 0
    if simulated:
        assert usage.cost_usd is None
        # The host's token log takes a float: an unknown cost is 0.0 there.
        assert [line[-1] for line in logged] == [0.0, 0.0]
    else:
        assert usage.cost_usd == pytest.approx(2 * priced)
        assert [line[-1] for line in logged] == [pytest.approx(priced)] * 2
    assert all(isinstance(line[-1], float) for line in logged)


async def test_the_in_process_simulated_llm_has_an_unknown_cost() -> None:
    logged: list[tuple] = []
    async with OpenAIWrapper.simulated(
        model="gpt-4o-mini", usage_log=lambda *line: logged.append(line)
    ) as wrapper:
        assert wrapper.is_simulated and wrapper.simulated_replies
        assert wrapper.cost_of(1000, 1000) is None
        wrapper.record_usage("s-1", 10, 5)
        assert wrapper.usage("s-1").cost_usd is None
    assert logged == [("s-1", "gpt-4o-mini", 10, 5, 15, 0.0)]


def test_a_model_without_a_price_has_an_unknown_cost() -> None:
    wrapper = OpenAIWrapper(api_key="sk-test", model="llama3.1", base_url=BASE)
    wrapper.record_usage("s-1", 10, 5)
    wrapper.record_usage("s-2", 0, 0)
    assert wrapper.usage("s-1").cost_usd is None
    assert wrapper.usage("s-2").cost_usd is None
    assert wrapper.usage("never-called").cost_usd == 0.0  # no call, nothing spent


def test_repr_hides_the_key() -> None:
    wire_wrapper = OpenAIWrapper(api_key="sk-very-secret-key", model="gpt-4o-mini")
    assert "sk-very-secret-key" not in repr(wire_wrapper)
