"""The service builds an engine per scenario and never closes it: 1,000 of them must not leak.

Real sockets: the host's wrapper points at the simulated LLM served over loopback HTTP, as a
real endpoint would be, and each engine runs one short conversation before the next is built.
"""

from __future__ import annotations

import asyncio
import gc
import json

import pytest

from benchmarks.construction import ServiceWrapper, resources
from conversation_engine.core.settings import Settings, project_path
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.testing.simulated_llm.server import base_url, serving_in_background

RUNS = 1000
WARM_UP = 100
#: Memory may settle a little (allocator arenas, interned strings); a leak of even 20 KB per
#: conversation would pass 18 MB over the 900 measured runs.
MAX_RSS_GROWTH_MB = 12
#: Other tests of the same process may still be closing (or opening) a few descriptors while
#: these run; a leak here would grow with every conversation, by hundreds over the runs.
SLACK = 4


@pytest.mark.parametrize("engine_class", [AutogenConversationEngine, LegacyConversationEngine])
async def test_a_thousand_engines_per_scenario_leak_nothing(engine_class: type) -> None:
    scenarios = json.loads(
        (project_path("fixtures") / "scenarios" / "shop_scenarios.json").read_text()
    )
    settings = Settings(PROMPTS_DIR=project_path("prompt_specs"))
    with serving_in_background() as server:
        wrapper = ServiceWrapper(base_url(server))
        before: dict[str, float] = {}
        for run in range(RUNS):
            if run == WARM_UP:
                before = resources()
            engine = engine_class(wrapper, "multiagent_prompts", settings=settings)
            result = await engine.run_conversation_with_tools(
                scenarios[run % len(scenarios)], max_turns=1
            )
            assert result["status"] == "completed", result.get("error")
        after = resources()
    assert wrapper.token_lines >= 2 * RUNS
    for key in ("fds", "sockets", "tasks", "threads"):
        assert after[key] <= before[key] + SLACK, f"{key}: {before[key]} -> {after[key]}"
    assert after["rss_mb"] - before["rss_mb"] < MAX_RSS_GROWTH_MB, (before, after)


async def test_a_wrapper_per_scenario_leaks_nothing_either() -> None:
    """A host that builds its wrapper per scenario too: each dropped wrapper's pool is closed."""
    scenarios = json.loads(
        (project_path("fixtures") / "scenarios" / "shop_scenarios.json").read_text()
    )
    settings = Settings(PROMPTS_DIR=project_path("prompt_specs"))
    with serving_in_background() as server:
        before: dict[str, float] = {}
        for run in range(200):
            if run == 20:
                gc.collect()
                await asyncio.sleep(0.1)
                before = resources()
            wrapper = ServiceWrapper(base_url(server))
            engine = LegacyConversationEngine(wrapper, "multiagent_prompts", settings=settings)
            result = await engine.run_conversation_with_tools(scenarios[0], max_turns=1)
            assert result["status"] == "completed", result.get("error")
            del engine, wrapper
        # The dropped pools close on the loop, soon but not at once: give them up to 2 s.
        for _ in range(20):
            gc.collect()  # the wrapper may sit in a reference cycle, as a host's often does
            await asyncio.sleep(0.1)
            after = resources()
            if after["fds"] <= before["fds"] + SLACK:
                break
    for key in ("fds", "sockets", "threads"):
        assert after[key] <= before[key] + SLACK, f"{key}: {before[key]} -> {after[key]}"
