"""The Typer objects the commands register on: the `conversation-engine` app and its groups.

Kept apart from `__init__` so that each command module can import them without importing
the package's other commands (no import cycle); `__init__` adds the groups to `app`.

Every command and group of the app uses the classes below, which fix two things typer's rich
help gets wrong for us:

* a flag (`--basic`, `--json`, `--help`) takes no value, but typer 0.29 prints its type
  (`<bool>`) next to it as if it took one: a flag gets an empty metavar instead;
* in rich markup mode a single line break of a docstring is kept, so a paragraph wrapped at
  the source's line length breaks mid-sentence on any other terminal width: the lines of a
  paragraph are joined, and the terminal wraps them (a paragraph of `*`/`-` items or one
  starting with `\\b` keeps its lines).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def reflow_help(text: str | None) -> str | None:
    """Help text with the lines of each paragraph joined (see the module docstring)."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", text.strip("\n"))
    joined = []
    for paragraph in paragraphs:
        lines = [line.strip() for line in paragraph.splitlines()]
        keeps_lines = paragraph.lstrip().startswith("\b") or any(
            line.startswith(("* ", "- ")) for line in lines
        )
        joined.append(paragraph if keeps_lines else " ".join(line for line in lines if line))
    return "\n\n".join(joined)


def _flags_without_type(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class CliCommand(TyperCommand):
    """A command whose help shows flags without a type and paragraphs reflowed."""

    def __init__(self, name: str | None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.help = reflow_help(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class CliGroup(TyperGroup):
    """A command group whose help shows `--help` without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class CliTyper(typer.Typer):
    """A Typer app whose commands are `CliCommand`s unless a command names another class."""

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or CliCommand, **kwargs)


app = CliTyper(
    cls=CliGroup,
    help="Simulate and A/B-test multi-agent customer-service bots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
specs_app = CliTyper(
    cls=CliGroup, help="List, show and validate prompt specifications.", no_args_is_help=True
)
simulated_app = CliTyper(
    cls=CliGroup,
    help="The offline simulated LLM (a test double, not a language model).",
    no_args_is_help=True,
)
