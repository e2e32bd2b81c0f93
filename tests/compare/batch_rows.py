"""Batch rows built by hand, shaped like `BatchProcessor` writes them (see `batch.rows`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def agent_entry(
    turn: int, content: str, tools: Sequence[str] = (), speaker: str = "agent_agent"
) -> dict[str, Any]:
    """An agent history entry that called `tools` (names; `handoff_*` for handoffs)."""
    entry: dict[str, Any] = {"turn": turn, "speaker": speaker, "content": content}
    if tools:
        entry["tool_calls"] = [
            {
                "id": f"call_{turn}_{index}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps({"message": name})},
            }
            for index, name in enumerate(tools)
        ]
        entry["tool_results"] = [{"status": "ok", "tool": name} for name in tools]
    return entry


def row(
    scenario: int,
    trial: int = 0,
    *,
    status: str = "completed",
    score: float | None = 3,
    turns: int = 4,
    tools: Sequence[str] = ("rag_find_products", "add_to_cart"),
    end_reason: str = "client_end_call",
    tokens: int = 1000,
    cost: float | None = 0.01,
    duration: float = 1.0,
    violations: Sequence[str] = (),
    evaluation_status: str = "success",
    client_line: str = "Hello, I would like to order.",
    name: str | None = None,
) -> dict[str, Any]:
    """A row of one scenario-trial; `status="failed"` gives a failed row without history;
    `cost=None` an unknown cost (the simulated LLM, a model without a price)."""
    base: dict[str, Any] = {
        "scenario_index": scenario,
        "trial": trial,
        "scenario": name or f"Scenario {scenario}",
        "session_id": f"s-{scenario}-{trial}",
        "status": status,
        "total_turns": turns,
        "duration_seconds": duration,
        "seed": 100 + scenario + trial,
        "end_reason": end_reason,
        "usage": {
            "calls": turns,
            "prompt_tokens": tokens - tokens // 10,
            "completion_tokens": tokens // 10,
            "total_tokens": tokens,
            "cost_usd": cost,
        },
        "contract_violations": list(violations),
    }
    if status == "failed":
        return {**base, "error": "backend down", "score": 1, "comment": "Разговор не завершен"}
    history = [
        {"turn": 1, "speaker": "client", "content": client_line},
        agent_entry(2, "Let me look that up.", tools),
    ]
    evaluation: dict[str, Any] = {"evaluation_status": evaluation_status, "comment": "fine"}
    if score is not None:
        evaluation["score"] = score
    return {
        **base,
        **evaluation,
        "evaluation_usage": {"total_tokens": 50},
        "conversation_history": history,
    }
