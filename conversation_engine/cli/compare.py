"""`conversation-engine compare`: A/B test two engines on the same scenarios and seeds.

Checks both engines, the spec and the scenarios first (`compare.harness.check_comparison`),
then runs `compare.run_comparison` under one progress bar per engine, and prints the table
of paired differences with the bootstrap intervals and where the reports were written.
Ctrl-C stops it without a report (exit 130); results that cannot be written exit with 1.
"""

from __future__ import annotations

import asyncio
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
        str, typer.Option("--a", help="Engine A: 'autogen', 'legacy' or package.module:Class.")
    ] = "legacy",
    engine_b: Annotated[
        str, typer.Option("--b", help="Engine B: 'autogen', 'legacy' or package.module:Class.")
    ] = "autogen",
    spec: Annotated[str, typer.Option(help="Prompt spec name or path.")] = "multiagent_prompts",
    repeat: Annotated[
        int, typer.Option(min=1, help="Trials per scenario, seeded SEED+i; k of pass^k.")
    ] = 1,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default RESULTS_DIR/compare-<time>)."),
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
        from conversation_engine.compare.harness import check_comparison
        from conversation_engine.core._output import check_output_dir
        from conversation_engine.core.errors import ResultsWriteError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.inputs.scenario import load_scenarios

        scenario_path = scenarios or default_scenarios_path()
        loaded = load_scenarios(scenario_path)
        # Fail on a bad engine, spec or variable before the progress bars appear.
        check_comparison(
            loaded, engine_a=engine_a, engine_b=engine_b, spec=spec, source=str(scenario_path)
        )
        quiet_cancellations(debug)
        out_dir = out or get_settings().RESULTS_DIR / f"compare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
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
                            f"{side.upper()}: {_t(name)}",
                            total=len(loaded) * repeat,
                            failed=0,
                            active=0,
                        )
                        for side, name in (("a", engine_a), ("b", engine_b))
                    }

                    def on_progress(side: str, event: BatchProgress) -> None:
                        progress.update(
                            tasks[side],
                            completed=event.done,
                            failed=event.failed,
                            active=event.active,
                        )

                    return await run_comparison(
                        loaded,
                        engine_a=engine_a,
                        engine_b=engine_b,
                        spec=spec,
                        repeat=repeat,
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
            err_console.print(
                f"[yellow]Interrupted:[/] no report written; the finished conversations are in "
                f"{_t(out_dir / 'batches')}."
            )
            raise typer.Exit(INTERRUPTED_EXIT_CODE)
        _print_comparison(result)


def _print_comparison(result: ComparisonRun) -> None:
    """The paired differences table, each real difference, and where the reports are."""
    from rich.table import Table

    from conversation_engine.compare.report import fmt, interval_text, signed

    comparison = result.comparison
    table = Table(
        "metric",
        f"A: {_t(comparison.a.label)}",
        f"B: {_t(comparison.b.label)}",
        "B − A",
        "95% interval" if comparison.bootstrap.confidence == 0.95 else "interval",
        "real?",
        title="Paired differences (B − A)",
        title_justify="left",
    )
    for item in comparison.paired:
        real = item.difference.significant
        table.add_row(
            _t(item.metric.label),
            _t(fmt(item.value_a, 3)),
            _t(fmt(item.value_b, 3)),
            _t(signed(item.difference.estimate, 3)),
            _t(interval_text(item, 3)),
            "[bold yellow]yes[/]" if real else "no",
        )
    console.print(table)
    for item in comparison.significant():
        console.print(
            f"[bold yellow]Real difference[/] in {_t(item.metric.label.lower())}: "
            f"{_t(item.verdict)}."
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
