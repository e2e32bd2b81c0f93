"""Readable terminal transcripts of contract results (rich).

Only the display differs from the contract result, never the result itself:

* speakers and handoff targets are shown by the spec's display names (`display_names`:
  `agent_support` → "Support Agent") when the caller has the spec, else by their ids;
* the client's end-call entry (`[ЗАВЕРШИЛ ЗВОНОК: reason]`, the contract's exact text) reads
  "(Customer hung up: reason)";
* an entry with no text that only calls tools (a handoff) shows as those calls on the
  speaker's line, not as an empty speech line.

Everything in a result came from outside (the model, tools, the scenario file): it is shown as
plain text, never read as console markup, with escape sequences and control characters
removed (`safe_text.plain`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from conversation_engine.core._safe_text import plain, terminal_safe
from conversation_engine.core.contract import (
    AGENT_SPEAKER_PREFIX,
    BASIC_AGENT_SPEAKER,
    CLIENT_END_CALL_MARKER,
    CLIENT_SPEAKER,
    HANDOFF_PREFIX,
)
from conversation_engine.core.errors import SpecError

if TYPE_CHECKING:
    from conversation_engine.inputs.specs import PromptSpec

_AGENT_STYLES = ("cyan", "magenta", "blue", "yellow", "bright_cyan", "bright_magenta")
_STATUS_STYLES = {
    "completed": "green",
    "timeout": "yellow",
    "failed": "red",
    "failed_api_blocked": "red",
}


def _short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arguments(raw: str) -> str:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return _short(raw, 50)
    if not isinstance(parsed, dict):
        return _short(raw, 50)
    parsed.pop("execution_message", None)
    return ", ".join(f"{key}={_short(value, 40)}" for key, value in parsed.items())


def _result_summary(result: Any) -> str:
    if isinstance(result, dict):
        if "error" in result:
            return f"error: {_short(result['error'], 60)}"
        if "products" in result:
            products = result.get("products") or []
            names = ", ".join(str(p.get("name", "?")) for p in products[:2])
            return f"{len(products)} product(s){': ' + names if names else ''}"
        if "status" in result:
            return str(result["status"])
    return _short(result, 60)


def display_names(spec: PromptSpec) -> dict[str, str]:
    """What to call each speaker id and handoff target of `spec`'s conversations: its agent's
    display name (the spec's `name`). Keys: `client`, `agent` (basic mode: the entry agent),
    `agent_<id>`, and each agent's id and AutoGen name (what a handoff tool names)."""
    from conversation_engine.engines.autogen.naming import autogen_names

    names: dict[str, str] = {}
    autogen = autogen_names(spec)
    for agent_id, agent in spec.agents.items():
        name = agent.name.strip() or agent_id
        names.setdefault(autogen.get(agent_id, agent_id), name)
        names[agent_id] = name
        names[f"{AGENT_SPEAKER_PREFIX}{agent_id}"] = name
    with contextlib.suppress(SpecError):  # no entry agent: the basic speaker keeps its id
        names[BASIC_AGENT_SPEAKER] = names[spec.entry_agent_id]
    return names


def _hang_up_reason(entry: Mapping[str, Any]) -> str | None:
    """The reason of the client's end-call entry (`[ЗАВЕРШИЛ ЗВОНОК: reason]`), else None."""
    content = entry.get("content")
    if entry.get("speaker") != CLIENT_SPEAKER or not isinstance(content, str):
        return None
    text = content.strip()
    if not (text.startswith(CLIENT_END_CALL_MARKER) and text.endswith("]")):
        return None
    return text[len(CLIENT_END_CALL_MARKER) : -1].strip()


def render_transcript(result: dict[str, Any], names: Mapping[str, str] | None = None) -> Panel:
    """A panel with one line per history entry and its tool calls underneath.

    `names`: display names of speaker ids and handoff targets (`display_names`).
    """
    names = names or {}
    styles: dict[str, str] = {}
    lines: list[Text] = []
    for entry in result.get("conversation_history") or []:
        speaker_id = terminal_safe(entry.get("speaker", "?"))
        speaker = terminal_safe(names.get(speaker_id, speaker_id))
        if speaker_id == CLIENT_SPEAKER:
            style = "green"
        else:
            style = styles.setdefault(speaker_id, _AGENT_STYLES[len(styles) % len(_AGENT_STYLES)])
        turn = Text(f"{terminal_safe(entry.get('turn', '?')):>2} ", style="dim")
        reason = _hang_up_reason(entry)
        if reason is not None:
            line = turn.copy()
            line.append(f"({speaker} hung up", style=f"italic {style}")
            line.append(f": {terminal_safe(reason)})" if reason else ")", style=f"italic {style}")
            lines.append(line)
            continue
        content = entry.get("content")
        calls = [call for call in entry.get("tool_calls") or [] if isinstance(call, dict)]
        # No text, only tool calls (a handoff): the calls are what the speaker did.
        speaks = bool(str(content or "").strip()) or not calls
        if speaks:
            line = turn.copy()
            line.append(f"{speaker}: ", style=f"bold {style}")
            line.append(terminal_safe(content or ""), style=None if content else "dim")
            lines.append(line)
        results = entry.get("tool_results") or []
        for index, call in enumerate(calls):
            if not speaks and index == 0:  # the calls open the entry's line
                detail = turn.copy()
                detail.append(f"{speaker} ", style=f"bold {style}")
            else:
                detail = Text("     ")
            function = call.get("function", {})
            name = terminal_safe(function.get("name", "?"))
            if name.startswith(HANDOFF_PREFIX):
                target = name[len(HANDOFF_PREFIX) :]
                shown = terminal_safe(names.get(target, target))
                detail.append(f"⇢ hands off to {shown}", style="bold yellow")
                lines.append(detail)
                continue
            arguments = terminal_safe(_arguments(str(function.get("arguments", ""))))
            detail.append(f"↳ {name}({arguments})", style="dim")
            if index < len(results):
                summary = terminal_safe(_result_summary(results[index]))
                detail.append(f" → {summary}", style="dim italic")
            lines.append(detail)
    status = str(result.get("status", "?"))
    duration = result.get("duration_seconds", 0)
    seconds = f"{duration:.1f}s" if isinstance(duration, int | float) else f"{duration}s"
    footer = f"{status} · {result.get('total_turns', 0)} turns · {seconds}"
    if result.get("end_reason"):
        footer += f" · {result['end_reason']}"
    if result.get("error"):
        footer += f" · {result.get('error_type')}: {_short(str(result['error']), 80)}"
    # Title and subtitle are Text, not markup strings: a `[/]` in an error must not be parsed.
    title = Text.assemble(
        plain(result.get("scenario", "?"), "bold"), " ", plain(result.get("session_id", ""), "dim")
    )
    return Panel(
        Group(*lines) if lines else Text("(no history)", style="dim"),
        title=title,
        subtitle=plain(" ".join(footer.split()), _STATUS_STYLES.get(status, "white")),
        title_align="left",
        subtitle_align="right",
    )


def print_transcript(
    result: dict[str, Any],
    console: Console | None = None,
    names: Mapping[str, str] | None = None,
) -> None:
    (console or Console()).print(render_transcript(result, names))
