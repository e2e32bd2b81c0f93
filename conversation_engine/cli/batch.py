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

        out_dir = out or get_settings().RESULTS_DIR
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
            wrapper = make_wrapper()
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

                    if resume:
                        return await processor.resume_batch(batch_id, on_progress=on_progress)
                    return await processor.run_batch(batch_id, on_progress=on_progress)
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                await wrapper.aclose()

        summary = asyncio.run(main())
        batch_dir = Path(summary["output_dir"])
        done = len(summary["results"])
        resume_command = f"conversation-engine batch --resume {summary['batch_id']}"
        if out is not None:
            resume_command += f" --out {shlex.quote(str(out))}"
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
        _print_summary(summary["results"], batch_dir)


def _print_summary(rows: list[dict[str, Any]], batch_dir: Path) -> None:
    """The batch summary table: statuses, success rate, end reasons, score, turns, cost."""
    from rich.table import Table

    from conversation_engine.batch.storage import summarize

    summary = summarize(rows)
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
