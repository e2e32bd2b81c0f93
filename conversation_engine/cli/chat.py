"""`conversation-engine chat`: be the customer yourself, then keep the talk as a test.

The command plays one conversation of a scenario (the first shipped shop scenario unless
`--scenario`/`--name` say otherwise) with the person at the terminal as its customer
(`engines.human_customer`), through the same engine, driver, bots and tools as `run`. Each
agent turn is shown as it comes back (`chat_view`); `/end [reason]` hangs up, `/undo` takes
back the last line and the agents' answer, `/vars` shows the scenario's variables, `/help`
the commands. On exit the conversation is written as a contract result (the same shape as
`run`'s), and with `--save-script FILE` the lines said are written as a scenario with a
scripted customer, which `run`, `batch` and `compare` replay.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conversation_engine.cli._apps import app
from conversation_engine.cli._terminal import (
    USER_ERROR_EXIT_CODE,
    WRITE_FAILED_EXIT_CODE,
    BasicOption,
    DebugOption,
    MaxTurnsOption,
    _t,
    announce_endpoint,
    console,
    default_scenarios_path,
    make_wrapper,
    print_error,
    quiet_cancellations,
    results_file,
    user_errors,
    write_json,
)
from conversation_engine.core._safe_text import terminal_safe

if TYPE_CHECKING:
    from conversation_engine.cli.chat_view import TurnView
    from conversation_engine.engines.customer import Customer, CustomerSeat
    from conversation_engine.engines.human_customer import HumanCustomer
    from conversation_engine.inputs.scenario import Scenario

#: A chat's wall-clock bound (`--timeout`): the person's thinking time counts too.
CHAT_TIMEOUT_SECONDS = 3600.0

HELP_TEXT = (
    "Type what the customer says. Commands: /end [reason] hangs up; /undo takes back your "
    "last line and the bot's answer; /vars shows the scenario's variables; /help shows this. "
    "Start a line with // to say text that begins with a slash."
)


@app.command()
def chat(
    spec: Annotated[str, typer.Option(help="Prompt spec name or path.")] = "multiagent_prompts",
    engine: Annotated[str, typer.Option(help="'autogen' or 'legacy'.")] = "autogen",
    scenario: Annotated[
        Path | None,
        typer.Option(
            metavar="<file>",
            help="Scenario file whose scenario you play. Default: the shipped shop scenarios.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="<name>",
            help="Which scenario of the file (its 'name'). Default: the file's first.",
            show_default=False,
        ),
    ] = None,
    basic: BasicOption = False,
    max_turns: MaxTurnsOption = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds the whole chat may last.")
    ] = CHAT_TIMEOUT_SECONDS,
    out: Annotated[
        str | None,
        typer.Option(
            metavar="<path>",
            help="Result JSON file, or a directory (an existing one, or any path ending in "
            "'/') to write chat-<time>.json in. Default: RESULTS_DIR.",
            show_default=False,
        ),
    ] = None,
    save_script: Annotated[
        Path | None,
        typer.Option(
            metavar="<file>",
            help="Also write your lines as a scenario with a scripted customer, for run, "
            "batch and compare to replay.",
            show_default=False,
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Talk to the bot as its customer; the conversation is written as a contract result.

    Each agent turn shows as it comes back: who speaks, what they say, their tool calls and
    handoffs. Commands: /end [reason], /undo, /vars, /help.
    """
    with user_errors(debug):
        from conversation_engine.cli.chat_view import TurnView
        from conversation_engine.cli.transcript import display_names
        from conversation_engine.core._output import check_output_file
        from conversation_engine.core.errors import UserInputError
        from conversation_engine.core.settings import get_settings
        from conversation_engine.engines import create_engine, resolve_engine
        from conversation_engine.engines.base import ContractEngine
        from conversation_engine.engines.human_customer import HumanCustomer
        from conversation_engine.inputs.scenario import check_variables, load_scenarios

        settings = get_settings()
        scenario_path = scenario or default_scenarios_path()
        loaded = load_scenarios(scenario_path)
        played = pick_scenario(loaded, name, scenario_path)
        quiet_cancellations(debug)
        engine_cls = resolve_engine(engine)
        if not issubclass(engine_cls, ContractEngine):
            raise UserInputError(
                f"Engine '{engine}' cannot chat: a chat needs an engine built on ContractEngine "
                "(the shipped 'autogen' and 'legacy' are)."
            )
        out_path = results_file(out, settings.RESULTS_DIR, "chat")
        check_output_file(out_path)  # before the person types anything, not after
        if save_script is not None:
            check_output_file(save_script)
        chat_state: dict[str, Any] = {}

        async def main() -> dict[str, Any]:
            wrapper = make_wrapper()
            try:
                instance = create_engine(engine_cls, wrapper, spec)
                # The whole file, as `run` checks it (and so its messages name the right item).
                check_variables(instance.prompt_specification, loaded, source=str(scenario_path))
                view = TurnView(display_names(instance.prompt_specification))
                announce_endpoint(wrapper)
                console.print(
                    Text.assemble(
                        "You are the customer of ",
                        (terminal_safe(played.name), "bold"),
                        f" ({'basic' if basic else 'tools'} mode). ",
                        HELP_TEXT,
                    ),
                    soft_wrap=True,
                )

                def seat_person(seat: CustomerSeat) -> Customer:
                    terminal = ChatTerminal(console, seat, view)
                    person = HumanCustomer(terminal, can_take_back=seat.can_take_back)
                    chat_state.update(terminal=terminal, person=person)
                    return person

                return await instance.run_with_customer(
                    played.model_dump(),
                    seat_person,
                    basic=basic,
                    max_turns=max_turns,
                    timeout_sec=timeout,
                )
            finally:
                await wrapper.aclose()

        result = asyncio.run(main())
        terminal: ChatTerminal | None = chat_state.get("terminal")
        if terminal is not None:
            terminal.show_new_entries()  # the bot's last turn, which no one answered
        try:
            write_json(out_path, result)
        except OSError as error:
            print_error(
                f"The chat could not be written to '{out_path}' ({error.strerror or error}); "
                "nothing was saved."
            )
            raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
        _print_end(result, out_path)
        person: HumanCustomer | None = chat_state.get("person")
        if save_script is not None:
            _save_script(save_script, played, person)


class ChatTerminal:
    """The person's side of the terminal: shows each agent turn, reads the customer's lines.

    It implements `engines.human_customer.CustomerTerminal`.
    """

    def __init__(self, console: Console, seat: CustomerSeat, view: TurnView) -> None:
        self._console = console
        self._seat = seat
        self._view = view
        self._shown = 0

    def show_new_entries(self) -> None:
        """Show the history entries produced since the last call: the agents' turns (the
        person's own lines are on the screen already; a scenario greeting is shown once)."""
        history = self._seat.history
        for index in range(self._shown, len(history)):
            entry = history[index]
            if entry.speaker == "client" and index == 0:
                self._console.print(
                    Text.assemble(
                        ("You (scenario greeting): ", "bold green"), terminal_safe(entry.content)
                    )
                )
            for line in self._view.lines([entry]):
                self._console.print(line, soft_wrap=True)
        self._shown = len(history)

    def read_line(self, agent_text: str) -> str | None:
        history = self._seat.history
        if len(history) < self._shown:  # the driver took the last exchange back
            self._shown = len(history)
            self.notice("Taken back. The agents' last words were:")
            self._console.print(Text(terminal_safe(agent_text), style="italic"), soft_wrap=True)
        self.show_new_entries()
        try:
            line = self._console.input(Text("You> ", style="bold green"))
        except (EOFError, KeyboardInterrupt):
            # Ctrl-D or Ctrl-C: the customer leaves; the conversation is still written.
            self._console.print()
            return None
        if not sys.stdin.isatty():
            # Piped lines are not echoed by a terminal; shown, the session reads as a dialogue.
            self._console.print(Text(terminal_safe(line)), soft_wrap=True)
        return line

    def command(self, name: str, argument: str) -> bool:
        if name == "help":
            self.notice(HELP_TEXT)
            return True
        if name == "vars":
            self._console.print(variables_table(self._seat.variables))
            return True
        return False

    def notice(self, text: str) -> None:
        self._console.print(Text(terminal_safe(text), style="dim"), soft_wrap=True)


def variables_table(variables: Mapping[str, Any]) -> Table:
    """The scenario's prepared variables, one row each, long values folded."""
    from conversation_engine.cli.chat_view import folded

    table = Table(title="Scenario variables", show_header=True, title_justify="left")
    table.add_column("variable", style="cyan", no_wrap=True)
    table.add_column("value")
    for key in sorted(variables):
        table.add_row(terminal_safe(key), folded(variables[key], 100))
    return table


def pick_scenario(loaded: list[Scenario], name: str | None, path: Path) -> Scenario:
    """The scenario named `name` of those loaded from `path` (the first when `name` is None)."""
    from conversation_engine.core.errors import ScenarioError

    if name is None:
        return loaded[0]
    for candidate in loaded:
        if candidate.name == name:
            return candidate
    known = ", ".join(repr(s.name) for s in loaded[:10]) + (", ..." if len(loaded) > 10 else "")
    raise ScenarioError(
        f"Scenario file '{path}' has no scenario named {name!r}; its scenarios are: {known}."
    )


def _print_end(result: dict[str, Any], out: Path) -> None:
    """`Chat ended: completed · client_end_call · 3 turns. Result written to <out>`."""
    from conversation_engine.cli.chat_view import folded

    parts = [result.get("status"), result.get("end_reason"), f"{result.get('total_turns')} turns"]
    summary = " · ".join(str(part) for part in parts if part)
    if result.get("error"):
        summary += f" ({result.get('error_type')}: {folded(str(result['error']), 100)})"
    console.print(
        f"[bold]Chat ended:[/] {_t(summary)}. Result written to [cyan]{_t(out)}[/]",
        soft_wrap=True,
    )


def _save_script(path: Path, played: Scenario, person: HumanCustomer | None) -> None:
    """Write the person's lines as the scenario with a scripted customer (`--save-script`)."""
    from conversation_engine.inputs.customer_script import CUSTOMER_SCRIPT_KEY

    if person is None or not person.lines:
        print_error(f"You said nothing, so no script was written to '{path}'.")
        raise typer.Exit(USER_ERROR_EXIT_CODE)
    kept = played.model_dump()
    kept[CUSTOMER_SCRIPT_KEY] = person.script().to_scenario_value()
    try:
        write_json(path, [kept])
    except OSError as error:
        print_error(f"The script could not be written to '{path}' ({error.strerror or error}).")
        raise typer.Exit(WRITE_FAILED_EXIT_CODE) from None
    console.print(
        f"[bold]Script of {len(person.lines)} line(s) written to[/] [cyan]{_t(path)}[/]; "
        f"replay it with: conversation-engine run {_t(path)}",
        soft_wrap=True,
    )
