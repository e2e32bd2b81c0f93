"""What the engine tests share: a two-desk shop spec written to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: A sales agent and a support desk handing off to each other, with the shop's tools.
SHOP_SPEC: dict[str, Any] = {
    "name": "Test shop",
    "version": "1.0.0",
    "agents": {
        "agent": {
            "name": "Sales",
            "prompt": "You sell food to {{ CLIENT_NAME }}.",
            "tools": ["rag_find_products", "add_to_cart", "get_cart"],
            "handoffs": {"support": "Delivery dates and addresses."},
        },
        "support": {
            "name": "Support",
            "prompt": "You handle deliveries for {{ CLIENT_NAME }}.",
            "tools": ["change_delivery_date", "set_current_location", "end_call"],
            "handoffs": {"agent": "Products and cart."},
        },
        "client": {
            "name": "Customer",
            "prompt": "You are {{ CLIENT_NAME }}, buying food.",
            "tools": [],
        },
        "evaluator": {"name": "Evaluator", "prompt": "Score the call.", "tools": []},
    },
}


@pytest.fixture
def spec_path(tmp_path: Path) -> str:
    """`SHOP_SPEC` as a spec file."""
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(SHOP_SPEC), encoding="utf-8")
    return str(path)
