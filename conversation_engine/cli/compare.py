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
    endpoint_text,
    err_console,
    make_wrapper,
    print_error,
    quiet_cancellations,
    user_errors,
    wrapper_host,
)
from conversation_engine.cli.replay import (
    RecordOption,
    ReplayModeOption,
    ReplayOption,
    ReplayReportOption,
    finish_replay,
    wire_setup,
)

# Per-side options: `--a-<field>` and `--b-<field>` share their help.
SideSpecOption = Annotated[
    str | None, typer.Option(help="This side's prompt spec (default: --spec).", show_default=False)
]
SideModelOption = Annotated[
    str | None, typer.Option(help="This side's model (default: OPENAI_MODEL).", show_default=False)
]
SideBaseUrlOption = Annotated[
    str | None,
    typer.Option(
        help="This side's OpenAI-compatible base URL (default: shared).", show_default=False
    ),
]
SideKeyEnvOption = Annotated[
    str | None,
    typer.Option(
        help="The environment variable holding this side's API key (never the key itself).",
        show_default=False,
    ),
]
SideTemperatureOption = Annotated[
    float | None, typer.Option(min=0, max=2, help="This side's temperature.", show_default=False)
]
SideToolsUrlOption = Annotated[
    str | None,
    typer.Option(help="This side's HTTP tool API (default: shared).", show_default=False),
]

if TYPE_CHECKING:
    from conversation_engine.compare.harness import ComparisonRun
    from conversation_engine.compare.sides import SideConfig
    from conversation_engine.llm.endpoint import OpenAIWrapper


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
        typer.Option(help="Output directory (default: a new compare-<time> in RESULTS_DIR)."),
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
    a_spec: SideSpecOption = None,
    b_spec: SideSpecOption = None,
    a_model: SideModelOption = None,
    b_model: SideModelOption = None,
    a_base_url: SideBaseUrlOption = None,
    b_base_url: SideBaseUrlOption = None,
    a_key_env: SideKeyEnvOption = None,
    b_key_env: SideKeyEnvOption = None,
    a_temperature: SideTemperatureOption = None,
    b_temperature: SideTemperatureOption = None,
    a_tools_url: SideToolsUrlOption = None,
    b_tools_url: SideToolsUrlOption = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="METRICS",
            help="Exit 3 when B is flagged worse than A on these: 'regression' (score, "
            "pass_rate, failure_rate, pass_k, contract_violations) or names separated by "
            "commas (also tokens, cost, wall_time, wall_time_p50, wall_time_p95).",
        ),
    ] = None,
    record: RecordOption = None,
    replay: ReplayOption = None,
    replay_mode: ReplayModeOption = "strict",
    replay_report: ReplayReportOption = None,
    follow: FollowOption = None,
    trace: TraceOption = None,
    budget_usd: BudgetOption = None,
    debug: DebugOption = False,
) -> None:
    """A/B test two configurations on the same scenarios and seeds.

    Writes comparison.json, report.md and a self-contained report.html. A side is an engine
    (--a/--b), a spec (--spec for both, --a-spec/--b-spec for one), and optionally its own
    model, base URL, API key variable, temperature and tool API; what a side does not set it
    shares. The customer and the evaluator are the same on both sides.
    """
    with user_errors(debug):
        from conversation_engine.batch import BatchProgress
        from conversation_engine.cli.progress import ConversationClock, progress_bar
        from conversation_engine.compare import BootstrapSettings, run_comparison
        from conversation_engine.compare.gate import (
            GATE_FAILED_EXIT_CODE,
            gate_failures,
            parse_fail_on,
        )
        from conversation_engine.compare.harness import (
            check_comparison,
            check_resume_options,
            load_comparison_job,
            resume_comparison,
        )
        from conversation_engine.compare.sides import side_config, side_label
        from conversation_engine.core._output import check_output_dir
        from conversation_engine.core.errors import ResultsWriteError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.inputs.scenario import load_scenarios
        from conversation_engine.observability.budget import BudgetReachedError
        from conversation_engine.observability.events import observing
        from conversation_engine.observability.follow import FollowPrinter
        from conversation_engine.observability.tracing import traced

        results_dir = get_settings().RESULTS_DIR
        gate = parse_fail_on(fail_on) if fail_on is not None else []
        per_side = {
            "a": {"spec": a_spec, "model": a_model, "base_url": a_base_url,
                  "api_key_env": a_key_env, "temperature": a_temperature, "tools_url": a_tools_url},
            "b": {"spec": b_spec, "model": b_model, "base_url": b_base_url,
                  "api_key_env": b_key_env, "temperature": b_temperature, "tools_url": b_tools_url},
        }  # fmt: skip
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
                side_options=[
                    f"--{side}-{key.replace('_', '-').replace('api-key', 'key')}"
                    for side, options in per_side.items()
                    for key, value in options.items()
                    if value is not None
                ],
            )
            sides = job.sides
            total = job.scenario_count * job.repeat
            slots = job.concurrency
        else:
            scenario_path = scenarios or default_scenarios_path()
            loaded = load_scenarios(scenario_path)
            engines = {"a": engine_a or "legacy", "b": engine_b or "autogen"}
            sides = {
                side: side_config(
                    side,
                    {
                        "engine": engines[side],
                        "spec": spec or "multiagent_prompts",
                        **{key: value for key, value in options.items() if value is not None},
                    },
                )
                for side, options in per_side.items()
            }
            # Fail on a bad engine, spec or variable before the progress bars appear.
            check_comparison(
                loaded, side_a=sides["a"], side_b=sides["b"], source=str(scenario_path)
            )
            total = len(loaded) * (repeat or 1)
            slots = concurrency or get_settings().CONCURRENCY
            out_dir = out or results_dir / f"compare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        quiet_cancellations(debug)
        check_output_dir(out_dir)  # before anything runs, not after every conversation did
        # --replay answers the shared endpoint (side A's model, the customer, the evaluator)
        # from a recording: two engines A/B-tested on identical model behaviour.
        wire = wire_setup(record, replay, replay_mode)

        async def main() -> ComparisonRun | None:
            wrapper = make_wrapper(wire.layer)
            loop = asyncio.get_running_loop()
            current = asyncio.current_task()
            assert current is not None
            try:
                # One cap for both sides, the customer and the evaluator; every model they ask
                # for needs a price, checked before anything shows.
                side_models = [side.model for side in sides.values() if side.model]
                budget = budget_for(budget_usd, wrapper.model, *side_models)
                # A side's own endpoint needs its key variable: refused before anything shows.
                lines = [await _side_line(sides, side, wrapper) for side in ("a", "b")]
                announce_endpoint(wrapper, lines)
                loop.add_signal_handler(signal.SIGINT, current.cancel)
                clock = ConversationClock(slots)
                with progress_bar(clock) as progress:
                    tasks = {
                        side: progress.add_task(
                            f"{side.upper()}: {_t(name)}", total=total, failed=0, active=0
                        )
                        for side, name in (
                            ("a", side_label(sides["a"], sides["b"], "A")),
                            ("b", side_label(sides["b"], sides["a"], "B")),
                        )
                    }

                    for side in tasks:
                        clock.update(side, left=total)

                    def on_progress(side: str, event: BatchProgress) -> None:
                        seconds = event.row.duration_seconds if event.row is not None else None
                        clock.update(side, left=event.total - event.done, seconds=seconds)
                        progress.update(
                            tasks[side],
                            completed=event.done,
                            failed=event.failed,
                            active=event.active,
                        )

                    if resume:
                        return await resume_comparison(
                            out_dir, openai_wrapper=wrapper, on_progress=on_progress, budget=budget
                        )
                    return await run_comparison(
                        loaded,
                        side_a=sides["a"],
                        side_b=sides["b"],
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
                        budget=budget,
                    )
            except asyncio.CancelledError:
                return None
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                await wrapper.aclose()

        printer = FollowPrinter(console, follow=follow, prefix=True) if follow else None
        command = f"conversation-engine compare --resume {shlex.quote(str(out_dir))}"
        try:
            with traced(trace), observing(*([printer] if printer else [])):
                result = asyncio.run(main())
        except (OSError, ResultsWriteError) as error:  # a full disk: no traceback
            print_error(error)
            raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
        except BudgetReachedError as stop:
            spent, cap = stop.summary["spent_usd"], stop.summary["cap_usd"]
            err_console.print(
                f"[yellow]Budget reached:[/] ${spent:.4f} spent of ${cap:.4f} (estimated); "
                f"{stop.done} of {stop.total} conversations finished and are kept in "
                f"{_t(out_dir / 'batches')}; no report written yet. Raise the cap and resume "
                f"with: [bold]{_t(command)} --budget-usd <higher>[/]",
                soft_wrap=True,
            )
            raise typer.Exit(BUDGET_REACHED_EXIT_CODE) from None
        if result is None:
            err_console.print(
                f"[yellow]Interrupted:[/] no report written yet; the finished conversations are "
                f"kept in {_t(out_dir / 'batches')}. Resume with: [bold]{_t(command)}[/]",
                soft_wrap=True,
            )
            raise typer.Exit(INTERRUPTED_EXIT_CODE)
        _print_comparison(result)
        # Side B replaying side A's recording differs wherever its engine asks otherwise:
        # shown, not an exit code (the gate decides that).
        finish_replay(wire, replay_report, exit_on_divergence=False)
        failures = gate_failures(result.comparison, gate)
        for failure in failures:
            err_console.print(f"[bold red]Gate failed[/] on {_t(failure)}", soft_wrap=True)
        if failures:
            raise typer.Exit(GATE_FAILED_EXIT_CODE)
        if gate:
            console.print(f"Gate passed: B is not flagged worse on {_t(', '.join(gate))}.")


async def _side_line(sides: dict[str, SideConfig], side: str, shared: OpenAIWrapper) -> str:
    """`A (legacy): model gpt-4o-mini on OpenAI-compatible endpoint api.openai.com`: which
    endpoint and model a side uses (`SideConfig.described`: a host, never a key). Raises the
    `UserInputError` of a side whose API key variable is not set."""
    from conversation_engine.compare.sides import side_label

    config = sides[side]
    other = sides["b" if side == "a" else "a"]
    endpoint = config.endpoint(shared)  # refuses a key variable that is not set
    if endpoint is not shared:
        await endpoint.aclose()
    label = side_label(config, other, side.upper())
    described = config.described(shared)
    simulated = described["endpoint"] == "simulated LLM"
    host = str(described["endpoint"])
    if config.base_url is None or host.startswith("("):  # "(no host)": the SDK's default
        host = wrapper_host(shared) or host
    text = endpoint_text(model=described["model"], host=host, simulated=simulated)
    return f"{side.upper()} ({label}): {text}"


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
    if comparison.sides:
        changes = [
            f"{field} {comparison.sides['a'][field]} → {comparison.sides['b'][field]}"
            for field in comparison.differences
        ]
        tested = "; ".join(changes) if changes else "nothing (an A/A comparison)"
        console.print(f"Tests: {_t(tested)}. {_t(comparison.customer or '')}", soft_wrap=True)
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
