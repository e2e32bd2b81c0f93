"""Scale out: one CPU-bound batch on one process, on `--workers 2` and on Ray with 2 CPUs.

The batch is the same every time: the shipped scenarios cycled to `--conversations`, the
autogen engine with evaluation, the simulated LLM in every process with zero latency (so the
engine's CPU is all there is to wait for) and 512 conversations in flight. Conversations per
second are measured over the whole `run_batch` (worker start-up included: a user pays it),
median of `--repeats` runs with the spread, and the ratio to one process.

    python -m benchmarks.scale_out            # the measurement
    python -m benchmarks.scale_out --quick    # a smoke check

Other work on the machine shares its cores and lowers the ratios: the report says how many
cores there were, not what else ran.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "scale_out"
CONCURRENCY = 512
FULL_CONVERSATIONS = 1500
QUICK_CONVERSATIONS = 200


async def measure_one(executor: Any, conversations: int) -> float:
    """Conversations per second of one batch on `executor` (None: this process)."""
    from conversation_engine.batch import BatchProcessor
    from conversation_engine.core.settings import Settings

    items = common.cycled(common.shipped_scenarios(), conversations)
    settings = Settings(OPENAI_API_KEY=None, OPENAI_BASE_URL=None, OPENAI_MODEL="simulated")
    with tempfile.TemporaryDirectory(prefix="scale-out-") as out:
        processor = BatchProcessor(
            None, CONCURRENCY, output_dir=Path(out), settings=settings, executor=executor
        )
        try:
            batch_id = processor.create_batch_job(items, prompt_spec_name=common.DEFAULT_SPEC)
            common.settle()
            started = time.perf_counter()
            summary = await processor.run_batch(batch_id, return_rows=False)
            seconds = time.perf_counter() - started
        finally:
            await processor.aclose()
    if summary["status"] != "completed":
        raise RuntimeError(f"the benchmark batch ended {summary['status']}: {summary}")
    return conversations / seconds


async def measure(conversations: int, repeats: int, with_ray: bool) -> dict[str, Any]:
    from conversation_engine.batch.executors.workers import WorkerExecutor

    executors: dict[str, Any] = {
        "1 process": lambda: None,
        "--workers 2": lambda: WorkerExecutor(2),
    }
    if with_ray:
        import ray

        from conversation_engine.batch.executors.ray import RayExecutor

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        executors["Ray, 2 CPUs"] = lambda: RayExecutor(workers=2)
    rates: dict[str, list[float]] = {name: [] for name in executors}
    try:
        for _ in range(repeats):  # interleaved, so that a slow spell hits every executor
            for name, make in executors.items():
                rates[name].append(await measure_one(make(), conversations))
    finally:
        if with_ray:
            ray.shutdown()
    base = common.median(rates["1 process"])
    return {
        "conversations": conversations,
        "concurrency": CONCURRENCY,
        "repeats": repeats,
        "executors": {
            name: {
                "conversations_per_second": common.spread(values),
                "ratio_to_one_process": round(common.median(values) / base, 3),
            }
            for name, values in rates.items()
        },
    }


def table(results: dict[str, Any]) -> str:
    rows = []
    for name, numbers in results["executors"].items():
        rate = numbers["conversations_per_second"]
        rows.append(
            (name, rate["median"], f"{rate['min']:.1f}–{rate['max']:.1f}",
             f"{numbers['ratio_to_one_process']:.2f}×")
        )  # fmt: skip
    return common.markdown_table(
        ("executor", "conversations/s (median)", "min–max", "vs 1 process"), rows
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(NAME, __doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--conversations", type=int, default=None, help="batch size")
    parser.add_argument("--repeats", type=int, default=3, help="runs per executor")
    parser.add_argument("--no-ray", action="store_true", help="leave Ray out")
    args = parser.parse_args(argv)
    conversations = args.conversations or (
        QUICK_CONVERSATIONS if args.quick else FULL_CONVERSATIONS
    )
    from conversation_engine.batch.executors.ray import ray_available

    with_ray = not args.no_ray and ray_available()
    results = common.run(lambda: measure(conversations, args.repeats, with_ray))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Scale out: conversations per second", table(results), path)
    return results


if __name__ == "__main__":
    main()
