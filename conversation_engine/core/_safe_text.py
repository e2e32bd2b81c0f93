"""Text from outside (model, tools, webhook, scenario files, paths) as data, never as code.

Anything a model, a tool API, a webhook or a file hands us can hold any Python string: lone
surrogates (`"\\ud800"`, which a JSON body may carry and which UTF-8 cannot encode), control
characters, ANSI/OSC escape sequences, console markup like `[/]`. This module decides how such
text is stored and shown, in one place:

* **stored JSON** (`results.ndjson`, `batch.json`, `results.json`, `summary.json`,
  `comparison.json`, `run`'s results): `json_dumps` keeps every string losslessly. A lone
  surrogate is written as its JSON escape (`"\\ud800"`), the way `ensure_ascii` would (so are
  the line separators NEL, LS, PS), and only these: the rest stays readable UTF-8, and reading
  the file back gives the very same string (as any JSON, a high surrogate directly followed
  by a low one reads back as the one character they encode);
* **stored plain text** (`results.csv`, `report.md`, `report.html`), which has no escape
  syntax: `without_surrogates` replaces each lone surrogate with U+FFFD (�); nothing else
  changes;
* **the terminal**: `terminal_safe` drops escape sequences (CSI, OSC, DCS, ...) and control
  characters other than newline and tab, and replaces lone surrogates with U+FFFD, so model
  output can neither set the window title nor clear the screen; `plain` wraps it in a
  `rich.text.Text`, which is never read as console markup. Stored data keeps the text as it
  came.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.text import Text

REPLACEMENT = "\ufffd"

_SURROGATES = re.compile("[\ud800-\udfff]")
#: Escaped in stored JSON: lone surrogates, and the line breaks other than LF that `json`
#: leaves raw (NEL, LS, PS), so one NDJSON row stays one line for any line splitter.
_STORED_JSON_UNSAFE = re.compile("[\x85\u2028\u2029\ud800-\udfff]")
#: In JSON for a terminal, also C1 controls and DEL (C0 controls are escaped by `json` itself).
_TERMINAL_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")

_ESCAPE_SEQUENCES = re.compile(
    r"""
    \x1b\[[0-?]*[\x20-/]*[@-~]?                   # CSI: ESC [ params intermediates final
    | \x9b[0-?]*[\x20-/]*[@-~]?                   # CSI, 8-bit
    | (?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])     # OSC, DCS, SOS, PM, APC (7- or 8-bit) ...
      [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?       # ... up to BEL or ST (or the end)
    | \x1b[\x20-/]*[0-~]?                         # any other ESC sequence (ESC c, ESC 7, ...)
    """,
    re.VERBOSE,
)
#: Control characters left after the sequences are gone: C0 but tab and newline, DEL, C1.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_dumps(data: Any, *, indent: int | None = None, for_terminal: bool = False) -> str:
    """JSON text that always encodes as UTF-8 and reads back to the same strings.

    Like `json.dumps(data, ensure_ascii=False, default=str)`, but a lone surrogate is written
    as its `\\uXXXX` escape instead of raising later, when the text is encoded, and so are NEL,
    LS and PS (line breaks to some readers: an NDJSON row stays one line). `for_terminal` also
    escapes DEL and the C1 controls, which some terminals act on (C0 controls are always
    escaped by JSON). Safe because JSON's own syntax is ASCII: these characters can only occur
    inside strings.
    """
    text = json.dumps(data, ensure_ascii=False, indent=indent, default=str)
    pattern = _TERMINAL_JSON_UNSAFE if for_terminal else _STORED_JSON_UNSAFE
    return pattern.sub(_json_escape, text)


def without_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    return _SURROGATES.sub(REPLACEMENT, text)


def terminal_safe(value: Any) -> str:
    """`value` as text fit for a terminal: no escape sequences, no control characters
    (newline and tab stay), no lone surrogates (U+FFFD instead)."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to strip (newline and tab are not)
        return without_surrogates(text)
    text = _ESCAPE_SEQUENCES.sub("", text)
    return without_surrogates(_CONTROLS.sub("", text))


def plain(value: Any, style: str | None = None) -> Text:
    """`value` as terminal-safe rich `Text`: shown as written, never read as markup."""
    return Text(terminal_safe(value), style=style or "")


__all__ = ["REPLACEMENT", "json_dumps", "plain", "terminal_safe", "without_surrogates"]
