"""`conversation-engine run`: play scenarios through one engine and show the transcripts.

Loads the scenarios, builds the engine (checking the scenarios' variables against its spec),
says which endpoint and model it uses, plays them with bounded concurrency
(`batch.play.play_scenarios`), shows each transcript as its conversation ends, with the
agents' display names from the spec (or, with `--json`, prints all results as JSON at the
end), under a progress bar when there are more than a few, and writes the contract results
to a JSON file (`--out`: a file, or a directory to write `run-<time>.json` in). Ctrl-C stops
it (exit 130) and writes the conversations that had finished. Nothing is scored; `batch`
does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from conversation_engine.cli._apps import app
from conversation_engine.cli._observe import (
    BUDGET_REACHED_EXIT_CODE,
    BudgetOption,
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
    results_file,
    user_errors,
    write_json,
)
from conversation_engine.cli.replay import (
    RecordOption,
    ReplayModeOption,
    ReplayOption,
    ReplayReportOption,
    finish_replay,
    wire_setup,
)
from conversation_engine.core._deadline import CANCEL_GRACE_SECONDS

if TYPE_CHECKING:
    from conversation_engine.observability.budget import Budget

#: How long Ctrl-C waits for the conversations in flight to wind down (`_settle`).
SETTLE_SECONDS = 2 * CANCEL_GRACE_SECONDS
#: `run` shows a progress bar (besides the transcripts) when it plays more scenarios than this.
PROGRESS_BAR_ABOVE = 3


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
    out: Annotated[
        str | None,
        typer.Option(
            metavar="<path>",
            help="Results JSON file, or a directory (an existing one, or any path ending in "
            "'/') to write run-<time>.json in. Default: RESULTS_DIR.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of transcripts.")
    ] = False,
    record: RecordOption = None,
    replay: ReplayOption = None,
    replay_mode: ReplayModeOption = "strict",
    replay_report: ReplayReportOption = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Print each message as it is produced, not at the end."),
    ] = False,
    trace: TraceOption = None,
    budget_usd: BudgetOption = None,
    debug: DebugOption = False,
) -> None:
    """Play scenarios through an engine, show the transcripts and write the contract results.

    Ctrl-C stops the run (exit 130) and writes the conversations that had finished.
    """
    with user_errors(debug):
        from conversation_engine.batch.play import play_scenarios
        from conversation_engine.cli.progress import ConversationClock, progress_bar
        from conversation_engine.cli.transcript import display_names, print_transcript
        from conversation_engine.core._output import check_output_file
        from conversation_engine.core._safe_text import json_dumps
        from conversation_engine.core.settings import get_settings
        from conversation_engine.engines import create_engine, resolve_engine
        from conversation_engine.inputs.scenario import check_variables, load_scenarios
        from conversation_engine.inputs.specs import PromptSpec
        from conversation_engine.observability.events import observing
        from conversation_engine.observability.follow import FollowPrinter
        from conversation_engine.observability.tracing import traced

        settings = get_settings()
        scenario_path = scenarios or default_scenarios_path()
        loaded = load_scenarios(scenario_path)
        wire = wire_setup(record, replay, replay_mode)
        quiet_cancellations(debug)
        engine_cls = resolve_engine(engine)
        out_path = results_file(out, settings.RESULTS_DIR, "run")
        check_output_file(out_path)  # before anything runs, not after every conversation did
        slots = concurrency or settings.CONCURRENCY
        finished: dict[int, dict[str, Any]] = {}
        names: dict[str, str] = {}
        clock = ConversationClock(slots)
        with_bar = not as_json and len(loaded) > PROGRESS_BAR_ABOVE
        progress = progress_bar(clock) if with_bar else None
        task = None
        caps: list[Budget] = []  # the budget main() sets, for the notice after the run

        def show(index: int, result: dict[str, Any]) -> None:
            finished[index] = result
            if progress is not None and task is not None:
                left = len(loaded) - len(finished)
                clock.update(task, left=left, seconds=result.get("duration_seconds"))
                failed = sum(
                    1 for r in finished.values() if str(r.get("status")).startswith("failed")
                )
                progress.update(
                    task, completed=len(finished), failed=failed, active=min(slots, left)
                )
            if as_json or follow:  # with --follow, every line is already shown
                return
            try:
                print_transcript(result, console, names=names)
            except Exception:  # showing a result must never lose the results
                logging.getLogger(__name__).exception("Could not show a transcript")

        async def main() -> bool:
            """Play the scenarios; False when Ctrl-C stopped it."""
            nonlocal task
            wrapper = make_wrapper(wire.layer)
            budget = budget_for(budget_usd, wrapper.model)
            caps.extend([budget] if budget is not None else [])
            loop = asyncio.get_running_loop()
            current = asyncio.current_task()
            assert current is not None
            handles_sigint = False
            try:
                instance = create_engine(engine_cls, wrapper, spec)
                prompt_spec = getattr(instance, "prompt_specification", None)
                if isinstance(prompt_spec, PromptSpec):
                    check_variables(prompt_spec, loaded, source=str(scenario_path))
                    names.update(display_names(prompt_spec))
                if not as_json:
                    announce_endpoint(wrapper)
                handles_sigint = _on_sigint(loop, current.cancel)
                play = play_scenarios(
                    instance,
                    loaded,
                    basic=basic,
                    max_turns=max_turns,
                    timeout_sec=timeout,
                    concurrency=slots,
                    on_result=show,
                    budget=budget,
                )
                if progress is None:
                    await play
                else:
                    with progress:
                        task = progress.add_task(
                            "conversations",
                            total=len(loaded),
                            failed=0,
                            active=min(slots, len(loaded)),
                        )
                        clock.update(task, left=len(loaded))
                        await play
                return True
            except asyncio.CancelledError:
                await _settle(SETTLE_SECONDS)
                return False
            finally:
                if handles_sigint:
                    loop.remove_signal_handler(signal.SIGINT)
                await wrapper.aclose()

        printer = (
            FollowPrinter(console, names=names, prefix=len(loaded) > 1)
            if follow and not as_json
            else None
        )
        with traced(trace), observing(*([printer] if printer else [])):
            complete = asyncio.run(main())
        results = [finished[index] for index in sorted(finished)]
        if not complete:
            _save_interrupted(results, len(loaded), out_path)
        try:
            single = len(loaded) == 1 and len(results) == 1
            write_json(out_path, results[0] if single else results)
        except OSError as error:
            print_error(
                f"The results could not be written to '{out_path}' ({error.strerror or error}); "
                f"{len(results)} conversation(s) ran, nothing was saved."
            )
            raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
        if as_json:
            sys.stdout.write(json_dumps(results, indent=2, for_terminal=True) + "\n")
        else:
            _print_summary(results, out_path)
        skipped = [scenario.name for index, scenario in enumerate(loaded) if index not in finished]
        if caps and caps[0].reached and skipped:
            _print_budget_reached(caps[0], skipped, len(loaded))
        finish_replay(wire, replay_report, show=not as_json)
        if caps and caps[0].reached and skipped:
            raise typer.Exit(BUDGET_REACHED_EXIT_CODE)


def _on_sigint(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> bool:
    """Make Ctrl-C call `callback`; False where a loop cannot take signals (a thread other
    than the main one: a host or a test running the command; Windows), Ctrl-C then stays
    Python's KeyboardInterrupt."""
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (RuntimeError, ValueError, NotImplementedError):
        return False
    return True


async def _settle(grace: float) -> None:
    """After Ctrl-C, wait at most `grace` seconds for the conversations to wind down.

    `play_scenarios` stops waiting at the first cancelled conversation; the others (each
    bounded by its engine) and AutoGen's runtime tasks are still ending. Left to `asyncio.run`
    they would be cancelled once more at exit, and AutoGen's runtime reports that with a
    traceback. A second Ctrl-C stops waiting.
    """
    current = asyncio.current_task()
    others = {task for task in asyncio.all_tasks() if task is not current}
    if not others:
        return
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait(others, timeout=grace)


def _save_interrupted(results: list[dict[str, Any]], total: int, out: Path) -> NoReturn:
    """After Ctrl-C: write the conversations that finished, say so, exit 130."""
    if not results:
        err_console.print(
            f"[yellow]Interrupted:[/] none of the {total} conversation(s) had finished; "
            "nothing was saved.",
            soft_wrap=True,
        )
        raise typer.Exit(INTERRUPTED_EXIT_CODE)
    try:
        write_json(out, results)
    except OSError as error:
        print_error(
            f"Interrupted, and the {len(results)} finished conversation(s) could not be written "
            f"to '{out}' ({error.strerror or error}); nothing was saved."
        )
        raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
    err_console.print(
        f"[yellow]Interrupted:[/] {len(results)} of {total} conversation(s) finished; saved "
        f"them to [cyan]{_t(out)}[/]",
        soft_wrap=True,
    )
    raise typer.Exit(INTERRUPTED_EXIT_CODE)


def _print_budget_reached(budget: Budget, skipped: list[str], total: int) -> None:
    """One line on stderr (stdout may be JSON): the cap, what it left out, how to raise it."""
    err_console.print(
        f"[yellow]Budget reached:[/] ${budget.spent_usd:.4f} spent of ${budget.cap_usd:.4f} "
        f"(estimated); {len(skipped)} of {total} scenario(s) not started: "
        f"{_t(', '.join(skipped))}. Raise the cap with --budget-usd (or BUDGET_USD) to run "
        "them.",
        soft_wrap=True,
    )


def _print_summary(results: list[dict[str, Any]], out: Path) -> None:
    """`N conversation(s): <count> <status>, ... Results written to <out>`."""
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
