"""`conversation-engine batch`: run, score and durably store many conversations.

Creates a batch job (or, with `--resume`, reopens one after checking the options with
`batch.job.check_resume_options`), runs it through `BatchProcessor` under a progress bar,
and prints a summary table. Ctrl-C cancels the batch (exit 130) and prints the command that
resumes it; a batch whose results could not be written exits with code 1.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from conversation_engine.cli._apps import app
from conversation_engine.cli._observe import (
    BUDGET_REACHED_EXIT_CODE,
    BudgetOption,
    FollowOption,
    TraceOption,
    budget_for,
)
from conversation_engine.cli._terminal import (
    INTERRUPTED_EXIT_CODE,
    WRITE_FAILED_EXIT_CODE,
    BasicOption,
    ConcurrencyOption,
    DebugOption,
    MaxTurnsOption,
    ScenariosArgument,
    TimeoutOption,
    _t,
    announce_endpoint,
    console,
    default_scenarios_path,
    err_console,
    make_wrapper,
    print_error,
    quiet_cancellations,
    user_errors,
)
from conversation_engine.cli.replay import (
    RecordOption,
    ReplayModeOption,
    ReplayOption,
    ReplayReportOption,
    finish_replay,
    rescore_batch,
    wire_setup,
)


@app.command()
def batch(
    scenarios: ScenariosArgument = None,
    engine: Annotated[
        str | None,
        typer.Option(help="'autogen' (default), 'legacy' or package.module:Class."),
    ] = None,
    spec: Annotated[
        str | None, typer.Option(help="Prompt spec name or path (default multiagent_prompts).")
    ] = None,
    concurrency: ConcurrencyOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Play the conversations on N worker processes of this machine (one a core); "
            "--concurrency is split over them. This process still stores every result.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="auto|ADDRESS",
            help="Play the conversations on a Ray cluster (needs the 'ray' extra); "
            "this process still stores every result.",
        ),
    ] = None,
    repeat: Annotated[
        int | None, typer.Option(min=1, help="Trials per scenario, seeded SEED+i (default 1).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default RESULTS_DIR, 'results').")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="BATCH_ID",
            help="Finish an interrupted batch: run only its scenario-trials that have no result.",
        ),
    ] = None,
    basic: BasicOption = False,
    max_turns: MaxTurnsOption = None,
    timeout: TimeoutOption = None,
    no_eval: Annotated[
        bool, typer.Option("--no-eval", help="Do not score the conversations.")
    ] = False,
    prompt_version: Annotated[str, typer.Option(help="Label recorded on every row.")] = "v1.0",
    record: RecordOption = None,
    replay: ReplayOption = None,
    replay_mode: ReplayModeOption = "strict",
    replay_report: ReplayReportOption = None,
    rescore: Annotated[
        str | None,
        typer.Option(
            "--rescore",
            metavar="BATCH_ID",
            help="Score a stored batch's transcripts again (the evaluator only, no "
            "conversation reruns); the scores go to <out>/<batch id>/rescores/.",
        ),
    ] = None,
    follow: FollowOption = None,
    trace: TraceOption = None,
    budget_usd: BudgetOption = None,
    debug: DebugOption = False,
) -> None:
    """Run many scenarios with bounded concurrency, score them and store the results durably.

    Each finished conversation is appended to <out>/<batch id>/results.ndjson at once; CSV,
    JSON and a summary follow when the batch completes. Ctrl-C stops the batch (exit 130);
    --resume <batch id> then runs only what is missing.
    """
    with user_errors(debug):
        from conversation_engine.batch import BatchProcessor, BatchProgress, ResultStorage
        from conversation_engine.batch.job import check_resume_options
        from conversation_engine.batch.storage import BATCH_FILES
        from conversation_engine.cli.progress import ConversationClock, progress_bar
        from conversation_engine.core._output import check_output_dir
        from conversation_engine.core.errors import UserInputError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.inputs.scenario import Scenario, load_scenarios
        from conversation_engine.observability.events import observing
        from conversation_engine.observability.follow import FollowPrinter
        from conversation_engine.observability.tracing import traced

        out_dir = out or get_settings().RESULTS_DIR
        if rescore:
            rescore_batch(rescore, out_dir, spec=spec, scenarios=scenarios, resume=resume)
            return
        wire = wire_setup(record, replay, replay_mode)
        executor = _executor(workers, ray_address, wire_layer=wire.layer)
        job: dict[str, Any] | None = None
        loaded: list[Scenario] = []
        scenario_path: Path | None = None
        check_output_dir(out_dir)  # before anything runs, not after every conversation did
        if resume:
            if scenarios is not None:
                raise UserInputError(
                    f"--resume takes the scenarios from batch {resume}; drop the SCENARIOS "
                    "argument."
                )
            storage = ResultStorage(out_dir)
            job = storage.load_job(resume)
            check_output_dir(storage.batch_dir(resume), "The batch folder", files=BATCH_FILES)
            check_resume_options(
                job,
                resume,
                engine=engine,
                spec=spec,
                repeat=repeat,
                max_turns=max_turns,
                timeout=timeout,
                basic=basic,
                no_eval=no_eval,
            )
        else:
            scenario_path = scenarios or default_scenarios_path()
            loaded = load_scenarios(scenario_path)
        quiet_cancellations(debug)

        async def main() -> dict[str, Any]:
            wrapper = make_wrapper(wire.layer)
            loop = asyncio.get_running_loop()
            try:
                processor = BatchProcessor(
                    wrapper,
                    concurrency,
                    engine=str(job["engine"]) if job else engine or "autogen",
                    output_dir=out_dir,
                    max_turns=max_turns,
                    timeout_sec=timeout,
                    evaluate=not no_eval,
                    budget=budget_for(budget_usd, wrapper.model),
                    executor=executor,
                )
                if resume:
                    batch_id = resume
                else:
                    batch_id = processor.create_batch_job(
                        loaded,
                        prompt_version=prompt_version,
                        use_tools=not basic,
                        prompt_spec_name=spec or "multiagent_prompts",
                        repeat=repeat or 1,
                        source=str(scenario_path) if scenario_path else None,
                    )
                status = processor.get_batch_status(batch_id) or {}
                announce_endpoint(wrapper)
                verb = "Resuming" if resume else "Running"
                console.print(
                    f"{verb} batch [bold]{_t(batch_id)}[/] ({_t(status.get('engine'))}, spec "
                    f"{_t(status.get('prompt_spec_name'))}) → "
                    f"[cyan]{_t(processor.storage.batch_dir(batch_id))}[/]",
                    soft_wrap=True,
                )
                loop.add_signal_handler(
                    signal.SIGINT,
                    lambda: processor.cancel_batch(batch_id, "interrupted (SIGINT)"),
                )
                clock = ConversationClock(processor.concurrency)
                with progress_bar(clock) as progress:
                    task = progress.add_task(
                        "conversations",
                        total=status.get("total_scenarios"),
                        completed=status.get("completed_scenarios", 0),
                        failed=status.get("failed_scenarios", 0),
                        active=0,
                    )
                    left = (status.get("total_scenarios") or 0) - (
                        status.get("completed_scenarios") or 0
                    )
                    clock.update(task, left=left)

                    def on_progress(event: BatchProgress) -> None:
                        seconds = event.row.duration_seconds if event.row is not None else None
                        clock.update(task, left=event.total - event.done, seconds=seconds)
                        progress.update(
                            task, completed=event.done, failed=event.failed, active=event.active
                        )

                    # The rows stay in the store (memory stays flat whatever the batch size);
                    # the summary below reads them back one at a time.
                    if resume:
                        return await processor.resume_batch(
                            batch_id, on_progress=on_progress, return_rows=False
                        )
                    return await processor.run_batch(
                        batch_id, on_progress=on_progress, return_rows=False
                    )
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                await wrapper.aclose()

        printer = FollowPrinter(console, follow=follow, prefix=True) if follow else None
        with traced(trace), observing(*([printer] if printer else [])):
            summary = asyncio.run(main())
        batch_dir = Path(summary["output_dir"])
        done = summary["successful_scenarios"] + summary["failed_scenarios"]
        resume_command = f"conversation-engine batch --resume {summary['batch_id']}"
        if out is not None:
            resume_command += f" --out {shlex.quote(str(out))}"
        budget = summary.get("budget") or {}
        if summary["status"] == "cancelled" and budget.get("reached"):
            err_console.print(
                f"[yellow]Budget reached:[/] ${budget['spent_usd']:.4f} spent of "
                f"${budget['cap_usd']:.4f} (estimated); {done} of {summary['total_scenarios']} "
                f"conversations finished and saved in {_t(batch_dir)}. Raise the cap and resume "
                f"with: [bold]{_t(resume_command)} --budget-usd <higher>[/]"
            )
            raise typer.Exit(BUDGET_REACHED_EXIT_CODE)
        if summary["status"] == "cancelled":
            err_console.print(
                f"[yellow]Interrupted:[/] {done} of {summary['total_scenarios']} conversations "
                f"finished and saved in {_t(batch_dir)}. Resume with: [bold]{_t(resume_command)}[/]"
            )
            raise typer.Exit(INTERRUPTED_EXIT_CODE)
        if summary["status"] == "failed":  # our own writes failed (a full disk): no traceback
            print_error(
                f"Batch {summary['batch_id']} stopped: {summary.get('error')} {done} of "
                f"{summary['total_scenarios']} conversations are saved in {batch_dir}. Free some "
                f"space, then resume with: {resume_command}"
            )
            raise typer.Exit(WRITE_FAILED_EXIT_CODE)
        _print_summary(batch_dir)
        finish_replay(wire, replay_report)


def _executor(workers: int | None, ray_address: str | None, *, wire_layer: Any) -> Any:
    """The executor `--workers` / `--ray` ask for (None: this event loop plays the batch)."""
    from conversation_engine.core.errors import UserInputError

    if workers is None and ray_address is None:
        return None
    if workers is not None and ray_address is not None:
        raise UserInputError("--workers and --ray are two ways to run the batch; give one of them.")
    if wire_layer is not None:
        raise UserInputError(
            "--record and --replay capture the model calls of this process; drop them or drop "
            f"{'--workers' if workers is not None else '--ray'}."
        )
    if ray_address is not None:
        from conversation_engine.batch.executors.ray import RayExecutor

        return RayExecutor(ray_address)
    from conversation_engine.batch.executors.workers import WorkerExecutor

    return WorkerExecutor(workers)


def _print_summary(batch_dir: Path) -> None:
    """The batch summary table: statuses, success rate, end reasons, score, turns, cost (the
    rows read from the batch's `results.ndjson` one at a time)."""
    from rich.table import Table

    from conversation_engine.batch.storage import RESULTS_FILE, iter_rows, summarize

    summary = summarize(iter_rows(batch_dir / RESULTS_FILE))
    table = Table("", "value", title="Batch summary", title_justify="left")
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.status_counts.items()))
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(summary.end_reasons.items()))
    scores = summary.score_statistics
    distribution = " · ".join(f"{k}: {v}" for k, v in scores.distribution.items())
    table.add_row("conversations", _t(f"{summary.total_conversations} ({statuses})"))
    table.add_row("success rate", f"{summary.success_rate:.0%}")
    table.add_row("end reasons", _t(reasons))
    if scores.mean is not None:
        table.add_row("score", f"mean {scores.mean:.2f} · {distribution}")
    if summary.turn_statistics.mean is not None:
        table.add_row("turns", f"mean {summary.turn_statistics.mean:.1f}")
    if summary.duration_statistics.mean is not None:
        table.add_row("duration", f"mean {summary.duration_statistics.mean:.2f}s")
    table.add_row(
        "tokens",
        f"{summary.usage.total_tokens} (evaluator {summary.evaluation_usage.total_tokens})",
    )
    cost = summary.usage.plus(summary.evaluation_usage).cost_usd
    # A simulated or unpriced model has no cost to show: "unknown", never a made-up $0.
    table.add_row("cost", "unknown" if cost is None else f"${cost:.4f}")
    table.add_row("results", _t(batch_dir))
    console.print(table)
