"""Isolation under load: 1,000 concurrent conversations on one emulated shop share nothing.

Every conversation orders something different (product and quantity), all run at once
against a single `EmulatedShop` and a single model endpoint. Afterwards each session's cart
must be exactly what its own conversation's recorded tool calls did, and each session id
must be unique and appear in its own result only.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from conversation_engine.core.contract import contract_violations
from conversation_engine.engines import resolve_engine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm import SimulationConfig
from conversation_engine.tools.shop import EmulatedShop

CONVERSATIONS = 1000
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

CartKey = tuple[str, int]


def orders(shop: EmulatedShop) -> list[tuple[dict[str, Any], tuple[str, int]]]:
    """One scenario per conversation, with the (product code, packages) it orders; no two alike."""
    products = shop.products
    items = []
    for index in range(CONVERSATIONS):
        product = products[index % len(products)]
        quantity = 1 + index // len(products)
        packaging = product.packaging_types[0].name
        scenario = {
            "name": f"order {index}",
            "variables": {
                "CLIENT_NAME": f"Customer {index}",
                "PERSONALITY": "Brief and exact.",
                "AMB_LEVEL": 1,
                "PATIENCE": 2,
                "ORDER_GOAL": [f"{quantity} {packaging} of {product.name}"],
                "SEED": index,
            },
        }
        items.append((scenario, (product.product_code, quantity)))
    assert len({expected for _, expected in items}) == CONVERSATIONS
    return items


def cart_from_history(result: dict[str, Any]) -> dict[CartKey, Decimal]:
    """The cart a conversation's own successful add/remove calls add up to."""
    cart: dict[CartKey, Decimal] = {}
    for entry in result["conversation_history"]:
        if entry["speaker"] == "client":  # its end_call is not a shop call
            continue
        calls = entry.get("tool_calls") or []
        outcomes = entry.get("tool_results") or []
        for call, outcome in zip(calls, outcomes, strict=True):
            name = call["function"]["name"]
            arguments = json.loads(call["function"]["arguments"])
            if name == "add_to_cart" and outcome.get("status") == "added":
                for item in arguments["items"]:
                    key = (item["product_code"].upper(), item.get("packaging_type") or 1)
                    cart[key] = cart.get(key, Decimal()) + Decimal(str(item["quantity"]))
            elif name == "remove_from_cart" and outcome.get("status") == "removed":
                for code in outcome["removed"]:
                    cart = {key: qty for key, qty in cart.items() if key[0] != code}
    return cart


def shop_cart(shop: EmulatedShop, session_id: str) -> dict[CartKey, Decimal]:
    return {
        (line.product_code, line.packaging_type): Decimal(str(line.quantity))
        for line in shop.cart(session_id)
    }


# AutoGen only: 1,000 conversations take about 35 s with it on two cores and 18 s more with
# the legacy engine, which shares the same session-keyed tool path (`SessionTools`) and is
# held to isolation under concurrency by the conformance suite.
@pytest.mark.parametrize("engine", ["autogen"])
async def test_a_thousand_concurrent_conversations_share_no_state(engine: str) -> None:
    shop = EmulatedShop()
    items = orders(shop)
    # A millisecond per model call makes every call yield, so all conversations are in flight
    # together rather than each running to its end on its first turn of the event loop.
    wrapper = OpenAIWrapper.simulated(SimulationConfig(latency_ms=1))
    in_flight = peak = 0

    async def converse(scenario: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await conversation_engine.run_conversation_with_tools(scenario, timeout_sec=600)
        finally:
            in_flight -= 1

    try:
        conversation_engine = resolve_engine(engine)(
            wrapper, "multiagent_prompts", tool_backend=shop
        )
        results = await asyncio.gather(*(converse(scenario) for scenario, _ in items))
    finally:
        await wrapper.aclose()

    assert peak == CONVERSATIONS
    assert Counter(result["status"] for result in results) == {"completed": CONVERSATIONS}
    session_ids = [result["session_id"] for result in results]
    assert len(set(session_ids)) == CONVERSATIONS
    for (scenario, expected), result in zip(items, results, strict=True):
        assert result["scenario"] == scenario["name"]
        assert contract_violations(result, basic_mode=False) == []
        # The only session id anywhere in a result (tool calls included) is its own.
        assert set(UUID.findall(json.dumps(result))) == {result["session_id"]}
        cart = shop_cart(shop, result["session_id"])
        assert cart == cart_from_history(result), scenario["name"]
        # ... and it is the order this conversation's customer asked for.
        code, quantity = expected
        assert cart == {(code, 1): Decimal(quantity)}, scenario["name"]
