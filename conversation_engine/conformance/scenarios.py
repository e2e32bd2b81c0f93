"""The scenarios the conformance checks play, by role.

They fit the shipped specs' `client` prompt (`CLIENT_NAME`, `PERSONALITY`, `AMB_LEVEL`,
`PATIENCE`, `ORDER_GOAL`, optional `DELIVERY_CHANGE`) and the simulated LLM's customer, which
works through the shopping list in order and then hangs up with `end_call`. A shopping-list
line such as "Delivery date change: <date>" is a change request at that position, which is
how `handoff_back` sends the customer to support and back to sales.

Checks ask for a role, not a name, so a caller testing a spec with other variables can pass
its own scenario for each role (`Harness(scenarios={...})`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_BASE_VARIABLES: dict[str, Any] = {
    "CLIENT_NAME": "Ellie Watson",
    "LOCATION": "The Corner Cafe, 5 Market Street, York YO1 8ST",
    "locations": "1. The Corner Cafe, 5 Market Street, York YO1 8ST 2. 14 Canal Street, York YO1 9AA",
    "PERSONALITY": "Friendly cafe owner who knows exactly what she needs.",
    "AMB_LEVEL": 1,
    "PATIENCE": 2,
    "CURRENT_DATE": "2024-01-15",
}


def _scenario(name: str, **variables: Any) -> dict[str, Any]:
    return {"name": name, "variables": {**_BASE_VARIABLES, **variables}}


DEFAULT_SCENARIOS: dict[str, dict[str, Any]] = {
    # One product: search, add to cart, goodbye.
    "order": _scenario(
        "Conformance: one product", ORDER_GOAL=["2 boxes of chicken fillet"], SEED=11
    ),
    # A product, then a delivery date change (a handoff to support in the multi-agent spec).
    "handoff": _scenario(
        "Conformance: product then delivery date",
        ORDER_GOAL=["2 packs of butter"],
        DELIVERY_CHANGE="2024-01-19",
        SEED=12,
    ),
    # A date change first, then a product: to support and back to sales.
    "handoff_back": _scenario(
        "Conformance: delivery date then product",
        ORDER_GOAL=["Delivery date change: 2024-01-17", "3 packs of butter"],
        SEED=13,
    ),
    # The client opens the call with a greeting line of its own.
    "greeting": _scenario(
        "Conformance: client opens",
        ORDER_GOAL=["2 trays of eggs"],
        client_greeting="Hello, this is Ellie from the Corner Cafe.",
        SEED=14,
    ),
    # Several goals, so the conversation outlasts small turn limits and short timeouts.
    "long": _scenario(
        "Conformance: long order",
        ORDER_GOAL=["2 boxes of beef mince", "3 packs of smoked bacon", "4 packs of milk"],
        DELIVERY_CHANGE="2024-01-19",
        PATIENCE=3,
        SEED=15,
    ),
}

#: Products for the concurrency check: one conversation each, all different.
CONCURRENT_ITEMS = (
    "2 boxes of chicken fillet",
    "3 packs of butter",
    "2 trays of eggs",
    "4 packs of milk",
    "2 boxes of beef mince",
    "3 packs of smoked bacon",
    "1 box of salmon fillet",
    "2 boxes of greek yoghurt",
)


def concurrent_scenarios(count: int = len(CONCURRENT_ITEMS)) -> list[dict[str, Any]]:
    """`count` single-product scenarios, each for a different product and seed."""
    return [
        _scenario(
            f"Conformance: concurrent order {index + 1}",
            ORDER_GOAL=[CONCURRENT_ITEMS[index % len(CONCURRENT_ITEMS)]],
            SEED=100 + index,
        )
        for index in range(count)
    ]


def scenario_set(
    overrides: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The scenarios by role: the defaults, with `overrides` replacing roles they name."""
    unknown = set(overrides or {}) - set(DEFAULT_SCENARIOS)
    if unknown:
        raise ValueError(
            f"Unknown conformance scenario roles {sorted(unknown)}; the roles are "
            f"{sorted(DEFAULT_SCENARIOS)}."
        )
    return copy.deepcopy({**DEFAULT_SCENARIOS, **(overrides or {})})
