"""HttpToolBackend against a mocked legacy tool API (respx): format, retries, fallbacks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from conversation_engine.tools.catalogue import BUSINESS_TOOLS
from conversation_engine.tools.http import HttpToolBackend
from conversation_engine.tools.session import SessionTools

BASE = "https://tools.test/rag"


@pytest.fixture
async def backend() -> AsyncIterator[HttpToolBackend]:
    async with HttpToolBackend(BASE, backoff_seconds=0) as tool_backend:
        yield tool_backend


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock_router:
        yield mock_router


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits asked of asyncio.sleep, recorded instead of slept."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float, *args: object, **kwargs: object) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    return recorded


async def test_request_body_through_session_tools(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    route = router.post(f"{BASE}/rag_find_products").mock(
        return_value=httpx.Response(200, json="Found: - Chicken fillet [CB-00000101]")
    )
    tools = SessionTools("sess-42", backend)
    text = await tools.execute(
        "rag_find_products",
        json.dumps({"message": "chicken fillet", "execution_message": "Let me look."}),
    )
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert json.loads(request.content) == {
        "call": {"retell_llm_dynamic_variables": {"session_id": "sess-42"}},
        "args": {"message": "chicken fillet"},
    }
    # The API answers with a JSON string; it reaches the model as that plain text.
    assert text == "Found: - Chicken fillet [CB-00000101]"


@pytest.mark.parametrize("tool", sorted(BUSINESS_TOOLS))
async def test_every_business_tool_has_its_route(
    backend: HttpToolBackend, router: respx.MockRouter, tool: str
) -> None:
    route = router.post(f"{BASE}/{tool}").mock(return_value=httpx.Response(200, json={"ok": True}))
    assert await backend.call(tool, {}, "s") == {"ok": True}
    assert route.called


async def test_gateway_error_then_success(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    route = router.post(f"{BASE}/get_cart").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json={"items": []})]
    )
    assert await backend.call("get_cart", {}, "s") == {"items": []}
    assert route.call_count == 2


async def test_retries_exhausted_give_the_fallback(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    route = router.post(f"{BASE}/get_cart").mock(return_value=httpx.Response(503))
    assert await backend.call("get_cart", {}, "s") == {
        "result": "Tool get_cart failed: HTTP 503, Service Unavailable"
    }
    assert route.call_count == 4


async def test_non_retryable_status_falls_back_at_once(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    route = router.post(f"{BASE}/add_to_cart").mock(
        return_value=httpx.Response(404, text="no such route")
    )
    assert await backend.call("add_to_cart", {"items": []}, "s") == {
        "result": "Tool add_to_cart failed: HTTP 404, Not Found: no such route"
    }
    assert route.call_count == 1


async def test_timeout_is_retried(backend: HttpToolBackend, router: respx.MockRouter) -> None:
    route = router.post(f"{BASE}/get_cart").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={"items": [1]})]
    )
    assert await backend.call("get_cart", {}, "s") == {"items": [1]}
    assert route.call_count == 2


async def test_transport_errors_exhausted(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    route = router.post(f"{BASE}/get_cart").mock(side_effect=httpx.ConnectError("refused"))
    assert await backend.call("get_cart", {}, "s") == {
        "result": "Tool get_cart failed: ConnectError, refused"
    }
    assert route.call_count == 4


async def test_each_attempt_uses_its_timeout(router: respx.MockRouter) -> None:
    seen: list[float] = []

    def timeout_each_time(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("slow", request=request)

    router.post(f"{BASE}/get_cart").mock(side_effect=timeout_each_time)
    async with HttpToolBackend(BASE, backoff_seconds=0, timeouts=(1, 2, 3)) as backend:
        result = await backend.call("get_cart", {}, "s")
    assert seen == [1, 2, 3, 3]
    assert result == {"result": "Tool get_cart failed: ReadTimeout, no response within 3 s"}


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "conversation_engine.tools.http"
    ]


async def test_default_retries_wait_3_6_9_seconds_and_log_each(
    router: respx.MockRouter, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    route = router.post(f"{BASE}/get_cart").mock(return_value=httpx.Response(503))
    with caplog.at_level(logging.INFO, logger="conversation_engine.tools.http"):
        async with HttpToolBackend(BASE) as backend:  # max_retries=3, backoff_seconds=3
            result = await backend.call("get_cart", {}, "s")
    assert result == {"result": "Tool get_cart failed: HTTP 503, Service Unavailable"}
    assert route.call_count == 4
    assert sleeps == [3.0, 6.0, 9.0]
    assert _logged(caplog) == [
        *(
            (
                logging.INFO,
                f"Tool get_cart attempt {n}/4 failed (HTTP 503, Service Unavailable); "
                f"retrying in {3.0 * n:.1f} s",
            )
            for n in (1, 2, 3)
        ),
        (logging.WARNING, "Tool get_cart failed: HTTP 503, Service Unavailable"),
    ]


async def test_non_retryable_status_is_neither_retried_nor_waited_for(
    router: respx.MockRouter, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    route = router.post(f"{BASE}/get_cart").mock(return_value=httpx.Response(500))
    with caplog.at_level(logging.INFO, logger="conversation_engine.tools.http"):
        async with HttpToolBackend(BASE) as backend:
            result = await backend.call("get_cart", {}, "s")
    assert result == {"result": "Tool get_cart failed: HTTP 500, Internal Server Error"}
    assert route.call_count == 1
    assert sleeps == []
    assert _logged(caplog) == [
        (logging.WARNING, "Tool get_cart failed: HTTP 500, Internal Server Error")
    ]


async def test_max_retries_zero_makes_one_attempt(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post(f"{BASE}/get_cart").mock(side_effect=httpx.ConnectError("refused"))
    async with HttpToolBackend(BASE, max_retries=0) as backend:
        assert await backend.call("get_cart", {}, "s") == {
            "result": "Tool get_cart failed: ConnectError, refused"
        }
    assert route.call_count == 1
    assert sleeps == []


async def test_non_json_200_is_raw_text(backend: HttpToolBackend, router: respx.MockRouter) -> None:
    router.post(f"{BASE}/get_cart").mock(return_value=httpx.Response(200, text="Cart is empty"))
    assert await backend.call("get_cart", {}, "s") == {"raw_text": "Cart is empty"}


async def test_unknown_tool_makes_no_request(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    assert await backend.call("call_transfer", {"reason": "x"}, "s") == {
        "result": "Unknown tool call_transfer"
    }
    assert not router.calls


async def test_unexpected_exception_never_raises(
    backend: HttpToolBackend, router: respx.MockRouter
) -> None:
    router.post(f"{BASE}/get_cart").mock(side_effect=RuntimeError("boom"))
    assert await backend.call("get_cart", {}, "s") == {"result": "Tool request failed"}


async def test_schemas_and_client_ownership() -> None:
    shared = httpx.AsyncClient()
    backend = HttpToolBackend(BASE + "/", http_client=shared)
    assert backend.tool_schemas() == BUSINESS_TOOLS
    assert backend.base_url == BASE
    await backend.aclose()
    assert not shared.is_closed  # the caller's client is left alone
    await shared.aclose()

    own = HttpToolBackend(BASE)
    await own.aclose()
    assert own._client.is_closed


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        HttpToolBackend(BASE, timeouts=())
    with pytest.raises(ValueError, match="max_retries"):
        HttpToolBackend(BASE, max_retries=-1)
