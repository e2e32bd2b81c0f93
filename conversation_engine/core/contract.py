"""The legacy ConversationEngine contract: result and history models, statuses, end reasons,
the rules and the engine protocol.

Both engines produce `ConversationResult`; `to_contract_dict()` gives exactly the dict the
legacy consumers read (absent keys absent, content never null). `contract_violations()` is the
contract in executable form, the only one: it checks any dict against the rules and files each
violation under a `ContractRule`. Engine tests and batch rows use it as it is; with
`strict=True` it adds every rule the conformance suite applies to a single result (exact
tool-call keys, JSON-object arguments, exchange numbering, the client's `end_call` entry,
handoff successors, zoned timestamps, ...), and the conformance checks call it for those
rules, adding only what needs an engine run (statuses under faults, isolation, determinism,
the spec's agents).

Timestamps are ISO-8601, and a timestamp without a zone is read as UTC: never in the local
zone of whoever checks it, so a verdict on naive and aware timestamps is the same on every
machine. The lenient rules accept a naive timestamp (the legacy engine wrote them); the
strict rules require a zone.

Keys beyond the legacy ones are additive and optional:

* `end_reason` (result): why the conversation stopped, an `EndReason` value.
* `usage` (result): model calls, prompt/completion/total tokens and estimated cost in USD.
* `seed` (result): the scenario `SEED` the conversation ran with, when there was one.
* `engine` (result): the engine class that produced the result.
* `rollout` (result, `RolloutConversationEngine` only): `{arm, share, fell_back}` and, after a
  fallback, `fallback_from` (the candidate's engine, session id, error, error type, turns).
* `visible_to_client`, `handoff_metadata` (history entry): the legacy branch's handoff fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

CLIENT_SPEAKER = "client"
BASIC_AGENT_SPEAKER = "agent"
AGENT_SPEAKER_PREFIX = "agent_"
END_CALL_TOOL = "end_call"
HANDOFF_PREFIX = "handoff_"

#: The legacy marker the client's `end_call` entry carries as its content.
CLIENT_END_CALL_TEMPLATE = "[ЗАВЕРШИЛ ЗВОНОК: {reason}]"
#: What every such content starts with, whatever the reason.
CLIENT_END_CALL_MARKER = CLIENT_END_CALL_TEMPLATE.split("{", 1)[0]

#: The `status` of a completed handoff's tool result (legacy wording).
HANDOFF_COMPLETED = "handoff_completed"

#: Substrings that mark an error as a geographic block (legacy detection).
GEO_BLOCK_MARKERS = (
    "geographic restriction",
    "unsupported_country_region_territory",
    "blocked due to geographic",
    # openai 3.x keeps the code in the error body; inside a Swarm only this text survives.
    "country, region, or territory not supported",
)


class ConversationStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    FAILED_API_BLOCKED = "failed_api_blocked"
    TIMEOUT = "timeout"


class EndReason(StrEnum):
    """Why a conversation stopped: the additive `end_reason` key of a result."""

    CLIENT_END_CALL = "client_end_call"
    AGENT_END_CALL = "agent_end_call"
    MAX_TURNS = "max_turns"
    TIMEOUT = "timeout"
    API_BLOCKED = "api_blocked"
    ERROR = "error"


class FunctionCall(BaseModel):
    """The `function` part of an OpenAI tool call."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: str
    """The JSON string the model produced (business calls keep `execution_message`)."""


class ToolCall(BaseModel):
    """One tool call in OpenAI wire shape."""

    model_config = ConfigDict(extra="forbid")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class HistoryEntry(BaseModel):
    """One entry of `conversation_history`."""

    model_config = ConfigDict(extra="allow")

    turn: int = Field(ge=0)
    """The exchange number: an agent reply and the client reply after it share it."""
    speaker: str
    """`agent` (basic mode), `agent_<id>` (tools mode) or `client`."""
    content: str = ""
    """What was said; never null (an agent that only called tools has "")."""
    timestamp: str
    """ISO-8601 time the entry was produced."""
    tool_calls: list[ToolCall] | None = None
    tool_results: list[Any] | None = None
    """One item per tool message, JSON-parsed where it parses; agent entries only."""
    visible_to_client: bool | None = None
    handoff_metadata: dict[str, Any] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_never_null(cls, value: Any) -> Any:
        return "" if value is None else value


class Usage(BaseModel):
    """Model usage of one conversation."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0
    """Estimated cost in USD, or None (`null`) when it is unknown: a call went to a model the
    price table does not know, or was answered by the simulated LLM (a test double has no
    price). One unknown call makes the whole cost unknown, never a partial sum. A number for
    priced models, as it always was. Always present in a dump, even with `exclude_none`."""

    def add(self, prompt_tokens: int, completion_tokens: int, cost_usd: float | None = 0.0) -> None:
        """Count one call; `cost_usd` None: its cost is unknown (and so is the total)."""
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.total_tokens += prompt_tokens + completion_tokens
        self.cost_usd = Usage.total_cost(self.cost_usd, cost_usd)

    def merge(self, other: Usage) -> None:
        """Add `other`'s calls, tokens and cost to this usage (an unknown cost stays unknown)."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cost_usd = Usage.total_cost(self.cost_usd, other.cost_usd)

    @staticmethod
    def total_cost(*costs: float | None) -> float | None:
        """The sum of `costs`, or None when any of them is unknown."""
        if any(cost is None for cost in costs):
            return None
        return sum(cost for cost in costs if cost is not None)

    @model_serializer(mode="wrap")
    def _cost_always_present(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        # `to_contract_dict` dumps with exclude_none; an unknown cost must read `null`, not
        # vanish (a usage object without `cost_usd` would not say the cost is unknown).
        data: dict[str, Any] = handler(self)
        if info.exclude_none and self.cost_usd is None and "cost_usd" not in data:
            excluded = info.exclude
            if not (isinstance(excluded, Mapping | set) and "cost_usd" in excluded):
                data["cost_usd"] = None
        return data


class ConversationResult(BaseModel):
    """The result of one conversation, as the legacy engine returned it."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    scenario: str
    """The scenario's name."""
    status: ConversationStatus
    total_turns: int = Field(ge=0)
    """The number of exchanges."""
    duration_seconds: float = Field(ge=0)
    conversation_history: list[HistoryEntry] | None = None
    start_time: str | None = None
    end_time: str | None = None
    tools_used: bool | None = None
    error: str | None = None
    error_type: str | None = None
    error_context: dict[str, Any] | None = None
    graceful_degradation: bool | None = None
    partial_completion: bool | None = None
    end_reason: EndReason | None = None
    usage: Usage | None = None
    seed: int | str | None = None
    engine: str | None = None

    def to_contract_dict(self) -> dict[str, Any]:
        """The legacy dict: keys that do not apply are absent, content is never null."""
        data = self.model_dump(mode="json", exclude_none=True)
        # exclude_none drops None inside tool results too; put the parsed values back as-is.
        for entry, dumped in zip(
            self.conversation_history or [], data.get("conversation_history", []), strict=True
        ):
            if entry.tool_results is not None:
                dumped["tool_results"] = json.loads(json.dumps(entry.tool_results, default=str))
        return data


@runtime_checkable
class ConversationEngine(Protocol):
    """What the BatchProcessor needs of an engine.

    Constructed as `Engine(openai_wrapper, prompt_spec_name)`; both methods take a scenario
    dict `{"name": ..., "variables": {...}}` and return the legacy result dict. They never
    raise: every failure is a result with the matching status.
    """

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]: ...

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]: ...


def is_geo_block(error_text: str) -> bool:
    """True when an error's text marks a geographic block (legacy detection strings)."""
    lowered = error_text.lower()
    return any(marker in lowered for marker in GEO_BLOCK_MARKERS)


def safe_parse_tool_result(content: Any) -> Any:
    """Legacy semantics: JSON-parse a tool message's content, else return it unchanged."""
    if not isinstance(content, str | bytes | bytearray):
        return content
    try:
        return json.loads(content)
    except (ValueError, TypeError):
        return content


def client_end_call_content(reason: str) -> str:
    return CLIENT_END_CALL_TEMPLATE.format(reason=reason)


# ------------------------------------------------------------------------------------ the rules


class ContractRule(StrEnum):
    """The rules `contract_violations` checks; each violation is filed under one or more.

    Named as the conformance checks that apply them to a single result.
    """

    RESULT_SCHEMA = "result_schema"
    """Keys, types, statuses and their fields; strict: `tools_used: true` in tools mode."""
    SESSION_ID = "session_id"
    """A string; strict: not empty, and any entry that names a session names the result's."""
    TURN_NUMBERING = "turn_numbering"
    """Positive, never back, never skipping, one client entry per exchange, `total_turns` the
    last; strict: whoever speaks first opens every exchange, the other side shares its number."""
    SPEAKERS = "speakers"
    """`agent`/`client` (basic), `agent_<id>`/`client` (tools); strict: a completed
    `handoff_<X>` is followed by `agent_X` in the same exchange."""
    CONTENT_NOT_NULL = "content_not_null"
    """`content` is a string ("" for an agent that only called tools)."""
    TIMESTAMPS = "timestamps"
    """ISO-8601, never going back (a timestamp without a zone is read as UTC); strict: with a
    zone."""
    TOOL_CALLS_SHAPE = "tool_calls_shape"
    """A list of `{id, type: "function", function: {name, arguments}}`, `arguments` a string;
    strict: non-empty, exactly those keys, non-empty id and name, arguments a JSON object."""
    TOOL_RESULTS_ALIGNMENT = "tool_results_alignment"
    """Not on client entries, a list, one per call; strict: only on agent entries, present when
    an agent called tools, parsed (no JSON object or array left as a string)."""
    CLIENT_END_CALL_ENTRY = "client_end_call_entry"
    """A client's only tool call is `end_call`, with the legacy marker as content; strict: the
    exact marker for its reason, the last entry, and (tools mode) no marker without the call."""
    BASIC_MODE = "basic_mode"
    """Basic mode (`basic_mode=True`): `tools_used: false` and no tool fields on any entry."""


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def timestamp_moment(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime, None when it is not one.

    The one reading of timestamps the contract has: a timestamp without a zone is UTC.
    """
    moment = _parse_iso(value)
    return None if moment is None else _as_utc(moment)


def is_agent_speaker(speaker: Any) -> bool:
    """`agent` (basic mode) or `agent_<id>` (tools mode)."""
    return isinstance(speaker, str) and (
        speaker == BASIC_AGENT_SPEAKER or speaker.startswith(AGENT_SPEAKER_PREFIX)
    )


def entry_tool_calls(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entry's tool calls that are objects (none when `tool_calls` is not a list)."""
    calls = entry.get("tool_calls")
    return [call for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []


def tool_call_name(call: Mapping[str, Any]) -> str:
    function = call.get("function")
    return str(function.get("name", "")) if isinstance(function, dict) else ""


def tool_call_arguments(call: Mapping[str, Any]) -> Any:
    function = call.get("function")
    return function.get("arguments") if isinstance(function, dict) else None


def expected_end_call_content(arguments: Any) -> str | None:
    """The client entry's content for an `end_call` with these arguments; None without a reason."""
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        return None
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return client_end_call_content(reason) if reason else None


_RESULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "session_id": str,
    "scenario": str,
    "status": str,
    "total_turns": int,
    "duration_seconds": (int, float),
    "conversation_history": list,
    "start_time": str,
    "end_time": str,
    "tools_used": bool,
    "error": str,
    "error_type": str,
    "error_context": dict,
    "graceful_degradation": bool,
    "partial_completion": bool,
}

_FAILURE_STATUSES = (
    ConversationStatus.FAILED,
    ConversationStatus.FAILED_API_BLOCKED,
    ConversationStatus.TIMEOUT,
)


def contract_violations(
    result: Any,
    *,
    basic_mode: bool | None = None,
    strict: bool = False,
    rules: Iterable[str] | None = None,
) -> list[str]:
    """Every way `result` breaks the legacy contract, one sentence each; [] when it conforms.

    `basic_mode=True` also requires basic-mode speakers (`agent`/`client`), no tool fields and
    `tools_used: false`; `False` requires tools-mode speakers (`agent_<id>`/`client`).
    `strict=True` adds every rule the conformance suite applies to a single result (see
    `ContractRule`). `rules` keeps only the violations filed under those rules. A problem with
    one history entry starts with `conversation_history[<index>]`.
    """
    audit = _Audit(basic_mode=basic_mode, strict=strict)
    audit.result(result)
    wanted = None if rules is None else {ContractRule(rule) for rule in rules}
    return [message for message, filed in audit.found if wanted is None or filed & wanted]


_R = ContractRule


class _Audit:
    """One pass of the rules over a result; collects `(message, rules)`."""

    def __init__(self, *, basic_mode: bool | None, strict: bool) -> None:
        self.basic_mode = basic_mode
        self.strict = strict
        self.found: list[tuple[str, frozenset[ContractRule]]] = []
        self._previous_time: datetime | None = None
        self._previous_raw: Any = None

    def flag(self, message: str, *rules: ContractRule) -> None:
        self.found.append((message, frozenset(rules)))

    # -------------------------------------------------------------------------------- result

    def result(self, result: Any) -> None:
        if not isinstance(result, dict):
            self.flag(f"result is a {type(result).__name__}, not a dict", *ContractRule)
            return
        for key in ("session_id", "scenario", "status", "total_turns", "duration_seconds"):
            if key not in result:
                self.flag(f"result has no '{key}'", *self._key_rules(key))
        for key, expected in _RESULT_TYPES.items():
            value = result.get(key)
            if value is None:
                if key in result:
                    self.flag(
                        f"result['{key}'] is null; absent keys must be absent",
                        *self._key_rules(key),
                    )
                continue
            if isinstance(value, bool) and expected in (int, (int, float)):
                self.flag(f"result['{key}'] is a bool, expected a number", _R.RESULT_SCHEMA)
            elif not isinstance(value, expected):
                self.flag(f"result['{key}'] is a {type(value).__name__}", *self._key_rules(key))
        self._status(result)
        if self.basic_mode is True and result.get("tools_used") is not False:
            self.flag("a basic-mode result needs tools_used: false", _R.BASIC_MODE)
        if self.strict and self.basic_mode is False and result.get("tools_used") is not True:
            self.flag("a tools-mode result needs tools_used: true", _R.RESULT_SCHEMA)
        session_id = result.get("session_id")
        if self.strict and session_id == "":
            self.flag("result['session_id'] is empty", _R.SESSION_ID)
        history = result.get("conversation_history")
        if isinstance(history, list):
            self.history(history, result)

    @staticmethod
    def _key_rules(key: str) -> tuple[ContractRule, ...]:
        if key == "session_id":
            return (_R.RESULT_SCHEMA, _R.SESSION_ID)
        return (_R.RESULT_SCHEMA,)

    def _status(self, result: dict[str, Any]) -> None:
        status = result.get("status")
        statuses = [s.value for s in ConversationStatus]
        if status is not None and status not in statuses:
            self.flag(f"status '{status}' is not one of {statuses}", _R.RESULT_SCHEMA)
        if status in _FAILURE_STATUSES:
            for key in ("error", "error_type"):
                if key not in result:
                    self.flag(f"a '{status}' result has no '{key}'", _R.RESULT_SCHEMA)
        if status == ConversationStatus.FAILED_API_BLOCKED:
            if result.get("graceful_degradation") is not True:
                self.flag(
                    "a 'failed_api_blocked' result needs graceful_degradation: true",
                    _R.RESULT_SCHEMA,
                )
            if "partial_completion" not in result:
                self.flag(
                    "a 'failed_api_blocked' result has no 'partial_completion'", _R.RESULT_SCHEMA
                )
        if status == ConversationStatus.COMPLETED and "conversation_history" not in result:
            self.flag("a 'completed' result has no conversation_history", _R.RESULT_SCHEMA)

    # ------------------------------------------------------------------------------- history

    def history(self, history: list[Any], result: dict[str, Any]) -> None:
        entries: list[tuple[int, dict[str, Any]]] = []
        for index, entry in enumerate(history):
            if isinstance(entry, dict):
                entries.append((index, entry))
            else:
                self.flag(
                    f"conversation_history[{index}] is a {type(entry).__name__}, not a dict",
                    _R.RESULT_SCHEMA,
                )
        self._turns(entries, result.get("total_turns"))
        for index, entry in entries:
            where = f"conversation_history[{index}]"
            for key in ("turn", "speaker", "content", "timestamp"):
                if key not in entry:
                    self.flag(f"{where} has no '{key}'", _R.RESULT_SCHEMA)
            speaker = self._speaker(where, entry.get("speaker"))
            content = entry.get("content")
            if not isinstance(content, str):
                self.flag(
                    f"{where}: content is {content!r}, expected a string", _R.CONTENT_NOT_NULL
                )
            self._timestamp(where, entry.get("timestamp"))
            self._tool_fields(where, entry)
            if speaker == CLIENT_SPEAKER:
                self._client_end_call(where, entry, last=index == len(history) - 1)
            if self.strict:
                self._entry_session(where, entry, result.get("session_id"))
        if self.strict:
            self._handoff_successors(entries)

    def _turns(self, entries: list[tuple[int, dict[str, Any]]], total_turns: Any) -> None:
        previous_turn = 0
        max_turn = 0
        client_turns: set[int] = set()
        for index, entry in entries:
            where = f"conversation_history[{index}]"
            turn = entry.get("turn")
            if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
                self.flag(f"{where}: turn is {turn!r}, expected a positive int", _R.TURN_NUMBERING)
                continue
            if turn < previous_turn:
                self.flag(f"{where}: turn {turn} goes back from {previous_turn}", _R.TURN_NUMBERING)
            elif turn > previous_turn + 1:
                self.flag(f"{where}: turn jumps from {previous_turn} to {turn}", _R.TURN_NUMBERING)
            previous_turn = turn
            max_turn = max(max_turn, turn)
            if entry.get("speaker") == CLIENT_SPEAKER:
                if turn in client_turns:
                    self.flag(f"{where} is a second client entry in turn {turn}", _R.TURN_NUMBERING)
                client_turns.add(turn)
        if entries and isinstance(total_turns, int) and total_turns != max_turn:
            self.flag(
                f"total_turns is {total_turns} but the last history turn is {max_turn}",
                _R.TURN_NUMBERING,
            )
        if self.strict and entries:
            self._exchanges(entries)

    def _exchanges(self, entries: list[tuple[int, dict[str, Any]]]) -> None:
        """Whoever speaks first opens every exchange; the other side's entries share its number."""
        opener = _side(entries[0][1].get("speaker"))
        expected = 0
        previous_side: str | None = None
        for index, entry in entries:
            side = _side(entry.get("speaker"))
            opens = side == opener and previous_side != opener
            if opens:
                expected += 1
            turn = entry.get("turn")
            if turn != expected:
                relation = (
                    "starts an exchange"
                    if opens
                    else "answers within the exchange of the entry before it"
                )
                self.flag(
                    f"conversation_history[{index}]: turn is {turn!r}, expected {expected} "
                    f"(this {side} entry {relation})",
                    _R.TURN_NUMBERING,
                )
                return  # the first divergence only: later entries would all be off by the same
            previous_side = side

    def _speaker(self, where: str, speaker: Any) -> Any:
        if self.basic_mode is True:
            valid = speaker in (BASIC_AGENT_SPEAKER, CLIENT_SPEAKER)
            expected = "is not 'agent' or 'client' in basic mode"
        elif self.basic_mode is False:
            valid = speaker == CLIENT_SPEAKER or (
                isinstance(speaker, str) and speaker.startswith(AGENT_SPEAKER_PREFIX)
            )
            expected = "is neither 'client' nor 'agent_<id>'"
        else:
            valid = speaker == CLIENT_SPEAKER or is_agent_speaker(speaker)
            expected = "is not 'agent', 'agent_<id>' or 'client'"
        if not valid:
            self.flag(f"{where}: speaker {speaker!r} {expected}", _R.SPEAKERS)
        return speaker

    def _timestamp(self, where: str, raw: Any) -> None:
        parsed = _parse_iso(raw)
        if parsed is None:
            self.flag(f"{where}: timestamp {raw!r} is not ISO-8601", _R.TIMESTAMPS)
            return
        if self.strict and parsed.tzinfo is None:
            self.flag(f"{where}: timestamp {raw!r} has no time zone", _R.TIMESTAMPS)
        moment = _as_utc(parsed)
        if self._previous_time is not None and moment < self._previous_time:
            self.flag(
                f"{where}: timestamp {raw} goes back in time, before the previous entry's "
                f"{self._previous_raw}",
                _R.TIMESTAMPS,
            )
        self._previous_time, self._previous_raw = moment, raw

    def _tool_fields(self, where: str, entry: dict[str, Any]) -> None:
        speaker = entry.get("speaker")
        calls = entry.get("tool_calls")
        results = entry.get("tool_results")
        if self.basic_mode is True and (calls or results):
            self.flag(f"{where} has tool fields in basic mode", _R.BASIC_MODE)
        if "tool_calls" in entry:
            self._tool_calls(where, calls)
        if "tool_results" in entry:
            self._tool_results(where, speaker, calls, results)
        elif self.strict and is_agent_speaker(speaker) and entry_tool_calls(entry):
            self.flag(
                f"{where}: {len(entry_tool_calls(entry))} tool_calls but no tool_results",
                _R.TOOL_RESULTS_ALIGNMENT,
            )

    def _tool_calls(self, where: str, calls: Any) -> None:
        if calls is None:
            self.flag(
                f"{where}: tool_calls is null; absent keys must be absent", _R.TOOL_CALLS_SHAPE
            )
            return
        if not isinstance(calls, list):
            self.flag(
                f"{where}: tool_calls is a {type(calls).__name__}, not a list", _R.TOOL_CALLS_SHAPE
            )
            return
        if self.strict and not calls:
            self.flag(f"{where}: tool_calls is [], expected a non-empty list", _R.TOOL_CALLS_SHAPE)
        for position, call in enumerate(calls):
            for problem in self._call_problems(call):
                self.flag(f"{where}.tool_calls[{position}]: {problem}", _R.TOOL_CALLS_SHAPE)

    def _call_problems(self, call: Any) -> list[str]:
        if not isinstance(call, dict):
            return [f"is a {type(call).__name__}, not an object"]
        strict = self.strict
        problems: list[str] = []
        if strict and set(call) != {"id", "type", "function"}:
            problems.append(f"has keys {sorted(call)}, expected ['function', 'id', 'type']")
        call_id = call.get("id")
        if not isinstance(call_id, str) or (strict and not call_id):
            expected = "a non-empty string" if strict else "a string"
            problems.append(f"id is {call_id!r}, expected {expected}")
        if call.get("type") != "function":
            problems.append(f"type is {call.get('type')!r}, expected 'function'")
        function = call.get("function")
        if not isinstance(function, dict) or (strict and set(function) != {"name", "arguments"}):
            problems.append(f"function is {function!r}, expected {{name, arguments}}")
            return problems
        name = function.get("name")
        if not isinstance(name, str) or (strict and not name):
            problems.append(f"function.name is {name!r}")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            problems.append(
                f"function.arguments is a {type(arguments).__name__}, not a JSON string"
            )
        elif strict:
            try:
                parsed = json.loads(arguments)
            except ValueError:
                problems.append(f"function.arguments {arguments[:60]!r} is not valid JSON")
            else:
                if not isinstance(parsed, dict):
                    problems.append(f"function.arguments {arguments[:60]!r} is not a JSON object")
        return problems

    def _tool_results(self, where: str, speaker: Any, calls: Any, results: Any) -> None:
        if results is None:
            self.flag(
                f"{where}: tool_results is null; absent keys must be absent",
                _R.TOOL_RESULTS_ALIGNMENT,
            )
            return
        if speaker == CLIENT_SPEAKER or (self.strict and not is_agent_speaker(speaker)):
            rules = [_R.TOOL_RESULTS_ALIGNMENT]
            if speaker == CLIENT_SPEAKER:
                rules.append(_R.CLIENT_END_CALL_ENTRY)
            self.flag(f"{where}: a {speaker!r} entry has tool_results", *rules)
            return
        if not isinstance(results, list):
            self.flag(
                f"{where}: tool_results is a {type(results).__name__}, not a list",
                _R.TOOL_RESULTS_ALIGNMENT,
            )
            return
        if isinstance(calls, list) and len(results) != len(calls):
            self.flag(
                f"{where}: {len(calls)} tool_calls but {len(results)} tool_results",
                _R.TOOL_RESULTS_ALIGNMENT,
            )
        if self.strict:
            for position, item in enumerate(results):
                if _unparsed_json(item):
                    self.flag(
                        f"{where}.tool_results[{position}]: JSON left as a string "
                        f"({item[:60]!r}); results are parsed",
                        _R.TOOL_RESULTS_ALIGNMENT,
                    )

    def _client_end_call(self, where: str, entry: dict[str, Any], *, last: bool) -> None:
        content = entry.get("content")
        marked = isinstance(content, str) and content.startswith(CLIENT_END_CALL_MARKER)
        calls = entry.get("tool_calls")
        if not isinstance(calls, list) or not calls:
            if self.strict and self.basic_mode is False and marked:
                self.flag(
                    f"{where}: the client's end_call marker without the end_call in tool_calls",
                    _R.CLIENT_END_CALL_ENTRY,
                )
            return
        names = [tool_call_name(call) for call in entry_tool_calls(entry)]
        if names != [END_CALL_TOOL]:
            self.flag(
                f"{where}: client tool_calls are {names}, expected [end_call]",
                _R.CLIENT_END_CALL_ENTRY,
            )
            return
        expected = None
        if self.strict:
            expected = expected_end_call_content(tool_call_arguments(entry_tool_calls(entry)[0]))
        if expected is not None and content != expected:
            self.flag(
                f"{where}: content is {content!r}, expected {expected!r}", _R.CLIENT_END_CALL_ENTRY
            )
        elif not marked:
            self.flag(
                f"{where}: content {content!r} lacks the legacy end_call marker",
                _R.CLIENT_END_CALL_ENTRY,
            )
        if self.strict and not last:
            self.flag(
                f"{where}: the conversation went on after the client's end_call",
                _R.CLIENT_END_CALL_ENTRY,
            )

    def _entry_session(self, where: str, entry: dict[str, Any], session_id: Any) -> None:
        if "session_id" in entry and entry["session_id"] != session_id:
            self.flag(
                f"{where}: session_id {entry['session_id']!r} is not the result's {session_id!r}",
                _R.SESSION_ID,
            )

    def _handoff_successors(self, entries: list[tuple[int, dict[str, Any]]]) -> None:
        """A completed `handoff_<X>` is followed by `agent_X`, in the same exchange."""
        for position, (index, entry) in enumerate(entries):
            results = entry.get("tool_results")
            results = results if isinstance(results, list) else []
            for call, outcome in zip(entry_tool_calls(entry), results, strict=False):
                target = _handoff_target(tool_call_name(call))
                if target is None or not _is_completed_handoff(outcome):
                    continue
                if position + 1 == len(entries):
                    self.flag(
                        f"conversation_history[{index}]: a handoff to {target!r} ends the history",
                        _R.SPEAKERS,
                    )
                    continue
                following_index, following = entries[position + 1]
                where = f"conversation_history[{following_index}]"
                if following.get("speaker") != f"{AGENT_SPEAKER_PREFIX}{target}":
                    self.flag(
                        f"{where}: after a handoff to {target!r} the next entry is by "
                        f"{following.get('speaker')!r}, expected 'agent_{target}'",
                        _R.SPEAKERS,
                    )
                elif following.get("turn") != entry.get("turn"):
                    self.flag(
                        f"{where}: the reply after a handoff has turn {following.get('turn')!r}, "
                        f"expected the handoff's turn {entry.get('turn')!r}",
                        _R.SPEAKERS,
                    )


def _side(speaker: Any) -> str:
    return CLIENT_SPEAKER if speaker == CLIENT_SPEAKER else "agent"


def _as_utc(moment: datetime) -> datetime:
    """A timestamp without a zone is read as UTC (see the module docstring)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _handoff_target(name: str) -> str | None:
    return name[len(HANDOFF_PREFIX) :] if name.startswith(HANDOFF_PREFIX) else None


def _is_completed_handoff(outcome: Any) -> bool:
    return isinstance(outcome, dict) and outcome.get("status") == HANDOFF_COMPLETED


def _unparsed_json(item: Any) -> bool:
    if not isinstance(item, str):
        return False
    try:
        return isinstance(json.loads(item), dict | list)
    except ValueError:
        return False
