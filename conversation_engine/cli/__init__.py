"""The `conversation-engine` command.

Heavy imports (AutoGen, openai) happen inside commands so that `--help` stays fast.
User errors print one sentence and exit with code 2; `--debug` shows the traceback. A results
write that fails after conversations ran (a full disk) prints one sentence and exits with
code 1. Text from outside (results, spec files, paths, error messages) is printed as plain
text, never as console markup, with escape sequences and control characters removed
(`safe_text`).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from conversation_engine.core._safe_text import terminal_safe

app = typer.Typer(
    help="Simulate and A/B-test multi-agent customer-service bots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
specs_app = typer.Typer(help="List, show and validate prompt specifications.", no_args_is_help=True)
simulated_app = typer.Typer(
    help="The offline simulated LLM (a test double, not a language model).", no_args_is_help=True
)
app.add_typer(specs_app, name="specs")
app.add_typer(simulated_app, name="simulated-llm")

# No emoji codes: ":smile:" in a model's reply or a file name is text, not a picture.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

DEFAULT_SCENARIOS = "shop_scenarios.json"
SIMULATED_BANNER = (
    "No OPENAI_API_KEY or OPENAI_BASE_URL is set: using the offline simulated LLM, a deterministic "
    "test double that plays client, agents and evaluator by rule, not a language model."
)

DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
# Options several commands share, declared once so their names and help stay the same.
ScenariosArgument = Annotated[
    Path | None,
    typer.Argument(
        help="Scenario file (JSON array or JSONL). Default: the shipped shop scenarios."
    ),
]
BasicOption = Annotated[
    bool, typer.Option("--basic", help="Basic mode: entry agent only, no tools.")
]
MaxTurnsOption = Annotated[
    int | None, typer.Option(help="Exchanges per conversation (default MAX_TURNS).")
]
TimeoutOption = Annotated[
    float | None, typer.Option(help="Seconds per conversation (default TIMEOUT_SEC).")
]
ConcurrencyOption = Annotated[
    int | None, typer.Option(min=1, help="Conversations at once (default CONCURRENCY).")
]


#: Exit code of a command whose results could not be written (a full disk, an I/O error).
WRITE_FAILED_EXIT_CODE = 1


def _t(value: Any) -> str:
    """Outside text for a markup string: shown as written, never as markup or escape codes."""
    return escape(terminal_safe(value))


def print_error(message: Any) -> None:
    """`Error: <message>` on stderr, on one line whatever the terminal width."""
    # The message as written: a path or a field like "item [0]" must not be wrapped or read as
    # console markup, and what it quotes (a model's error, a file name) must not reach the
    # terminal as escape codes.
    err_console.print(f"[bold red]Error:[/] {_t(message)}", soft_wrap=True)


class _TerminalSafeLogHandler(logging.Handler):
    """What `logging.lastResort` does (WARNING and up to stderr, message only), but with
    escape sequences and control characters from logged outside text removed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(terminal_safe(self.format(record)) + "\n")
        except Exception:  # pragma: no cover - as logging does
            self.handleError(record)


def _terminal_safe_logging() -> None:
    """Unless logging is configured, log warnings to stderr terminal-safe."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_TerminalSafeLogHandler())


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn user errors into one sentence and exit code 2."""
    from conversation_engine.core.errors import UserInputError

    _terminal_safe_logging()
    try:
        yield
    except UserInputError as error:
        if debug:
            raise
        print_error(error)
        raise typer.Exit(2) from None


def _quiet_cancellations(debug: bool = False) -> None:
    """AutoGen's runtime errors: one line per failed conversation unless `debug` (logs.py)."""
    from conversation_engine.cli.logs import route_autogen_runtime_logs

    route_autogen_runtime_logs(debug=debug)


def default_scenarios_path() -> Path:
    from conversation_engine.core.settings import get_settings

    return get_settings().FIXTURES_DIR / "scenarios" / DEFAULT_SCENARIOS


def make_wrapper(quiet: bool = False) -> Any:
    """The configured endpoint, or the simulated LLM with a banner saying so."""
    from conversation_engine.core.settings import get_settings
    from conversation_engine.llm.endpoint import OpenAIWrapper

    settings = get_settings()
    if not settings.uses_real_endpoint and not quiet:
        err_console.print(f"[yellow]{SIMULATED_BANNER}[/]")
    return OpenAIWrapper.from_settings(settings)


def write_json(path: Path, data: Any) -> None:
    """Write a results file: atomically for a regular file (a reader never sees half of it, a
    failure leaves no partial file), in place for `/dev/null` or a pipe; any text is kept
    (`safe_text.json_dumps`)."""
    from conversation_engine.core._output import write_output_file
    from conversation_engine.core._safe_text import json_dumps

    write_output_file(path, json_dumps(data, indent=2))


async def _run_all(
    engine: Any,
    scenarios: list[Any],
    method: str,
    max_turns: int | None,
    timeout: float | None,
    concurrency: int,
    on_result: Callable[[int, dict[str, Any]], None],
) -> list[dict[str, Any]]:
    semaphore = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any] | None] = [None] * len(scenarios)

    async def one(index: int, scenario: Any) -> None:
        async with semaphore:
            result = await getattr(engine, method)(scenario.model_dump(), max_turns, timeout)
        results[index] = result
        on_result(index, result)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(scenarios)))
    return [r for r in results if r is not None]


@app.command()
def run(
    scenarios: ScenariosArgument = None,
    spec: Annotated[str, typer.Option(help="Prompt spec name or path.")] = "multiagent_prompts",
    engine: Annotated[
        str, typer.Option(help="'autogen', 'legacy' or package.module:Class.")
    ] = "autogen",
    basic: BasicOption = False,
    max_turns: MaxTurnsOption = None,
    timeout: TimeoutOption = None,
    concurrency: ConcurrencyOption = None,
    out: Annotated[Path | None, typer.Option(help="Where to write the results JSON.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of transcripts.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Play scenarios through an engine, show the transcripts and write the contract results."""
    with user_errors(debug):
        from conversation_engine.cli.transcript import print_transcript
        from conversation_engine.core._output import check_output_file
        from conversation_engine.core._safe_text import json_dumps
        from conversation_engine.core.settings import get_settings
        from conversation_engine.engines import create_engine, resolve_engine
        from conversation_engine.inputs.scenario import check_variables, load_scenarios
        from conversation_engine.inputs.specs import PromptSpec

        settings = get_settings()
        scenario_path = scenarios or default_scenarios_path()
        loaded = load_scenarios(scenario_path)
        _quiet_cancellations(debug)
        engine_cls = resolve_engine(engine)
        out = out or settings.RESULTS_DIR / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        check_output_file(out)  # before anything runs, not after every conversation did

        async def main() -> list[dict[str, Any]]:
            wrapper = make_wrapper(quiet=as_json)
            try:
                instance = create_engine(engine_cls, wrapper, spec)
                prompt_spec = getattr(instance, "prompt_specification", None)
                if isinstance(prompt_spec, PromptSpec):
                    check_variables(prompt_spec, loaded, source=str(scenario_path))

                def show(_: int, result: dict[str, Any]) -> None:
                    if as_json:
                        return
                    try:
                        print_transcript(result, console)
                    except Exception:  # showing a result must never lose the results
                        logging.getLogger(__name__).exception("Could not show a transcript")

                method = "run_conversation" if basic else "run_conversation_with_tools"
                return await _run_all(
                    instance,
                    loaded,
                    method,
                    max_turns,
                    timeout,
                    concurrency or settings.CONCURRENCY,
                    show,
                )
            finally:
                await wrapper.aclose()

        results = asyncio.run(main())
        try:
            write_json(out, results if len(results) != 1 else results[0])
        except OSError as error:
            print_error(
                f"The results could not be written to '{out}' ({error.strerror or error}); "
                f"{len(results)} conversation(s) ran, nothing was saved."
            )
            raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
        if as_json:
            sys.stdout.write(json_dumps(results, indent=2, for_terminal=True) + "\n")
        else:
            statuses: dict[str, int] = {}
            for result in results:
                status = str(result.get("status"))
                statuses[status] = statuses.get(status, 0) + 1
            summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
            console.print(
                f"[bold]{len(results)} conversation(s):[/] {_t(summary)}. Results written to "
                f"[cyan]{_t(out)}[/]",
                soft_wrap=True,
            )


@specs_app.command("list")
def specs_list(debug: DebugOption = False) -> None:
    """The prompt specs in the spec directory."""
    with user_errors(debug):
        from rich.table import Table

        from conversation_engine.inputs.specs import list_prompt_specs

        table = Table("name", "display name", "version", "agents")
        for item in list_prompt_specs():
            table.add_row(
                _t(item["name"]),
                _t(item.get("display_name", "")),
                _t(item.get("version", "")),
                _t(", ".join(item.get("agents", []))),
            )
        console.print(table)


@specs_app.command("show")
def specs_show(
    name: Annotated[str, typer.Argument(help="Spec name or path.")], debug: DebugOption = False
) -> None:
    """Print a spec as JSON."""
    with user_errors(debug):
        from conversation_engine.core._safe_text import json_dumps
        from conversation_engine.inputs.specs import load_prompt_spec

        console.print_json(json_dumps(load_prompt_spec(name).to_dict(), for_terminal=True))


@specs_app.command("validate")
def specs_validate(
    name: Annotated[str, typer.Argument(help="Spec name or path.")], debug: DebugOption = False
) -> None:
    """Check a spec: structure, tools, handoff targets, client agent, agent ids."""
    with user_errors(debug):
        from conversation_engine.inputs.specs import load_prompt_spec

        spec = load_prompt_spec(name)
        agents = ", ".join(spec.agents)
        console.print(
            f"[green]OK[/] {_t(name)}: agents {_t(agents)}; entry agent "
            f"'{_t(spec.entry_agent_id)}'.",
            soft_wrap=True,
        )


@simulated_app.command("serve")
def simulated_serve(
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    latency_ms: Annotated[float, typer.Option(help="Added latency per request.")] = 0.0,
) -> None:
    """Serve the simulated LLM's OpenAI-compatible API over HTTP (test double, not a model)."""
    from conversation_engine.testing.simulated_llm import SimulationConfig, serve

    err_console.print(
        f"[yellow]Simulated LLM (a deterministic test double, not a language model) on "
        f"http://{_t(host)}:{port}/v1[/]"
    )
    serve(host=host, port=port, config=SimulationConfig(latency_ms=latency_ms))


# ---------------------------------------------------------------------------- batch, compare

INTERRUPTED_EXIT_CODE = 130


def _progress_bar() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("[cyan]{task.fields[active]} active"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def _check_resume_options(job: dict[str, Any], given: dict[str, Any], batch_id: str) -> None:
    """A resumed batch keeps the options it was started with; refuse conflicting ones."""
    from conversation_engine.core.errors import UserInputError
    from conversation_engine.engines import engine_label, resolve_engine

    stored = {
        "--engine": job.get("engine"),
        "--spec": job.get("prompt_spec_name"),
        "--repeat": job.get("repeat"),
        "--max-turns": job.get("max_turns"),
        "--timeout": job.get("timeout_sec"),
    }
    if given["--engine"] is not None:
        given["--engine"] = engine_label(resolve_engine(given["--engine"]))
    conflicts = [
        f"{option} {given[option]} (the batch has {stored[option]})"
        for option in stored
        if given[option] is not None and given[option] != stored[option]
    ]
    if given["--basic"] and job.get("use_tools", True):
        conflicts.append("--basic (the batch runs in tools mode)")
    if given["--no-eval"] and job.get("evaluate", True):
        conflicts.append("--no-eval (the batch evaluates)")
    if conflicts:
        raise UserInputError(
            f"--resume continues batch {batch_id} with the options it was started with; drop "
            f"{', '.join(conflicts)}."
        )


def _print_batch_summary(rows: list[dict[str, Any]], batch_dir: Path) -> None:
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
    table.add_row("cost", f"${summary.usage.cost_usd + summary.evaluation_usage.cost_usd:.4f}")
    table.add_row("results", _t(batch_dir))
    console.print(table)


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
    import signal

    with user_errors(debug):
        from conversation_engine.batch import BatchProcessor, BatchProgress, ResultStorage
        from conversation_engine.batch.storage import BATCH_FILES
        from conversation_engine.core._output import check_output_dir
        from conversation_engine.core.errors import UserInputError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.inputs.scenario import load_scenarios

        out_dir = out or get_settings().RESULTS_DIR
        job: dict[str, Any] | None = None
        loaded: list[Any] = []
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
            _check_resume_options(
                job,
                {
                    "--engine": engine,
                    "--spec": spec,
                    "--repeat": repeat,
                    "--max-turns": max_turns,
                    "--timeout": timeout,
                    "--basic": basic,
                    "--no-eval": no_eval,
                },
                resume,
            )
        else:
            scenario_path = scenarios or default_scenarios_path()
            loaded = load_scenarios(scenario_path)
        _quiet_cancellations(debug)

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
                with _progress_bar() as progress:
                    task = progress.add_task(
                        "conversations",
                        total=status.get("total_scenarios"),
                        completed=status.get("completed_scenarios", 0),
                        failed=status.get("failed_scenarios", 0),
                        active=0,
                    )

                    def on_progress(event: BatchProgress) -> None:
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
        _print_batch_summary(summary["results"], batch_dir)


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
    import signal

    with user_errors(debug):
        from rich.table import Table

        from conversation_engine.batch import BatchProgress
        from conversation_engine.compare import BootstrapSettings, run_comparison
        from conversation_engine.compare.harness import ComparisonRun
        from conversation_engine.core._output import check_output_dir
        from conversation_engine.core.errors import ResultsWriteError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.engines import resolve_engine
        from conversation_engine.inputs.scenario import check_variables, load_scenarios
        from conversation_engine.inputs.specs import load_prompt_spec

        scenario_path = scenarios or default_scenarios_path()
        loaded = load_scenarios(scenario_path)
        # Fail on a bad engine, spec or variable before the progress bars appear.
        resolve_engine(engine_a)
        resolve_engine(engine_b)
        check_variables(load_prompt_spec(spec), loaded, source=str(scenario_path))
        _quiet_cancellations(debug)
        out_dir = out or get_settings().RESULTS_DIR / f"compare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        check_output_dir(out_dir)  # before anything runs, not after every conversation did

        async def main() -> ComparisonRun | None:
            wrapper = make_wrapper()
            loop = asyncio.get_running_loop()
            current = asyncio.current_task()
            assert current is not None
            loop.add_signal_handler(signal.SIGINT, current.cancel)
            try:
                with _progress_bar() as progress:
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


def main() -> None:  # pragma: no cover - console entry
    app()
