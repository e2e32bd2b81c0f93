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
from conversation_engine.compare.sides import (
    SideConfig,
    differing_fields,
    side_label,
    spec_diff,
)
from conversation_engine.core._output import replace_file
from conversation_engine.core.errors import ResultsWriteError, UserInputError
from conversation_engine.engines import resolve_engine
from conversation_engine.inputs.scenario import Scenario, check_variables
from conversation_engine.inputs.specs import load_prompt_spec
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.observability.budget import Budget, BudgetReachedError

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
    engine_a: str = "legacy",
    engine_b: str = "autogen",
    spec: str = "multiagent_prompts",
    source: str | Path | None = None,
    side_a: SideConfig | None = None,
    side_b: SideConfig | None = None,
) -> None:
    """Raise `UserInputError` if either side's engine cannot be resolved, its spec cannot be
    loaded or a scenario's variables cannot render it, without running or writing anything.

    The sides are `side_a`/`side_b`, or else `engine_a`/`engine_b` on `spec`. `run_comparison`
    makes these checks too; a caller uses this to fail before it shows progress. `source`
    (the scenario file) names where a bad scenario came from.
    """
    for side in _sides(engine_a, engine_b, spec, side_a, side_b).values():
        resolve_engine(side.engine)
        check_variables(load_prompt_spec(side.spec), scenarios, source=source)


def _sides(
    engine_a: str,
    engine_b: str,
    spec: str,
    side_a: SideConfig | None,
    side_b: SideConfig | None,
) -> dict[str, SideConfig]:
    return {
        "a": side_a or SideConfig(engine=engine_a, spec=spec),
        "b": side_b or SideConfig(engine=engine_b, spec=spec),
    }


class ComparisonJob(BaseModel):
    """How a comparison was started, saved as `compare.json` before anything runs."""

    version: int = 2
    a: SideConfig
    b: SideConfig
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
    def sides(self) -> dict[str, SideConfig]:
        return {"a": self.a, "b": self.b}

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
    `timeout`, `basic`; None or False means not given; `side_options`: the per-side options
    given, by name)."""
    started = {
        "engine_a": ("--a", job.a.engine),
        "engine_b": ("--b", job.b.engine),
        "spec": ("--spec", job.a.spec),
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
    conflicts.extend(
        f"{option} (the comparison keeps its sides)" for option in given.get("side_options") or []
    )
    if conflicts:
        raise UserInputError(
            "--resume finishes the comparison with what it was started with; drop "
            f"{', '.join(conflicts)}."
        )


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
    side_a: SideConfig | None = None,
    side_b: SideConfig | None = None,
    budget: Budget | None = None,
) -> ComparisonRun:
    """Run both sides over `scenarios` × `repeat` and write the comparison to `out_dir`.

    The sides are `side_a`/`side_b` (engine, spec, model, endpoint, tools each), or else
    `engine_a`/`engine_b` on `spec`. What a side leaves unset it shares: `openai_wrapper`
    (default: the configured endpoint) and `tool_backend`. The customer and the evaluator run
    on the shared endpoint with side A's spec, on both sides.

    Raises `UserInputError` before running anything if an engine, the spec, a scenario or
    `out_dir` is bad, and `ResultsWriteError` (or the `OSError` of a report file) if results
    cannot be written (a full disk). Cancelling the calling task cancels the batches in
    flight; their rows so far are kept and `resume_comparison(out_dir)` finishes the rest.
    `budget`: one spending cap for both sides (agents, customer and evaluator); at the cap
    no run starts, those in flight finish, and `BudgetReachedError` says what ran (no report
    is written); `resume_comparison` with a higher cap finishes it.
    """
    out_dir = Path(out_dir)
    bootstrap = bootstrap or BootstrapSettings()
    sides = _sides(engine_a, engine_b, spec, side_a, side_b)
    shared = _Shared(openai_wrapper)
    processors = _processors(
        shared, sides, out_dir, concurrency, max_turns, timeout_sec, tool_backend, budget
    )
    try:
        batch_ids = {
            side: processor.create_batch_job(
                scenarios,
                prompt_version=f"compare:{side}",
                use_tools=use_tools,
                prompt_spec_name=sides[side].spec,
                repeat=repeat,
                source=scenarios_file,
            )
            for side, processor in processors.items()
        }
        job = ComparisonJob(
            a=sides["a"],
            b=sides["b"],
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
        return await _run(job, processors, shared, out_dir, on_progress, resume=False)
    finally:
        await shared.aclose(processors)


async def resume_comparison(
    out_dir: Path,
    *,
    openai_wrapper: Any = None,
    on_progress: ProgressListener | None = None,
    tool_backend: Any = None,
    budget: Budget | None = None,
) -> ComparisonRun:
    """Finish the interrupted comparison in `out_dir` and write its reports.

    Its engines, spec, trials, seed and settings are those `compare.json` recorded; each
    (scenario, trial, side) without a row runs once, in the same interleaved order, and the
    rows already written are kept. A finished comparison just gets its reports again.
    `budget`: as for `run_comparison`; it counts what the rows already written cost.
    """
    out_dir = Path(out_dir)
    job = load_comparison_job(out_dir)
    shared = _Shared(openai_wrapper)
    processors = _processors(
        shared,
        job.sides,
        out_dir,
        job.concurrency,
        job.max_turns,
        job.timeout_sec,
        tool_backend,
        budget,
    )
    try:
        return await _run(job, processors, shared, out_dir, on_progress, resume=True)
    finally:
        await shared.aclose(processors)


class _Shared:
    """The endpoint both sides share (the customer's and the evaluator's, and the bot's of a
    side that sets none of its own), and the endpoints made for sides that do."""

    def __init__(self, openai_wrapper: Any) -> None:
        self.owned = openai_wrapper is None
        self.endpoint: Any = openai_wrapper or OpenAIWrapper.from_settings()
        self.made: list[OpenAIWrapper] = []

    def for_side(self, side: SideConfig) -> Any:
        if not side.own_endpoint:
            return self.endpoint
        if not isinstance(self.endpoint, OpenAIWrapper):
            raise UserInputError(
                "A side with its own model, base URL, key or temperature needs the shared "
                "endpoint to be an OpenAIWrapper, not a host service's wrapper."
            )
        endpoint = side.endpoint(self.endpoint)
        self.made.append(endpoint)
        return endpoint

    async def aclose(self, processors: dict[str, BatchProcessor]) -> None:
        for processor in processors.values():
            await processor.aclose()
        for endpoint in self.made:
            await endpoint.aclose()
        if self.owned:
            await self.endpoint.aclose()


def _processors(
    shared: _Shared,
    sides: dict[str, SideConfig],
    out_dir: Path,
    concurrency: int | None,
    max_turns: int | None,
    timeout_sec: float | None,
    tool_backend: Any,
    budget: Budget | None = None,
) -> dict[str, BatchProcessor]:
    """One processor per side; both engines are resolved before either batch is saved.

    A side's bot runs on its own endpoint where it sets one; its customer and its evaluator
    always run on the shared endpoint with side A's spec. Both share `budget`: one cap.
    """
    baseline = sides["a"].spec
    processors = {}
    for side, config in sides.items():
        endpoint = shared.for_side(config)
        engine_options: dict[str, Any] = {}
        if endpoint is not shared.endpoint:
            engine_options["customer_endpoint"] = shared.endpoint
        if config.spec != baseline:
            engine_options["customer_spec"] = baseline
        processors[side] = BatchProcessor(
            endpoint,
            concurrency,
            engine=config.engine,
            output_dir=out_dir / BATCHES_DIR,
            max_turns=max_turns,
            timeout_sec=timeout_sec,
            tool_backend=config.tool_backend(tool_backend),
            evaluate=True,
            engine_options=engine_options,
            evaluator_endpoint=shared.endpoint,
            evaluator_spec=baseline if config.spec != baseline else None,
            side=side,
            budget=budget,
        )
    return processors


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
    shared: _Shared,
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
    _stop_if_over_budget(job, {side: task.result() for side, task in tasks.items()}, out_dir)
    label_a, label_b = side_label(job.a, job.b, "A"), side_label(job.b, job.a, "B")
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
            rows=await _stored_rows(processors[side], job.batch_ids[side]),
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
        spec=job.a.spec,
        scenarios_file=job.scenarios_file,
        use_tools=job.use_tools,
        **_configuration(job, processors, shared),
    )
    paths = write_reports(comparison, runs["a"].rows, runs["b"].rows, out_dir)
    return ComparisonRun(comparison=comparison, a=runs["a"], b=runs["b"], paths=paths)


def _stop_if_over_budget(
    job: ComparisonJob, summaries: dict[str, dict[str, Any]], out_dir: Path
) -> None:
    """`BudgetReachedError` when the cap left either side's batch unfinished: paired
    differences of a part of the runs would mislead, so no report is written."""
    stopped = [
        s
        for s in summaries.values()
        if s["status"] == "cancelled" and s.get("budget", {}).get("reached")
    ]
    if not stopped:
        return
    budget = stopped[0]["budget"]
    done = sum(s["successful_scenarios"] + s["failed_scenarios"] for s in summaries.values())
    total = 2 * job.scenario_count * job.repeat
    raise BudgetReachedError(
        f"Budget reached: ${budget['spent_usd']:.4f} spent of ${budget['cap_usd']:.4f} "
        f"(estimated); {done} of {total} conversations finished and are kept in "
        f"{Path(out_dir) / BATCHES_DIR}; no report was written. resume_comparison() with a "
        "higher cap finishes it.",
        budget,
        done=done,
        total=total,
    )


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
    # No rows are held while the batches run; they are read back from the store for the
    # analysis once both are done (`_stored_rows`).
    return await run(batch_id, on_progress=listener, lane=schedule.lane(side), return_rows=False)


async def _stored_rows(processor: BatchProcessor, batch_id: str) -> list[dict[str, Any]]:
    """A finished side's rows, in scenario and trial order, read from its batch's store."""
    return await asyncio.to_thread(lambda: processor.get_batch_results(batch_id) or [])


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


def _configuration(
    job: ComparisonJob, processors: dict[str, BatchProcessor], shared: _Shared
) -> dict[str, Any]:
    """What each side ran, what differs, the prompt changes and who the customer was."""
    described = {
        side: config.described(processors[side].openai)
        if isinstance(processors[side].openai, OpenAIWrapper)
        else config.model_dump()
        for side, config in job.sides.items()
    }
    prompt_diffs = {}
    if job.a.spec != job.b.spec:
        prompt_diffs = spec_diff(load_prompt_spec(job.a.spec), load_prompt_spec(job.b.spec))
    model = getattr(shared.endpoint, "model", "?")
    return {
        "sides": described,
        "differences": differing_fields(described["a"], described["b"]),
        "prompt_diffs": prompt_diffs,
        "customer": (
            f"Both sides faced the same simulated customer and evaluator: the 'client' and "
            f"'evaluator' prompts of spec {job.a.spec} (side A), on model {model}."
        ),
    }
