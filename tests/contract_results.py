"""What a contract engine in the tests returns for a scenario: one completed turn."""

from __future__ import annotations

from typing import Any

NOW = "2024-01-15T10:00:00+00:00"


def completed_result(scenario: dict[str, Any], duration_seconds: float) -> dict[str, Any]:
    """A completed one-turn conversation for `scenario`, ended by the client."""
    return {
        "session_id": f"s-{scenario['name']}",
        "scenario": scenario["name"],
        "status": "completed",
        "total_turns": 1,
        "duration_seconds": duration_seconds,
        "conversation_history": [
            {"turn": 1, "speaker": "agent_agent", "content": "Hello.", "timestamp": NOW},
            {"turn": 1, "speaker": "client", "content": "Bye.", "timestamp": NOW},
        ],
        "start_time": NOW,
        "end_time": NOW,
        "tools_used": True,
        "end_reason": "client_end_call",
        "seed": scenario["variables"].get("SEED"),
    }
