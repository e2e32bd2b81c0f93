"""Conversations per second at concurrency 1, 16, 64 and 256 with injected model latency.

Each run is a batch of conversations (the shipped scenarios, repeated) through the
`BatchProcessor` (evaluation off, rows written to a temporary directory), or through the engine
directly with an `asyncio.Semaphore` when `--direct` is given or the processor is unavailable.
Runs of the two engines alternate at each concurrency, in one process.

* `bound_per_s`: the latency bound, concurrency / (model calls per conversation x latency):
  what an engine costing no CPU would achieve with that many conversations always in flight.
* `efficiency` is measured while that holds: from the start of the batch until its last
  conversation is launched, every slot holds a conversation. It is the share of that slot
  time spent waiting on the model (each request counts its nominal latency, clipped to the
  window); the rest went to CPU, the engine's and the SDK's, and to waiting for the event
  loop. A slot that waits on the model 100% of the time completes one model call per latency,
  so `conversations_per_s` = `efficiency` x `bound_per_s`.
* After the last launch the batch drains: fewer than `concurrency` conversations are left,
  and the slowest sets the end. `batch_conversations_per_s` is the whole batch (conversations
  / wall time, drain included), `batch_efficiency` that against the bound, and
  `schedule_efficiency` that against a zero-CPU replay of the same batch (its conversations'
  model calls, in launch order, on `concurrency` slots), which isolates the engine's CPU
  from the batch's shape.
* `calls_per_cpu_second`: model calls per CPU-second of the process, the simulated model's
  own CPU subtracted: the capacity of one core, which bounds throughput at high concurrency.

One run decides nothing: the efficiency at 256 in flight varied 0.48–0.76 between identical
runs on the 2 shared cores of the reference machine. So every engine and concurrency runs
`--repeats` times (3 in full mode), the engines alternating which goes first at each repeat,
and `summary` gives the median, min and max of each figure; the targets are judged on the
medians, both the all-slots-busy `efficiency` and the whole-batch `batch_efficiency` (drain
included). A batch is `--waves` times its concurrency (8 in full mode: the drain of a batch
of two waves alone cost a third of its slot time).
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import _common as common

NAME = "throughput"

FULL_CONCURRENCY = (1, 16, 64, 256)
QUICK_CONCURRENCY = (1, 16, 64)
DEFAULT_LATENCY_MS = 1000.0
QUICK_LATENCY_MS = 200.0

#: Targets at 1000 ms latency, one process, median of the repeats: all slots busy
#: (`efficiency`, issue 14 for 256) and the whole batch, drain included (`batch_efficiency`).
TARGET_EFFICIENCY = {64: 0.90, 256: 0.90}
TARGET_BATCH_EFFICIENCY = {256: 0.85}
#: The engine the targets are for.
TARGET_ENGINE = "autogen"

FULL_REPEATS = 3
FULL_WAVES = 8.0
QUICK_WAVES = 1.5


def batch_size(concurrency: int, quick: bool, waves: float | None = None) -> int:
    """Conversations per run: `waves` times `concurrency` (3 at concurrency 1 in full mode)."""
    if waves is None:
        if not quick and concurrency == 1:
            return 3
        waves = QUICK_WAVES if quick else FULL_WAVES
    return max(concurrency + 1, round(concurrency * waves))


def busy_efficiency(
    sent_at: Sequence[float],
    latency_s: float,
    started: float,
    last_launch: float | None,
    concurrency: int,
) -> float | None:
    """Share of slot time spent waiting on the model while every slot held a conversation.

    None when there was no such window of at least one latency period (a batch no larger
    than its concurrency) or no latency to wait on.
    """
    if last_launch is None or latency_s <= 0 or last_launch - started < latency_s:
        return None
    waiting = sum(
        max(0.0, min(sent + latency_s, last_launch) - max(sent, started)) for sent in sent_at
    )
    return waiting / (concurrency * (last_launch - started))


def schedule_makespan(calls: Sequence[int], slots: int, latency_s: float) -> float:
    """How long the batch takes at zero CPU: conversations in launch order on `slots` slots."""
    free_at = [0.0] * min(slots, len(calls))
    heapq.heapify(free_at)
    end = 0.0
    for count in calls:
        finish = heapq.heappop(free_at) + count * latency_s
        end = max(end, finish)
        heapq.heappush(free_at, finish)
    return end


class _GCClock:
    """CPU spent in the garbage collector while installed (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started

    def __enter__(self) -> _GCClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


class _Launches:
    """When the batch's last conversation was launched (`time.perf_counter()`)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.launched = 0
        self.last: float | None = None

    def one_more(self) -> None:
        self.launched += 1
        if self.launched == self.total:
            self.last = time.perf_counter()


async def _run_direct(
    engine_name: str,
    wrapper: Any,
    scenarios: list[dict[str, Any]],
    concurrency: int,
    launches: _Launches,
) -> list[dict[str, Any]]:
    engine = common.make_engine(engine_name, wrapper)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(scenario: dict[str, Any]) -> dict[str, Any]:
        async with semaphore:
            launches.one_more()
            return await engine.run_conversation_with_tools(scenario)

    return list(await asyncio.gather(*(one(scenario) for scenario in scenarios)))


async def _run_processor(
    engine_name: str,
    wrapper: Any,
    scenarios: list[dict[str, Any]],
    concurrency: int,
    launches: _Launches,
) -> list[dict[str, Any]]:
    from conversation_engine.batch.processor import BatchProcessor
    from conversation_engine.tools.shop import EmulatedShop

    def on_progress(event: Any) -> None:
        # Runs started so far = finished + running; it reaches the total at the last launch.
        if launches.last is None and event.done + event.active >= event.total:
            launches.launched = event.total
            launches.last = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="benchmark-") as output_dir:
        processor = BatchProcessor(
            wrapper,
            concurrency,
            engine=engine_name,
            output_dir=output_dir,
            tool_backend=EmulatedShop(),
            evaluate=False,
        )
        batch_id = processor.create_batch_job(scenarios, prompt_spec_name=common.DEFAULT_SPEC)
        await processor.run_batch(batch_id, on_progress=on_progress, return_rows=False)
        # What the benchmark reads of each row (status, calls), read back from the store.
        return [
            {"status": row.status, "usage": row.usage_object}
            for row in processor.storage.iter_rows_in_key_order(batch_id)
        ]


async def run_once(
    engine_name: str,
    concurrency: int,
    conversations: int,
    latency_ms: float,
    jitter_ms: float,
    *,
    direct: bool,
) -> dict[str, Any]:
    """One batch; its row of the results."""
    scenarios = common.cycled(common.shipped_scenarios(), conversations)
    wrapper = common.simulated_wrapper(latency_ms, jitter_ms, record_times=True)
    runner = _run_direct if direct else _run_processor
    launches = _Launches(len(scenarios))
    common.settle()
    with _GCClock() as gc_clock:
        start = common.Meter.read(wrapper.transport)
        results = await runner(engine_name, wrapper, scenarios, concurrency, launches)
        span = common.Meter.read(wrapper.transport).since(start)
    await wrapper.aclose()

    statuses = [result["status"] for result in results]
    completed = statuses.count("completed")
    calls = [(result.get("usage") or {}).get("calls", 0) for result in results]
    latency_s = latency_ms / 1000
    calls_per_conversation = span.calls / len(results)
    # Without latency there is no latency bound (and nothing to be efficient against).
    bound = concurrency / (calls_per_conversation * latency_s) if latency_s else None
    batch_rate = len(results) / span.wall
    busy = busy_efficiency(
        wrapper.transport.sent_at, latency_s, start.wall, launches.last, concurrency
    )
    # Without a window in which every slot was busy, the whole batch is all there is.
    achieved = batch_rate if busy is None or bound is None else busy * bound
    schedule = len(results) / schedule_makespan(calls, concurrency, latency_s) if latency_s else 0
    return {
        "engine": engine_name,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "conversations": len(results),
        "completed": completed,
        "calls_per_conversation": round(calls_per_conversation, 3),
        "conversations_per_s": round(achieved, 3),
        "bound_per_s": None if bound is None else round(bound, 3),
        "efficiency": None if bound is None else round(achieved / bound, 3),
        "measured_over": "whole batch" if busy is None else "every slot busy",
        "busy_window_s": (
            round(launches.last - start.wall)
            if busy is not None and launches.last is not None
            else None
        ),
        "wall_s": round(span.wall, 3),
        "batch_conversations_per_s": round(batch_rate, 3),
        "batch_efficiency": None if bound is None else round(batch_rate / bound, 3),
        "schedule_bound_per_s": round(schedule, 3),
        "schedule_efficiency": round(batch_rate / schedule, 3) if schedule else None,
        "cpu_s": round(span.cpu, 3),
        "model_cpu_s": round(span.model_cpu, 3),
        "gc_cpu_s": round(gc_clock.seconds, 3),
        "calls_per_cpu_second": round(span.calls / span.engine_cpu, 1),
    }


async def measure(
    concurrencies: Sequence[int],
    engines: Sequence[str],
    latency_ms: float,
    jitter_ms: float,
    *,
    quick: bool,
    direct: bool,
    repeats: int = 1,
    waves: float | None = None,
) -> dict[str, Any]:
    """Every engine at every concurrency `repeats` times, alternating which engine goes first."""
    # Warm-up: imports and first-call costs stay out of the first measured run.
    for engine_name in engines:
        await run_once(engine_name, 1, 1, 0, 0, direct=True)

    runs: list[dict[str, Any]] = []
    for step, concurrency in enumerate(concurrencies):
        for repeat in range(repeats):
            first = (step + repeat) % 2 == 0
            order = list(engines) if first else list(reversed(engines))
            for engine_name in order:
                conversations = batch_size(concurrency, quick, waves)
                row = await run_once(
                    engine_name, concurrency, conversations, latency_ms, jitter_ms, direct=direct
                )
                runs.append({**row, "repeat": repeat})

    capacity: dict[str, float] = {}
    for engine_name in engines:
        mine = [row for row in runs if row["engine"] == engine_name]
        calls = sum(row["calls_per_conversation"] * row["conversations"] for row in mine)
        cpu = sum(row["cpu_s"] - row["model_cpu_s"] for row in mine)
        capacity[engine_name] = round(calls / cpu, 1)

    summary = summarise(runs)
    targets: dict[str, Any] = {}
    if latency_ms == DEFAULT_LATENCY_MS:
        for key, figures in summary.items():
            engine_name, concurrency = key.split("@")[0], int(key.split("@")[1])
            if engine_name != TARGET_ENGINE:
                continue
            for figure, wanted in (
                ("efficiency", TARGET_EFFICIENCY.get(concurrency)),
                ("batch_efficiency", TARGET_BATCH_EFFICIENCY.get(concurrency)),
            ):
                median = (figures.get(figure) or {}).get("median")
                if wanted is not None and median is not None:
                    targets[f"{key} {figure}"] = {
                        "median": median,
                        "repeats": figures["repeats"],
                        "target": wanted,
                        "met": median >= wanted,
                    }
    return {
        "runs": runs,
        "summary": summary,
        "calls_per_cpu_second": capacity,
        "targets": targets,
        "method": {
            "spec": common.DEFAULT_SPEC,
            "latency_ms": latency_ms,
            "latency_jitter_ms": jitter_ms,
            "runner": "engine directly (asyncio.Semaphore)" if direct else "BatchProcessor",
            "evaluation": "off",
            "gc_cpu_s": "CPU spent in the garbage collector during the run (included in cpu_s)",
            "bound_per_s": "concurrency / (model calls per conversation x latency)",
            "efficiency": (
                "share of slot time spent waiting on the model (nominal latency per request) "
                "from the start to the last launch, while every slot held a conversation"
            ),
            "conversations_per_s": "efficiency x bound_per_s",
            "batch_conversations_per_s": "conversations / wall time of the whole batch",
            "calls_per_cpu_second": "model calls / (process CPU - simulated model CPU), all runs",
            "repeats": repeats,
            "summary": "median, min and max over the repeats of each engine and concurrency",
        },
    }


#: The figures `summary` gives the spread of.
SUMMARISED = ("efficiency", "batch_efficiency", "schedule_efficiency", "calls_per_cpu_second")


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per `engine@concurrency`: the repeats and the median, min and max of each figure."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in runs:
        groups.setdefault(f"{row['engine']}@{row['concurrency']}", []).append(row)
    summary: dict[str, dict[str, Any]] = {}
    for key, rows in groups.items():
        figures: dict[str, Any] = {"repeats": len(rows)}
        for figure in SUMMARISED:
            values = [row[figure] for row in rows if row.get(figure) is not None]
            figures[figure] = common.spread(values) if values else None
        summary[key] = figures
    return summary


def table(results: dict[str, Any]) -> str:
    rows = [
        (
            row["engine"],
            row["concurrency"],
            row["conversations"],
            row["calls_per_conversation"],
            row["conversations_per_s"],
            row["bound_per_s"],
            row["efficiency"],
            row["wall_s"],
            row["batch_efficiency"],
            row["schedule_efficiency"],
            row["calls_per_cpu_second"],
        )
        for row in results["runs"]
    ]
    capacity = ", ".join(
        f"{engine} {value:.0f}" for engine, value in results["calls_per_cpu_second"].items()
    )

    def spread(figure: dict[str, float] | None) -> str:
        if figure is None:
            return "–"
        return f"{figure['median']:.3g} ({figure['min']:.3g}–{figure['max']:.3g})"

    summary = common.markdown_table(
        (
            "engine@concurrency",
            "repeats",
            "**efficiency** (all slots busy)",
            "batch efficiency (with the drain)",
            "schedule efficiency",
            "calls per CPU-s",
        ),
        [
            (
                key,
                figures["repeats"],
                spread(figures["efficiency"]),
                spread(figures["batch_efficiency"]),
                spread(figures["schedule_efficiency"]),
                spread(figures["calls_per_cpu_second"]),
            )
            for key, figures in results["summary"].items()
        ],
    )
    targets = "; ".join(
        f"{name}: median {item['median']} of {item['repeats']} (target ≥ {item['target']}: "
        f"{'met' if item['met'] else 'missed'})"
        for name, item in results["targets"].items()
    )
    return (
        summary
        + "\n\nMedian (min–max) over the repeats.\n\n"
        + common.markdown_table(
            (
                "engine",
                "concurrency",
                "conversations",
                "calls/conv",
                "conv/s (all slots busy)",
                "bound conv/s",
                "**efficiency**",
                "batch wall s",
                "batch efficiency",
                "schedule efficiency",
                "calls per CPU-s",
            ),
            rows,
        )
        + (
            f"\n\nlatency {results['method']['latency_ms']:.0f} ms, "
            f"runner: {results['method']['runner']}; model calls per CPU-second: {capacity}"
            + (f"\n\nTargets: {targets}" if targets else "")
        )
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(NAME, __doc__.splitlines()[0])
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help=f"model latency (default {DEFAULT_LATENCY_MS:.0f}; {QUICK_LATENCY_MS:.0f} with --quick)",
    )
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +/- latency jitter")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=None, help="concurrency levels to run"
    )
    parser.add_argument(
        "--engines", nargs="+", default=list(common.ENGINE_NAMES), choices=common.ENGINE_NAMES
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs of each engine and concurrency (default {FULL_REPEATS}; 1 with --quick)",
    )
    parser.add_argument(
        "--waves",
        type=float,
        default=None,
        help=f"conversations per batch as a multiple of the concurrency (default {FULL_WAVES:g}; "
        f"{QUICK_WAVES:g} with --quick)",
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        help="run the engines directly under a semaphore instead of through the BatchProcessor",
    )
    args = parser.parse_args(argv)
    latency = args.latency_ms
    if latency is None:
        latency = QUICK_LATENCY_MS if args.quick else DEFAULT_LATENCY_MS
    concurrencies = args.concurrency or (QUICK_CONCURRENCY if args.quick else FULL_CONCURRENCY)
    direct = args.direct or not common.processor_available()
    started = time.perf_counter()
    results = common.run(
        lambda: measure(
            concurrencies,
            args.engines,
            latency,
            args.jitter_ms,
            quick=args.quick,
            direct=direct,
            repeats=args.repeats or (1 if args.quick else FULL_REPEATS),
            waves=args.waves,
        )
    )
    results["method"]["seconds"] = round(time.perf_counter() - started, 1)
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report(
        "Throughput: conversations per second against the latency bound", table(results), path
    )
    return results


if __name__ == "__main__":
    main()
