"""The simulated evaluator: scores a transcript 1-3 from fixed markers, as JSON.

The transcript is the last `user` message, normally lines like `Ход N - <speaker>: <text>`
(any text works; without such lines the whole message is read as one block). Speakers whose
label mentions client/customer/user (or "клиент") are the client; all others are the shop.

* 1: the client ran out of patience, or the shop never said anything;
* 3: the client ended politely with the order complete and the shop never failed
  ("Sorry, we don't have", "cannot help", ...);
* 2: everything in between (partly served).
"""

from __future__ import annotations

import json
import random
import re

from conversation_engine.testing.simulated_llm import utterances as say
from conversation_engine.testing.simulated_llm.chat_view import ChatView
from conversation_engine.testing.simulated_llm.reply import Reply, text

_LINE_RE = re.compile(
    r"^\s*(?:ход|turn)\s*\d+\s*[-–—:]\s*(?P<speaker>[^:\n]+?)\s*:\s*(?P<content>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_CLIENT_LABELS = ("client", "клиент", "customer", "user")
_POLITE_END = ("order complete", "goodbye", "thank you")

_COMMENTS = {
    1: (
        "The customer was not served: {why}.",
        "Poor outcome: {why}.",
    ),
    2: (
        "The customer was only partly served: {why}.",
        "Partial success: {why}.",
    ),
    3: (
        "The customer completed the order and ended the call politely.",
        "Every request was served and the call ended politely.",
    ),
}


def _is_client(speaker: str) -> bool:
    return any(label in speaker for label in _CLIENT_LABELS)


def score_transcript(transcript: str) -> tuple[int, str]:
    """The score and the reason behind it (before phrasing)."""
    lines = [(m["speaker"].strip().lower(), m["content"]) for m in _LINE_RE.finditer(transcript)]
    if lines:
        agent_lines = [content for speaker, content in lines if not _is_client(speaker)]
        client_lines = [content for speaker, content in lines if _is_client(speaker)]
    else:
        agent_lines = client_lines = [transcript] if transcript.strip() else []
    if not any(line.strip() for line in agent_lines):
        return 1, "the shop never replied"
    lowered = transcript.lower()
    if any(marker in lowered for marker in say.GAVE_UP_MARKERS):
        return 1, "the customer ran out of patience"
    failures = sum(say.is_failure(line) for line in agent_lines)
    last_client = client_lines[-1].lower() if client_lines else ""
    polite_end = "partly complete" not in last_client and any(
        word in last_client for word in _POLITE_END
    )
    if polite_end and failures == 0:
        return 3, "served"
    if failures:
        return 2, f"the shop could not serve {failures} request(s)"
    return 2, "the call did not end with a completed order"


def evaluator_reply(view: ChatView, rng: random.Random) -> Reply:
    """A JSON object `{"score": 1|2|3, "comment": "..."}` as the message content."""
    score, why = score_transcript(view.last_user_text())
    comment = rng.choice(_COMMENTS[score]).format(why=why)
    return text(json.dumps({"score": score, "comment": comment}, ensure_ascii=False))
