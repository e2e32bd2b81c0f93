"""Transcripts show whatever a result holds as plain text: never markup, never escape codes."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from hypothesis import given, settings
from rich.console import Console

from conversation_engine.cli.transcript import print_transcript
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
