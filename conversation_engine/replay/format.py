"""The recording format: one JSON Lines file per conversation, versioned, with a JSON Schema.

The first line of a file is its header (`RecordingHeader`: format, version and the
conversation's key: scenario, trial, side); every other line is one model call
(`RecordedCall`), written as the call completes. A call is one HTTP attempt at the model: a
retry the SDK makes after a 500 is the next call of the same role, so a replay reproduces
the retry as well. `recording.schema.json`, shipped beside this module, is the JSON Schema of
a line (`line_schema()` generates it from the models below).

Each request of a conversation repeats the whole history before it, so a call stores only
what is new since the same role's previous request (`extends`, `kept`): the top-level fields
whose values changed and the messages appended; `Recording.request` rebuilds the whole body.
`request_sha256` is the hash of the whole body's normalised text (`normalise`), which is all a
replay needs to know that a request is unchanged. Version 2; version 1 stored every request
whole.

What a file never holds: request headers (the API key travels in one), the session id
(replaced by `SESSION_PLACEHOLDER`), and any registered secret (`core._redaction`: the key,
credentials in `TOOLS_URL` / `WEBHOOK_URL`). Of the response headers only those that change
what the client does next are kept (`KEPT_RESPONSE_HEADERS`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from conversation_engine.core.errors import RecordingError

FORMAT: Final = "conversation-engine-recording"
VERSION: Final = 2
SUFFIX = ".jsonl"
SCHEMA_FILE = Path(__file__).with_name("recording.schema.json")

#: Stands for the conversation's session id wherever it appeared (a fresh uuid per run).
SESSION_PLACEHOLDER = "<session_id>"
#: Response headers that steer the client (retry decisions, body type); no other is kept.
KEPT_RESPONSE_HEADERS = frozenset(
    {"content-type", "retry-after", "retry-after-ms", "x-should-retry"}
)
#: How a call that got no response ended: the transport error raised, or the call was
#: cancelled while waiting (the conversation's deadline fired: a timeout to reproduce).
CANCELLED = "cancelled"


class ConversationKey(BaseModel):
    """Which conversation a file belongs to: scenario, trial, comparison side (None outside
    one) and occurrence (the n-th conversation with the same key in one run, from 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    trial: int = 0
    side: str | None = None
    occurrence: int = 0

    def file_name(self) -> str:
        """A file name that is safe on every filesystem and unique per key."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.scenario).strip("-.")[:60] or "scenario"
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:10]
        side = f"-{self.side}" if self.side else ""
        return f"{slug}-t{self.trial}{side}-{self.occurrence}-{digest}{SUFFIX}"


class RecordingHeader(BaseModel):
    """The first line of a recording file."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["header"] = "header"
    format: Literal["conversation-engine-recording"] = FORMAT
    version: Literal[2] = VERSION
    key: ConversationKey
    created: str
    """When the conversation started (ISO 8601, UTC)."""


class RecordedResponse(BaseModel):
    """What the model endpoint answered: status, steering headers and the body."""

    model_config = ConfigDict(extra="forbid")

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = None
    """The body when it is JSON (a chat completion, an error object)."""
    text_body: str | None = None
    """The body when it is not JSON (an HTML error page, a broken reply)."""


class RecordedCall(BaseModel):
    """One model call of the conversation: who made it, in which order, what it sent, what
    came back (`response`) or how it failed without one (`failure`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["call"] = "call"
    call: int = Field(ge=1)
    """Its order among the conversation's calls (every role), from 1."""
    role: str
    """An agent id, `client` or `evaluator`."""
    request: dict[str, Any]
    """The request body as sent (model, messages, tools, parameters), the session id and
    secrets taken out. With `extends`: only the top-level fields whose values differ from
    that call's request, and in `messages` only the messages after the first `kept`."""
    extends: int | None = Field(default=None, ge=1)
    """The earlier call of the same role whose request this one continues: same top-level
    fields in the same order, its first `kept` messages."""
    kept: int = Field(default=0, ge=0)
    """How many messages of the `extends` call's request this request starts with."""
    request_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    """The hash of the whole request's normalised text (`normalise.request_digest`)."""
    response: RecordedResponse | None = None
    failure: str | None = None
    """No response: `cancelled`, or the name of the httpx transport error raised."""
    failure_message: str | None = None


RecordingLine = Annotated[RecordingHeader | RecordedCall, Field(discriminator="type")]
_LINE = TypeAdapter(RecordingLine)


def line_schema() -> dict[str, Any]:
    """The JSON Schema of one line of a recording file."""
    schema = _LINE.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{FORMAT} v{VERSION}: one line of a recording file",
        **schema,
    }


class Recording(BaseModel):
    """One conversation's recording as read from its file."""

    path: Path
    header: RecordingHeader
    calls: list[RecordedCall]

    @property
    def key(self) -> ConversationKey:
        return self.header.key

    def request(self, call: RecordedCall) -> dict[str, Any]:
        """The whole request body of `call`, rebuilt from the calls it extends."""
        if call.extends is None:
            return call.request
        base = self.request(self.calls[call.extends - 1])  # calls are numbered from 1, in order
        whole = {**base, **call.request}
        whole["messages"] = [*base.get("messages", [])[: call.kept], *call.request["messages"]]
        return whole


def read_recording(path: Path) -> Recording:
    """Read and check one recording file; `RecordingError` names the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecordingError(
            f"The recording '{path}' is not UTF-8 text (byte {error.start})."
        ) from None
    except OSError as error:
        raise RecordingError(
            f"The recording '{path}' cannot be read: {error.strerror or error}."
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise RecordingError(f"The recording '{path}' is empty: line 1 should be its header.")
    header: RecordingHeader | None = None
    calls: list[RecordedCall] = []
    messages: list[int] = []  # per call, how many messages its whole request holds
    for number, line in enumerate(lines, start=1):
        entry = _parse_line(path, number, line)
        if number == 1:
            if not isinstance(entry, RecordingHeader):
                raise RecordingError(
                    f"The recording '{path}' line 1 is not a header (type \"header\")."
                )
            header = entry
        elif isinstance(entry, RecordingHeader):
            raise RecordingError(f"The recording '{path}' line {number} is a second header.")
        else:
            if entry.call != (calls[-1].call if calls else 0) + 1:
                raise RecordingError(
                    f"The recording '{path}' line {number}: call {entry.call} is out of order."
                )
            _check_extends(path, number, entry, calls, messages)
            calls.append(entry)
    assert header is not None
    return Recording(path=path, header=header, calls=calls)


def _check_extends(
    path: Path, number: int, entry: RecordedCall, calls: list[RecordedCall], messages: list[int]
) -> None:
    """Note how many messages `entry`'s whole request holds; `RecordingError` if it extends
    a call it cannot (a later one, another role's, more messages than that one had)."""
    appended = entry.request.get("messages")
    own = len(appended) if isinstance(appended, list) else 0
    if entry.extends is None:
        messages.append(own)
        return
    base = entry.extends - 1
    if not (
        base < len(calls)
        and calls[base].role == entry.role
        and isinstance(appended, list)
        and entry.kept <= messages[base]
    ):
        raise RecordingError(
            f"The recording '{path}' line {number}: call {entry.call} extends call "
            f"{entry.extends} ({entry.kept} messages kept), which it cannot; the file was edited "
            "or damaged."
        )
    messages.append(entry.kept + own)


def _parse_line(path: Path, number: int, line: str) -> RecordingHeader | RecordedCall:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise RecordingError(
            f"The recording '{path}' line {number} is not JSON ({error.msg}); the file is "
            "damaged or was cut short."
        ) from None
    if number == 1 and isinstance(data, dict) and data.get("type") == "header":
        version = data.get("version")
        if data.get("format") == FORMAT and version != VERSION:
            raise RecordingError(
                f"The recording '{path}' has format version {version!r}; this version reads "
                f"version {VERSION}."
            )
    try:
        return _LINE.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the line"
        raise RecordingError(
            f"The recording '{path}' line {number} is not a recording line: {where}: "
            f"{first['msg']}."
        ) from None


def recording_paths(directory: Path) -> list[Path]:
    """The recording files of `directory` (sorted by name); `RecordingError` if none."""
    if not directory.is_dir():
        raise RecordingError(f"The recording directory '{directory}' does not exist.")
    paths = sorted(directory.glob(f"*{SUFFIX}"))
    if not paths:
        raise RecordingError(
            f"The recording directory '{directory}' holds no recording (*{SUFFIX}) files."
        )
    return paths


def read_header(path: Path) -> RecordingHeader:
    """The header of a recording file, its first line only."""
    try:
        with path.open("rb") as file:
            first = file.readline()
    except OSError as error:
        raise RecordingError(
            f"The recording '{path}' cannot be read: {error.strerror or error}."
        ) from None
    if not first.strip():
        raise RecordingError(f"The recording '{path}' is empty: line 1 should be its header.")
    try:
        line = first.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordingError(
            f"The recording '{path}' is not UTF-8 text (byte {error.start})."
        ) from None
    entry = _parse_line(path, 1, line)
    if not isinstance(entry, RecordingHeader):
        raise RecordingError(f"The recording '{path}' line 1 is not a header (type \"header\").")
    return entry


def read_recordings(directory: Path) -> list[Recording]:
    """Every recording file of `directory` (sorted by name)."""
    return [read_recording(path) for path in recording_paths(directory)]
