"""`conversation-engine run`: play scenarios through one engine and show the transcripts.

Loads the scenarios, builds the engine (checking the scenarios' variables against its spec),
plays them with bounded concurrency (`batch.play.play_scenarios`), shows each transcript as
its conversation ends (or, with `--json`, prints all results as JSON at the end) and writes
the contract results to a JSON file. Nothing is scored; `batch` does that.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from conversation_engine.cli._apps import app
from conversation_engine.cli._terminal import (
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
    make_wrapper,
    print_error,
    quiet_cancellations,
    user_errors,
    write_json,
)


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
        from conversation_engine.batch.play import play_scenarios
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
        quiet_cancellations(debug)
        engine_cls = resolve_engine(engine)
        out = out or settings.RESULTS_DIR / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        check_output_file(out)  # before anything runs, not after every conversation did

        def show(_: int, result: dict[str, Any]) -> None:
            if as_json:
                return
            try:
                print_transcript(result, console)
            except Exception:  # showing a result must never lose the results
                logging.getLogger(__name__).exception("Could not show a transcript")

        async def main() -> list[dict[str, Any]]:
            wrapper = make_wrapper(quiet=as_json)
            try:
                instance = create_engine(engine_cls, wrapper, spec)
                prompt_spec = getattr(instance, "prompt_specification", None)
                if isinstance(prompt_spec, PromptSpec):
                    check_variables(prompt_spec, loaded, source=str(scenario_path))
                return await play_scenarios(
                    instance,
                    loaded,
                    basic=basic,
                    max_turns=max_turns,
                    timeout_sec=timeout,
                    concurrency=concurrency or settings.CONCURRENCY,
                    on_result=show,
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
            _print_summary(results, out)


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
