"""Sessions never share state, whatever the client-data webhook answers.

Legacy made the webhook's `session_id` the conversation's. A webhook that answers every lookup
with the same id (a CRM keyed by caller) therefore put every trial of a scenario, and every
scenario of that client, in one session: one cart that grew 2 → 4 → 6 → 8. Here the webhook is
mocked at the wire (respx) with hostile and constant ids, a batch runs with `repeat` > 1 and
concurrency through `BatchProcessor` on one emulated shop, and every conversation's cart must
hold only its own order. A session id that is already in flight is refused, not shared.
"""

from __future__ import annotations

import asyncio
import types
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation_engine.batch import BatchProcessor
from conversation_engine.core.contract import contract_violations
from conversation_engine.core.settings import Settings
from conversation_engine.engines import resolve_engine
from conversation_engine.inputs import scenario as scenario_module
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import SimulationConfig
from conversation_engine.tools.shop import EmulatedShop
from tests.reliability.test_isolation_load import cart_from_history, shop_cart

ENGINES = ["autogen", "legacy"]
WEBHOOK_URL = "https://crm.test/webhook"
SHARED_SESSION = "crm-session-shared"
# (product, packages) each scenario orders; trials of one scenario order the same.
ORDERS = [("Chicken fillet", 2), ("Beef mince", 3), ("Sunflower oil", 1)]
REPEAT = 3


def scenario(index: int, product: str, packages: int) -> dict[str, Any]:
    return {
        "name": f"order {index}",
        "client_id": "C-1001",  # one client for all: the webhook answers alike
        "variables": {
            "CLIENT_NAME": f"Customer {index}",
            "PERSONALITY": "Brief and exact.",
            "AMB_LEVEL": 1,
            "PATIENCE": 2,
            "ORDER_GOAL": [f"{packages} boxes of {product}"],
            "SEED": index,
        },
    }


def webhook_reply(session_id: Any = SHARED_SESSION) -> httpx.Response:
    variables = {
        "name": "Ann from the CRM",
        "locations": "1. 5 Market Street, York",
        "delivery_days": "Monday, Thursday",
        "purchase_history": "none",
        "current_date": "2024-01-15",
        "session_id": session_id,
    }
    return httpx.Response(200, json={"call_inbound": {"dynamic_variables": variables}})


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    # Only the webhook is on the network; the simulated model is in-process.
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


async def run_batch(engine: str, out: Path, repeat: int = REPEAT) -> tuple[EmulatedShop, list]:
    """The scenarios through a batch on one shop, concurrently; the shop and the rows."""
    shop = EmulatedShop()
    # A millisecond per model call makes conversations interleave instead of running alone.
    wrapper = OpenAIWrapper.simulated(SimulationConfig(latency_ms=1))
    processor = BatchProcessor(
        wrapper,
        len(ORDERS) * repeat,
        engine=engine,
        output_dir=out,
        tool_backend=shop,
        evaluate=False,
        settings=Settings(WEBHOOK_URL=WEBHOOK_URL),
    )
    try:
        scenarios = [scenario(i, product, n) for i, (product, n) in enumerate(ORDERS)]
        batch_id = processor.create_batch_job(
            scenarios, prompt_spec_name="multiagent_prompts", repeat=repeat
        )
        await processor.run_batch(batch_id)
        rows = processor.get_batch_results(batch_id) or []
    finally:
        await wrapper.aclose()
    return shop, rows


def assert_each_cart_is_its_own(shop: EmulatedShop, rows: list[dict[str, Any]]) -> None:
    assert len(rows) == len(ORDERS) * REPEAT
    assert [row["status"] for row in rows] == ["completed"] * len(rows)
    session_ids = [row["session_id"] for row in rows]
    assert len(set(session_ids)) == len(rows), "two conversations shared a session id"
    for row in rows:
        assert uuid.UUID(row["session_id"]).version == 4
        cart = shop_cart(shop, row["session_id"])
        assert cart == cart_from_history(row), row["scenario"]
        # ... which is one order of this scenario's goods, never 2x, 3x as trials pile up.
        product, packages = ORDERS[row["scenario_index"]]
        (line,) = shop.cart(row["session_id"])
        assert line.name.lower().startswith(product.lower()), row["scenario"]
        assert Decimal(str(line.quantity)) == packages, row["scenario"]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_webhook_with_one_session_id_for_everyone_shares_no_cart(
    engine: str, wire: respx.MockRouter, tmp_path: Path
) -> None:
    hook = wire.post(WEBHOOK_URL).mock(return_value=webhook_reply(SHARED_SESSION))
    shop, rows = await run_batch(engine, tmp_path)
    assert hook.call_count == len(ORDERS) * REPEAT
    assert_each_cart_is_its_own(shop, rows)
    assert shop.cart(SHARED_SESSION) == []


# Whatever a webhook puts in `session_id`: the same string for all, odd text, numbers,
# structures, nothing. None of it may become, or merge, a conversation's session.
webhook_session_ids = st.one_of(
    st.just(SHARED_SESSION),
    st.text(max_size=40),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(session_id=webhook_session_ids, engine=st.sampled_from(ENGINES))
def test_no_webhook_session_id_makes_conversations_share_a_session(
    session_id: Any, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("batch")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.post(WEBHOOK_URL).mock(return_value=webhook_reply(session_id))
        shop, rows = asyncio.run(run_batch(engine, out))
    assert_each_cart_is_its_own(shop, rows)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_session_id_already_in_flight_is_refused_not_shared(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two conversations that end up with the same session id (here a uuid4 collision, forced)
    # must not share the session: the second is refused while the first runs.
    fixed = uuid.UUID("00000000-0000-4000-8000-000000000042")
    monkeypatch.setattr(
        scenario_module, "uuid", types.SimpleNamespace(uuid4=lambda: fixed, UUID=uuid.UUID)
    )
    shop = EmulatedShop()
    wrapper = OpenAIWrapper.simulated(SimulationConfig(latency_ms=5))
    try:
        conversation_engine = resolve_engine(engine)(
            wrapper, "multiagent_prompts", tool_backend=shop
        )
        first, second = await asyncio.gather(
            *(
                conversation_engine.run_conversation_with_tools(scenario(i, product, n))
                for i, (product, n) in enumerate(ORDERS[:2])
            )
        )
    finally:
        await wrapper.aclose()
    assert first["status"] == "completed" and first["session_id"] == str(fixed)
    assert second["status"] == "failed"
    assert second["error_type"] == "SessionConflictError"
    assert str(fixed) in second["error"] and second["conversation_history"] == []
    assert second["session_id"] != str(fixed)
    assert contract_violations(first, basic_mode=False) == []
    assert contract_violations(second, basic_mode=False) == []
    # The session holds the first conversation's order only.
    assert shop_cart(shop, str(fixed)) == cart_from_history(first)
    ((code, _),) = cart_from_history(first)
    assert [line.product_code for line in shop.cart(str(fixed))] == [code]
    # Once it has ended, the id is free again.
    assert str(fixed) not in scenario_module.IN_FLIGHT_SESSIONS
