"""Hostile text from outside, and a model endpoint (for respx) that sends it on the wire.

`hostile_text` generates strings a model, a tool, a webhook or a file may hand us: lone
surrogates (which a JSON body carries as `\\ud800`), control characters, ANSI/OSC escape
sequences, console markup, emoji codes, bidi controls, ordinary text of any script.

`HostileModel` answers `POST /chat/completions` by role, serialising its replies with
`ensure_ascii` as real servers do, so a lone surrogate arrives as the escape `\\ud800` and the
SDK decodes it into the string.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import strategies as st

from tests.scripted_llm import role_of

#: Pieces that broke (or could break) storage, the terminal or the reports.
SNIPPETS = (
    "\ud800",
    "\udfff",
    "\ud83d",  # a high surrogate on its own (half an emoji)
    "[/]",
    "[bold red]red?[/]",
    "[link=http://x]",
    "\x1b]0;PWNED\x07",  # OSC: set the window title
    "\x1b]8;;http://evil\x1b\\",  # OSC 8 hyperlink, ST-terminated
    "\x1b[2J",  # clear the screen
    "\x1b[H",
    "\x1bc",  # reset the terminal
    "\x9b31m",  # 8-bit CSI
    "\x00",
    "\r",
    "\x08",
    "\x07",
    "\x7f",
    ":smile:",
    "\u202e",  # right-to-left override
    "\\",
    "\n",
    '"',
    "</script><script>alert(1)</script>",
    "|",
    "\ufeff",
    "\U0001f600",
    "Разговор",
)

hostile_text = st.lists(
    st.one_of(
        st.sampled_from(SNIPPETS),
        st.text(st.characters(exclude_categories=()), max_size=6),
        st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2),
    ),
    min_size=1,
    max_size=6,
).map("".join)

#: One string holding every snippet.
EVERYTHING = "".join(SNIPPETS)


def as_json_reads_it(value: Any) -> Any:
    """`value` as standard JSON can hold it: what `ensure_ascii=True` would store and read
    back (a high surrogate followed by a low one reads back as the character they encode)."""
    return json.loads(json.dumps(value))


def completion(body: dict[str, Any], message: dict[str, Any]) -> httpx.Response:
    """A chat completion carrying `message`, serialised as an OpenAI server does (ASCII)."""
    document = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return httpx.Response(
        200, content=json.dumps(document).encode(), headers={"content-type": "application/json"}
    )


class HostileModel:
    """respx side effect: the agent greets, the client hangs up giving `reason` as the reason,
    the evaluator scores 3 with `comment`."""

    def __init__(self, reason: str, comment: str) -> None:
        self.reason = reason
        self.comment = comment
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = json.loads(request.content)
        role = role_of(body)
        if role == "evaluator":
            content = json.dumps({"score": 3, "comment": self.comment})
            return completion(body, {"content": content})
        if role == "client":
            call = {
                "id": f"call_{self.calls}",
                "type": "function",
                "function": {"name": "end_call", "arguments": json.dumps({"reason": self.reason})},
            }
            return completion(body, {"content": None, "tool_calls": [call]})
        return completion(body, {"content": "Hello, what would you like to order?"})


def error_response(status: int, message: str) -> httpx.Response:
    """An OpenAI-style error whose message is `message` (ASCII-serialised)."""
    document = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return httpx.Response(
        status, content=json.dumps(document).encode(), headers={"content-type": "application/json"}
    )
