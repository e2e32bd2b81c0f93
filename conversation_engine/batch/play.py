"""Play scenarios through one engine with bounded concurrency: the `run` command's loop.

Unlike `BatchProcessor`, nothing is scored or stored: the engine's contract results come
back in scenario order, and a callback sees each one as soon as its conversation ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conversation_engine.inputs.scenario import Scenario
from conversation_engine.observability.budget import Budget
from conversation_engine.observability.events import observing

ResultListener = Callable[[int, dict[str, Any]], None]
"""`(index, result)`: the scenario's position in the input and the engine's result."""


async def play_scenarios(
    engine: Any,
    scenarios: Sequence[Scenario | Mapping[str, Any]],
    *,
    basic: bool,
    max_turns: int | None,
    timeout_sec: float | None,
    concurrency: int,
    on_result: ResultListener | None = None,
    budget: Budget | None = None,
) -> list[dict[str, Any]]:
    """Run every scenario through `engine`, at most `concurrency` conversations at once.

    `basic` picks the engine's `run_conversation` (entry agent only, no tools) instead of
    `run_conversation_with_tools`; either is called as `(scenario_dict, max_turns,
    timeout_sec)`, with `None` meaning the engine's default. `on_result(index, result)` is
    called as each conversation finishes (in finishing order); the returned list is in
    scenario order. An exception raised by the engine propagates (the conversations still
    running are not awaited further by this call). `budget`: counts the calls' spend, and at
    its cap no further conversation starts (those in flight finish; the others are left out).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    method = "run_conversation" if basic else "run_conversation_with_tools"
    play = getattr(engine, method)
    semaphore = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any] | None] = [None] * len(scenarios)

    async def one(index: int, scenario: Scenario | Mapping[str, Any]) -> None:
        async with semaphore:
            if budget is not None and budget.reached:
                return
            data = scenario.model_dump() if isinstance(scenario, Scenario) else dict(scenario)
            result = await play(data, max_turns, timeout_sec)
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    with observing(budget) if budget is not None else contextlib.nullcontext():
        await asyncio.gather(*(one(i, s) for i, s in enumerate(scenarios)))
    return [result for result in results if result is not None]
