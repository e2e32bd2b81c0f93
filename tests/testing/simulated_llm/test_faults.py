"""Injected faults surface as the errors and misbehaviour a real endpoint would produce."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

from conversation_engine.testing.simulated_llm import Fault, SimulatedLLMTransport, SimulationConfig
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, CONTROL_TOOLS, handoff_tool_schema

BASE_URL = "http://simulated.local/v1"
AGENT_TOOLS = [BUSINESS_TOOLS[name] for name in ("rag_find_products", "add_to_cart", "get_cart")]
END_CALL = CONTROL_TOOLS["end_call"]
ORDER = [{"role": "user", "content": "I'd like to order 2 packs of butter."}]


def sdk_for(transport: SimulatedLLMTransport, max_retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sim",
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=transport),
        max_retries=max_retries,
    )


async def ask(
    sdk: openai.AsyncOpenAI, tools: list[dict[str, Any]] | None = None, messages: Any = None
) -> Any:
    extra = {"tools": tools} if tools else {}
    return await sdk.chat.completions.create(model="simulated", messages=messages or ORDER, **extra)


@pytest.fixture
async def faulty() -> AsyncIterator[Any]:
    """Build an SDK client whose transport injects the given faults."""
    clients: list[openai.AsyncOpenAI] = []

    def build(
        *faults: Fault, max_retries: int = 0
    ) -> tuple[openai.AsyncOpenAI, SimulatedLLMTransport]:
        transport = SimulatedLLMTransport(SimulationConfig(faults=list(faults)))
        clients.append(sdk_for(transport, max_retries))
        return clients[-1], transport

    yield build
    for client in clients:
        await client.close()


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("rate_limit", openai.RateLimitError, 429),
        ("server_error", openai.InternalServerError, 500),
        ("bad_gateway", openai.InternalServerError, 502),
        ("service_unavailable", openai.InternalServerError, 503),
        ("unauthorized", openai.AuthenticationError, 401),
        ("geo_block", openai.PermissionDeniedError, 403),
        ("context_length", openai.BadRequestError, 400),
    ],
)
async def test_http_faults_raise_the_sdk_error(
    faulty: Any, kind: str, error: type[openai.APIStatusError], status: int
) -> None:
    sdk, transport = faulty(Fault(kind=kind))
    with pytest.raises(error) as raised:
        await ask(sdk, AGENT_TOOLS)
    assert raised.value.status_code == status
    assert transport.stats.faults_injected == 1
    assert transport.stats.faults_by_kind == {kind: 1}


async def test_geo_block_carries_the_openai_code(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="geo_block"))
    with pytest.raises(openai.PermissionDeniedError) as raised:
        await ask(sdk)
    # openai 3.x puts only the error message in str(exc); the code is on the exception.
    assert "Country, region, or territory not supported" in str(raised.value)
    assert raised.value.code == "unsupported_country_region_territory"
    assert raised.value.type == "request_forbidden"


async def test_context_length_has_its_code(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="context_length"))
    with pytest.raises(openai.BadRequestError) as raised:
        await ask(sdk)
    assert raised.value.code == "context_length_exceeded"


async def test_rate_limit_sends_retry_after_and_the_sdk_retries(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="rate_limit", retry_after=2.5))
    with pytest.raises(openai.RateLimitError) as raised:
        await ask(sdk)
    assert raised.value.response.headers["retry-after"] == "2.5"

    sdk, transport = faulty(Fault(kind="rate_limit", times=1), max_retries=1)
    response = await ask(sdk, AGENT_TOOLS)
    assert response.choices[0].message.tool_calls[0].function.name == "rag_find_products"
    assert transport.stats.requests == 2
    assert transport.stats.faults_injected == 1


async def test_timeout_hangs_then_times_out(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="timeout", delay_ms=5))
    with pytest.raises(openai.APITimeoutError):
        await ask(sdk)


async def test_connection_reset_is_a_connection_error(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="connection_reset"))
    with pytest.raises(openai.APIConnectionError):
        await ask(sdk)


async def test_non_json_body_is_not_a_completion(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="non_json"))
    # The SDK does not raise on a 200 with an HTML body; callers get no ChatCompletion.
    result = await ask(sdk)
    assert not isinstance(result, openai.types.chat.ChatCompletion)


async def test_empty_content(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="empty_content"))
    message = (await ask(sdk, AGENT_TOOLS)).choices[0].message
    assert message.content == ""
    assert not message.tool_calls


async def test_malformed_arguments_are_not_json(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="malformed_arguments"))
    (call,) = (await ask(sdk, AGENT_TOOLS)).choices[0].message.tool_calls
    assert call.function.name == "rag_find_products"
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)

    # A role that would have answered in words still makes a (broken) call.
    sdk, _ = faulty(Fault(kind="malformed_arguments", role="client"))
    client_messages = [
        {"role": "system", "content": "Shopping list:\n- 1 pack of butter\nPatience: 2"}
    ]
    (call,) = (await ask(sdk, [END_CALL], client_messages)).choices[0].message.tool_calls
    assert call.function.name == "end_call"
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)


async def test_unknown_tool(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="unknown_tool"))
    (call,) = (await ask(sdk, AGENT_TOOLS)).choices[0].message.tool_calls
    assert call.function.name == "teleport_order"
    assert call.function.name not in {tool["function"]["name"] for tool in AGENT_TOOLS}


async def test_invalid_handoff_follows_the_engine_naming(faulty: Any) -> None:
    legacy = [*AGENT_TOOLS, handoff_tool_schema("support", "Delivery dates.")]
    sdk, _ = faulty(Fault(kind="invalid_handoff"))
    (call,) = (await ask(sdk, legacy)).choices[0].message.tool_calls
    assert call.function.name == "handoff_nobody"
    assert json.loads(call.function.arguments)["reason"]

    autogen = [
        *AGENT_TOOLS,
        {"type": "function", "function": {"name": "transfer_to_support", "parameters": {}}},
    ]
    sdk, _ = faulty(Fault(kind="invalid_handoff"))
    (call,) = (await ask(sdk, autogen)).choices[0].message.tool_calls
    assert call.function.name == "transfer_to_nobody"


async def test_endless_tools_never_reply_in_words(faulty: Any) -> None:
    sdk, transport = faulty(Fault(kind="endless_tools"))
    messages: list[dict[str, Any]] = list(ORDER)
    for step in range(4):
        (call,) = (await ask(sdk, AGENT_TOOLS, messages)).choices[0].message.tool_calls
        assert call.function.name == "get_cart"
        assert json.loads(call.function.arguments)["execution_message"]
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": json.dumps({"items": [], "step": step}),
            },
        ]
    assert transport.stats.faults_injected == 4


async def test_endless_tools_needs_a_business_tool(faulty: Any) -> None:
    sdk, transport = faulty(Fault(kind="endless_tools"))
    client_messages = [
        {"role": "system", "content": "Shopping list:\n- 1 pack of butter\nPatience: 2"}
    ]
    message = (await ask(sdk, [END_CALL], client_messages)).choices[0].message
    assert message.content and not message.tool_calls
    assert transport.stats.faults_injected == 0


async def test_role_on_calls_and_times_select_requests(faulty: Any) -> None:
    sdk, transport = faulty(Fault(kind="server_error", role="agent", on_calls=[2, 4], times=1))
    await ask(sdk, AGENT_TOOLS)  # agent request 1: fine
    await ask(sdk, [END_CALL])  # a client request is not counted
    with pytest.raises(openai.InternalServerError):
        await ask(sdk, AGENT_TOOLS)  # agent request 2: faults
    await ask(sdk, AGENT_TOOLS)  # 3: fine
    await ask(sdk, AGENT_TOOLS)  # 4: listed, but `times=1` is used up
    assert transport.stats.faults_injected == 1
    assert transport.stats.by_role == {"agent": 4, "client": 1}


async def test_first_matching_fault_wins(faulty: Any) -> None:
    sdk, _ = faulty(Fault(kind="unauthorized", on_calls=[1]), Fault(kind="server_error"))
    with pytest.raises(openai.AuthenticationError):
        await ask(sdk)
    with pytest.raises(openai.InternalServerError):
        await ask(sdk)


async def test_probability_is_reproducible(faulty: Any) -> None:
    async def outcomes() -> list[bool]:
        sdk, _ = faulty(Fault(kind="server_error", probability=0.5))
        results = []
        for index in range(16):
            messages = [{"role": "user", "content": f"I need {index + 1} packs of butter."}]
            try:
                await ask(sdk, AGENT_TOOLS, messages)
                results.append(True)
            except openai.InternalServerError:
                results.append(False)
        return results

    first = await outcomes()
    assert first == await outcomes()
    assert True in first and False in first

    sdk, transport = faulty(Fault(kind="server_error", probability=0.0))
    await ask(sdk)
    assert transport.stats.faults_injected == 0


def test_fault_validation() -> None:
    with pytest.raises(ValidationError):
        Fault(kind="meteor_strike")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Fault(kind="timeout", on_calls=[0])
    with pytest.raises(ValidationError):
        Fault(kind="rate_limit", probability=1.5)
