"""Readable terminal transcripts of contract results (rich).

Everything in a result came from outside (the model, tools, the scenario file): it is shown as
plain text, never read as console markup, with escape sequences and control characters
removed (`safe_text.plain`).
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from conversation_engine.core._safe_text import plain, terminal_safe
from conversation_engine.core.contract import CLIENT_SPEAKER, HANDOFF_PREFIX

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


def render_transcript(result: dict[str, Any]) -> Panel:
    """A panel with one line per history entry and its tool calls underneath."""
    styles: dict[str, str] = {}
    lines: list[Text] = []
    for entry in result.get("conversation_history") or []:
        speaker = terminal_safe(entry.get("speaker", "?"))
        if speaker == CLIENT_SPEAKER:
            style = "green"
        else:
            style = styles.setdefault(speaker, _AGENT_STYLES[len(styles) % len(_AGENT_STYLES)])
        line = Text(f"{terminal_safe(entry.get('turn', '?')):>2} ", style="dim")
        line.append(f"{speaker}: ", style=f"bold {style}")
        content = entry.get("content")
        line.append(terminal_safe(content or ""), style=None if content else "dim")
        lines.append(line)
        results = entry.get("tool_results") or []
        for index, call in enumerate(entry.get("tool_calls") or []):
            function = call.get("function", {})
            name = terminal_safe(function.get("name", "?"))
            if name.startswith(HANDOFF_PREFIX):
                lines.append(
                    Text(f"     ⇢ hands off to {name[len(HANDOFF_PREFIX) :]}", style="bold yellow")
                )
                continue
            arguments = terminal_safe(_arguments(str(function.get("arguments", ""))))
            detail = Text(f"     ↳ {name}({arguments})", style="dim")
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


def print_transcript(result: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(render_transcript(result))
