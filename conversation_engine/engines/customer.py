"""The simulated customer: one LLM outside the bot that hears only what a customer would.

Both engines talk to this one customer through the same endpoint and the same requests, so an
A/B difference is never a difference of the customer. Its context holds its persona (the
spec's formatted `client` prompt), the agents' spoken words as `user` messages and its own
words as `assistant` messages: no tool traffic and no handoff mechanics, as on a real call.
Its one tool is `end_call`, to hang up.

`Customer` is what the driver talks to: this simulated customer, a scenario's scripted one
(`engines.scripted_customer`) or a person at `chat` (`engines.human_customer`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from conversation_engine.core.call_context import CLIENT_ROLE, speaking_as
from conversation_engine.core.contract import END_CALL_TOOL, FunctionCall, HistoryEntry, ToolCall
from conversation_engine.llm.endpoint import OpenAIWrapper, reply_text, reply_tool_calls
from conversation_engine.tools.catalogue import CONTROL_TOOLS

#: The `reason` recorded when the customer hangs up without giving one.
DEFAULT_END_REASON = "Client ended the call"

_CUSTOMER_TOOLS = [CONTROL_TOOLS[END_CALL_TOOL]]


@dataclass
class ClientReply:
    """One thing the customer said: words, or a call to `end_call`."""

    text: str
    end_call: ToolCall | None = None
    take_back: bool = False
    """The customer takes back its last line and the agents' answer to it (a person's `/undo`),
    and is asked again; only a driver that keeps checkpoints (`rewindable`) is told so."""

    @property
    def end_reason(self) -> str | None:
        """The `reason` of the customer's `end_call`; None if it did not hang up."""
        return None if self.end_call is None else end_call_reason(self.end_call.function.arguments)


def end_call_reason(arguments: str | None) -> str:
    """The `reason` of an `end_call` call; malformed arguments still end the call."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return DEFAULT_END_REASON
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return str(reason) if reason else DEFAULT_END_REASON


def client_end_call(reason: str | None = None) -> ToolCall:
    """The customer's `end_call`, as a customer that is not a model (a script, a person) makes it."""
    arguments = json.dumps({"reason": reason or DEFAULT_END_REASON}, ensure_ascii=False)
    return ToolCall(
        id=f"call_{uuid.uuid4().hex[:24]}",
        function=FunctionCall(name=END_CALL_TOOL, arguments=arguments),
    )


class Customer(Protocol):
    """The client side of a conversation as the driver (`engines.driver`) talks to it: the
    simulated customer, a scripted one (`engines.scripted_customer`) or a person (`chat`)."""

    def say_first(self, text: str) -> ClientReply:
        """The scenario's opening line (`client_greeting`), said before the bot speaks."""
        ...

    async def reply(self, agent_text: str) -> ClientReply:
        """Hear the agents' words of an exchange and answer them (or hang up)."""
        ...


@dataclass(frozen=True)
class CustomerSeat:
    """What a customer built in place of the scenario's own is given (`run_with_customer`)."""

    variables: Mapping[str, Any]
    """The conversation's prepared variables (what the prompts were rendered with)."""
    history: list[HistoryEntry]
    """The conversation's history as it grows (read it, never change it)."""
    scenario_customer: Customer
    """The customer the scenario itself would have (simulated, or scripted)."""
    can_take_back: bool
    """Whether a `take_back` reply is honoured (the engine's bot keeps checkpoints)."""


#: Builds the customer of a conversation from its seat (`ContractEngine.run_with_customer`).
CustomerFactory = Callable[[CustomerSeat], Customer]


class SimulatedClient:
    """The customer of one conversation; its model calls count against the session."""

    def __init__(
        self, prompt: str, endpoint: OpenAIWrapper, session_id: str, *, seed: int | None = None
    ) -> None:
        self._endpoint = endpoint
        self._session_id = session_id
        self._seed = seed
        self._context: list[dict[str, Any]] = [{"role": "system", "content": prompt}]

    @property
    def context(self) -> list[dict[str, Any]]:
        """The customer's chat context so far (a copy)."""
        return [dict(message) for message in self._context]

    def say_first(self, text: str) -> ClientReply:
        """The scenario's opening line, spoken without asking the model."""
        self._context.append({"role": "assistant", "content": text})
        return ClientReply(text=text)

    def remember(self, agent_text: str, said: str) -> None:
        """Take in an exchange someone else spoke for this customer (a script's line), so
        that it answers later as one who heard the agents and said `said`."""
        self._context.append({"role": "user", "content": agent_text})
        self._context.append({"role": "assistant", "content": said})

    async def reply(self, agent_text: str) -> ClientReply:
        """Hear the agents' words and answer them."""
        self._context.append({"role": "user", "content": agent_text})
        with speaking_as(CLIENT_ROLE):
            reply, _ = await self._endpoint.chat_completion(
                list(self._context), self._session_id, seed=self._seed, tools=_CUSTOMER_TOOLS
            )
        calls = reply_tool_calls(reply)
        if calls:
            # The only tool on offer is end_call; any other call is taken as hanging up too,
            # rather than inventing words for the customer.
            call = next((c for c in calls if c.function.name == END_CALL_TOOL), None)
            if call is None:
                call = ToolCall(
                    id=calls[0].id, function=FunctionCall(name=END_CALL_TOOL, arguments="{}")
                )
            return ClientReply(text=reply_text(reply), end_call=call)
        text = reply_text(reply)
        self._context.append({"role": "assistant", "content": text})
        return ClientReply(text=text)
