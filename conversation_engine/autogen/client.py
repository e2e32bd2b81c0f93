"""The simulated customer: an LLM outside the Swarm that hears only what a customer would."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    LLMMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import ToolSchema

from conversation_engine.contract import CLIENT_SPEAKER, END_CALL_TOOL
from conversation_engine.tools.catalogue import CONTROL_TOOLS

DEFAULT_END_REASON = "Client ended the call"

_END_CALL_FUNCTION = CONTROL_TOOLS[END_CALL_TOOL]["function"]
END_CALL_SCHEMA = ToolSchema(
    name=_END_CALL_FUNCTION["name"],
    description=_END_CALL_FUNCTION["description"],
    parameters=_END_CALL_FUNCTION["parameters"],
)


@dataclass
class ClientReply:
    """One thing the client said: text, or a call to `end_call`."""

    text: str
    end_call: FunctionCall | None = None
    usage: RequestUsage = field(
        default_factory=lambda: RequestUsage(prompt_tokens=0, completion_tokens=0)
    )
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def end_reason(self) -> str | None:
        """The `reason` argument of the client's `end_call`, None if it did not end the call."""
        return None if self.end_call is None else end_call_reason(self.end_call.arguments)


def end_call_reason(arguments: str | None) -> str:
    """The `reason` of an `end_call` call; malformed arguments still end the call."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return DEFAULT_END_REASON
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return str(reason) if reason else DEFAULT_END_REASON


class SimulatedClient:
    """The customer of one conversation, driven by the spec's formatted `client` prompt.

    Its context holds its persona, the agents' spoken words as user messages and its own words
    as assistant messages: no tool traffic and no handoff mechanics, as on a real call. It has
    one tool, `end_call`, to hang up.
    """

    def __init__(self, prompt: str, model_client: ChatCompletionClient) -> None:
        self._model_client = model_client
        self._context: list[LLMMessage] = [SystemMessage(content=prompt)]

    @property
    def context(self) -> list[LLMMessage]:
        return list(self._context)

    def say_first(self, text: str) -> ClientReply:
        """The scenario's opening line, spoken without asking the model."""
        self._context.append(AssistantMessage(content=text, source=CLIENT_SPEAKER))
        return ClientReply(text=text)

    async def reply(
        self, agent_text: str, cancellation_token: CancellationToken | None = None
    ) -> ClientReply:
        """Hear the agent's words and answer them."""
        self._context.append(UserMessage(content=agent_text, source="agent"))
        result = await self._model_client.create(
            self._context, tools=[END_CALL_SCHEMA], cancellation_token=cancellation_token
        )
        if isinstance(result.content, list):
            end_call = next((call for call in result.content if call.name == END_CALL_TOOL), None)
            if end_call is None:
                # The only tool on offer is end_call; anything else is a model error we treat
                # as hanging up rather than inventing words for the customer.
                first = result.content[0]
                end_call = FunctionCall(
                    id=first.id or uuid.uuid4().hex, name=END_CALL_TOOL, arguments="{}"
                )
            self._context.append(AssistantMessage(content=[end_call], source=CLIENT_SPEAKER))
            return ClientReply(text=result.thought or "", end_call=end_call, usage=result.usage)
        text = result.content or ""
        self._context.append(AssistantMessage(content=text, source=CLIENT_SPEAKER))
        return ClientReply(text=text, usage=result.usage)
