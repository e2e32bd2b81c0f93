"""A contract engine for the executor tests: a scenario named `crash...` ends the process that
plays it (`os._exit`, as a segfaulting extension or the OOM killer would), every time."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.contract_results import completed_result

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
        return completed_result(scenario, duration_seconds=0.05)
