"""Peak RSS growth per in-flight conversation, with 256 conversations in flight.

Each engine runs in a fresh subprocess, so its baseline holds only the imports, one engine
and the warm-up conversations. After the warm-up and a garbage collection the worker reads its
RSS (the baseline), starts every conversation at once (model latency keeps them all in flight)
and samples its RSS every few milliseconds until the last one ends. The result is
(peak RSS - baseline) / conversations. Engines run one after the other, alternating order
between repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "memory"

#: Target from the issue: MB of RSS per conversation in flight.
TARGET_MB = 2.0

FULL_CONVERSATIONS = 256
QUICK_CONVERSATIONS = 64
#: Enough to keep every conversation in flight while the others compute.
LATENCY_MS = 200.0
WARM_UP_CONVERSATIONS = 3

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MB = 1024 * 1024


def rss_bytes() -> int:
    """The process's resident set size now (Linux `/proc`; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        # ru_maxrss is KiB on Linux, bytes on macOS; without /proc this is macOS or a BSD.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _PeakSampler:
    """Samples RSS on a thread (the event loop is busy) and keeps the maximum."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


async def worker(engine_name: str, conversations: int, latency_ms: float) -> dict[str, Any]:
    """In the subprocess: the baseline, then every conversation at once; the measurements."""
    scenarios = common.shipped_scenarios()
    warm = common.simulated_wrapper()
    warm_engine = common.make_engine(engine_name, warm)
    for scenario in scenarios[:WARM_UP_CONVERSATIONS]:
        await warm_engine.run_conversation_with_tools(scenario)
    await warm.aclose()

    wrapper = common.simulated_wrapper(latency_ms)
    engine = common.make_engine(engine_name, wrapper)
    batch = common.cycled(scenarios, conversations)
    in_flight = 0
    most_in_flight = 0

    async def one(scenario: dict[str, Any]) -> str:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            result = await engine.run_conversation_with_tools(scenario)
        finally:
            in_flight -= 1
        return str(result["status"])

    gc.collect()
    baseline = rss_bytes()
    started = time.perf_counter()
    with _PeakSampler() as sampler:
        statuses = await asyncio.gather(*(one(scenario) for scenario in batch))
    wall = time.perf_counter() - started
    await wrapper.aclose()
    growth = sampler.peak - baseline
    return {
        "engine": engine_name,
        "conversations": conversations,
        "most_in_flight": most_in_flight,
        "completed": statuses.count("completed"),
        "baseline_rss_mb": round(baseline / _MB, 2),
        "peak_rss_mb": round(sampler.peak / _MB, 2),
        "growth_mb": round(growth / _MB, 2),
        "rss_mb_per_conversation": round(growth / _MB / conversations, 4),
        "wall_s": round(wall, 2),
    }


def run_worker(engine_name: str, conversations: int, latency_ms: float) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its JSON line parsed."""
    command = [
        sys.executable,
        "-m",
        f"benchmarks.{NAME}",
        "--worker",
        engine_name,
        "--conversations",
        str(conversations),
        "--latency-ms",
        str(latency_ms),
    ]
    completed = subprocess.run(
        command,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the {engine_name} worker failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure(conversations: int, repeats: int, latency_ms: float) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        order = common.ENGINE_NAMES if repeat % 2 == 0 else tuple(reversed(common.ENGINE_NAMES))
        for engine_name in order:
            runs.append(run_worker(engine_name, conversations, latency_ms))
    by_engine = {
        engine: round(
            common.median(r["rss_mb_per_conversation"] for r in runs if r["engine"] == engine), 4
        )
        for engine in common.ENGINE_NAMES
    }
    return {
        "rss_mb_per_conversation": by_engine["autogen"],
        "rss_mb_per_conversation_by_engine": by_engine,
        "ratio_autogen_legacy": round(by_engine["autogen"] / by_engine["legacy"], 3),
        "target_mb": TARGET_MB,
        "target_met": by_engine["autogen"] <= TARGET_MB,
        "runs": runs,
        "method": {
            "spec": common.DEFAULT_SPEC,
            "conversations_in_flight": conversations,
            "latency_ms": latency_ms,
            "repeats": repeats,
            "baseline": f"after imports, one engine and {WARM_UP_CONVERSATIONS} warm-up "
            "conversations, garbage collected",
            "rss": "sampled every 5 ms on a thread; (peak - baseline) / conversations",
        },
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (
            run["engine"],
            run["conversations"],
            run["most_in_flight"],
            run["baseline_rss_mb"],
            run["peak_rss_mb"],
            run["growth_mb"],
            run["rss_mb_per_conversation"],
        )
        for run in results["runs"]
    ]
    by_engine = results["rss_mb_per_conversation_by_engine"]
    return common.markdown_table(
        (
            "engine",
            "conversations",
            "most in flight",
            "baseline MB",
            "peak MB",
            "growth MB",
            "MB per conversation",
        ),
        rows,
    ) + (
        f"\n\nMB per in-flight conversation (median): autogen {by_engine['autogen']:.3g}, "
        f"legacy {by_engine['legacy']:.3g} (target ≤ {TARGET_MB:g} for autogen)"
    )


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = common.parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=None, help="conversations in flight")
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS, help="model latency")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per engine")
    parser.add_argument("--worker", choices=common.ENGINE_NAMES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    conversations = args.conversations or (
        QUICK_CONVERSATIONS if args.quick else FULL_CONVERSATIONS
    )
    if args.worker:
        print(json.dumps(common.run(lambda: worker(args.worker, conversations, args.latency_ms))))
        return None
    repeats = args.repeats or (1 if args.quick else 2)
    results = measure(conversations, repeats, args.latency_ms)
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Memory: peak RSS growth per in-flight conversation", table(results), path)
    return results


if __name__ == "__main__":
    main()
