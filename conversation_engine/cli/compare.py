"""`conversation-engine compare`: A/B test two engines on the same scenarios and seeds.

Checks both engines, the spec and the scenarios first (`compare.harness.check_comparison`),
then runs `compare.run_comparison` under one progress bar per engine, and prints the table
of paired differences with the bootstrap intervals and where the reports were written.
Both engines run in one interleaved schedule (see `compare.harness`). Ctrl-C stops it
without a report (exit 130) and prints how to finish it: `--resume <folder>` runs only the
missing conversations and writes the reports. Results that cannot be written exit with 1.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    console,
    default_scenarios_path,
    err_console,
    make_wrapper,
    print_error,
    progress_bar,
    quiet_cancellations,
    user_errors,
)

if TYPE_CHECKING:
    from conversation_engine.compare.harness import ComparisonRun


@app.command()
def compare(
    scenarios: ScenariosArgument = None,
    engine_a: Annotated[
        str | None,
        typer.Option(
            "--a", help="Engine A: 'autogen', 'legacy' (default) or package.module:Class."
        ),
    ] = None,
    engine_b: Annotated[
        str | None,
        typer.Option(
            "--b", help="Engine B: 'autogen' (default), 'legacy' or package.module:Class."
        ),
    ] = None,
    spec: Annotated[
        str | None, typer.Option(help="Prompt spec name or path (default multiagent_prompts).")
    ] = None,
    repeat: Annotated[
        int | None,
        typer.Option(min=1, help="Trials per scenario, seeded SEED+i; k of pass^k (default 1)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default RESULTS_DIR/compare-<time>)."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="FOLDER",
            help="Finish an interrupted comparison: its folder, or its name under RESULTS_DIR.",
        ),
    ] = None,
    pass_threshold: Annotated[
        float, typer.Option(help="Score that counts as a pass (for pass rate and pass^k).")
    ] = 3,
    max_turns: MaxTurnsOption = None,
    timeout: TimeoutOption = None,
    concurrency: ConcurrencyOption = None,
    basic: BasicOption = False,
    resamples: Annotated[
        int, typer.Option(min=100, help="Bootstrap resamples for the intervals.")
    ] = 2000,
    debug: DebugOption = False,
) -> None:
    """A/B test two engines on the same scenarios and seeds; write comparison.json, report.md
    and a self-contained report.html with paired bootstrap intervals."""
    with user_errors(debug):
        from conversation_engine.batch import BatchProgress
        from conversation_engine.compare import BootstrapSettings, run_comparison
        from conversation_engine.compare.harness import (
            check_comparison,
            check_resume_options,
            load_comparison_job,
            resume_comparison,
        )
        from conversation_engine.core._output import check_output_dir
        from conversation_engine.core.errors import ResultsWriteError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.inputs.scenario import load_scenarios

        results_dir = get_settings().RESULTS_DIR
        if resume:
            out_dir = Path(resume) if Path(resume).is_dir() else results_dir / resume
            job = load_comparison_job(out_dir)
            check_resume_options(
                job,
                scenarios=scenarios,
                engine_a=engine_a,
                engine_b=engine_b,
                spec=spec,
                repeat=repeat,
                max_turns=max_turns,
                timeout=timeout,
                basic=basic,
            )
            names = (job.engine_a, job.engine_b)
            total = job.scenario_count * job.repeat
        else:
            scenario_path = scenarios or default_scenarios_path()
            loaded = load_scenarios(scenario_path)
            names = (engine_a or "legacy", engine_b or "autogen")
            # Fail on a bad engine, spec or variable before the progress bars appear.
            check_comparison(
                loaded,
                engine_a=names[0],
                engine_b=names[1],
                spec=spec or "multiagent_prompts",
                source=str(scenario_path),
            )
            total = len(loaded) * (repeat or 1)
            out_dir = out or results_dir / f"compare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        quiet_cancellations(debug)
        check_output_dir(out_dir)  # before anything runs, not after every conversation did

        async def main() -> ComparisonRun | None:
            wrapper = make_wrapper()
            loop = asyncio.get_running_loop()
            current = asyncio.current_task()
            assert current is not None
            loop.add_signal_handler(signal.SIGINT, current.cancel)
            try:
                with progress_bar() as progress:
                    tasks = {
                        side: progress.add_task(
                            f"{side.upper()}: {_t(name)}", total=total, failed=0, active=0
                        )
                        for side, name in zip(("a", "b"), names, strict=True)
                    }

                    def on_progress(side: str, event: BatchProgress) -> None:
                        progress.update(
                            tasks[side],
                            completed=event.done,
                            failed=event.failed,
                            active=event.active,
                        )

                    if resume:
                        return await resume_comparison(
                            out_dir, openai_wrapper=wrapper, on_progress=on_progress
                        )
                    return await run_comparison(
                        loaded,
                        engine_a=names[0],
                        engine_b=names[1],
                        spec=spec or "multiagent_prompts",
                        repeat=repeat or 1,
                        out_dir=out_dir,
                        pass_threshold=pass_threshold,
                        max_turns=max_turns,
                        timeout_sec=timeout,
                        concurrency=concurrency,
                        use_tools=not basic,
                        openai_wrapper=wrapper,
                        bootstrap=BootstrapSettings(resamples=resamples),
                        scenarios_file=str(scenario_path),
                        on_progress=on_progress,
                    )
            except asyncio.CancelledError:
                return None
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                await wrapper.aclose()

        try:
            result = asyncio.run(main())
        except (OSError, ResultsWriteError) as error:  # a full disk: no traceback
            print_error(error)
            raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
        if result is None:
            command = f"conversation-engine compare --resume {shlex.quote(str(out_dir))}"
            err_console.print(
                f"[yellow]Interrupted:[/] no report written yet; the finished conversations are "
                f"kept in {_t(out_dir / 'batches')}. Resume with: [bold]{_t(command)}[/]",
                soft_wrap=True,
            )
            raise typer.Exit(INTERRUPTED_EXIT_CODE)
        _print_comparison(result)


def _print_comparison(result: ComparisonRun) -> None:
    """The simulated-LLM warning, the headline, each side's endpoint, the paired differences
    table, each real difference, and where the reports are."""
    from rich.table import Table

    from conversation_engine.compare.wording import (
        endpoint_text,
        metric_delta,
        metric_interval,
        metric_label,
        metric_value,
        number,
    )

    comparison = result.comparison
    if comparison.banner:
        console.print(f"[yellow]Warning: simulated LLM. {_t(comparison.banner)}[/]")
    console.print(f"[bold]{_t(comparison.headline)}[/]")
    for side, summary in (("A", comparison.a), ("B", comparison.b)):
        console.print(f"{side}: {_t(summary.label)} on {_t(endpoint_text(summary))}")
    confidence = comparison.bootstrap.confidence
    table = Table(
        "metric",
        f"A: {_t(comparison.a.label)}",
        f"B: {_t(comparison.b.label)}",
        "B − A",
        f"{number(confidence * 100)}% interval",
        "real?",
        title="Paired differences (B − A)",
        title_justify="left",
    )
    for item in comparison.paired:
        real = item.difference.significant
        table.add_row(
            _t(metric_label(item.metric)),
            _t(metric_value(item.metric, item.value_a)),
            _t(metric_value(item.metric, item.value_b)),
            _t(metric_delta(item.metric, item.difference.estimate)),
            _t(metric_interval(item)),
            "[bold yellow]yes[/]" if real else "no",
        )
    console.print(table)
    for item in comparison.significant():
        console.print(
            f"[bold yellow]Real difference[/] in {_t(item.metric.label.lower())}: "
            f"{_t(item.verdict)}, {_t(metric_delta(item.metric, item.difference.estimate, unit=True))}."
        )
    if comparison.scenario_count < comparison.bootstrap.min_scenarios:
        console.print(
            f"[dim]Only {comparison.scenario_count} scenario(s): at least "
            f"{comparison.bootstrap.min_scenarios} are needed to call a difference real.[/]"
        )
    console.print(
        f"Report: [cyan]{_t(result.paths['html'])}[/] · [cyan]{_t(result.paths['md'])}[/] · "
        f"[cyan]{_t(result.paths['json'])}[/]",
        soft_wrap=True,
    )
