"""How a conversation's end becomes a contract result; shared by every engine.

Both engines run their own loop but finish through `ConversationOutcome`, so statuses, error
fields and additive keys mean the same thing whichever engine produced them. It is also the
one place where known secrets are taken out of a result (`redaction.redact_secrets_in`): an
endpoint that echoes the API key or a tool API that echoes its Basic credentials in an error
message must not have them copied into the result's `error`, `error_context` or history.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conversation_engine.core._redaction import redact_secrets_in
from conversation_engine.core.contract import (
    ConversationResult,
    ConversationStatus,
    EndReason,
    HistoryEntry,
    Usage,
    is_geo_block,
)
from conversation_engine.core.errors import MALFORMED_RESPONSE_MESSAGE, APIBlockedError

API_BLOCKED_MESSAGE = "OpenAI API blocked due to geographic restrictions"

# AutoGen re-raises an agent's exception as RuntimeError("<ExcName>: <message>\nTraceback: ...").
_WRAPPED_ERROR = re.compile(
    r"^(?P<name>[A-Z][A-Za-z0-9_]*): (?P<message>.*?)(?:\nTraceback:.*)?$", re.DOTALL
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def seed_of(variables: dict[str, Any]) -> int | None:
    """The scenario's `SEED` as an int: numbers as they are, other strings hashed stably."""
    raw = variables.get("SEED", variables.get("seed"))
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


# Errors whose own text does not say what happened, and what it means.
_CRYPTIC_ERRORS = {
    ("AttributeError", "'str' object has no attribute"): (
        "MalformedResponseError",
        MALFORMED_RESPONSE_MESSAGE,
    ),
}


def unwrap_error(error: BaseException) -> tuple[str, str]:
    """`(error_type, message)` naming the original exception, not AutoGen's RuntimeError wrapper."""
    text = str(error)
    error_type, message = type(error).__name__, text.split("\nTraceback:")[0].strip()
    if type(error) is RuntimeError:
        match = _WRAPPED_ERROR.match(text)
        if match:
            error_type, message = match["name"], match["message"].strip()
    for (known_type, fragment), explained in _CRYPTIC_ERRORS.items():
        if error_type == known_type and fragment in message:
            return explained
    return error_type, message or error_type


def classify_error(error: BaseException) -> tuple[ConversationStatus, str, str]:
    """`(status, error, error_type)` for an exception that ended a conversation."""
    error_type, message = unwrap_error(error)
    if isinstance(error, APIBlockedError) or is_geo_block(f"{error_type} {message}"):
        return ConversationStatus.FAILED_API_BLOCKED, API_BLOCKED_MESSAGE, "APIBlockedError"
    return ConversationStatus.FAILED, message, error_type


@dataclass
class ConversationOutcome:
    """What an engine knows about a conversation while and after it runs."""

    scenario_name: str
    session_id: str = ""
    tools_used: bool = True
    engine: str | None = None
    start_time: str = field(default_factory=now_iso)
    started: float = field(default_factory=time.monotonic)
    history: list[HistoryEntry] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    seed: int | None = None
    end_reason: EndReason | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Additive keys an engine wants on the result (documented where it sets them)."""

    @property
    def total_turns(self) -> int:
        return max((entry.turn for entry in self.history), default=0)

    def _base(self, status: ConversationStatus) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "scenario": self.scenario_name,
            "status": status,
            "total_turns": self.total_turns,
            "duration_seconds": round(time.monotonic() - self.started, 3),
            "conversation_history": self.history,
            "start_time": self.start_time,
            "end_time": now_iso(),
            "tools_used": self.tools_used,
            "usage": self.usage,
            "seed": self.seed,
            "engine": self.engine,
            "end_reason": self.end_reason,
            **self.extra,
        }

    def completed(self) -> dict[str, Any]:
        return _stored(ConversationResult(**self._base(ConversationStatus.COMPLETED)))

    def timed_out(self, timeout_sec: float) -> dict[str, Any]:
        self.end_reason = EndReason.TIMEOUT
        data = self._base(ConversationStatus.TIMEOUT)
        data.update(
            error=f"Conversation timeout after {timeout_sec:g} seconds",
            error_type="TimeoutError",
            error_context=self._error_context("TimeoutError", timeout_sec=timeout_sec),
        )
        return _stored(ConversationResult(**data))

    def failed(self, error: BaseException, **context: Any) -> dict[str, Any]:
        status, message, error_type = classify_error(error)
        self.end_reason = (
            EndReason.API_BLOCKED
            if status is ConversationStatus.FAILED_API_BLOCKED
            else EndReason.ERROR
        )
        data = self._base(status)
        data.update(
            error=message,
            error_type=error_type,
            error_context=self._error_context(error_type, **context),
        )
        if status is ConversationStatus.FAILED_API_BLOCKED:
            data.update(graceful_degradation=True, partial_completion=self.total_turns > 0)
        return _stored(ConversationResult(**data))

    def _error_context(self, error_type: str, **context: Any) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "scenario_name": self.scenario_name,
            "duration_so_far": round(time.monotonic() - self.started, 3),
            "completed_turns": self.total_turns,
            "error_type": error_type,
            **{key: value for key, value in context.items() if value is not None},
        }


def _stored(result: ConversationResult) -> dict[str, Any]:
    """The contract dict of `result`, with known secrets redacted (see the module docstring)."""
    redacted: dict[str, Any] = redact_secrets_in(result.to_contract_dict())
    return redacted
