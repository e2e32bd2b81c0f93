"""Does a batch's memory grow with its size? RSS at 10 %, 50 % and 100 % of 20,000 conversations.

The shipped scenarios, cycled (each with its own name and `SEED`), run through the
`BatchProcessor` at 64 in flight on the simulated LLM at zero latency, evaluation off, rows
written to a temporary directory, as `conversation-engine batch` runs them (`return_rows=False`:
the rows stay in the store). The process's RSS is read when 10 %, 50 % and 100 % of the rows
are written (no garbage collection forced: what the process holds), and once more after
`run_batch` returned (the exports, `results.csv`, `results.json` and `summary.json`, are
written by then, from the store).

`growth_10_100_mb` is RSS at 100 % minus RSS at 10 %: what the last 90 % of the batch added.
A processor that kept every row would add them all (about 19 KB per AutoGen conversation).
The script uses the public `BatchProcessor` API only, so the same file measures an older
checkout (`PYTHONPATH=<checkout> python -m benchmarks.batch_memory`); `return_rows` is passed
only where `run_batch` has it.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks import _common as common
from benchmarks.batch_scale import scenarios

NAME = "batch_memory"
FULL_SIZE = 20_000
QUICK_SIZE = 600
MARKS = (10, 50, 100)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def measure(size: int, *, engine: str, concurrency: int, latency_ms: float) -> dict[str, Any]:
    from conversation_engine.batch import BatchProcessor

    # AutoGen logs nothing useful here, and a cancelled run would log tracebacks.
    logging.getLogger("autogen_core").setLevel(logging.CRITICAL)
    wrapper = common.simulated_wrapper(latency_ms)
    marks: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="batch-memory-") as tmp:
        processor = BatchProcessor(
            wrapper, concurrency, engine=engine, output_dir=tmp, evaluate=False
        )
        batch_id = processor.create_batch_job(scenarios(size), prompt_spec_name=common.DEFAULT_SPEC)
        common.settle()
        baseline = rss_mb()
        started = time.perf_counter()
        # A progress event's count may have moved on by a few rows when it arrives (the row's
        # status save is awaited first): each mark is read at the first event at or past it.
        pending = [(round(size * mark / 100), mark) for mark in MARKS]

        def on_progress(event: Any) -> None:
            while event.row is not None and pending and event.done >= pending[0][0]:
                _, mark = pending.pop(0)
                marks[f"{mark}%"] = {
                    "rows": event.done,
                    "rss_mb": round(rss_mb(), 1),
                    "seconds": round(time.perf_counter() - started, 1),
                }

        options: dict[str, Any] = {"on_progress": on_progress}
        if "return_rows" in inspect.signature(processor.run_batch).parameters:
            options["return_rows"] = False
        try:
            outcome = await processor.run_batch(batch_id, **options)
        finally:
            await wrapper.aclose()
        after_exports = rss_mb()
        seconds = time.perf_counter() - started
        results_bytes = (Path(tmp) / batch_id / "results.ndjson").stat().st_size
    growth = marks["100%"]["rss_mb"] - marks["10%"]["rss_mb"]
    return {
        "conversations": size,
        "engine": engine,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "status": outcome["status"],
        "completed": outcome["successful_scenarios"] + outcome["failed_scenarios"],
        "seconds": round(seconds, 1),
        "rows_per_s": round(size / seconds, 2),
        "results_ndjson_mb": round(results_bytes / 2**20, 1),
        "baseline_rss_mb": round(baseline, 1),
        "rss": marks,
        "rss_after_run_batch_mb": round(after_exports, 1),
        "growth_10_100_mb": round(growth, 1),
        "growth_per_1000_rows_mb": round(
            1000 * growth / (marks["100%"]["rows"] - marks["10%"]["rows"]), 3
        ),
        "target_growth_mb": 30,
        "target_met": growth <= 30,
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        [mark, values["rows"], values["rss_mb"], values["seconds"]]
        for mark, values in results["rss"].items()
    ]
    rows.append(
        [
            "after run_batch (exports written)",
            results["completed"],
            results["rss_after_run_batch_mb"],
            results["seconds"],
        ]
    )
    footer = (
        f"\n\n{results['engine']}, {results['concurrency']} in flight, "
        f"{results['conversations']} conversations, {results['rows_per_s']} rows/s, "
        f"results.ndjson {results['results_ndjson_mb']} MB, baseline RSS "
        f"{results['baseline_rss_mb']} MB. RSS growth from 10 % to 100 %: "
        f"**{results['growth_10_100_mb']} MB** (target ≤ 30 MB: "
        f"{'met' if results['target_met'] else 'missed'})."
    )
    return common.markdown_table(["rows written", "rows", "RSS MB", "seconds"], rows) + footer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(NAME, __doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--engine", default="autogen", help="autogen, legacy or pkg.mod:Class")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="model latency")
    args = parser.parse_args(argv)
    size = args.conversations or (QUICK_SIZE if args.quick else FULL_SIZE)
    results = common.run(
        lambda: measure(
            size, engine=args.engine, concurrency=args.concurrency, latency_ms=args.latency_ms
        )
    )
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    common.report("Batch memory: RSS as a batch runs", table(results), path)
    return results


if __name__ == "__main__":
    main()
