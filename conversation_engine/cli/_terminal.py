"""What the commands share: the consoles, safe text, user errors, exit codes and options.

Text from outside (results, spec files, paths, error messages) goes through `_t` (or
`print_error`): printed as written, never as console markup, with escape sequences and
control characters removed (`safe_text`). Heavy imports (settings, the endpoint; rich's
progress bar lives in `progress`) happen inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from conversation_engine.core._safe_text import terminal_safe

if TYPE_CHECKING:
    from conversation_engine.llm.endpoint import OpenAIWrapper

# No emoji codes: ":smile:" in a model's reply or a file name is text, not a picture.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

DEFAULT_SCENARIOS = "shop_scenarios.json"
SIMULATED_BANNER = (
    "No OPENAI_API_KEY or OPENAI_BASE_URL is set: using the offline simulated LLM, a deterministic "
    "test double that plays client, agents and evaluator by rule, not a language model."
)

#: Exit code of a command whose results could not be written (a full disk, an I/O error).
WRITE_FAILED_EXIT_CODE = 1
#: Exit code of a user error (a bad option, file or spec): one sentence, no traceback.
USER_ERROR_EXIT_CODE = 2
#: Exit code of a batch or comparison stopped by Ctrl-C (SIGINT).
INTERRUPTED_EXIT_CODE = 130

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


def terminal_safe_logging() -> None:
    """Unless logging is configured, log warnings to stderr terminal-safe."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_TerminalSafeLogHandler())


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn user errors into one sentence and exit code 2."""
    from conversation_engine.core.errors import UserInputError

    terminal_safe_logging()
    try:
        yield
    except UserInputError as error:
        if debug:
            raise
        print_error(error)
        raise typer.Exit(USER_ERROR_EXIT_CODE) from None


def quiet_cancellations(debug: bool = False) -> None:
    """AutoGen's runtime errors: one line per failed conversation unless `debug` (logs.py)."""
    from conversation_engine.cli.logs import route_autogen_runtime_logs

    route_autogen_runtime_logs(debug=debug)


def default_scenarios_path() -> Path:
    """The shipped shop scenarios, the default SCENARIOS argument."""
    from conversation_engine.core.settings import get_settings

    return get_settings().FIXTURES_DIR / "scenarios" / DEFAULT_SCENARIOS


def results_file(out: str | None, results_dir: Path, command: str) -> Path:
    """Where `command` writes its results: `out`, or `<command>-<time>.json` inside it when it
    is an existing directory or ends in a slash, or inside `results_dir` when it is not given."""
    name = f"{command}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    if out is None:
        return results_dir / name
    path = Path(out)
    if out.endswith(("/", os.sep)) or path.is_dir():
        return path / name
    return path


def make_wrapper(wire_layer: Any = None) -> OpenAIWrapper:
    """The configured endpoint, or the simulated LLM; silent: `announce_endpoint` says which,
    once the command's input has been checked (a user error prints its one line only).
    `wire_layer`: a recording or a replay in its wire (`cli.replay.wire_setup`)."""
    from conversation_engine.core.settings import get_settings
    from conversation_engine.llm.endpoint import OpenAIWrapper

    return OpenAIWrapper.from_settings(get_settings(), wire_layer=wire_layer)


def endpoint_host(url: Any) -> str | None:
    """The host (and port) of a base URL: never its credentials, path or query."""
    try:
        parts = urlsplit(str(url or "").strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def endpoint_text(*, model: Any, host: str | None, simulated: bool) -> str:
    """`model gpt-4o-mini on OpenAI-compatible endpoint api.openai.com` or `model simulated on
    the simulated LLM (offline test double)`: kind, host and model, never a key."""
    if simulated:
        return f"model {model} on the simulated LLM (offline test double)"
    return f"model {model} on OpenAI-compatible endpoint {host or '(unknown host)'}"


def wrapper_host(wrapper: OpenAIWrapper) -> str | None:
    """The host of an endpoint's base URL as the SDK resolved it (its default when none is
    configured)."""
    client = getattr(wrapper, "client", None)
    return endpoint_host(getattr(client, "base_url", None) or wrapper.base_url)


def wrapper_endpoint_text(wrapper: OpenAIWrapper) -> str:
    """`endpoint_text` of an endpoint."""
    return endpoint_text(
        model=wrapper.model, host=wrapper_host(wrapper), simulated=wrapper.is_simulated
    )


def announce_endpoint(wrapper: OpenAIWrapper, lines: list[str] | None = None) -> None:
    """Say which endpoint and model a command uses (stdout), and the simulated-LLM banner
    (stderr) when it is the simulated LLM. `lines`: what to say instead of the wrapper's
    endpoint (compare: one line per side)."""
    for line in lines if lines is not None else [f"Using {wrapper_endpoint_text(wrapper)}."]:
        console.print(_t(line), soft_wrap=True)
    if wrapper.is_simulated:
        err_console.print(f"[yellow]{SIMULATED_BANNER}[/]")


def write_json(path: Path, data: Any) -> None:
    """Write a results file: atomically for a regular file (a reader never sees half of it, a
    failure leaves no partial file), in place for `/dev/null` or a pipe; any text is kept
    (`safe_text.json_dumps`)."""
    from conversation_engine.core._output import write_output_file
    from conversation_engine.core._safe_text import json_dumps

    write_output_file(path, json_dumps(data, indent=2))
