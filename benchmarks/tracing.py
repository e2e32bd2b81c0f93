"""What tracing costs per model call: off, and on, side by side.

Both engines play the shipped shop scenarios against the simulated LLM at zero latency, so
the CPU measured is the engine's own. Each mode runs the same conversations, interleaved
(off, on, off, on, ...) so that drift in the machine's speed hits both alike:

* `off`: nothing listening, as in a run without `--trace`, `--follow` or a budget; what the
  instrumentation costs then is one context-variable read per emission point;
* `on`: spans made for every conversation, exchange, agent turn, model and tool call and
  exported through OpenTelemetry's batch processor to a JSON Lines file.

Also measured: the emission points' cost with nothing listening, timed alone and multiplied
by how many a model call passes (the share the issue bounds at 3 %).

    python -m benchmarks.tracing [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from benchmarks._common import shipped_scenarios
from conversation_engine.engines.autogen.engine import AutogenConversationEngine
from conversation_engine.engines.legacy import LegacyConversationEngine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.observability import events
from conversation_engine.observability.exporters import tracer_provider_for
from conversation_engine.observability.tracing import tracing
from conversation_engine.tools.shop import EmulatedShop

ENGINES = {"autogen": AutogenConversationEngine, "legacy": LegacyConversationEngine}


async def _play(
    engine_class: Any, scenarios: list[dict[str, Any]], trace: Path | None
) -> tuple[float, int]:
    """CPU seconds and model calls for the scenarios, traced to `trace` when given."""
    async with OpenAIWrapper.simulated() as wrapper:
        engine = engine_class(wrapper, "multiagent_prompts", tool_backend=EmulatedShop())
        provider = tracer_provider_for(str(trace)) if trace else None
        calls = 0
        started = time.process_time()
        for scenario in scenarios:
            if provider is None:
                result = await engine.run_conversation_with_tools(scenario, 6)
            else:
                with tracing(provider):
                    result = await engine.run_conversation_with_tools(scenario, 6)
            calls += result["usage"]["calls"]
        if provider is not None:
            provider.shutdown()  # the export's own work counts too
        return time.process_time() - started, calls


def _idle_emission_cost() -> float:
    """Seconds one model call spends in emission points with nothing listening: the guards
    of the transport, the exchange, the messages and the tool calls (a generous 8 a call)."""
    number = 200_000

    def guards() -> None:
        with events.exchange(1):
            events.observed()
            events.say(events.AgentMessage, agent="a", text="t")

    return timeit.timeit(guards, number=number) / number * 8 / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer rounds (a smoke run).")
    options = parser.parse_args()
    rounds = 1 if options.quick else 5
    scenarios = shipped_scenarios(2 if options.quick else None)
    idle = _idle_emission_cost()
    print(f"{'engine':8} {'off µs/call':>12} {'on µs/call':>12} {'on/off':>8} {'idle guards':>12}")
    with tempfile.TemporaryDirectory() as folder:
        for name, engine_class in ENGINES.items():
            totals = {"off": [0.0, 0], "on": [0.0, 0]}
            asyncio.run(_play(engine_class, scenarios[:1], None))  # warm-up: imports, caches
            for number in range(rounds):
                for mode in ("off", "on"):
                    trace = Path(folder) / f"{name}-{number}.jsonl" if mode == "on" else None
                    seconds, calls = asyncio.run(_play(engine_class, scenarios, trace))
                    totals[mode][0] += seconds
                    totals[mode][1] += calls
            off = totals["off"][0] / totals["off"][1]
            on = totals["on"][0] / totals["on"][1]
            print(f"{name:8} {off * 1e6:12.0f} {on * 1e6:12.0f} {on / off:8.2f} {idle / off:11.2%}")


if __name__ == "__main__":
    main()
