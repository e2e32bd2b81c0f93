"""Fault sweep: many generated malformed replies through both engines and a batch.

The same property as `tests/reliability/test_generated_faults.py` (a contract-valid result
within the deadline plus a small margin on both engines, the same status and `error_type` on
both for a fault that hits every call of its role, a written batch row), over many more
examples and with the `hang` class (a reply that never ends) included. Faults are counted per
class and role, with the statuses each engine ended in; every example that breaks the
property is listed with the fault that did it.

    python -m benchmarks.fault_sweep                 # 200 examples
    python -m benchmarks.fault_sweep --examples 2000 --seed 7 --out sweep.json

Run it from the repository root (it uses the strategies in `tests/reliability`). Exits 1 when
an example broke the property.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st


def _sweep(examples: int, seed_value: int, batch_every: int) -> dict[str, Any]:
    from conversation_engine.cli.logs import route_autogen_runtime_logs
    from tests.reliability.generated_faults import (
        ENGINES,
        DrawnFault,
        ExampleHung,
        batch_problems,
        batch_rows,
        conversation_problems,
        drawn_faults,
        in_fresh_loop,
        observe,
    )

    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    broken: list[dict[str, Any]] = []
    noise: Counter[str] = Counter()
    count = 0

    class CountNoise(logging.Handler):
        """Counts what would reach stderr beyond the one line per failed conversation."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING and not record.name.startswith(
                "conversation_engine"
            ):
                noise[f"log {record.name} {record.levelname}: {record.getMessage()[:60]}"] += 1

    route_autogen_runtime_logs(debug=False)  # as the command line does
    from conversation_engine.engines.autogen.engine import silence_handled_autogen_warnings

    counter = CountNoise()
    logging.getLogger().addHandler(counter)

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fault=drawn_faults(include_hangs=True), batch_engine=st.sampled_from(ENGINES))
    def one(fault: DrawnFault, batch_engine: str) -> None:
        nonlocal count
        count += 1

        async def both() -> list[Any]:
            return [await observe(engine, fault) for engine in ENGINES]

        tally = per_class[fault.label]
        tally["examples"] += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            silence_handled_autogen_warnings()  # as in a real process
            try:
                observations = in_fresh_loop(both)
            except ExampleHung as hung:
                tally["broken"] += 1
                broken.append({"fault": repr(fault)[:2000], "problems": [str(hung)]})
                return
        for warning in caught:
            noise[f"warning {warning.category.__name__}: {str(warning.message)[:160]}"] += 1
        problems = conversation_problems(fault, observations)
        for seen in observations:
            tally[f"{seen.engine}:{seen.status}"] += 1
        if batch_every and count % batch_every == 0:
            with tempfile.TemporaryDirectory() as out:
                try:
                    rows = in_fresh_loop(lambda: batch_rows(fault, batch_engine, Path(out)))
                    problems += batch_problems(rows)
                except ExampleHung as hung:
                    problems.append(f"the batch: {hung}")
            tally["batches"] += 1
        if problems:
            tally["broken"] += 1
            broken.append({"fault": repr(fault)[:2000], "problems": problems})

    started = time.monotonic()
    try:
        one()
    finally:
        logging.getLogger().removeHandler(counter)
    return {
        "examples": count,
        "seed": seed_value,
        "seconds": round(time.monotonic() - started, 1),
        "per_class": {label: dict(tally) for label, tally in sorted(per_class.items())},
        "broken": broken,
        "noise": dict(noise.most_common()),
    }


def table(results: dict[str, Any]) -> str:
    statuses = sorted(
        {key for tally in results["per_class"].values() for key in tally if ":" in key}
    )
    header = ["fault/role", "examples", "broken", "batches", *statuses]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, tally in results["per_class"].items():
        cells = [label, *(str(tally.get(key, 0)) for key in header[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="examples to draw")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    parser.add_argument(
        "--batch-every", type=int, default=5, help="run the batch check every N examples (0: never)"
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` prints every thread's stack
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    # An evaluator that never answers must not hold the sweep for the default two minutes.
    os.environ.setdefault("EVAL_TIMEOUT_SEC", "4")
    logging.getLogger().setLevel(logging.WARNING)
    logging.lastResort = None  # the sweep counts log records instead of printing them
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    results = _sweep(args.examples, args.seed, args.batch_every)
    print(table(results))
    print(f"\n{results['examples']} examples in {results['seconds']} s; ", end="")
    print(f"{len(results['broken'])} broke the property.")
    for item in results["broken"][:20]:
        print(f"- {item['problems']}\n  {item['fault'][:300]}")
    if results["noise"]:
        print("\nWhat reached the logs or warnings besides the one line per failed conversation:")
        for what, times in list(results["noise"].items())[:20]:
            print(f"- {times} x {what}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=True), encoding="utf-8")
    return 1 if results["broken"] else 0


if __name__ == "__main__":
    sys.exit(main())
