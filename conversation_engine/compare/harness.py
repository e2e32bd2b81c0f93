"""The A/B harness: the same scenarios, with the same seeds, through two engines.

Each engine runs as an ordinary batch (`BatchProcessor`), one after the other so that neither
slows the other down and wall times compare; both batches are kept under `<out>/batches/`.
Both engines and the spec are validated before either batch starts (`check_comparison` does
the same checks on their own, for a caller that wants to fail before showing anything). The
rows are then paired and analysed (`analysis.compare_rows`) and the reports written
(`report.write_reports`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversation_engine.batch import BatchProcessor, BatchProgress
from conversation_engine.compare.analysis import BootstrapSettings, Comparison, compare_rows
from conversation_engine.compare.report import write_reports
from conversation_engine.core.errors import ResultsWriteError
from conversation_engine.engines import resolve_engine
from conversation_engine.inputs.scenario import Scenario, check_variables
from conversation_engine.inputs.specs import load_prompt_spec

BATCHES_DIR = "batches"

ProgressListener = Callable[[str, BatchProgress], Any]
"""`(side, event)` with side `"a"` or `"b"`."""


@dataclass
class EngineRun:
    """One side of the comparison: its batch and rows."""

    label: str
    batch_id: str
    batch_dir: str
    rows: list[dict[str, Any]]
    wall_seconds: float
    status: str


@dataclass
class ComparisonRun:
    """What `run_comparison` produced: the analysis, both runs and the report files."""

    comparison: Comparison
    a: EngineRun
    b: EngineRun
    paths: dict[str, Path] = field(default_factory=dict)


def check_comparison(
    scenarios: Sequence[Scenario],
    *,
    engine_a: str,
    engine_b: str,
    spec: str,
    source: str | Path | None = None,
) -> None:
    """Raise `UserInputError` if either engine cannot be resolved, the spec cannot be loaded
    or a scenario's variables cannot render it, without running or writing anything.

    `run_comparison` makes these checks too; a caller uses this to fail before it shows
    progress. `source` (the scenario file) names where a bad scenario came from.
    """
    resolve_engine(engine_a)
    resolve_engine(engine_b)
    check_variables(load_prompt_spec(spec), scenarios, source=source)


def _labels(label_a: str, label_b: str) -> tuple[str, str]:
    # The same engine on both sides (an A/A test) still needs two names in the report.
    if label_a == label_b:
        return f"{label_a} (A)", f"{label_b} (B)"
    return label_a, label_b


async def run_comparison(
    scenarios: Sequence[Scenario | dict[str, Any]],
    *,
    engine_a: str = "legacy",
    engine_b: str = "autogen",
    spec: str = "multiagent_prompts",
    repeat: int = 1,
    out_dir: Path,
    pass_threshold: float = 3,
    max_turns: int | None = None,
    timeout_sec: float | None = None,
    concurrency: int | None = None,
    use_tools: bool = True,
    openai_wrapper: Any = None,
    bootstrap: BootstrapSettings | None = None,
    scenarios_file: str | None = None,
    on_progress: ProgressListener | None = None,
    tool_backend: Any = None,
) -> ComparisonRun:
    """Run both engines over `scenarios` × `repeat` and write the comparison to `out_dir`.

    Raises `UserInputError` before running anything if an engine, the spec, a scenario or
    `out_dir` is bad, and `ResultsWriteError` (or the `OSError` of a report file) if results
    cannot be written (a full disk). Cancelling the calling task cancels the batch in flight
    (its rows so far are kept).
    """
    out_dir = Path(out_dir)
    processors: dict[str, BatchProcessor] = {}
    runs: dict[str, EngineRun] = {}
    try:
        # Both engines are resolved before either batch job is saved.
        for side, engine in (("a", engine_a), ("b", engine_b)):
            processors[side] = BatchProcessor(
                openai_wrapper,
                concurrency,
                engine=engine,
                output_dir=out_dir / BATCHES_DIR,
                max_turns=max_turns,
                timeout_sec=timeout_sec,
                tool_backend=tool_backend,
                evaluate=True,
            )
        batch_ids = {
            side: processor.create_batch_job(
                scenarios,
                prompt_version=f"compare:{side}",
                use_tools=use_tools,
                prompt_spec_name=spec,
                repeat=repeat,
                source=scenarios_file,
            )
            for side, processor in processors.items()
        }
        label_a, label_b = _labels(processors["a"].engine, processors["b"].engine)
        for side, label in (("a", label_a), ("b", label_b)):
            processor = processors[side]

            def listener(event: BatchProgress, side: str = side) -> Any:
                return on_progress(side, event) if on_progress is not None else None

            started = time.monotonic()
            summary = await processor.run_batch(batch_ids[side], on_progress=listener)
            if summary["status"] == "failed":  # its results could not be written (a full disk)
                raise ResultsWriteError(
                    f"Engine {side.upper()}'s batch {summary['batch_id']} stopped: "
                    f"{summary.get('error')} No report was written; the finished conversations "
                    f"are in {summary['output_dir']}."
                )
            runs[side] = EngineRun(
                label=label,
                batch_id=batch_ids[side],
                batch_dir=summary["output_dir"],
                rows=summary["results"],
                wall_seconds=round(time.monotonic() - started, 3),
                status=summary["status"],
            )
    finally:
        for processor in processors.values():
            await processor.aclose()
    names = [
        item.name if isinstance(item, Scenario) else str(item.get("name", "")) for item in scenarios
    ]
    comparison = compare_rows(
        runs["a"].rows,
        runs["b"].rows,
        label_a=label_a,
        label_b=label_b,
        pass_threshold=pass_threshold,
        repeat=repeat,
        bootstrap=bootstrap,
        scenario_names=names,
        extra_a=_extra(runs["a"]),
        extra_b=_extra(runs["b"]),
        spec=spec,
        scenarios_file=scenarios_file,
        use_tools=use_tools,
    )
    paths = write_reports(comparison, runs["a"].rows, runs["b"].rows, out_dir)
    return ComparisonRun(comparison=comparison, a=runs["a"], b=runs["b"], paths=paths)


def _extra(run: EngineRun) -> dict[str, Any]:
    return {"batch_id": run.batch_id, "batch_dir": run.batch_dir, "wall_seconds": run.wall_seconds}
