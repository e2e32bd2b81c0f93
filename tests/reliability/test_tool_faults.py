"""What tool and client-data faults become, for both engines, through the real stack.

The legacy HTTP tool API (`TOOLS_URL`) and the client-data webhook (`WEBHOOK_URL`) are mocked
at the wire with respx; behind the mocked tool API sits an emulated shop, so a conversation
that survives a fault can still place its order. The model is the simulated LLM. A tool fault
must become the tool's result (the conversation goes on and completes); a webhook fault must
give the legacy fallback variables; a hang is cut by the conversation's timeout. Every result
is contract-valid and arrives within its bound.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import Settings
from conversation_engine.engines import resolve_engine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.tools.http import HttpToolBackend
from conversation_engine.tools.python_tools import PythonToolBackend, python_tool
from conversation_engine.tools.shop import EmulatedShop

ENGINES = ["autogen", "legacy"]
BOUND_SECONDS = 20
TOOLS_URL = "https://tools.test/api"
WEBHOOK_URL = "https://crm.test/webhook"
WEBHOOK_SESSION = "crm-session-42"
CHICKEN_FILLET = "CB-00000101"

SCENARIO = {
    "name": "tool faults",
    "variables": {
        "CLIENT_NAME": "Ann",
        "PERSONALITY": "polite",
        "AMB_LEVEL": 1,
        "PATIENCE": 2,
        "ORDER_GOAL": ["2 boxes of chicken fillet"],
        "SEED": 5,
    },
}
CLIENT_SCENARIO = {**SCENARIO, "variables": {**SCENARIO["variables"], "client_id": "C-1001"}}

Reply = httpx.Response | BaseException | Callable[[], Awaitable[httpx.Response]]


class ToolAPI:
    """The legacy tool API at the wire: an emulated shop, after the scripted faults.

    Each request to `POST {TOOLS_URL}/<tool>` gets `every_call` if set, else the next of
    `faults` while any is left (a response, an exception to raise, or a coroutine factory to
    await), else is served by the shop for the session id in the legacy request body.
    """

    def __init__(self, faults: list[Reply] | None = None, *, every_call: Reply | None = None):
        self.shop = EmulatedShop()
        self.faults = list(faults or [])
        self.every_call = every_call
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        fault = self.every_call
        if fault is None and self.faults:
            fault = self.faults.pop(0)
        if isinstance(fault, BaseException):
            raise fault
        if isinstance(fault, httpx.Response):
            return fault
        if fault is not None:
            return await fault()
        tool = request.url.path.rsplit("/", 1)[-1]
        session_id = body["call"]["retell_llm_dynamic_variables"]["session_id"]
        return httpx.Response(200, json=await self.shop.call(tool, body["args"], session_id))


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    # Only the tool API and the webhook are on the network; the simulated model is in-process.
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def wrapper() -> AsyncIterator[OpenAIWrapper]:
    wrapper = OpenAIWrapper.simulated()
    yield wrapper
    await wrapper.aclose()


def serve_tools(wire: respx.MockRouter, api: ToolAPI) -> respx.Route:
    return wire.post(url__startswith=f"{TOOLS_URL}/").mock(side_effect=api)


def webhook_reply(session_id: str = WEBHOOK_SESSION) -> httpx.Response:
    variables = {
        "name": "Ann from the CRM",
        "locations": "1. 5 Market Street, York",
        "delivery_days": "Monday, Thursday",
        "purchase_history": "Chicken fillet, chilled [CB-00000101]",
        "current_date": "2024-01-15",
        "session_id": session_id,
    }
    return httpx.Response(200, json={"call_inbound": {"dynamic_variables": variables}})


async def play(
    engine_name: str,
    wrapper: OpenAIWrapper,
    *,
    scenario: dict[str, Any] = SCENARIO,
    tool_backend: Any = None,
    settings: Settings | None = None,
    timeout_sec: float = BOUND_SECONDS,
) -> dict[str, Any]:
    backend = tool_backend
    if backend is None and settings is None:
        # The TOOLS_URL backend as default_tool_backend builds it, with short waits between
        # retries so that a test of three retries takes milliseconds, not 18 seconds.
        backend = HttpToolBackend(
            TOOLS_URL, http_client=wrapper.service_http_client, backoff_seconds=0.01
        )
    engine = resolve_engine(engine_name)(
        wrapper, "multiagent_prompts", tool_backend=backend, settings=settings
    )
    started = time.monotonic()
    result = await engine.run_conversation_with_tools(scenario, timeout_sec=timeout_sec)
    assert time.monotonic() - started < BOUND_SECONDS, "the fault made the conversation hang"
    assert contract_violations(result, basic_mode=False) == []
    return result


def tool_results(result: dict[str, Any], tool: str | None = None) -> list[Any]:
    """The recorded results of every call to `tool` (every tool when None), in order."""
    found = []
    for entry in result["conversation_history"]:
        calls = entry.get("tool_calls") or []
        for call, outcome in zip(calls, entry.get("tool_results") or [], strict=False):
            if tool is None or call["function"]["name"] == tool:
                found.append(outcome)
    return found


def settings_with(**values: Any) -> Settings:
    return Settings(**values)


# ------------------------------------------------------------------------------ tool faults


@pytest.mark.parametrize("engine", ENGINES)
async def test_tools_url_and_webhook_url_reach_the_network_not_the_model(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    # Configured as a user would (settings), with the simulated model: the tool API and the
    # webhook must be called at their own URLs, not sent down the model's wire.
    api = ToolAPI()
    tools = serve_tools(wire, api)
    hook = wire.post(WEBHOOK_URL).mock(return_value=webhook_reply())
    settings = settings_with(TOOLS_URL=TOOLS_URL, WEBHOOK_URL=WEBHOOK_URL)
    result = await play(engine, wrapper, scenario=CLIENT_SCENARIO, settings=settings)
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"
    assert hook.call_count == 1 and tools.call_count >= 2
    # The conversation's own session id reaches the tool API, never the webhook's (which
    # would make every conversation of that client share one server-side cart).
    session_id = result["session_id"]
    assert session_id != WEBHOOK_SESSION
    sessions = {body["call"]["retell_llm_dynamic_variables"]["session_id"] for body in api.requests}
    assert sessions == {session_id}
    assert [line.product_code for line in api.shop.cart(session_id)] == [CHICKEN_FILLET]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_python_tool_backend_that_raises_becomes_an_error_result(
    engine: str, wrapper: OpenAIWrapper
) -> None:
    @python_tool
    async def rag_find_products(session_id: str, message: str) -> dict[str, Any]:
        """Find products (the inventory service is down)."""
        raise RuntimeError("inventory service is down")

    backend = PythonToolBackend([rag_find_products])
    result = await play(engine, wrapper, tool_backend=backend)
    assert result["status"] == "completed"
    searches = tool_results(result, "rag_find_products")
    assert searches and all(
        outcome == {"error": "Tool execution failed: RuntimeError: inventory service is down"}
        for outcome in searches
    )


@pytest.mark.parametrize("engine", ENGINES)
async def test_tool_api_502_then_success_is_retried_and_the_order_is_placed(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    api = ToolAPI([httpx.Response(502, text="Bad Gateway")])
    route = serve_tools(wire, api)
    result = await play(engine, wrapper)
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"
    outcomes = tool_results(result)
    assert route.call_count == len(outcomes) + 1  # one retry, invisible to the conversation
    assert not any("failed" in json.dumps(outcome) for outcome in outcomes)
    assert [line.product_code for line in api.shop.cart(result["session_id"])] == [CHICKEN_FILLET]


@pytest.mark.parametrize("engine", ENGINES)
async def test_tool_api_that_keeps_failing_gives_a_failure_result(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    route = serve_tools(wire, ToolAPI(every_call=httpx.Response(503, text="Service Unavailable")))
    result = await play(engine, wrapper)
    assert result["status"] == "completed"
    outcomes = tool_results(result)
    assert outcomes and all(
        outcome["result"].startswith("Tool rag_find_products failed: HTTP 503")
        for outcome in outcomes
    )
    assert route.call_count == 4 * len(outcomes)  # each call: one attempt and three retries


@pytest.mark.parametrize("engine", ENGINES)
async def test_tool_api_timeouts_are_retried_then_recorded(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    route = serve_tools(wire, ToolAPI(every_call=httpx.ReadTimeout("no answer")))
    result = await play(engine, wrapper)
    assert result["status"] == "completed"
    outcomes = tool_results(result)
    assert outcomes and all(
        "failed: ReadTimeout, no response within 30 s" in outcome["result"] for outcome in outcomes
    )
    assert route.call_count == 4 * len(outcomes)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_timeout_then_success_is_invisible_to_the_conversation(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    api = ToolAPI([httpx.ConnectTimeout("connect timed out")])
    route = serve_tools(wire, api)
    result = await play(engine, wrapper)
    assert result["status"] == "completed"
    assert route.call_count == len(tool_results(result)) + 1
    assert [line.product_code for line in api.shop.cart(result["session_id"])] == [CHICKEN_FILLET]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_hanging_tool_api_is_cut_by_the_conversation_timeout(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    async def hang() -> httpx.Response:
        await asyncio.sleep(60)  # a server that never answers (respx does not time out)
        return httpx.Response(200, json={})

    serve_tools(wire, ToolAPI(every_call=hang))
    started = time.monotonic()
    result = await play(engine, wrapper, timeout_sec=0.5)
    assert time.monotonic() - started < 2  # the hard bound, not the tool's 60 s
    assert result["status"] == "timeout" and result["end_reason"] == "timeout"
    assert result["error_type"] == "TimeoutError"
    history = result["conversation_history"]
    assert history[0]["speaker"] == "agent_agent"  # the greeting is kept
    assert history[1]["speaker"] == "client"
    # AutoGen records the turn that was cut off, its hanging call with an error result; the
    # legacy engine keeps completed turns only.
    cut_off = history[2:]
    assert len(cut_off) == (1 if engine == "autogen" else 0)
    for entry in cut_off:
        assert entry["tool_calls"][0]["function"]["name"] == "rag_find_products"
        assert "error" in entry["tool_results"][0]


@pytest.mark.parametrize("engine", ENGINES)
async def test_tool_api_non_json_reply_is_passed_on_as_raw_text(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    page = "<html><body>Upstream error</body></html>"
    serve_tools(
        wire,
        ToolAPI(every_call=httpx.Response(200, text=page, headers={"content-type": "text/html"})),
    )
    result = await play(engine, wrapper)
    assert result["status"] == "completed"
    outcomes = tool_results(result)
    assert outcomes and all(outcome == {"raw_text": page} for outcome in outcomes)


# --------------------------------------------------------------------------- webhook faults


@pytest.mark.parametrize("engine", ENGINES)
async def test_webhook_502_then_success_is_retried_and_its_data_used(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    hook = wire.post(WEBHOOK_URL).mock(side_effect=[httpx.Response(502), webhook_reply()])
    settings = settings_with(WEBHOOK_URL=WEBHOOK_URL)
    result = await play(
        engine, wrapper, scenario=CLIENT_SCENARIO, tool_backend=EmulatedShop(), settings=settings
    )
    assert hook.call_count == 2
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"
    assert result["session_id"] != WEBHOOK_SESSION  # the webhook's id is data, not the session


WEBHOOK_FAULTS: dict[str, Any] = {
    "502 every time": httpx.Response(502),
    "500": httpx.Response(500, text="Internal Server Error"),
    "read timeout": httpx.ReadTimeout("no answer"),
    "connection refused": httpx.ConnectError("connection refused"),
    "non-JSON body": httpx.Response(200, text="<html>maintenance</html>"),
    "JSON without dynamic_variables": httpx.Response(200, json={"call_inbound": {}}),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fault", list(WEBHOOK_FAULTS))
async def test_a_failed_webhook_gives_the_fallback_and_the_call_goes_on(
    engine: str,
    fault: str,
    wrapper: OpenAIWrapper,
    wire: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = wire.post(WEBHOOK_URL).mock(side_effect=lambda request: _raise_or_return(fault))
    settings = settings_with(WEBHOOK_URL=WEBHOOK_URL)
    result = await play(
        engine, wrapper, scenario=CLIENT_SCENARIO, tool_backend=EmulatedShop(), settings=settings
    )
    assert result["status"] == "completed" and result["end_reason"] == "client_end_call"
    assert result["session_id"] != WEBHOOK_SESSION  # a fresh session id, as legacy did
    retried = fault in ("502 every time", "read timeout", "connection refused")
    assert hook.call_count == (2 if retried else 1)
    assert "using the fallback variables" in caplog.text


def _raise_or_return(fault: str) -> httpx.Response:
    reply = WEBHOOK_FAULTS[fault]
    if isinstance(reply, BaseException):
        raise reply
    return reply


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_hanging_webhook_is_cut_by_the_conversation_timeout(
    engine: str, wrapper: OpenAIWrapper, wire: respx.MockRouter
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return webhook_reply()

    wire.post(WEBHOOK_URL).mock(side_effect=hang)
    settings = settings_with(WEBHOOK_URL=WEBHOOK_URL)
    result = await play(
        engine,
        wrapper,
        scenario=CLIENT_SCENARIO,
        tool_backend=EmulatedShop(),
        settings=settings,
        timeout_sec=0.5,
    )
    assert result["status"] == "timeout" and result["conversation_history"] == []
    assert result["total_turns"] == 0
