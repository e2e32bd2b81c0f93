"""Engines built per scenario and never closed, as the existing service uses them.

Two measurements, side by side in one run:

* **construction**: CPU per `Engine(openai_wrapper, prompt_spec_name)`, for each engine, with
  our `OpenAIWrapper` and with a host service's wrapper (an `openai.AsyncOpenAI` as `.client`,
  `.model`, `.logger`), rounds alternating so a busy moment falls on every case;
* **per-scenario lifecycle**: N engines built and each run once (one short conversation against
  the simulated LLM over loopback HTTP, real sockets), with the host's wrapper: open file
  descriptors, sockets, asyncio tasks, threads and RSS at 10 %, 50 % and 100 % of the runs.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from typing import Any

import openai
import psutil

from benchmarks import _common as common
from conversation_engine.core.settings import Settings, project_path
from conversation_engine.engines import resolve_engine
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.testing.simulated_llm.server import base_url, serving_in_background

NAME = "construction"
ENGINES = ("autogen", "legacy", "rollout")
SPEC = "multiagent_prompts"


class ServiceWrapper:
    """The shape of the existing service's wrapper, on the real `openai` SDK."""

    def __init__(self, url: str) -> None:
        self.client = openai.AsyncOpenAI(api_key="sk-benchmark", base_url=url)
        self.model = "gpt-4o-mini"
        self.max_retries = 3
        self.logger = self
        self.token_lines = 0

    def log_token_usage(self, *_: Any) -> None:
        self.token_lines += 1


def resources() -> dict[str, float]:
    gc.collect()
    process = psutil.Process()
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "sockets": len(process.net_connections(kind="inet")),
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "rss_mb": round(process.memory_info().rss / 2**20, 1),
    }


def construction_cost(wrappers: dict[str, Any], settings: Settings, rounds: int, per_round: int):
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for wrapper_name, wrapper in wrappers.items():
            for engine_name in ENGINES:
                engine_class = resolve_engine(engine_name)
                started = time.process_time()
                for _ in range(per_round):
                    engine_class(wrapper, SPEC, settings=settings)
                per_call_ms = (time.process_time() - started) / per_round * 1000
                samples.setdefault(f"{engine_name}/{wrapper_name}", []).append(per_call_ms)
    return {case: common.spread(values) for case, values in samples.items()}


async def lifecycle(url: str, settings: Settings, runs: int) -> dict[str, Any]:
    scenarios = common.shipped_scenarios()
    results: dict[str, Any] = {}
    for engine_name in ("autogen", "legacy"):
        engine_class = resolve_engine(engine_name)
        wrapper = ServiceWrapper(url)
        marks = {max(1, runs // 10): "10%", max(1, runs // 2): "50%", runs: "100%"}
        points: dict[str, dict[str, float]] = {}
        started = time.perf_counter()
        for run in range(1, runs + 1):
            engine = engine_class(wrapper, SPEC, settings=settings)
            result = await engine.run_conversation_with_tools(
                scenarios[run % len(scenarios)], max_turns=1
            )
            if result["status"] != "completed":
                raise RuntimeError(f"run {run} of {engine_name}: {result.get('error')}")
            if run in marks:
                points[marks[run]] = resources()
        results[engine_name] = {
            "runs": runs,
            "ms_per_run": round((time.perf_counter() - started) / runs * 1000, 2),
            "token_lines": wrapper.token_lines,
            "resources": points,
        }
    return results


async def measure(quick: bool) -> dict[str, Any]:
    settings = Settings(PROMPTS_DIR=project_path("prompt_specs"))
    runs = 100 if quick else 1000
    with serving_in_background() as server:
        url = base_url(server)
        wrappers = {"ours": OpenAIWrapper.simulated(), "host": ServiceWrapper(url)}
        cost = construction_cost(wrappers, settings, 2 if quick else 5, 20 if quick else 100)
        life = await lifecycle(url, settings, runs)
        await wrappers["ours"].aclose()
    return {
        "construction_cpu_ms": cost,
        "lifecycle": life,
        "method": {
            "construction": "process CPU time per construction, median of alternating rounds",
            "lifecycle": "engine built per scenario, one run of max_turns=1 each, never closed; "
            "simulated LLM over loopback HTTP; resources after gc.collect()",
        },
    }


def table(results: dict[str, Any]) -> str:
    cost = results["construction_cpu_ms"]
    rows = [
        (engine, cost[f"{engine}/ours"]["median"], cost[f"{engine}/host"]["median"])
        for engine in ENGINES
    ]
    first = common.markdown_table(
        ("engine", "CPU ms per construction, our wrapper", "host's wrapper"), rows
    )
    life_rows = []
    for engine, data in results["lifecycle"].items():
        for mark, values in data["resources"].items():
            life_rows.append(
                (
                    engine,
                    f"{mark} of {data['runs']}",
                    values["fds"],
                    values["sockets"],
                    values["tasks"],
                    values["threads"],
                    values["rss_mb"],
                )
            )
    second = common.markdown_table(
        ("engine", "after", "fds", "sockets", "tasks", "threads", "RSS MB"), life_rows
    )
    return f"{first}\n\n{second}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(NAME, __doc__.splitlines()[0]).parse_args(argv)
    results = common.run(lambda: measure(args.quick))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Engines per scenario: construction cost and resources", table(results), path)
    return results


if __name__ == "__main__":
    main()
