"""Transcripts show whatever a result holds as plain text: never markup, never escape codes."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from hypothesis import given, settings
from rich.console import Console

from conversation_engine.cli.transcript import display_names, print_transcript
from conversation_engine.inputs.specs import load_prompt_spec
from tests.hostile_text import hostile_text

UNSAFE_ON_A_TERMINAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def result_with(text: str) -> dict[str, Any]:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": f"get_cart{text}", "arguments": json.dumps({"message": text})},
    }
    return {
        "session_id": text,
        "scenario": text,
        "status": "failed",
        "total_turns": 1,
        "duration_seconds": 0.5,
        "end_reason": text,
        "error": text,
        "error_type": text,
        "conversation_history": [
            {
                "turn": 1,
                "speaker": f"agent_{text}",
                "content": text,
                "tool_calls": [call],
                "tool_results": [{"error": text}],
            },
            {"turn": 1, "speaker": "client", "content": text},
        ],
    }


def shown(result: dict[str, Any]) -> str:
    screen = Console(file=io.StringIO(), width=300, color_system=None, emoji=False)
    print_transcript(result, screen)
    return screen.file.getvalue()  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(hostile_text)
def test_any_text_in_a_result_prints_as_plain_text(text: str) -> None:
    output = shown(result_with(text))
    assert UNSAFE_ON_A_TERMINAL.search(output) is None


def test_markup_in_an_error_is_shown_not_parsed() -> None:
    output = shown(result_with("bad [/] and [bold]x[/bold] \x1b]0;T\x07 \ud800"))
    assert "bad [/] and [bold]x[/bold]" in output
    assert "\x1b" not in output and "\x07" not in output and "\ufffd" in output


# ------------------------------------------------------------------ what the display changes


def handoff_conversation() -> dict[str, Any]:
    """A contract result: the sales agent hands off (no text), support answers, the client
    hangs up."""
    handoff = {
        "id": "h1",
        "type": "function",
        "function": {"name": "handoff_support", "arguments": "{}"},
    }
    end_call = {
        "id": "e1",
        "type": "function",
        "function": {"name": "end_call", "arguments": json.dumps({"reason": "order complete"})},
    }
    return {
        "session_id": "s-1",
        "scenario": "handoff",
        "status": "completed",
        "total_turns": 2,
        "duration_seconds": 1.5,
        "end_reason": "client_end_call",
        "conversation_history": [
            {"turn": 1, "speaker": "agent_agent", "content": "Hello! How can I help?"},
            {"turn": 1, "speaker": "client", "content": "Deliver to address 3, please."},
            {
                "turn": 2,
                "speaker": "agent_agent",
                "content": "",
                "tool_calls": [handoff],
                "tool_results": [{"status": "handoff_completed"}],
            },
            {"turn": 2, "speaker": "agent_support", "content": "Done, address 3."},
            {
                "turn": 2,
                "speaker": "client",
                "content": "[ЗАВЕРШИЛ ЗВОНОК: order complete]",
                "tool_calls": [end_call],
            },
        ],
    }


def shown_lines(result: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    screen = Console(file=io.StringIO(), width=120, color_system=None, emoji=False)
    print_transcript(result, screen, names=names)
    text = screen.file.getvalue()  # type: ignore[attr-defined]
    return [line.strip("│ ").rstrip() for line in text.splitlines()[1:-1]]


def test_speakers_and_handoff_targets_show_the_spec_s_display_names() -> None:
    names = display_names(load_prompt_spec("multiagent_prompts"))
    lines = shown_lines(handoff_conversation(), names)
    assert lines[0] == "1 Sales Agent: Hello! How can I help?"
    assert lines[1] == "1 Customer: Deliver to address 3, please."
    assert lines[3] == "2 Support Agent: Done, address 3."
    assert not any("agent_agent" in line or "agent_support" in line for line in lines)


def test_a_handoff_without_text_shows_as_the_handoff_not_an_empty_line() -> None:
    names = display_names(load_prompt_spec("multiagent_prompts"))
    lines = shown_lines(handoff_conversation(), names)
    assert lines[2] == "2 Sales Agent ⇢ hands off to Support Agent"
    assert not any(line.endswith(":") for line in lines)
    assert len(lines) == 5  # one line per entry


def test_the_client_hanging_up_reads_as_english() -> None:
    names = display_names(load_prompt_spec("multiagent_prompts"))
    lines = shown_lines(handoff_conversation(), names)
    assert lines[4] == "2 (Customer hung up: order complete)"
    assert not any("ЗАВЕРШИЛ" in line or "end_call" in line for line in lines)


def test_without_a_spec_the_ids_are_shown_and_the_result_is_untouched() -> None:
    result = handoff_conversation()
    before = json.dumps(result, ensure_ascii=False)
    lines = shown_lines(result)
    assert lines[0] == "1 agent_agent: Hello! How can I help?"
    assert lines[2] == "2 agent_agent ⇢ hands off to support"
    assert lines[4] == "2 (client hung up: order complete)"
    assert json.dumps(result, ensure_ascii=False) == before  # only the display changes


def test_basic_mode_s_agent_is_the_entry_agent() -> None:
    names = display_names(load_prompt_spec("multiagent_prompts"))
    result = {"conversation_history": [{"turn": 1, "speaker": "agent", "content": "Hi"}]}
    assert shown_lines(result, names)[0] == "1 Sales Agent: Hi"
