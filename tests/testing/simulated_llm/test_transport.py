"""The transport and the HTTP server under real clients: the SDK, AutoGen, a Swarm."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Handoff
from autogen_agentchat.conditions import HandoffTermination, TextMessageTermination
from autogen_agentchat.messages import HandoffMessage, TextMessage, ToolCallRequestEvent
from autogen_agentchat.teams import Swarm
from autogen_core.models import ModelInfo, SystemMessage, UserMessage
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient
from pydantic import BaseModel

from conversation_engine.testing.simulated_llm import (
    Fault,
    SimulatedLLMServer,
    SimulatedLLMTransport,
    SimulationConfig,
    serving_in_background,
)
from conversation_engine.testing.simulated_llm.utterances import parse_amount, parse_request
from conversation_engine.tools.catalogue import BUSINESS_TOOLS

BASE_URL = "http://simulated.local/v1"
ORDER = [{"role": "user", "content": "I'd like to order 2 packs of butter."}]
MODEL_INFO = ModelInfo(
    vision=False, function_calling=True, json_output=True, family="unknown", structured_output=False
)


def sdk_for(transport: httpx.AsyncBaseTransport) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sim",
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=transport),
        max_retries=0,
    )


def autogen_client(transport: SimulatedLLMTransport) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(
        model="simulated",
        base_url=BASE_URL,
        api_key="sim",
        http_client=httpx.AsyncClient(transport=transport),
        model_info=MODEL_INFO,
        parallel_tool_calls=False,
        max_retries=0,
    )


async def test_latency_is_applied() -> None:
    transport = SimulatedLLMTransport(SimulationConfig(latency_ms=40, latency_jitter_ms=10))
    sdk = sdk_for(transport)
    started = time.perf_counter()
    await sdk.chat.completions.create(model="m", messages=ORDER)
    assert time.perf_counter() - started >= 0.025
    await sdk.close()


async def test_a_hanging_model_can_be_cancelled() -> None:
    transport = SimulatedLLMTransport(
        SimulationConfig(faults=[Fault(kind="timeout", delay_ms=60_000)])
    )
    sdk = sdk_for(transport)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sdk.chat.completions.create(model="m", messages=ORDER), 0.05)
    await sdk.close()


async def test_models_listing_and_unknown_routes() -> None:
    transport = SimulatedLLMTransport(SimulationConfig(model_name="sim-1"))
    sdk = sdk_for(transport)
    models = await sdk.models.list()
    assert [model.id for model in models.data] == ["sim-1"]
    with pytest.raises(openai.NotFoundError):
        await sdk.embeddings.create(model="sim-1", input="hello")
    assert transport.stats.requests == 0
    await sdk.close()


def test_sync_clients_work_too() -> None:
    transport = SimulatedLLMTransport()
    sdk = openai.OpenAI(
        api_key="sim", base_url=BASE_URL, http_client=httpx.Client(transport=transport)
    )
    response = sdk.chat.completions.create(model="m", messages=ORDER)
    assert "2 packs of butter" in (response.choices[0].message.content or "")


# --- HTTP server ---------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[SimulatedLLMServer]:
    faults = [Fault(kind="connection_reset", on_calls=[2])]
    with serving_in_background(SimulationConfig(faults=faults)) as server:
        yield server


async def test_http_server_answers_on_loopback(server: SimulatedLLMServer) -> None:
    host, port = server.server_address[:2]
    # trust_env=False: a proxy from the environment must not intercept loopback traffic.
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        sdk = openai.AsyncOpenAI(
            api_key="sim", base_url=f"http://{host}:{port}/v1", http_client=http, max_retries=0
        )
        response = await sdk.chat.completions.create(
            model="m", messages=ORDER, tools=[BUSINESS_TOOLS["rag_find_products"]]
        )
        assert response.choices[0].message.tool_calls[0].function.name == "rag_find_products"
        with pytest.raises(openai.APIConnectionError):
            await sdk.chat.completions.create(model="m", messages=ORDER)
        listing = await http.get(f"http://{host}:{port}/v1/models")
        assert listing.json()["data"][0]["id"] == "simulated"
    assert server.endpoint.stats.requests == 2
    assert server.endpoint.stats.faults_injected == 1


# --- AutoGen -------------------------------------------------------------------------------


async def test_autogen_client_gets_tool_calls_text_and_json() -> None:
    transport = SimulatedLLMTransport()
    client = autogen_client(transport)

    async def end_call(reason: str) -> str:
        """End the conversation"""
        return reason

    end_tool = FunctionTool(end_call, description="End the conversation", name="end_call")
    system = SystemMessage(content="Shopping list:\n- 2 packs of butter\nPatience: 2")
    ask = await client.create(
        [system, UserMessage(content="Hello! How can I help you today?", source="user")],
        tools=[end_tool],
    )
    assert ask.finish_reason == "stop"
    assert isinstance(ask.content, str)
    assert parse_request(ask.content).amount == parse_amount("2 packs of butter")

    transcript = "Ход 1 - agent_agent: Hello!\nХод 1 - client: [ЗАВЕРШИЛ ЗВОНОК: order complete]"
    verdict = await client.create(
        [SystemMessage(content="Score the call."), UserMessage(content=transcript, source="user")],
        json_output=True,
    )
    assert json.loads(str(verdict.content))["score"] == 3
    assert client.total_usage().prompt_tokens > 0
    await client.close()


class CartItem(BaseModel):
    product_code: str
    quantity: float
    packaging_type: int = 1


async def test_swarm_hands_off_and_back() -> None:
    """Sales and support in a real Swarm: the request goes to support and the next one back."""
    transport = SimulatedLLMTransport()
    client = autogen_client(transport)
    executed: list[str] = []

    async def rag_find_products(message: str, execution_message: str) -> str:
        executed.append("rag_find_products")
        product = {"product_code": "CB-00000101", "name": "Chicken fillet, chilled"}
        return json.dumps({"products": [product]})

    async def add_to_cart(items: list[CartItem], execution_message: str) -> str:
        executed.append("add_to_cart")
        return json.dumps({"status": "added", "items_in_cart": len(items)})

    async def change_delivery_date(delivery_date: str, execution_message: str) -> str:
        executed.append("change_delivery_date")
        return json.dumps({"status": "delivery_date_changed", "delivery_date": delivery_date})

    def tool(function: object) -> FunctionTool:
        name = function.__name__  # type: ignore[attr-defined]
        return FunctionTool(
            function, description=BUSINESS_TOOLS[name]["function"]["description"], name=name
        )  # type: ignore[arg-type]

    sales = AssistantAgent(
        "agent",
        client,
        tools=[tool(rag_find_products), tool(add_to_cart)],
        handoffs=[
            Handoff(
                target="support",
                name="handoff_support",
                description="Transfer the conversation to support. Delivery dates and addresses.",
                message="Transferred to support.",
            )
        ],
        system_message="You are the sales assistant.",
    )
    support = AssistantAgent(
        "support",
        client,
        tools=[tool(change_delivery_date)],
        handoffs=[
            Handoff(
                target="agent",
                name="handoff_agent",
                description="Transfer the conversation to agent. Product search and cart.",
                message="Transferred to agent.",
            )
        ],
        system_message="You are the delivery assistant.",
    )
    stop = (
        TextMessageTermination(source="agent")
        | TextMessageTermination(source="support")
        | HandoffTermination(target="client")
    )
    team = Swarm([sales, support], termination_condition=stop)

    first = await team.run(
        task=HandoffMessage(
            source="client",
            target="agent",
            content="Could you change my delivery date to 2024-01-18?",
        )
    )
    second = await team.run(
        task=HandoffMessage(
            source="client",
            target="support",
            content="I'd like to order 2 boxes of chicken fillet.",
        )
    )

    calls = [
        (event.source, call.name)
        for result in (first, second)
        for event in result.messages
        if isinstance(event, ToolCallRequestEvent)
        for call in event.content
    ]
    assert calls == [
        ("agent", "handoff_support"),
        ("support", "change_delivery_date"),
        ("support", "handoff_agent"),
        ("agent", "rag_find_products"),
        ("agent", "add_to_cart"),
    ]
    assert executed == ["change_delivery_date", "rag_find_products", "add_to_cart"]
    for result, speaker, words in ((first, "support", "2024-01-18"), (second, "agent", "2 boxes")):
        last = result.messages[-1]
        assert isinstance(last, TextMessage)
        assert last.source == speaker
        assert words in last.content
    await client.close()


@pytest.mark.parametrize("kind", ["server_error", "rate_limit"])
async def test_autogen_surfaces_http_faults(kind: str) -> None:
    transport = SimulatedLLMTransport(SimulationConfig(faults=[Fault(kind=kind)]))  # type: ignore[arg-type]
    client = autogen_client(transport)
    with pytest.raises(openai.APIStatusError):
        await client.create([UserMessage(content="Hello", source="client")])
    await client.close()
