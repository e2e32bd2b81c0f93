"""The shop the tests play in: a customer for the shipped specs, and a call the agents end."""

from __future__ import annotations

from typing import Any

from tests.scripted_llm import ScriptedLLM, call, text

#: Variables the shipped specs' client prompt needs, for the simulated LLM.
SHOP_VARIABLES: dict[str, Any] = {
    "CLIENT_NAME": "Ellie Watson",
    "locations": "1. The Corner Cafe, York 2. 14 Canal Street, York",
    "PERSONALITY": "Friendly cafe owner.",
    "AMB_LEVEL": 1,
    "PATIENCE": 2,
    "CURRENT_DATE": "2024-01-15",
}

#: The customer orders, then asks for a new delivery date: the sales agent hands off to support.
HANDOFF_SCENARIO: dict[str, Any] = {
    "name": "butter and a new date",
    "variables": {
        **SHOP_VARIABLES,
        "ORDER_GOAL": ["3 packs of butter"],
        "DELIVERY_CHANGE": "2024-01-19",
        "SEED": 11,
    },
}


def agent_ends_the_call() -> ScriptedLLM:
    """A script in which the sales agent greets and hands off, and support ends the call."""
    return ScriptedLLM(
        agent=[
            text("Hello!"),
            call("handoff_support", {"reason": "goodbye"}),
            call("end_call", {"reason": "customer is done"}),
        ],
        client=[text("That's all, thanks.")],
    )
