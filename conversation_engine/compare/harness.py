"""The A/B harness: the same scenarios, with the same seeds, through two engines.

Each engine runs as an ordinary durable batch (`BatchProcessor`), both kept under
`<out>/batches/`, but the two batches run as one (`batch.schedule`): their runs start in one
order drawn from the seed, each scenario-trial's two runs back to back, A first in half of the
pairs and B first in the other half, on one shared set of `concurrency` slots. Warm-up, drift
and load then fall on both sides alike and cancel in the paired differences.

`<out>/compare.json` records how the comparison was started (engines, spec, trials, seed,
batches) before anything runs, so an interrupted comparison is finished by
`resume_comparison`, which runs each missing (scenario, trial, side) exactly once. Both
engines and the spec are validated before either batch starts (`check_comparison` makes the
same checks on their own). The rows are then paired and analysed (`analysis.compare_rows`)
and the reports written (`report.write_reports`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from conversation_engine.batch import BatchProcessor, BatchProgress, RowKey
from conversation_engine.batch.schedule import SharedSchedule, interleaved_order
from conversation_engine.compare.analysis import (
    BootstrapSettings,
    Comparison,
    EndpointInfo,
    compare_rows,
)
from conversation_engine.compare.report import write_reports
from conversation_engine.core._output import replace_file
from conversation_engine.core.errors import ResultsWriteError, UserInputError
from conversation_engine.engines import resolve_engine
from conversation_engine.inputs.scenario import Scenario, check_variables
from conversation_engine.inputs.specs import load_prompt_spec

BATCHES_DIR = "batches"
JOB_FILE = "compare.json"
SIDES = ("a", "b")

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


class ComparisonJob(BaseModel):
    """How a comparison was started, saved as `compare.json` before anything runs."""

    version: int = 1
    engine_a: str
    engine_b: str
    spec: str
    scenario_count: int
    repeat: int
    pass_threshold: float
    max_turns: int | None = None
    timeout_sec: float | None = None
    concurrency: int
    use_tools: bool = True
    bootstrap: BootstrapSettings
    scenarios_file: str | None = None
    batch_ids: dict[str, str]
    """The batch of each side (`a`, `b`) under `<out>/batches/`."""

    @property
    def order_seed(self) -> int:
        """The seed of the run order: the comparison's seed, as for its statistics."""
        return self.bootstrap.seed


def load_comparison_job(out_dir: Path) -> ComparisonJob:
    """The `compare.json` of the comparison in `out_dir`; a `UserInputError` naming what is
    wrong when there is none or it cannot be read."""
    path = Path(out_dir) / JOB_FILE
    try:
        return ComparisonJob.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise UserInputError(
            f"'{out_dir}' holds no comparison to resume (no {JOB_FILE}); give the folder a "
            "compare run wrote."
        ) from None
    except (OSError, ValidationError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a comparison job"
        raise UserInputError(f"'{path}' cannot be read ({reason}).") from None


def check_resume_options(job: ComparisonJob, **given: Any) -> None:
    """A resumed comparison keeps what it was started with: refuse scenarios or options that
    say otherwise (`scenarios`, `engine_a`, `engine_b`, `spec`, `repeat`, `max_turns`,
    `timeout`, `basic`; None or False means not given)."""
    started = {
        "engine_a": ("--a", job.engine_a),
        "engine_b": ("--b", job.engine_b),
        "spec": ("--spec", job.spec),
        "repeat": ("--repeat", job.repeat),
        "max_turns": ("--max-turns", job.max_turns),
        "timeout": ("--timeout", job.timeout_sec),
    }
    conflicts = [
        f"{option} {given[key]} (the comparison has {value})"
        for key, (option, value) in started.items()
        if given.get(key) is not None and given[key] != value
    ]
    if given.get("basic") and job.use_tools:
        conflicts.append("--basic (the comparison runs in tools mode)")
    if given.get("scenarios") is not None:
        conflicts.append("the SCENARIOS argument (the comparison keeps its own)")
    if conflicts:
        raise UserInputError(
            "--resume finishes the comparison with what it was started with; drop "
            f"{', '.join(conflicts)}."
        )


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
    cannot be written (a full disk). Cancelling the calling task cancels the batches in
    flight; their rows so far are kept and `resume_comparison(out_dir)` finishes the rest.
    """
    out_dir = Path(out_dir)
    bootstrap = bootstrap or BootstrapSettings()
    processors = _processors(
        openai_wrapper,
        (engine_a, engine_b),
        out_dir,
        concurrency,
        max_turns,
        timeout_sec,
        tool_backend,
    )
    try:
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
        job = ComparisonJob(
            engine_a=engine_a,
            engine_b=engine_b,
            spec=spec,
            scenario_count=len(scenarios),
            repeat=repeat,
            pass_threshold=pass_threshold,
            max_turns=max_turns,
            timeout_sec=timeout_sec,
            concurrency=processors["a"].concurrency,
            use_tools=use_tools,
            bootstrap=bootstrap,
            scenarios_file=scenarios_file,
            batch_ids=batch_ids,
        )
        _save_job(out_dir, job)
        return await _run(job, processors, out_dir, on_progress, resume=False)
    finally:
        for processor in processors.values():
            await processor.aclose()


async def resume_comparison(
    out_dir: Path,
    *,
    openai_wrapper: Any = None,
    on_progress: ProgressListener | None = None,
    tool_backend: Any = None,
) -> ComparisonRun:
    """Finish the interrupted comparison in `out_dir` and write its reports.

    Its engines, spec, trials, seed and settings are those `compare.json` recorded; each
    (scenario, trial, side) without a row runs once, in the same interleaved order, and the
    rows already written are kept. A finished comparison just gets its reports again.
    """
    out_dir = Path(out_dir)
    job = load_comparison_job(out_dir)
    processors = _processors(
        openai_wrapper,
        (job.engine_a, job.engine_b),
        out_dir,
        job.concurrency,
        job.max_turns,
        job.timeout_sec,
        tool_backend,
    )
    try:
        return await _run(job, processors, out_dir, on_progress, resume=True)
    finally:
        for processor in processors.values():
            await processor.aclose()


def _processors(
    openai_wrapper: Any,
    engines: tuple[str, str],
    out_dir: Path,
    concurrency: int | None,
    max_turns: int | None,
    timeout_sec: float | None,
    tool_backend: Any,
) -> dict[str, BatchProcessor]:
    """One processor per side; both engines are resolved before either batch is saved."""
    return {
        side: BatchProcessor(
            openai_wrapper,
            concurrency,
            engine=engine,
            output_dir=out_dir / BATCHES_DIR,
            max_turns=max_turns,
            timeout_sec=timeout_sec,
            tool_backend=tool_backend,
            evaluate=True,
        )
        for side, engine in zip(SIDES, engines, strict=True)
    }


def _save_job(out_dir: Path, job: ComparisonJob) -> None:
    try:
        replace_file(out_dir / JOB_FILE, job.model_dump_json(indent=2))
    except OSError as error:
        raise ResultsWriteError(
            f"The comparison could not be started: '{out_dir / JOB_FILE}' cannot be written "
            f"({error.strerror or error})."
        ) from None


async def _run(
    job: ComparisonJob,
    processors: dict[str, BatchProcessor],
    out_dir: Path,
    on_progress: ProgressListener | None,
    *,
    resume: bool,
) -> ComparisonRun:
    """Both sides' batches in one interleaved schedule, then the analysis and the reports."""
    scenarios = processors["a"].storage.load_scenarios(job.batch_ids["a"])
    keys = [RowKey(index, trial) for index in range(len(scenarios)) for trial in range(job.repeat)]
    schedule = SharedSchedule(interleaved_order(keys, SIDES, job.order_seed), job.concurrency)
    started = time.monotonic()
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {
                side: group.create_task(
                    _run_side(processor, job.batch_ids[side], schedule, side, on_progress, resume)
                )
                for side, processor in processors.items()
            }
    except BaseExceptionGroup as group_error:
        # One side's failure stopped both; report it as itself, not as a group.
        raise group_error.exceptions[0] from None
    wall_seconds = round(time.monotonic() - started, 3)
    label_a, label_b = _labels(processors["a"].engine, processors["b"].engine)
    runs: dict[str, EngineRun] = {}
    for (side, task), label in zip(tasks.items(), (label_a, label_b), strict=True):
        summary = task.result()
        if summary["status"] == "failed":  # its results could not be written (a full disk)
            raise ResultsWriteError(
                f"Engine {side.upper()}'s batch {summary['batch_id']} stopped: "
                f"{summary.get('error')} No report was written; the finished conversations "
                f"are in {summary['output_dir']}."
            )
        runs[side] = EngineRun(
            label=label,
            batch_id=job.batch_ids[side],
            batch_dir=f"{BATCHES_DIR}/{job.batch_ids[side]}",
            rows=summary["results"],
            wall_seconds=wall_seconds,
            status=summary["status"],
        )
    comparison = compare_rows(
        runs["a"].rows,
        runs["b"].rows,
        label_a=label_a,
        label_b=label_b,
        pass_threshold=job.pass_threshold,
        repeat=job.repeat,
        bootstrap=job.bootstrap,
        scenario_names=[str(item.get("name", "")) for item in scenarios],
        extra_a=_extra(runs["a"], processors["a"]),
        extra_b=_extra(runs["b"], processors["b"]),
        spec=job.spec,
        scenarios_file=job.scenarios_file,
        use_tools=job.use_tools,
    )
    paths = write_reports(comparison, runs["a"].rows, runs["b"].rows, out_dir)
    return ComparisonRun(comparison=comparison, a=runs["a"], b=runs["b"], paths=paths)


async def _run_side(
    processor: BatchProcessor,
    batch_id: str,
    schedule: SharedSchedule,
    side: str,
    on_progress: ProgressListener | None,
    resume: bool,
) -> dict[str, Any]:
    def listener(event: BatchProgress) -> Any:
        return on_progress(side, event) if on_progress is not None else None

    run = processor.resume_batch if resume else processor.run_batch
    return await run(batch_id, on_progress=listener, lane=schedule.lane(side))


def _extra(run: EngineRun, processor: BatchProcessor) -> dict[str, Any]:
    # Relative to the comparison's folder: a report names no path of the machine it ran on.
    return {
        "batch_id": run.batch_id,
        "batch_dir": run.batch_dir,
        "wall_seconds": run.wall_seconds,
        "endpoint": endpoint_info(processor.openai),
    }


SIMULATED_KIND = "simulated LLM (offline test double)"
ENDPOINT_KIND = "OpenAI-compatible endpoint"


def endpoint_info(wrapper: Any) -> EndpointInfo:
    """What the reports say about the endpoint an `OpenAIWrapper` talks to: its kind, the
    host of its base URL (no credentials, path or query: nothing secret) and its model."""
    simulated = bool(getattr(wrapper, "is_simulated", False))
    model = getattr(wrapper, "model", None)
    return EndpointInfo(
        kind=SIMULATED_KIND if simulated else ENDPOINT_KIND,
        host=url_host(getattr(wrapper, "base_url", None)),
        model=str(model) if model else None,
        simulated=simulated,
    )


def url_host(url: Any) -> str | None:
    """The host (with its port, if any) of `url`; None when there is none to tell."""
    if not url:
        return None
    text = str(url).strip()
    try:
        parts = urlsplit(text if "//" in text else f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a malformed port or IPv6 address: say nothing rather than leak
        return None
    if not host:
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{port}" if port else host
