"""Does a conversation cost more in a big batch? Rows per second at 2,000 and 100,000 scenarios.

The same conversations (the shipped scenarios, cycled, each with its own name and `SEED`) run
through the `BatchProcessor` on the simulated LLM, evaluation off, rows written to a
temporary directory, for each batch size. Only the first `--rows` rows are measured, then the
batch is cancelled: the question is the cost per conversation while the batch runs, not
finishing 100,000 conversations.

* `rows_per_s`: finished rows per second between the first `--warm-up` rows and the last
  measured one (the warm-up covers imports and the first engine calls);
* `create_s`: `create_batch_job` (validation and the files written once);
* `status_file_bytes`: `batch.json` while the batch runs, `scenarios_file_bytes` the scenarios
  beside it (absent where the scenarios live inside `batch.json`);
* `loop_stall_max_s`: the longest the event loop stood still (a 10 ms ticker's worst gap);
* `tasks_peak`: asyncio tasks alive at once during the measured rows.

`ratio` is `rows_per_s` at the largest size over the smallest: 1.0 means the batch size costs
nothing per conversation. The script uses the public `BatchProcessor` API only, so the same
file measures an older checkout (`PYTHONPATH=<checkout> python -m benchmarks.batch_scale`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "batch_scale"
FULL_SIZES = (2000, 100_000)
QUICK_SIZES = (200, 2000)


def scenarios(count: int) -> list[dict[str, Any]]:
    base = common.shipped_scenarios()
    items = []
    for index, scenario in enumerate(common.cycled(base, count)):
        variables = {**scenario["variables"], "SEED": 1000 + index}
        items.append({**scenario, "name": f"{scenario['name']} #{index}", "variables": variables})
    return items


async def measure_one(
    size: int,
    *,
    rows: int,
    warm_up: int,
    engine: str,
    concurrency: int,
    latency_ms: float,
    max_seconds: float,
) -> dict[str, Any]:
    from conversation_engine.batch import BatchProcessor

    wrapper = common.simulated_wrapper(latency_ms)
    with tempfile.TemporaryDirectory(prefix="batch-scale-") as tmp:
        processor = BatchProcessor(
            wrapper, concurrency, engine=engine, output_dir=tmp, evaluate=False
        )
        items = scenarios(size)
        started = time.perf_counter()
        batch_id = processor.create_batch_job(items, prompt_spec_name=common.DEFAULT_SPEC)
        create_s = time.perf_counter() - started
        del items
        batch_dir = Path(tmp) / batch_id
        finished: list[float] = []
        tasks_peak = 0
        stalls: list[float] = []
        running = True

        async def ticker() -> None:
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                stalls.append(now - last - 0.01)
                last = now

        def on_progress(event: Any) -> None:
            nonlocal tasks_peak
            tasks_peak = max(tasks_peak, len(asyncio.all_tasks()))
            if event.row is None:
                return
            finished.append(time.perf_counter())
            out_of_time = time.perf_counter() - started > max_seconds
            if len(finished) >= rows or out_of_time:
                processor.cancel_batch(batch_id, "measured enough rows")

        ticking = asyncio.create_task(ticker())
        status_bytes = (batch_dir / "batch.json").stat().st_size
        run_started = time.perf_counter()
        try:
            await processor.run_batch(batch_id, on_progress=on_progress)
        finally:
            running = False
            await ticking
            await wrapper.aclose()
        status_bytes = max(status_bytes, (batch_dir / "batch.json").stat().st_size)
        scenarios_file = batch_dir / "scenarios.json"
        window = finished[warm_up - 1 :] if len(finished) > warm_up else finished
        span = window[-1] - window[0] if len(window) > 1 else float("nan")
        return {
            "scenarios": size,
            "engine": engine,
            "concurrency": concurrency,
            "latency_ms": latency_ms,
            "rows_measured": len(window) - 1,
            "rows_per_s": round((len(window) - 1) / span, 3) if span == span else None,
            "first_row_s": round(finished[0] - run_started, 3) if finished else None,
            "create_s": round(create_s, 3),
            "status_file_bytes": status_bytes,
            "scenarios_file_bytes": (
                scenarios_file.stat().st_size if scenarios_file.exists() else None
            ),
            "loop_stall_max_s": round(max(stalls, default=0.0), 3),
            "tasks_peak": tasks_peak,
        }


async def measure(
    sizes: tuple[int, ...],
    *,
    rows: int,
    warm_up: int,
    engine: str,
    concurrency: int,
    latency_ms: float,
    max_seconds: float,
) -> dict[str, Any]:
    # Cancelling the batch after the measured rows makes AutoGen's runtime log each cancelled
    # call with a traceback; that is not part of the measurement.
    for name in ("autogen_core", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    runs = []
    for size in sizes:
        common.settle()
        runs.append(
            await measure_one(
                size,
                rows=rows,
                warm_up=warm_up,
                engine=engine,
                concurrency=concurrency,
                latency_ms=latency_ms,
                max_seconds=max_seconds,
            )
        )
    smallest, largest = runs[0]["rows_per_s"], runs[-1]["rows_per_s"]
    ratio = round(largest / smallest, 3) if smallest and largest else None
    return {"runs": runs, "ratio_largest_smallest": ratio}


def table(results: dict[str, Any]) -> str:
    rows = [
        [
            run["scenarios"],
            run["rows_measured"],
            run["rows_per_s"],
            run["create_s"],
            run["status_file_bytes"],
            run["scenarios_file_bytes"] if run["scenarios_file_bytes"] is not None else "–",
            run["loop_stall_max_s"],
            run["tasks_peak"],
        ]
        for run in results["runs"]
    ]
    headers = [
        "scenarios",
        "rows measured",
        "rows/s",
        "create s",
        "batch.json bytes",
        "scenarios.json bytes",
        "worst loop stall s",
        "peak tasks",
    ]
    footer = (
        f"\n\nrows/s at the largest size / at the smallest: {results['ratio_largest_smallest']}"
    )
    return common.markdown_table(headers, rows) + footer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(NAME, __doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="batch sizes")
    parser.add_argument("--rows", type=int, default=None, help="rows measured per size")
    parser.add_argument("--warm-up", type=int, default=10, help="rows left out at the start")
    parser.add_argument("--engine", default="autogen", help="autogen, legacy or pkg.mod:Class")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="model latency")
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="stop measuring a size after this"
    )
    args = parser.parse_args(argv)
    sizes = tuple(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))
    rows = args.rows or (40 if args.quick else 300)
    results = common.run(
        lambda: measure(
            sizes,
            rows=rows,
            warm_up=min(args.warm_up, max(1, rows // 4)),
            engine=args.engine,
            concurrency=args.concurrency,
            latency_ms=args.latency_ms,
            max_seconds=args.max_seconds,
        )
    )
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Batch size and cost per conversation", table(results), path)
    return results


if __name__ == "__main__":
    main()
