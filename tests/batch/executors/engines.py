"""A contract engine for the executor tests: a scenario named `crash...` ends the process that
plays it (`os._exit`, as a segfaulting extension or the OOM killer would), every time."""

from __future__ import annotations

import asyncio
import os
from typing import Any

CRASHING = "tests.batch.executors.engines:CrashingEngine"


class CrashingEngine:
    def __init__(self, openai_wrapper: Any, prompt_spec_name: str, **_: Any) -> None:
        pass

    async def run_conversation(self, scenario: dict[str, Any], *_: Any) -> dict[str, Any]:
        return await self.run_conversation_with_tools(scenario)

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], *_: Any
    ) -> dict[str, Any]:
        await asyncio.sleep(0.05)  # the crash then finds other conversations in flight
        if str(scenario["name"]).startswith("crash"):
            os._exit(3)
        now = "2024-01-15T10:00:00+00:00"
        return {
            "session_id": f"s-{scenario['name']}",
            "scenario": scenario["name"],
            "status": "completed",
            "total_turns": 1,
            "duration_seconds": 0.05,
            "conversation_history": [
                {"turn": 1, "speaker": "agent_agent", "content": "Hello.", "timestamp": now},
                {"turn": 1, "speaker": "client", "content": "Bye.", "timestamp": now},
            ],
            "start_time": now,
            "end_time": now,
            "tools_used": True,
            "end_reason": "client_end_call",
            "seed": scenario["variables"].get("SEED"),
        }
