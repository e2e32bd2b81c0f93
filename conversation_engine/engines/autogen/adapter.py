"""`ConversationAdapter`: AutoGen messages to the legacy conversation history.

The engine keeps one flat list of AutoGen messages for a conversation: every Swarm run's
stream (its task message included) and the client's closing message. In that list the
client's words are `HandoffMessage(source="client")` (the task of each agent-side run, or
the last reply when no run followed it) and its hang-up is a `ToolCallRequestEvent(source=
"client")` calling `end_call`. Everything else comes from the agents.

Rules, as the legacy engine had them:

* `turn` is the exchange number: whoever opened the conversation starts a new exchange, and
  the other side's reply shares its number.
* One agent entry per agent per stretch of speech. Tool calls and their results are paired by
  position within each request/execution event pair (call ids can repeat) and go on the
  entry of the agent that made them. A handoff closes the handing-off agent's entry (its
  content may be "") with the `handoff_<target>` call and the legacy `handoff_completed`
  result; the receiving agent's reply is a new entry with the same turn. Of several
  handoffs in one reply only the first valid one runs (AutoGen's rule, and the legacy
  engine's); each later one gets the `handoff_not_executed` error result.
* Text said alongside tool calls (`ThoughtEvent`) is part of the entry's content.
* `ToolCallSummaryMessage` repeats tool results and is skipped.
* Timestamps are the messages' own `created_at`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    HandoffMessage,
    TextMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core.models import RequestUsage

from conversation_engine.core.contract import (
    AGENT_SPEAKER_PREFIX,
    BASIC_AGENT_SPEAKER,
    CLIENT_SPEAKER,
    END_CALL_TOOL,
    FunctionCall,
    HistoryEntry,
    ToolCall,
    client_end_call_content,
    safe_parse_tool_result,
)
from conversation_engine.engines.customer import end_call_reason
from conversation_engine.llm._completion_check import tool_call_arguments
from conversation_engine.tools.catalogue import (
    handoff_not_executed,
    handoff_result,
    handoff_target,
)

AutogenMessage = BaseAgentEvent | BaseChatMessage


@dataclass
class _OpenEntry:
    source: str
    turn: int
    timestamp: str
    content: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    unanswered: list[ToolCall] = field(default_factory=list)


class ConversationAdapter:
    """Maps one conversation's AutoGen messages to `HistoryEntry`s.

    `agent_ids` maps AutoGen agent names back to spec agent ids (they differ only for ids
    that are not Python identifiers). `basic=True` names every agent entry `agent` and drops
    tool fields, as legacy basic mode did.
    """

    def __init__(
        self,
        agent_ids: Mapping[str, str] | None = None,
        *,
        basic: bool = False,
        client_source: str = CLIENT_SPEAKER,
    ) -> None:
        self._agent_ids = dict(agent_ids or {})
        self._basic = basic
        self._client_source = client_source

    def speaker(self, source: str) -> str:
        if source == self._client_source:
            return CLIENT_SPEAKER
        if self._basic:
            return BASIC_AGENT_SPEAKER
        return f"{AGENT_SPEAKER_PREFIX}{self._agent_ids.get(source, source)}"

    def _spec_id(self, autogen_name: str) -> str:
        return self._agent_ids.get(autogen_name, autogen_name)

    # History ------------------------------------------------------------------------------

    def to_history(self, messages: Sequence[AutogenMessage]) -> list[HistoryEntry]:
        entries: list[HistoryEntry] = []
        open_entry: _OpenEntry | None = None
        turn = 0
        leader: str | None = None  # "client" or "agent": who opens each exchange
        last_side: str | None = None

        def close() -> None:
            nonlocal open_entry
            if open_entry is not None:
                entries.append(self._finish(open_entry))
                open_entry = None

        def next_turn(side: str) -> int:
            nonlocal turn, leader, last_side
            if leader is None:
                leader = side
            if side == leader and last_side != side:
                turn += 1
            last_side = side
            return turn

        for message in messages:
            stamp = message.created_at.isoformat()
            if message.source == self._client_source:
                close()
                entry = self._client_entry(message, next_turn("client"), stamp)
                if entry is not None:
                    entries.append(entry)
                continue
            if not self._is_agent_speech(message):
                continue
            if open_entry is not None and open_entry.source != message.source:
                close()
            if open_entry is None:
                open_entry = _OpenEntry(message.source, next_turn("agent"), stamp)
            open_entry.timestamp = stamp
            self._absorb(open_entry, message)
            if isinstance(message, HandoffMessage):
                close()
        close()
        return entries

    @staticmethod
    def _is_agent_speech(message: AutogenMessage) -> bool:
        return isinstance(
            message,
            TextMessage
            | ThoughtEvent
            | ToolCallRequestEvent
            | ToolCallExecutionEvent
            | HandoffMessage,
        )

    def _client_entry(self, message: AutogenMessage, turn: int, stamp: str) -> HistoryEntry | None:
        if isinstance(message, ToolCallRequestEvent):
            call = next((c for c in message.content if c.name == END_CALL_TOOL), None)
            if call is None:
                return None
            reason = end_call_reason(call.arguments)
            tool_calls = None if self._basic else [_tool_call(call.id, call.name, call.arguments)]
            return HistoryEntry(
                turn=turn,
                speaker=CLIENT_SPEAKER,
                content=client_end_call_content(reason),
                timestamp=stamp,
                tool_calls=tool_calls,
            )
        if isinstance(message, HandoffMessage | TextMessage):
            return HistoryEntry(
                turn=turn, speaker=CLIENT_SPEAKER, content=message.content, timestamp=stamp
            )
        return None

    def _absorb(self, entry: _OpenEntry, message: AutogenMessage) -> None:
        if isinstance(message, TextMessage | ThoughtEvent):
            if message.content:
                entry.content.append(message.content)
        elif isinstance(message, ToolCallRequestEvent):
            calls = [_tool_call(c.id, c.name, c.arguments) for c in message.content]
            entry.calls.extend(calls)
            entry.unanswered = calls
        elif isinstance(message, ToolCallExecutionEvent):
            # Pair by position: call ids are not guaranteed unique across a conversation.
            handed_off_to: str | None = None
            for call, result in zip(entry.unanswered, message.content, strict=False):
                target = handoff_target(call.function.name)
                if target is not None and not result.is_error:
                    if handed_off_to is not None:
                        entry.results.append(handoff_not_executed(handed_off_to))
                        continue
                    handed_off_to = self._spec_id(target)
                entry.results.append(self._tool_result(call, result.content, result.is_error))
            for _ in entry.unanswered[len(message.content) :]:
                entry.results.append({"error": "Tool call produced no result"})
            entry.unanswered = []

    def _tool_result(self, call: ToolCall, content: str, is_error: bool | None) -> Any:
        target = handoff_target(call.function.name)
        if target is not None:
            if is_error:
                return {"error": f"Invalid handoff target: {target}"}
            return handoff_result(self._spec_id(target))
        return safe_parse_tool_result(content)

    def _finish(self, entry: _OpenEntry) -> HistoryEntry:
        for _ in entry.unanswered:
            entry.results.append({"error": "Tool call was interrupted before it returned"})
        has_tools = bool(entry.calls) and not self._basic
        return HistoryEntry(
            turn=entry.turn,
            speaker=self.speaker(entry.source),
            content=" ".join(part.strip() for part in entry.content if part.strip()),
            timestamp=entry.timestamp,
            tool_calls=entry.calls if has_tools else None,
            tool_results=entry.results if has_tools else None,
        )

    # One agent-side run ------------------------------------------------------------------

    def agent_entries(self, messages: Sequence[AutogenMessage], turn: int) -> list[HistoryEntry]:
        """One run's agent entries, all numbered `turn`; the client's messages are skipped."""
        spoken = [message for message in messages if message.source != self._client_source]
        return [entry.model_copy(update={"turn": turn}) for entry in self.to_history(spoken)]

    def spoken_text(self, messages: Sequence[AutogenMessage]) -> str:
        """What the customer hears of a run: the agents' text, including text said with tool calls."""
        parts = [
            m.content.strip()
            for m in messages
            if m.source != self._client_source
            and isinstance(m, TextMessage | ThoughtEvent)
            and m.content.strip()
        ]
        return " ".join(parts)

    def last_agent(self, messages: Sequence[AutogenMessage], default: str) -> str:
        """The agent the client's next words go to: whoever spoke or was handed the turn last."""
        agent = default
        for message in messages:
            if message.source == self._client_source:
                continue
            if isinstance(message, HandoffMessage) and message.target != self._client_source:
                agent = message.target
            elif self._is_agent_speech(message):
                agent = message.source
        return agent


def _tool_call(call_id: str, name: str, arguments: Any) -> ToolCall:
    return ToolCall(
        id=call_id if isinstance(call_id, str) else "",
        function=FunctionCall(name=str(name), arguments=tool_call_arguments(arguments)),
    )


def usage_of(messages: Sequence[AutogenMessage]) -> RequestUsage:
    """Tokens used by the model calls behind these messages."""
    prompt = completion = 0
    for message in messages:
        usage = message.models_usage
        if usage is not None:
            prompt += usage.prompt_tokens
            completion += usage.completion_tokens
    return RequestUsage(prompt_tokens=prompt, completion_tokens=completion)


def count_model_calls(messages: Sequence[AutogenMessage]) -> int:
    return sum(1 for m in messages if m.models_usage is not None)
