"""One rate limit for a whole batch, over a minute: `--workers 2` against `RATE_LIMIT_RPM`.

A batch on two local worker processes runs against the simulated model served over HTTP,
with `RATE_LIMIT_RPM` set, for `--seconds` (longer than a minute, so that a whole minute is
seen once the batch is up to speed); then the batch is cancelled, as Ctrl-C would. The
server notes when each chat request arrives, whichever worker sent it. The report gives the
most requests in any sliding window of 60 s, 10 s and 1 s next to what the limit allows: a
window of `w` seconds may hold `rpm / 60 × w` requests, plus the one second of unused
capacity the limiter lets a batch start with (at 600 RPM a minute may hold 610, 1.7 % over
the limit); "holds" allows two requests more for the jitter between a grant and its
arrival at the server. Two workers each with a limit of its own would send twice as much.

    python -m benchmarks.shared_rate_limit            # 600 RPM for 75 s
    python -m benchmarks.shared_rate_limit --quick    # 600 RPM for 15 s (no whole minute)
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _common as common

NAME = "shared_rate_limit"
RPM = 600
FULL_SECONDS = 75.0
QUICK_SECONDS = 15.0
WORKERS = 2
CONCURRENCY = 32
#: Unused capacity the limiter lets a caller spend at once, in seconds of the limit.
BURST_SECONDS = 1.0
#: Requests a window may hold beyond that: arrivals at the server are stamped after the
#: grants crossed a pipe and a socket, and two grants apart can arrive closer together.
ARRIVAL_JITTER = 2
#: The issue's target: a minute holds at most this much over the limit.
MINUTE_TOLERANCE = 0.02
WINDOWS = (60.0, 10.0, 1.0)


async def measure(seconds: float, rpm: int) -> dict[str, Any]:
    from conversation_engine.batch import BatchProcessor
    from conversation_engine.batch.executors.workers import WorkerExecutor
    from conversation_engine.core.settings import Settings
    from conversation_engine.testing.simulated_llm import base_url, serving_in_background
    from conversation_engine.testing.simulated_llm.arrivals import (
        ArrivalsEndpoint,
        most_in_a_window,
    )

    endpoint = ArrivalsEndpoint()
    # More conversations than the limit lets through in `seconds`: the batch never runs dry.
    conversations = int(rpm / 60 * seconds) + CONCURRENCY
    with (
        serving_in_background(endpoint=endpoint) as server,
        tempfile.TemporaryDirectory(prefix="shared-limit-") as out,
    ):
        settings = Settings(
            OPENAI_API_KEY=None,
            OPENAI_BASE_URL=base_url(server),
            OPENAI_MODEL="simulated",
            RATE_LIMIT_RPM=rpm,
        )
        processor = BatchProcessor(
            None,
            CONCURRENCY,
            output_dir=Path(out),
            settings=settings,
            executor=WorkerExecutor(WORKERS),
        )
        try:
            batch_id = processor.create_batch_job(
                common.cycled(common.shipped_scenarios(), conversations),
                prompt_spec_name=common.DEFAULT_SPEC,
            )
            batch = asyncio.ensure_future(processor.run_batch(batch_id, return_rows=False))
            await asyncio.wait({batch}, timeout=seconds)
            batch.cancel()  # as Ctrl-C would
            with contextlib.suppress(asyncio.CancelledError):
                await batch
        finally:
            await processor.aclose()

    arrivals = endpoint.arrivals
    span = max(arrivals) - min(arrivals) if arrivals else 0.0
    per_second = rpm / 60
    windows = {}
    for window in WINDOWS:
        if window > span:
            continue  # a window longer than the run says nothing
        most = most_in_a_window(arrivals, window)
        allowed = per_second * (window + BURST_SECONDS)
        windows[f"{window:g} s"] = {
            "most_requests": most,
            "limit": round(per_second * window),
            "allowed_with_burst": round(allowed),
            "ratio_to_limit": round(most / (per_second * window), 4),
            "holds": most <= allowed + ARRIVAL_JITTER,
        }
    minute = windows.get("60 s")
    return {
        "rpm": rpm,
        "workers": WORKERS,
        "concurrency": CONCURRENCY,
        "seconds": seconds,
        "requests": len(arrivals),
        "span_seconds": round(span, 2),
        "rate_limited_429": endpoint.statuses.count(429),
        "windows": windows,
        "minute_within_2_percent": None
        if minute is None
        else minute["ratio_to_limit"] <= 1 + MINUTE_TOLERANCE,
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (window, numbers["most_requests"], numbers["limit"], numbers["allowed_with_burst"],
         f"{numbers['ratio_to_limit']:.3f}", "yes" if numbers["holds"] else "NO")
        for window, numbers in results["windows"].items()
    ]  # fmt: skip
    return common.markdown_table(
        ("window", "most requests", "limit", "limit + 1 s burst", "vs limit", "holds (± 2)"), rows
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(NAME, __doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--seconds", type=float, default=None, help="how long the batch runs")
    parser.add_argument("--rpm", type=int, default=RPM, help="the batch's RATE_LIMIT_RPM")
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else FULL_SECONDS)
    results = common.run(lambda: measure(seconds, args.rpm))
    path = common.write_results(NAME, results, quick=args.quick, out=args.out)
    title = (
        f"Shared rate limit: {results['workers']} workers, {results['rpm']} RPM, "
        f"{results['requests']} requests over {results['span_seconds']} s"
    )
    common.report(title, table(results), path)
    return results


if __name__ == "__main__":
    main()
