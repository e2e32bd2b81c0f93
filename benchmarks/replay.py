"""Recording and replay cost, side by side with a plain run on the simulated LLM.

Paths, each playing the same conversations (the shipped shop scenarios, cycled) with the
legacy engine in tools mode, at zero model latency, one after the other in one process:

* `play`: the simulated LLM answers (the baseline);
* `record`: the same, with a `RecordingTransport` writing every call to a recording
  directory (each file `fsync`ed when its conversation ends);
* `replay`: that recording answers, strict mode, reading the recording included (every file
  is read through once up front, as the command line does, then per conversation).

The numbers are process CPU seconds per path. Targets from the issue: replay at most 1.2x the
CPU of `play`, recording at most 10 % over `play`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "replay"
TARGET_REPLAY_RATIO = 1.2
TARGET_RECORD_OVERHEAD = 0.10
CONCURRENCY = 8


async def _play(wrapper: Any, scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from conversation_engine.engines.legacy import LegacyConversationEngine

    engine = LegacyConversationEngine(wrapper, "multiagent_prompts")
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(scenario: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            result: dict[str, Any] = await engine.run_conversation_with_tools(scenario, 6)
            return result

    return await asyncio.gather(*(one(scenario) for scenario in scenarios))


async def measure(count: int) -> dict[str, Any]:
    """Play, record and replay `count` conversations; CPU seconds per path and the ratios."""
    from conversation_engine.llm.endpoint import OpenAIWrapper
    from conversation_engine.replay import RecordingTransport, ReplayTransport, replay_report

    base = common.shipped_scenarios()
    # Distinct names, so each conversation has its own recording file.
    scenarios = [
        {**scenario, "name": f"{scenario['name']} #{index}"}
        for index, scenario in enumerate(common.cycled(base, count))
    ]
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "rec"

        common.settle()
        start = time.process_time()
        async with OpenAIWrapper.simulated() as wrapper:
            played = await _play(wrapper, scenarios)
        cpu["play"] = time.process_time() - start

        common.settle()
        start = time.process_time()
        async with OpenAIWrapper.simulated(wire_layer=RecordingTransport(directory)) as wrapper:
            recorded = await _play(wrapper, scenarios)
        cpu["record"] = time.process_time() - start

        common.settle()
        start = time.process_time()
        transport = ReplayTransport(directory)
        async with OpenAIWrapper.simulated(wire_layer=transport) as wrapper:
            replayed = await _play(wrapper, scenarios)
        cpu["replay"] = time.process_time() - start
        report = replay_report(transport)
        files = len(list(directory.iterdir()))
    calls = sum(result["usage"]["calls"] for result in played)
    return {
        "conversations": count,
        "model_calls": calls,
        "recording_files": files,
        "statuses": sorted({result["status"] for result in [*played, *recorded, *replayed]}),
        "replay_totals": report.totals,
        "cpu_seconds": {path: round(seconds, 3) for path, seconds in cpu.items()},
        "replay_ratio": round(cpu["replay"] / cpu["play"], 3),
        "record_overhead": round(cpu["record"] / cpu["play"] - 1, 3),
        "targets": {
            "replay_ratio_max": TARGET_REPLAY_RATIO,
            "record_overhead_max": TARGET_RECORD_OVERHEAD,
        },
    }


def table(results: dict[str, Any]) -> str:
    cpu = results["cpu_seconds"]
    return common.markdown_table(
        ["path", "CPU s", "vs play"],
        [
            ["play", cpu["play"], 1.0],
            ["record", cpu["record"], cpu["record"] / cpu["play"]],
            ["replay", cpu["replay"], cpu["replay"] / cpu["play"]],
        ],
    )


def main() -> None:
    args = common.parser(NAME, __doc__ or "").parse_args()
    count = 40 if args.quick else 1000
    results = common.run(lambda: measure(count))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report(
        f"Replay and recording cost ({results['conversations']} conversations, "
        f"{results['model_calls']} model calls per path; replay {results['replay_totals']})",
        table(results),
        path,
    )


if __name__ == "__main__":
    main()
