"""The legacy ConversationEngine contract: result and history models, statuses, the protocol.

Both engines produce `ConversationResult`; `to_contract_dict()` gives exactly the dict the
legacy consumers read (absent keys absent, content never null). `contract_violations()` checks
any dict against the same rules, which is what the conformance suite builds on.

Keys beyond the legacy ones are additive and optional:

* `end_reason` (result): why the conversation stopped, one of `END_REASONS`.
* `usage` (result): model calls, prompt/completion/total tokens and estimated cost in USD.
* `seed` (result): the scenario `SEED` the conversation ran with, when there was one.
* `engine` (result): the engine class that produced the result.
* `rollout` (result, `RolloutConversationEngine` only): `{arm, share, fell_back}` and, after a
  fallback, `fallback_from` (the candidate's engine, session id, error, error type, turns).
* `visible_to_client`, `handoff_metadata` (history entry): the legacy branch's handoff fields.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

CLIENT_SPEAKER = "client"
BASIC_AGENT_SPEAKER = "agent"
AGENT_SPEAKER_PREFIX = "agent_"
END_CALL_TOOL = "end_call"
HANDOFF_PREFIX = "handoff_"

#: The legacy marker the client's `end_call` entry carries as its content.
CLIENT_END_CALL_TEMPLATE = "[ЗАВЕРШИЛ ЗВОНОК: {reason}]"

#: Substrings that mark an error as a geographic block (legacy detection).
GEO_BLOCK_MARKERS = (
    "geographic restriction",
    "unsupported_country_region_territory",
    "blocked due to geographic",
    # openai 3.x keeps the code in the error body; inside a Swarm only this text survives.
    "country, region, or territory not supported",
)

END_REASONS = (
    "client_end_call",
    "agent_end_call",
    "max_turns",
    "timeout",
    "api_blocked",
    "error",
)


class ConversationStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    FAILED_API_BLOCKED = "failed_api_blocked"
    TIMEOUT = "timeout"


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
    cost_usd: float = 0.0

    def add(self, prompt_tokens: int, completion_tokens: int, cost_usd: float = 0.0) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.total_tokens += prompt_tokens + completion_tokens
        self.cost_usd += cost_usd


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
    end_reason: str | None = None
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


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _comparable(moment: datetime) -> datetime:
    # Naive timestamps are taken as UTC so that mixed entries still compare.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.now().astimezone().tzinfo)


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


def contract_violations(result: Any, *, basic_mode: bool | None = None) -> list[str]:
    """Every way `result` breaks the legacy contract, one sentence each; [] when it conforms.

    `basic_mode=True` also requires basic-mode speakers (`agent`/`client`), no tool fields and
    `tools_used: false`; `False` requires tools-mode speakers (`agent_<id>`/`client`).
    """
    problems: list[str] = []
    if not isinstance(result, dict):
        return [f"result is a {type(result).__name__}, not a dict"]
    for key in ("session_id", "scenario", "status", "total_turns", "duration_seconds"):
        if key not in result:
            problems.append(f"result has no '{key}'")
    for key, expected in _RESULT_TYPES.items():
        value = result.get(key)
        if value is None:
            if key in result:
                problems.append(f"result['{key}'] is null; absent keys must be absent")
            continue
        if isinstance(value, bool) and expected in (int, (int, float)):
            problems.append(f"result['{key}'] is a bool, expected a number")
        elif not isinstance(value, expected):
            problems.append(f"result['{key}'] is a {type(value).__name__}")
    status = result.get("status")
    if status is not None and status not in {s.value for s in ConversationStatus}:
        problems.append(f"status '{status}' is not one of {[s.value for s in ConversationStatus]}")
    if status in ("failed", "failed_api_blocked", "timeout"):
        for key in ("error", "error_type"):
            if key not in result:
                problems.append(f"a '{status}' result has no '{key}'")
    if status == "failed_api_blocked":
        if result.get("graceful_degradation") is not True:
            problems.append("a 'failed_api_blocked' result needs graceful_degradation: true")
        if "partial_completion" not in result:
            problems.append("a 'failed_api_blocked' result has no 'partial_completion'")
    if status == "completed" and "conversation_history" not in result:
        problems.append("a 'completed' result has no conversation_history")
    if basic_mode is True and result.get("tools_used") is not False:
        problems.append("a basic-mode result needs tools_used: false")

    history = result.get("conversation_history")
    if isinstance(history, list):
        problems.extend(_history_violations(history, result, basic_mode))
    return problems


def _history_violations(
    history: list[Any], result: dict[str, Any], basic_mode: bool | None
) -> list[str]:
    problems: list[str] = []
    previous_turn = 0
    previous_time: datetime | None = None
    max_turn = 0
    client_turns: set[int] = set()
    for index, entry in enumerate(history):
        where = f"conversation_history[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} is a {type(entry).__name__}, not a dict")
            continue
        for key in ("turn", "speaker", "content", "timestamp"):
            if key not in entry:
                problems.append(f"{where} has no '{key}'")
        turn = entry.get("turn")
        if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
            problems.append(f"{where}.turn is {turn!r}, expected a positive int")
        else:
            if turn < previous_turn:
                problems.append(f"{where}.turn {turn} goes back from {previous_turn}")
            elif turn > previous_turn + 1:
                problems.append(f"{where}.turn jumps from {previous_turn} to {turn}")
            previous_turn = turn
            max_turn = max(max_turn, turn)
            if entry.get("speaker") == CLIENT_SPEAKER:
                if turn in client_turns:
                    problems.append(f"{where} is a second client entry in turn {turn}")
                client_turns.add(turn)
        speaker = entry.get("speaker")
        if not isinstance(speaker, str):
            problems.append(f"{where}.speaker is {speaker!r}")
            speaker = ""
        elif basic_mode is True and speaker not in (BASIC_AGENT_SPEAKER, CLIENT_SPEAKER):
            problems.append(f"{where}.speaker '{speaker}' is not 'agent' or 'client' in basic mode")
        elif basic_mode is False and not (
            speaker == CLIENT_SPEAKER or speaker.startswith(AGENT_SPEAKER_PREFIX)
        ):
            problems.append(f"{where}.speaker '{speaker}' is not 'client' or 'agent_<id>'")
        elif speaker not in (BASIC_AGENT_SPEAKER, CLIENT_SPEAKER) and not speaker.startswith(
            AGENT_SPEAKER_PREFIX
        ):
            problems.append(f"{where}.speaker '{speaker}' is not 'agent', 'agent_<id>' or 'client'")
        if not isinstance(entry.get("content"), str):
            problems.append(f"{where}.content is {entry.get('content')!r}, expected a string")
        moment = _parse_iso(entry.get("timestamp"))
        if moment is None:
            problems.append(f"{where}.timestamp {entry.get('timestamp')!r} is not ISO-8601")
        else:
            if previous_time is not None and _comparable(moment) < _comparable(previous_time):
                problems.append(f"{where}.timestamp goes back in time")
            previous_time = moment
        problems.extend(_tool_field_violations(entry, where, speaker, basic_mode))
    total_turns = result.get("total_turns")
    if history and isinstance(total_turns, int) and total_turns != max_turn:
        problems.append(f"total_turns is {total_turns} but the last history turn is {max_turn}")
    return problems


def _tool_field_violations(
    entry: dict[str, Any], where: str, speaker: str, basic_mode: bool | None
) -> list[str]:
    problems: list[str] = []
    calls = entry.get("tool_calls")
    results = entry.get("tool_results")
    if basic_mode is True and (calls or results):
        problems.append(f"{where} has tool fields in basic mode")
    if "tool_calls" in entry and calls is None:
        problems.append(f"{where}.tool_calls is null; absent keys must be absent")
    if "tool_results" in entry and results is None:
        problems.append(f"{where}.tool_results is null; absent keys must be absent")
    if results is not None and speaker == CLIENT_SPEAKER:
        problems.append(f"{where} is a client entry with tool_results")
    if calls is not None:
        if not isinstance(calls, list):
            problems.append(f"{where}.tool_calls is not a list")
            calls = []
        for position, call in enumerate(calls):
            problems.extend(_tool_call_violations(call, f"{where}.tool_calls[{position}]"))
        if speaker == CLIENT_SPEAKER:
            names = [c.get("function", {}).get("name") for c in calls if isinstance(c, dict)]
            if names != [END_CALL_TOOL]:
                problems.append(
                    f"{where} is a client entry whose tool_calls are {names}, not [end_call]"
                )
            elif not str(entry.get("content", "")).startswith("[ЗАВЕРШИЛ ЗВОНОК:"):
                problems.append(
                    f"{where} is the client's end_call without the legacy marker content"
                )
    if results is not None:
        if not isinstance(results, list):
            problems.append(f"{where}.tool_results is not a list")
        elif isinstance(calls, list) and len(results) != len(calls):
            problems.append(f"{where} has {len(calls)} tool_calls but {len(results)} tool_results")
    return problems


def _tool_call_violations(call: Any, where: str) -> list[str]:
    if not isinstance(call, dict):
        return [f"{where} is not a dict"]
    problems: list[str] = []
    if not isinstance(call.get("id"), str):
        problems.append(f"{where}.id is missing or not a string")
    if call.get("type") != "function":
        problems.append(f"{where}.type is {call.get('type')!r}, expected 'function'")
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        problems.append(f"{where}.function.name is missing")
        return problems
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        problems.append(
            f"{where}.function.arguments is a {type(arguments).__name__}, not a JSON string"
        )
    return problems
