"""`conversation-engine specs list|show|validate|schema`: the prompt specs.

`list` tabulates the specs in the spec directory, `show` prints one as JSON, `validate`
loads one (which checks its structure, tools, python_tools, handoff targets, client agent,
agent ids and templates, and reports every problem at once) and names its agents, and
`schema` prints the JSON Schema of the spec format (`docs/specs.md` explains it). None of
them loads AutoGen.
"""

from __future__ import annotations

from typing import Annotated

import typer

from conversation_engine.cli._apps import specs_app
from conversation_engine.cli._terminal import DebugOption, _t, console, user_errors


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
    """Check a spec: structure, tools, python_tools, handoff targets, client agent, agent ids."""
    with user_errors(debug):
        from conversation_engine.inputs.specs import load_prompt_spec

        spec = load_prompt_spec(name)
        agents = ", ".join(spec.agents)
        own_tools = ", ".join(tool.name for tool in spec.declared_python_tools)
        python_tools = f"; python tools {_t(own_tools)}" if own_tools else ""
        console.print(
            f"[green]OK[/] {_t(name)}: agents {_t(agents)}; entry agent "
            f"'{_t(spec.entry_agent_id)}'{python_tools}.",
            soft_wrap=True,
        )


@specs_app.command("schema")
def specs_schema(debug: DebugOption = False) -> None:
    """Print the JSON Schema of prompt spec files (see docs/specs.md)."""
    with user_errors(debug):
        import json
        import sys

        from conversation_engine.inputs.spec_schema import spec_json_schema

        sys.stdout.write(json.dumps(spec_json_schema(), indent=2) + "\n")
