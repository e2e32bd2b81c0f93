"""`ReplayTransport`: the recording is the model endpoint.

Plugged into the endpoint's transport chain as the wire itself, it answers each model call
of a conversation with the recorded response of the same role, in order, and compares the
request with the recorded one (`normalise`). Conversations are matched by key: scenario,
trial, side and occurrence; a comparison side with no recording of its own replays the
recording made outside a comparison (side None), so one batch recording serves both sides.

Modes: `strict` raises `ReplayDivergence` at the first differing request (the engine ends the
conversation `failed`, `error_type` `ReplayDivergence`); `lenient` answers in order anyway and
only reports. A role that asks more than was recorded for it raises `ReplayRanDry` in both.
A call recorded as failed fails the same way (a 500's status and body, a transport error); a
call recorded as cancelled (the conversation's deadline fired while it waited) waits until it
is cancelled again, so a timed-out conversation times out again at the same call.

A request is checked by the hash of its normalised text; only one that differs is parsed and
compared with the rebuilt recorded request, to name the field. Every file is read through
once up front (`check`), so a damaged recording is an error before anything runs; after that
a conversation's recording is loaded at its first call and dropped when it ends, keeping only
how it went: memory holds the conversations in flight, not the whole recording.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path

import httpx

from conversation_engine.core._safe_text import json_dumps
from conversation_engine.core.call_context import current_conversation, current_role
from conversation_engine.core.errors import RecordingError, ReplayDivergence, ReplayRanDry
from conversation_engine.replay.format import (
    CANCELLED,
    SESSION_PLACEHOLDER,
    ConversationKey,
    RecordedCall,
    Recording,
    read_header,
    read_recording,
    recording_paths,
)
from conversation_engine.replay.normalise import (
    Difference,
    first_difference,
    normalise_text,
    parse_request,
    request_digest,
)
from conversation_engine.replay.recorder import UNKNOWN_ROLE

#: How long a call recorded as cancelled waits for its conversation's deadline at most.
CANCELLED_CALL_HANG_SECONDS = 600.0


class ReplayMode(StrEnum):
    STRICT = "strict"
    LENIENT = "lenient"


@dataclass(frozen=True)
class Divergence:
    """Where a replayed conversation first asked something other than the recording."""

    call: int
    """The recorded call's number in its conversation (every role), from 1."""
    role: str
    field: str
    diff: str

    message_role: str = ""
    """The role of the message the field is in, when it is in one (`tool`: a tool result)."""

    @property
    def in_tool_result(self) -> bool:
        """The difference is in what a tool returned: a tool backend or tool change."""
        return self.message_role == "tool"

    def message(self) -> str:
        return (
            f"The replayed request of call {self.call} ({self.role}) differs from the recording "
            f"at {self.field}:\n{self.diff}"
        )


@dataclass
class ConversationReplay:
    """One conversation being replayed: what is left to answer per role, what went wrong.

    When the conversation ends its recording and queues are dropped; what the report needs
    stays (`answered`, `divergence`, `ran_dry`, `unanswered`)."""

    key: ConversationKey
    recording: Recording | None
    recorded: int = 0
    """How many calls the recording holds."""
    recording_key: ConversationKey | None = None
    """The key of the recording answering it (side None for a comparison side without its
    own); None when nothing was recorded for it."""
    recording_name: str | None = None
    queues: dict[str, deque[RecordedCall]] = field(default_factory=dict)
    answered: int = 0
    divergence: Divergence | None = None
    ran_dry: tuple[str, int] | None = None
    """`(role, calls answered before)` when a role asked more than its recorded calls."""
    unanswered: tuple[int, str] | None = None
    """Once ended: the first recorded call nobody asked for, `(call, role)`, if any."""
    ended: bool = False

    def first_unanswered(self) -> tuple[int, str] | None:
        """The first recorded call not asked for (yet), `(call, role)`."""
        if self.ended:
            return self.unanswered
        left = [call for queue in self.queues.values() for call in queue]
        first = min(left, key=lambda call: call.call, default=None)
        return None if first is None else (first.call, first.role)

    def end(self) -> None:
        self.unanswered = self.first_unanswered()
        self.ended = True
        self.queues = {}
        self.recording = None


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers model calls from a recording directory (see the module docstring).

    `check=False` skips reading every file up front (only headers are read): a damaged file
    then fails its conversation when it starts instead of the run before it starts.
    """

    def __init__(
        self,
        recordings: Path | str | list[Recording],
        mode: ReplayMode | str = ReplayMode.STRICT,
        *,
        check: bool = True,
    ) -> None:
        self.mode = ReplayMode(mode)
        self.recordings: dict[ConversationKey, Path] = {}
        """The recording file of each conversation key."""
        self._in_memory: dict[ConversationKey, Recording] = {}
        self._calls: dict[ConversationKey, int] = {}
        if isinstance(recordings, Path | str):
            for path in recording_paths(Path(recordings)):
                if check:
                    recording = read_recording(path)
                    key, self._calls[key] = recording.key, len(recording.calls)
                else:
                    key = read_header(path).key
                self._add(key, path)
        else:
            for recording in recordings:
                self._add(recording.key, recording.path)
                self._in_memory[recording.key] = recording
                self._calls[recording.key] = len(recording.calls)
        self.conversations: list[ConversationReplay] = []
        """Every conversation replayed so far, in the order they started."""
        self._running: dict[int, ConversationReplay] = {}
        self._occurrences: dict[tuple[str, int, str | None], int] = {}

    def _add(self, key: ConversationKey, path: Path) -> None:
        other = self.recordings.get(key)
        if other is not None:
            raise RecordingError(
                f"The recordings '{other}' and '{path}' are of the same conversation "
                f"({_describe(key)}, occurrence {key.occurrence}); keep one of them."
            )
        self.recordings[key] = path

    @property
    def in_flight(self) -> int:
        """How many conversations are being replayed now (their recordings loaded)."""
        return len(self._running)

    def recorded_calls(self, key: ConversationKey) -> int:
        """How many calls the recording of `key` holds."""
        if key not in self._calls:
            self._calls[key] = len(self._load(key).calls)
        return self._calls[key]

    def __call__(self, inner: httpx.AsyncBaseTransport) -> ReplayTransport:
        """A wire layer (`OpenAIWrapper(wire_layer=...)`): the recording replaces `inner`."""
        return self

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ref = current_conversation()
        if ref is None:
            raise ReplayRanDry(
                "A model call outside any conversation cannot be replayed: nothing recorded it."
            )
        replay = self._running.get(id(ref))
        if replay is None:
            replay = self._running[id(ref)] = self._start(ref.scenario, ref.trial, ref.side)
            ref.when_ended(partial(self._end, id(ref)))
        role = current_role() or UNKNOWN_ROLE
        if self.mode is ReplayMode.STRICT and replay.divergence is not None:
            raise ReplayDivergence(replay.divergence.message())  # an SDK retry of the same call
        queue = replay.queues.get(role)
        if not queue:
            if replay.ran_dry is None:
                replay.ran_dry = (role, replay.answered)
            raise ReplayRanDry(
                f"The recording of {_describe(replay.key)} has no more calls for {role} (after "
                f"{replay.answered} of {replay.recorded} answered)."
            )
        recorded = queue.popleft()
        replay.answered += 1
        if replay.divergence is None:  # lenient mode reports the first divergence only
            body = await request.aread()
            normalised = normalise_text(body.decode("utf-8", errors="replace"), ref.session_id)
            if request_digest(normalised) != recorded.request_sha256:
                divergence = _compare(replay, recorded, normalised)
                if divergence is not None:
                    replay.divergence = divergence
                    if self.mode is ReplayMode.STRICT:
                        raise ReplayDivergence(divergence.message())
        return await _answer(recorded, request, ref.session_id)

    def _start(self, scenario: str, trial: int, side: str | None) -> ConversationReplay:
        bare = (scenario, trial, side)
        occurrence = self._occurrences.get(bare, 0)
        self._occurrences[bare] = occurrence + 1
        key = ConversationKey(scenario=scenario, trial=trial, side=side, occurrence=occurrence)
        source: ConversationKey | None = key
        if key not in self.recordings:
            source = key.model_copy(update={"side": None}) if key.side is not None else None
            if source not in self.recordings:
                source = None
        replay = ConversationReplay(key=key, recording=None, recording_key=source)
        if source is not None:
            recording = self._load(source)
            replay.recording, replay.recorded = recording, len(recording.calls)
            replay.recording_name = recording.path.name
            for call in recording.calls:
                replay.queues.setdefault(call.role, deque()).append(call)
        self.conversations.append(replay)
        return replay

    def _load(self, key: ConversationKey) -> Recording:
        return self._in_memory.get(key) or read_recording(self.recordings[key])

    def _end(self, ref_id: int) -> None:
        replay = self._running.pop(ref_id, None)
        if replay is not None:
            replay.end()


def _compare(
    replay: ConversationReplay, recorded: RecordedCall, normalised: str
) -> Divergence | None:
    """The divergence of a request whose hash differs from the recorded one's; None when the
    texts differ only in what parsing drops (spacing)."""
    assert replay.recording is not None
    whole = replay.recording.request(recorded)
    before = parse_request(normalise_text(json_dumps(whole), None))
    difference = first_difference(before, parse_request(normalised))
    return None if difference is None else _divergence(recorded, whole, difference)


def _divergence(
    recorded: RecordedCall, whole: dict[str, object], difference: Difference
) -> Divergence:
    context = ""
    if difference.field.startswith("messages["):
        index = difference.field[len("messages[") :].split("]", 1)[0]
        messages = whole.get("messages")
        if index.isdigit() and isinstance(messages, list) and int(index) < len(messages):
            message = messages[int(index)]
            context = str(message.get("role", "")) if isinstance(message, dict) else ""
    return Divergence(
        call=recorded.call,
        role=recorded.role,
        field=difference.field,
        diff=difference.diff(),
        message_role=context,
    )


async def _answer(
    recorded: RecordedCall, request: httpx.Request, session_id: str | None
) -> httpx.Response:
    if recorded.response is None:
        if recorded.failure == CANCELLED:
            await asyncio.sleep(CANCELLED_CALL_HANG_SECONDS)
            raise httpx.ReadTimeout("The recorded call never got an answer.", request=request)
        error = getattr(httpx, recorded.failure or "", None)
        if not (isinstance(error, type) and issubclass(error, httpx.TransportError)):
            error = httpx.RemoteProtocolError
        raise error(recorded.failure_message or "Recorded transport error.", request=request)
    response = recorded.response
    if response.text_body is not None:
        text = response.text_body
    else:
        text = json.dumps(response.json_body, ensure_ascii=False)
    if session_id and SESSION_PLACEHOLDER in text:
        text = text.replace(SESSION_PLACEHOLDER, session_id)
    return httpx.Response(
        response.status, headers=response.headers, content=text.encode("utf-8"), request=request
    )


def _describe(key: ConversationKey) -> str:
    side = f", side {key.side}" if key.side else ""
    return f"scenario '{key.scenario}' trial {key.trial}{side}"
