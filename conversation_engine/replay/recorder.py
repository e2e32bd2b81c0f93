"""`RecordingTransport`: notes every model call of every conversation as it completes.

It sits in the endpoint's httpx transport chain (`OpenAIWrapper(wire_layer=...)`), in front
of the real wire or the simulated LLM, so the SDK and AutoGen's client run unchanged above
it. The call context (`core.call_context`) says whose call it is: the conversation (scenario,
trial, side, session id) and the role. Each conversation gets its own file, created at its
first call and kept open while the conversation runs.

Durability: each call is appended as one line with one `write` as it completes, so a crash
of the process loses nothing already answered; the file is `fsync`ed and closed when the
conversation ends (`ConversationRef.when_ended`), so a crash of the machine loses at most the
calls of the conversations in flight, which could not be replayed anyway: they never ended.
Nothing of a conversation is held once it ended.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from conversation_engine.core._redaction import redact_secrets
from conversation_engine.core._safe_text import json_dumps
from conversation_engine.core.call_context import (
    ConversationRef,
    current_conversation,
    current_role,
)
from conversation_engine.replay.format import (
    CANCELLED,
    KEPT_RESPONSE_HEADERS,
    ConversationKey,
    RecordingHeader,
)
from conversation_engine.replay.normalise import (
    normalise_text,
    parse_request,
    request_digest,
    without_session,
)

logger = logging.getLogger(__name__)

#: The role of a call made without saying who makes it (no `speaking_as` around it).
UNKNOWN_ROLE = "unknown"


@dataclass
class _ConversationFile:
    """An open recording file and what the next call's delta is taken against."""

    path: Path
    fd: int
    calls: int = 0
    last: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    """Per role, its latest call's number and request body (as parsed, before redaction)."""


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes each request to `inner` and appends the call to its conversation's file.

    A call made outside any conversation (none set in the call context) is passed on and not
    recorded: it could never be matched on replay.
    """

    def __init__(
        self, directory: Path | str, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.inner: httpx.AsyncBaseTransport = inner or httpx.AsyncHTTPTransport()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, _ConversationFile] = {}
        self._occurrences: dict[tuple[str, int, str | None], int] = {}
        self._created = [0]  # shared with the layered copies, like the dicts

    def __call__(self, inner: httpx.AsyncBaseTransport) -> RecordingTransport:
        """This recorder in front of `inner`: a wire layer (`OpenAIWrapper(wire_layer=...)`).
        Endpoints layered on one recorder share its files."""
        layered = copy.copy(self)
        layered.inner = inner
        return layered

    @property
    def conversations(self) -> int:
        """How many conversations have a file so far."""
        return self._created[0]

    @property
    def open_files(self) -> int:
        """How many conversations are recording now (their files open)."""
        return len(self._files)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ref = current_conversation()
        if ref is None:
            return await self.inner.handle_async_request(request)
        role = current_role() or UNKNOWN_ROLE
        body = await request.aread()
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
            content = await response.aread()
        except asyncio.CancelledError:
            self._append(ref, role, body, failure=CANCELLED)
            raise
        except httpx.TransportError as error:
            self._append(ref, role, body, failure=type(error).__name__, message=str(error))
            raise
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() in KEPT_RESPONSE_HEADERS
        }
        self._append(ref, role, body, response=(response.status_code, headers, content))
        # The response goes up as it is, its body read (and decoded) and cached: the client
        # reads the cache. Reading closed it, so the client's own timer never stops; the
        # time is set here instead, as httpx would.
        response.elapsed = timedelta(seconds=time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        # Conversations still running when the endpoint closes keep what they wrote.
        for key in list(self._files):
            self._close(key)
        await self.inner.aclose()

    def _file(self, ref: ConversationRef) -> _ConversationFile:
        known = self._files.get(id(ref))
        if known is not None:
            return known
        bare = (ref.scenario, ref.trial, ref.side)
        occurrence = self._occurrences.get(bare, 0)
        self._occurrences[bare] = occurrence + 1
        key = ConversationKey(
            scenario=ref.scenario, trial=ref.trial, side=ref.side, occurrence=occurrence
        )
        path = self.directory / key.file_name()
        header = RecordingHeader(key=key, created=datetime.now(UTC).isoformat())
        # A rerun into the same directory replaces the conversation's old file.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        known = self._files[id(ref)] = _ConversationFile(path, fd)
        self._created[0] += 1
        ref.when_ended(partial(self._close, id(ref)))
        _write(fd, header.model_dump_json())
        return known

    def _close(self, key: int) -> None:
        conversation = self._files.pop(key, None)
        if conversation is None:
            return
        try:
            _sync(conversation.fd)
        except OSError as error:  # the lines are written; only their durability is in doubt
            logger.warning("Could not sync the recording %s: %s", conversation.path, error)
        finally:
            os.close(conversation.fd)

    def _append(
        self,
        ref: ConversationRef,
        role: str,
        body: bytes,
        *,
        response: tuple[int, dict[str, str], bytes] | None = None,
        failure: str | None = None,
        message: str | None = None,
    ) -> None:
        conversation = self._file(ref)
        conversation.calls += 1
        session_id = ref.session_id
        text = body.decode("utf-8", errors="replace")
        line: dict[str, Any] = {"type": "call", "call": conversation.calls, "role": role}
        request = parse_request(text)
        previous = conversation.last.get(role)
        conversation.last[role] = (conversation.calls, request)
        delta = _delta(previous[1], request) if previous is not None else None
        if delta is None:
            line["request"] = request
        else:
            line["request"], line["kept"] = delta
            line["extends"] = previous[0] if previous is not None else None
        line["request_sha256"] = request_digest(normalise_text(text, session_id))
        if response is not None:
            status, headers, content = response
            recorded: dict[str, Any] = {"status": status, "headers": headers}
            answer = content.decode("utf-8", errors="replace")
            try:
                recorded["json_body"] = json.loads(answer)
            except ValueError:
                recorded["text_body"] = answer
            line["response"] = recorded
        if failure is not None:
            line["failure"] = failure
        if message is not None:
            line["failure_message"] = message
        _write(conversation.fd, without_session(json_dumps(line), session_id))


def _delta(previous: dict[str, Any], request: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """What `request` adds to `previous` (same role): the changed top-level fields and the
    messages after the `kept` ones they share; None when it is no continuation of it.

    Equality here is Python's (key order aside): the stored hash, not the rebuilt body, says
    whether a replayed request is unchanged; the rebuilt body only names the field if not.
    """
    messages, before = request.get("messages"), previous.get("messages")
    if not (isinstance(messages, list) and isinstance(before, list)):
        return None
    if list(request) != list(previous):
        return None  # fields added, dropped or reordered: store the request whole
    kept = len(before)
    if messages[:kept] != before:
        kept = 0
        for old, new in zip(before, messages, strict=False):
            if old != new:
                break
            kept += 1
    changed = {
        name: value
        for name, value in request.items()
        if name != "messages" and previous[name] != value
    }
    changed["messages"] = messages[kept:]
    return changed, kept


# The data and the size that reads it back, without the times a full `fsync` also writes.
_sync = getattr(os, "fdatasync", os.fsync)


def _write(fd: int, text: str) -> None:
    """Append one line with one `write`; registered secrets never reach the file."""
    view = memoryview((redact_secrets(text) + "\n").encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]
