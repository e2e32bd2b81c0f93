"""What may differ between two runs of the same conversation, and the first thing that does.

A request is compared with its recording as normalised JSON text (`normalise_text`): the
session id (a fresh uuid that prompts may quote) becomes `SESSION_PLACEHOLDER`, registered
secrets are redacted, and one pass of one compiled pattern renumbers ids (the values of `id`
and `tool_call_id` keys, in order of appearance, so the pairing of a call with its result is
still compared) and replaces uuids and timestamps. Two requests are the same when their
normalised texts hash the same (`request_digest`), which costs no parsing; only when they
differ is the text parsed and walked (`first_difference`) to name the first differing field.
Everything else counts, key order included: a tool schema whose properties were reordered
is a different prompt.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from conversation_engine.core._redaction import redact_secrets
from conversation_engine.replay.format import SESSION_PLACEHOLDER

# Two passes, each starting at a literal character, which the regex engine finds with a fast
# scan (one alternation with classes or lookbehinds up front is tens of times slower). Ids
# first, so an id that is a uuid is renumbered as an id. A uuid or timestamp is found at its
# first `-`; what must precede it is checked by hand (`_preceded`), and it is delimited by what
# cannot continue it rather than by `\b`, so one right after an escaped newline
# (`\\n2024-...`) is still found.
_IDS = re.compile(r'("(?:id|tool_call_id)"\s*:\s*)"([^"\\]*(?:\\.[^"\\]*)*)"')
_UUID_OR_TIME = re.compile(
    r"-(?:(?P<uuid>[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})(?![0-9A-Fa-f])"
    r"|\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
#: How long a diff may get in a report.
MAX_DIFF_LINES = 40


def without_session(text: str, session_id: str | None) -> str:
    """`text` with the session id replaced by `SESSION_PLACEHOLDER`, as written raw or as
    JSON escapes it (with or without `ensure_ascii`)."""
    if not session_id:
        return text
    for form in _written_forms(session_id):
        if form in text:
            text = text.replace(form, SESSION_PLACEHOLDER)
    return text


@functools.lru_cache(maxsize=256)
def _written_forms(session_id: str) -> tuple[str, ...]:
    """The ways JSON may write `session_id`; asked for at every call of its conversation."""
    escaped = json.dumps(session_id)[1:-1]
    raw = json.dumps(session_id, ensure_ascii=False)[1:-1]
    return tuple(dict.fromkeys((session_id, escaped, raw)))


def normalise_text(text: str, session_id: str | None) -> str:
    """A request's JSON text with what varies by run replaced (see the module docstring)."""
    text = redact_secrets(without_session(text, session_id))
    ids: dict[str, str] = {}

    def renumber(match: re.Match[str]) -> str:
        number = ids.setdefault(match.group(2), f"<id-{len(ids) + 1}>")
        return f'{match.group(1)}"{number}"'

    text = _IDS.sub(renumber, text)
    if "-" not in text:
        return text
    pieces: list[str] = []
    done = 0
    for match in _UUID_OR_TIME.finditer(text):
        is_uuid = match.group("uuid") is not None
        start = match.start() - (8 if is_uuid else 4)
        if start < done or not _preceded(text, start, match.start(), _HEX if is_uuid else _DIGITS):
            continue
        pieces += (text[done:start], "<uuid>" if is_uuid else "<time>")
        done = match.end()
    return "".join(pieces) + text[done:] if pieces else text


def _preceded(text: str, start: int, end: int, chars: frozenset[str]) -> bool:
    """`text[start:end]` is all `chars` and the character before it (if any) is not one."""
    return all(char in chars for char in text[start:end]) and (
        start == 0 or text[start - 1] not in chars
    )


def request_digest(normalised: str) -> str:
    """The hash two normalised requests are compared by."""
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


def parse_request(text: str) -> dict[str, Any]:
    """A request body's JSON text as an object (a body that is not one is kept under `raw`)."""
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        return {"raw": text}
    return parsed if isinstance(parsed, dict) else {"raw": parsed}


@dataclass(frozen=True)
class Difference:
    """The first field where a request differs from the recorded one."""

    field: str
    """Its path in the request body, such as `messages[3].content` or `tools[1]`."""
    recorded: Any
    now: Any

    def diff(self) -> str:
        """A unified diff, recorded → now, of the field's JSON."""
        lines = list(
            difflib.unified_diff(
                _pretty(self.recorded).splitlines(),
                _pretty(self.now).splitlines(),
                "recorded",
                "replayed",
                lineterm="",
                n=2,
            )
        )
        if len(lines) > MAX_DIFF_LINES:
            lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more lines)"]
        return "\n".join(lines)


_MISSING = object()


def first_difference(recorded: Any, now: Any, path: str = "") -> Difference | None:
    """The first differing field of two normalised request bodies, in the order of the
    recorded one (a key the recording lacks comes last); None when they are the same."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        for key in [*recorded, *(key for key in now if key not in recorded)]:
            inner = first_difference(
                recorded.get(key, _MISSING), now.get(key, _MISSING), _join(path, key)
            )
            if inner is not None:
                return inner
        if list(recorded) != list(now):
            return Difference(path or "(body)", list(recorded), list(now))  # same keys, reordered
        return None
    if isinstance(recorded, list) and isinstance(now, list):
        for index in range(max(len(recorded), len(now))):
            inner = first_difference(
                recorded[index] if index < len(recorded) else _MISSING,
                now[index] if index < len(now) else _MISSING,
                f"{path}[{index}]",
            )
            if inner is not None:
                return inner
        return None
    if recorded is _MISSING or now is _MISSING or type(recorded) is not type(now):
        if recorded == now and recorded is not _MISSING:
            return None
        return Difference(path or "(body)", _absent(recorded), _absent(now))
    return None if recorded == now else Difference(path or "(body)", recorded, now)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _absent(value: Any) -> Any:
    return "(absent)" if value is _MISSING else value


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)
