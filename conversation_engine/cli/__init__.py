"""The `conversation-engine` command.

Each command lives in its own module, which parses the options, calls the library and
renders the outcome: `run`, `chat`, `batch`, `compare`, `specs` (list, show, validate) and
`simulated` (`simulated-llm serve`). What they share, the terminal output, user errors,
exit codes and options, is in `_terminal`.

Heavy imports (AutoGen, openai) happen inside commands so that `--help` stays fast.
User errors print one sentence and exit with code 2; `--debug` shows the traceback. A results
write that fails after conversations ran (a full disk) prints one sentence and exits with
code 1. Text from outside (results, spec files, paths, error messages) is printed as plain
text, never as console markup, with escape sequences and control characters removed
(`safe_text`).
"""

from __future__ import annotations

from conversation_engine.cli._apps import app, simulated_app, specs_app

# Importing a command module registers its commands; the order here is the order of `--help`.
# isort: off
from conversation_engine.cli import run  # noqa: F401
from conversation_engine.cli import chat  # noqa: F401
from conversation_engine.cli import batch  # noqa: F401
from conversation_engine.cli import compare  # noqa: F401
from conversation_engine.cli import specs  # noqa: F401
from conversation_engine.cli import simulated  # noqa: F401

# isort: on

app.add_typer(specs_app, name="specs")
app.add_typer(simulated_app, name="simulated-llm")

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry
    app()
