"""AutoGen's model client on our endpoint: shared HTTP client, sampling, model info."""

from __future__ import annotations

import json

import httpx
import respx
from autogen_core.models import UserMessage

from conversation_engine.engines.autogen.model_client import (
    DEFAULT_MODEL_INFO,
    autogen_model_client,
    model_info_for,
)
from conversation_engine.llm.endpoint import OpenAIWrapper
from tests.llm.test_endpoint import BASE, completion


async def test_autogen_client_shares_http_client_and_sends_seed(
    wire_wrapper: OpenAIWrapper, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("from autogen"))
    )
    client = autogen_model_client(wire_wrapper, seed=7)
    result = await client.create([UserMessage(content="hi", source="client")])
    assert result.content == "from autogen"
    body = json.loads(route.calls.last.request.content)
    assert body["seed"] == 7 and body["temperature"] == 0.2 and body["model"] == "test-model"
    assert model_info_for(wire_wrapper) == DEFAULT_MODEL_INFO  # custom model name: AutoGen needs it
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test-secret"


def test_known_openai_model_needs_no_model_info() -> None:
    assert model_info_for(OpenAIWrapper(api_key="k", model="gpt-4o-mini")) is None


def test_an_endpoint_s_own_model_info_wins() -> None:
    info = {**DEFAULT_MODEL_INFO, "vision": True}
    endpoint = OpenAIWrapper(api_key="k", model="llama3", model_info=info)
    assert model_info_for(endpoint) == info
