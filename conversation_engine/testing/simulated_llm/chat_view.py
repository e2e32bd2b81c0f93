"""A read-only view of one Chat Completions request: messages, offered tools, handoff notices.

Requests come from two engines that show an agent the conversation differently:

* AutoGen (`OpenAIChatCompletionClient`): `user` messages carry a `name`; the client's words
  have `name: "client"` (or `"user"` for a plain string task), another agent's handoff notice
  has that agent's name and content such as "Transferred to support ...", and another agent's
  tool summaries arrive as `user` messages under that agent's name.
* The legacy engine: `user` messages have no name; after a handoff the new agent sees the
  client's last message followed by "You are now taking over this conversation. ...".

The roles only ever look at the conversation through this module, so both views are
interpreted in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conversation_engine.core.contract import END_CALL_TOOL, HANDOFF_PREFIX

AUTOGEN_HANDOFF_PREFIX = "transfer_to_"
HANDOFF_PREFIXES = (HANDOFF_PREFIX, AUTOGEN_HANDOFF_PREFIX)

#: Names under which the client's own words reach an agent.
CLIENT_NAMES = frozenset({"client", "user"})

#: How handoff notices and engine-injected context begin; none of them is a client request.
_NOTICE_PREFIXES = (
    "transferred to",
    "you are now taking over",
    "previous conversation context",
)
_LEGACY_TAKEOVER_PREFIX = "you are now taking over"

#: Tools that never count as "business" tools a role can use on its own.
CONTROL_TOOL_NAMES = frozenset({END_CALL_TOOL, "call_transfer"})


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string, a list of parts, or missing."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text", "") if isinstance(part, dict) else str(part) for part in content]
        return "\n".join(part for part in parts if part)
    return str(content)


def handoff_tool_target(name: str) -> str | None:
    """The agent a `handoff_<x>` / `transfer_to_<x>` tool leads to; None for other tools."""
    for prefix in HANDOFF_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return None


@dataclass(frozen=True)
class ToolCallRecord:
    """A tool call the requesting role made earlier, paired with its result if one came back."""

    call_id: str
    name: str
    arguments: str
    result: str | None


@dataclass(frozen=True)
class HandoffNotice:
    """A message announcing that another agent handed the conversation over."""

    from_agent: str | None
    """The handing-off agent's name; None for the legacy takeover message, which omits it."""


class ChatView:
    """Parsed view of a request body; cheap to build, never mutates the body."""

    def __init__(self, body: dict[str, Any]) -> None:
        raw_messages = body.get("messages")
        self.messages: list[dict[str, Any]] = [
            message for message in (raw_messages or []) if isinstance(message, dict)
        ]
        self.tools: dict[str, dict[str, Any]] = {}
        # tool_choice "none" means the caller wants words only, whatever tools it lists.
        if body.get("tool_choice") != "none":
            for tool in body.get("tools") or []:
                function = tool.get("function") if isinstance(tool, dict) else None
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    self.tools[function["name"]] = function
        response_format = body.get("response_format")
        self.response_format_type: str | None = (
            response_format.get("type") if isinstance(response_format, dict) else None
        )

    # --- tools -----------------------------------------------------------------------------

    def offers(self, name: str) -> bool:
        return name in self.tools

    def parameters(self, name: str) -> dict[str, Any]:
        """The JSON schema of a tool's arguments (empty object schema when absent)."""
        parameters = self.tools.get(name, {}).get("parameters")
        return parameters if isinstance(parameters, dict) else {}

    def handoff_tools(self) -> dict[str, str]:
        """Offered handoff tools by name → target agent; handoffs to the client are excluded."""
        handoffs: dict[str, str] = {}
        for name in self.tools:
            target = handoff_tool_target(name)
            if target is not None and target not in CLIENT_NAMES:
                handoffs[name] = target
        return handoffs

    def business_tools(self) -> list[str]:
        """Offered tools that are neither handoffs nor control tools, in offered order."""
        return [
            name
            for name in self.tools
            if handoff_tool_target(name) is None and name not in CONTROL_TOOL_NAMES
        ]

    def uses_autogen_handoffs(self) -> bool:
        return any(name.startswith(AUTOGEN_HANDOFF_PREFIX) for name in self.tools)

    # --- messages --------------------------------------------------------------------------

    @property
    def system_text(self) -> str:
        return "\n".join(
            message_text(message)
            for message in self.messages
            if message.get("role") in ("system", "developer")
        )

    def texts(self, role: str) -> list[str]:
        """Non-empty texts of all messages with this role, in order."""
        return [
            text
            for message in self.messages
            if message.get("role") == role and (text := message_text(message).strip())
        ]

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message_text(message)
        return ""

    @staticmethod
    def is_notice(message: dict[str, Any]) -> bool:
        """True for a `user` message that is not the client speaking."""
        name = message.get("name")
        if isinstance(name, str) and name and name not in CLIENT_NAMES:
            return True
        return message_text(message).strip().lower().startswith(_NOTICE_PREFIXES)

    def latest_client_request(self) -> tuple[int | None, str]:
        """Index and text of the client's latest words, skipping notices and empty messages."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.get("role") != "user" or self.is_notice(message):
                continue
            text = message_text(message).strip()
            if text:
                return index, text
        return None, ""

    def tool_calls_after(self, index: int) -> list[ToolCallRecord]:
        """The role's own tool calls after message `index`, each with its result if present."""
        results: dict[str, str] = {}
        for message in self.messages[index + 1 :]:
            if message.get("role") == "tool" and isinstance(message.get("tool_call_id"), str):
                results[message["tool_call_id"]] = message_text(message)
        records: list[ToolCallRecord] = []
        for message in self.messages[index + 1 :]:
            if message.get("role") != "assistant":
                continue
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                call_id = str(call.get("id", ""))
                records.append(
                    ToolCallRecord(
                        call_id=call_id,
                        name=str(function.get("name", "")),
                        arguments=str(function.get("arguments", "")),
                        result=results.get(call_id),
                    )
                )
        return records

    def called_tool_names(self) -> frozenset[str]:
        """Every tool the requesting role has called in the conversation it is shown."""
        return frozenset(
            str((call.get("function") or {}).get("name", ""))
            for message in self.messages
            if message.get("role") == "assistant"
            for call in message.get("tool_calls") or []
            if isinstance(call, dict)
        )

    def handoff_notices_after(self, index: int) -> list[HandoffNotice]:
        """Handoff notices that arrived after message `index`."""
        notices: list[HandoffNotice] = []
        for message in self.messages[index + 1 :]:
            if message.get("role") != "user":
                continue
            text = message_text(message).strip().lower()
            name = message.get("name")
            if text.startswith(_LEGACY_TAKEOVER_PREFIX):
                notices.append(HandoffNotice(from_agent=None))
            elif text.startswith("transferred to") and isinstance(name, str):
                notices.append(HandoffNotice(from_agent=name))
        return notices
