"""The Typer objects the commands register on: the `conversation-engine` app and its groups.

Kept apart from `__init__` so that each command module can import them without importing
the package's other commands (no import cycle); `__init__` adds the groups to `app`.
"""

from __future__ import annotations

import typer

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
