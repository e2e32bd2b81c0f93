"""safe_text: lossless JSON for any string, U+FFFD where there is no escape, a clean terminal."""

from __future__ import annotations

import io
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from conversation_engine.cli._terminal import _t
from conversation_engine.core._safe_text import (
    REPLACEMENT,
    json_dumps,
    plain,
    terminal_safe,
    without_surrogates,
)
from tests.hostile_text import EVERYTHING, as_json_reads_it, hostile_text

UNSAFE_ON_A_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | hostile_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3)
    ),
    max_leaves=12,
)


def console() -> Console:
    return Console(file=io.StringIO(), width=200, color_system=None, emoji=False)


@settings(max_examples=200)
@given(json_values, st.sampled_from([None, 2]))
def test_json_dumps_always_encodes_and_reads_back(value: object, indent: int | None) -> None:
    text = json_dumps(value, indent=indent)
    text.encode("utf-8")  # never raises
    assert json.loads(text) == as_json_reads_it(value)


@settings(max_examples=200)
@given(json_values)
def test_terminal_json_also_escapes_c1_controls(value: object) -> None:
    text = json_dumps(value, for_terminal=True)
    assert UNSAFE_ON_A_TERMINAL.search(text.replace("\n", "")) is None
    assert json.loads(text) == as_json_reads_it(value)


def test_json_keeps_readable_text_and_escapes_only_surrogates() -> None:
    assert json_dumps({"a": "Разговор \ud800 😀"}) == '{"a": "Разговор \\ud800 😀"}'


@settings(max_examples=300)
@given(hostile_text)
def test_without_surrogates_only_replaces_surrogates(text: str) -> None:
    clean = without_surrogates(text)
    clean.encode("utf-8")
    assert len(clean) == len(text)
    for before, after in zip(text, clean, strict=True):
        assert after == (REPLACEMENT if 0xD800 <= ord(before) <= 0xDFFF else before)


@settings(max_examples=300)
@given(hostile_text)
def test_terminal_safe_leaves_no_control_sequence(text: str) -> None:
    safe = terminal_safe(text)
    assert UNSAFE_ON_A_TERMINAL.search(safe) is None
    assert "\x1b" not in safe
    safe.encode("utf-8")
    assert terminal_safe(safe) == safe  # idempotent


def test_terminal_safe_removes_whole_sequences_and_keeps_the_text() -> None:
    text = (
        "a\x1b]0;PWNED\x07b\x1b[2Jc\x1b[1;31md\x1b]8;;http://x\x1b\\e\x9b31mf\x1bcg\rh\x00i\tj\nk"
    )
    assert terminal_safe(text) == "abcdefghi\tj\nk"
    assert terminal_safe("Hello, [bold]world[/] :smile: Разговор") == (
        "Hello, [bold]world[/] :smile: Разговор"
    )
    assert terminal_safe("\ud800x") == f"{REPLACEMENT}x"
    assert terminal_safe(42) == "42"


@settings(max_examples=200)
@given(hostile_text)
def test_printed_outside_text_is_shown_as_written_never_as_markup(text: str) -> None:
    for renderable in (plain(text), f"[bold]Said:[/] {_t(text)}"):
        screen = console()
        screen.print(renderable, soft_wrap=True)
        shown = screen.file.getvalue()  # type: ignore[attr-defined]
        assert UNSAFE_ON_A_TERMINAL.search(shown) is None
        assert " ".join(terminal_safe(text).split()) in " ".join(shown.split())  # as written


def test_everything_at_once() -> None:
    screen = console()
    screen.print(plain(EVERYTHING))
    shown = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "[/]" in shown and "[bold red]red?[/]" in shown and ":smile:" in shown
    assert "\x1b" not in shown and "\x07" not in shown
    assert "PWNED" not in shown  # the whole title-setting sequence is dropped, not just ESC
