"""`LegacyConversationEngine`: the legacy engine's agent side on the plain `openai` SDK.

It is the A/B baseline for the AutoGen engine. Both share the prompt specs, scenario
variables, session id, tool catalogue and backends, the model endpoint (`OpenAIWrapper`), the
exchange loop and simulated customer (`engines.driver`, `engines.customer`) and the way a
result is built (`ConversationOutcome`); only the bot differs. Here it is the legacy bot:
per-agent chat contexts, explicit tool execution and `handoff_<agent>` tools that switch the
current agent.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from conversation_engine.core.call_context import speaking_as
from conversation_engine.core.contract import (
    AGENT_SPEAKER_PREFIX,
    BASIC_AGENT_SPEAKER,
    END_CALL_TOOL,
    HistoryEntry,
    ToolCall,
    safe_parse_tool_result,
)
from conversation_engine.core.outcome import ConversationOutcome, now_iso
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.bot import BotTurn
from conversation_engine.inputs.specs import PromptSpec
from conversation_engine.llm.endpoint import reply_text, reply_tool_calls
from conversation_engine.observability import events
from conversation_engine.tools.catalogue import (
    handoff_not_executed,
    handoff_result,
    handoff_target,
)
from conversation_engine.tools.session import SessionTools

logger = logging.getLogger(__name__)

#: The legacy instruction a receiving agent gets after the client's last message.
TAKEOVER_INSTRUCTION = (
    "You are now taking over this conversation. "
    "The previous agent has transferred the customer to you."
)


class LegacyConversationEngine(ContractEngine):
    """The legacy `ConversationEngine`, re-implemented as a correct, efficient baseline.

    Same constructor and methods as the legacy class (and the same keyword options as
    `AutogenConversationEngine`: `tool_backend`, `client_data`, `settings`). Construction
    loads and validates the prompt spec. One instance serves any number of concurrent
    conversations: all per-conversation state lives in a fresh `LegacyBot`.

    Conversation flow (legacy, section 1.4 of the reference): the entry agent speaks first
    unless the scenario gives `client_greeting`/`GREETING`, in which case the client opens
    with that line. Each agent has its own context (its formatted system prompt and the
    conversation as it saw it) and its spec tools plus `handoff_<target>` schemas. Tool calls
    are executed and followed by another completion for the spoken text; `handoff_<X>` records
    the legacy `handoff_completed` result and the new agent, whose context is rebuilt from its
    system prompt, the client's last message and the legacy takeover instruction, replies in
    the same exchange. The client hears the agents' words as `user` messages and may call
    `end_call`.

    Deliberate deviations from the legacy engine's defects:

    * The timeout is a hard wall-clock bound (`asyncio.timeout`) that cancels the in-flight
      model or tool call and is reported as status `timeout` with the partial history; legacy
      checked it between turns and reported `completed`.
    * `end_reason` says why a completed conversation stopped (`client_end_call`,
      `agent_end_call`, `max_turns`); legacy reported `completed` for all of them silently.
    * Basic mode ends when the client calls `end_call` (recorded with the legacy marker
      content, without `tool_calls`), never by matching phrases such as "спасибо" in the
      client's text or "end_call" in the agent's text.
    * Prompts are formatted strictly (`PromptSpec.format`): a missing variable fails the
      conversation with a `TemplateVariableError` naming it, instead of rendering `{{ VAR }}`.
    * Every failure keeps the history produced so far (legacy kept it only for geographic
      blocks) and nothing but cancellation escapes `run_conversation*`.
    * Tool calls are bounded: at most `MAX_INTERNAL_MESSAGES` model calls per exchange on the
      agent side (handoffs included), after which the turn is recorded as it stands and the
      conversation goes on; legacy made exactly one follow-up completion and dropped any
      further tool calls.
    * An agent can only use the tools it is offered (a call to another tool gets an error
      result, as in AutoGen). A handoff is valid only along the spec's wiring (a target in
      the agent's `handoffs`); anything else gets the legacy `Invalid handoff target: X`
      result, where legacy accepted any agent id of the spec, `client` and `evaluator`
      included. A second handoff in the same reply is refused with an error result.
    * The handoff context omits the legacy "Previous conversation context" summary, and the
      scenario `SEED` is sent on every call (legacy read it but the AutoGen era dropped it).
    * The client hears all the agents' words of an exchange (text said alongside tool calls
      too, joined), as the AutoGen engine's client does, so an A/B difference is not a
      difference of what the customer heard.
    """

    @functools.cached_property
    def tool_schemas(self) -> dict[str, list[dict[str, Any]]]:
        """Each service agent's tool and handoff schemas, the same for every conversation
        (they depend on the spec's tools and handoffs only, never on the variables)."""
        spec = self.prompt_specification
        return {
            agent_id: spec.get_tool_schemas(agent_id, self.catalogue)
            for agent_id in spec.service_agent_ids
        }

    def _new_bot(self, spec: PromptSpec, outcome: ConversationOutcome, *, basic: bool) -> LegacyBot:
        return LegacyBot(self, spec, outcome, basic=basic)


@dataclass
class _AgentEntry:
    """The entry of one agent's stretch of speech, built while it speaks."""

    agent_id: str
    turn: int
    content: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)


@dataclass
class _ToolOutcome:
    """What executing one reply's tool calls decided."""

    handoff_to: str | None = None
    ended_call: bool = False


class LegacyBot:
    """One conversation's agent contexts and tools. Never shared, never reused."""

    def __init__(
        self,
        engine: LegacyConversationEngine,
        spec: PromptSpec,
        outcome: ConversationOutcome,
        *,
        basic: bool,
    ) -> None:
        self.openai = engine.openai
        self.spec = spec
        self.basic = basic
        self.seed = outcome.seed
        self.session_id = outcome.session_id
        self.max_calls = engine.settings.MAX_INTERNAL_MESSAGES
        self.tool_schemas = {} if basic else engine.tool_schemas
        self.offered = {
            agent_id: frozenset(schema["function"]["name"] for schema in schemas)
            for agent_id, schemas in self.tool_schemas.items()
        }
        self.tools = SessionTools(outcome.session_id, engine.tool_backend)
        self.service_agents = frozenset(spec.service_agent_ids)
        self.current = spec.entry_agent_id
        self.contexts: dict[str, list[dict[str, Any]]] = {
            self.current: [self._system(self.current)]
        }
        self.last_client_text: str | None = None
        self.entries: list[HistoryEntry] = []
        """The entries of the exchange in progress, closed ones only."""
        self.open: _AgentEntry | None = None
        """The entry the current agent is still speaking into."""

    def _system(self, agent_id: str) -> dict[str, Any]:
        return {"role": "system", "content": self.spec.agents[agent_id].prompt}

    async def respond(self, heard: str | None, *, turn: int) -> BotTurn:
        """The agent side of one exchange, answering `heard` (None: the bot opens)."""
        self.entries = []
        if heard is not None:
            self.last_client_text = heard
            self.contexts[self.current].append({"role": "user", "content": heard})
        spoken: list[str] = []
        entry = self.open = _AgentEntry(self.current, turn)
        for _ in range(self.max_calls):
            agent_id = entry.agent_id
            with speaking_as(agent_id):
                reply = await self._complete(
                    self.contexts[agent_id], self.tool_schemas.get(agent_id)
                )
            calls = reply_tool_calls(reply)
            text = reply_text(reply)
            if text.strip():
                entry.content.append(text.strip())
                spoken.append(text.strip())
                events.say(events.AgentMessage, agent=agent_id, text=text.strip())
            if not calls:
                self.contexts[agent_id].append({"role": "assistant", "content": text})
                return self._turn(entry, spoken)
            self.contexts[agent_id].append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [call.model_dump() for call in calls],
                }
            )
            result = await self._execute(entry, calls)
            if result.ended_call:
                return self._turn(entry, spoken, ended_call=True)
            if result.handoff_to is not None:
                self._close(entry)
                self._take_over(result.handoff_to)
                entry = self.open = _AgentEntry(result.handoff_to, turn)
        # The bound was hit mid tool loop: record the turn as it stands and carry on.
        logger.warning(
            "Session %s: %d model calls in one agent turn without a reply",
            self.session_id,
            self.max_calls,
        )
        return self._turn(entry, spoken, capped=True)

    async def save_state(self) -> object:
        """The agents' contexts and the current agent, between exchanges (a deep copy)."""
        return copy.deepcopy((self.contexts, self.current, self.last_client_text))

    async def load_state(self, state: object) -> None:
        """Return to a state `save_state` gave (copied again, so it can be loaded twice)."""
        saved = cast(tuple[dict[str, list[dict[str, Any]]], str, str | None], state)
        self.contexts, self.current, self.last_client_text = copy.deepcopy(saved)

    def unfinished(self) -> list[HistoryEntry]:
        """What an interrupted exchange had produced: its closed entries, and the open one if
        the agent had said or called anything (its tool calls ran, so they are history)."""
        if self.open is not None and (self.open.content or self.open.calls):
            self._close(self.open)
        self.open = None
        entries, self.entries = self.entries, []
        return entries

    def _turn(
        self,
        entry: _AgentEntry,
        spoken: list[str],
        *,
        ended_call: bool = False,
        capped: bool = False,
    ) -> BotTurn:
        self._close(entry)
        self.open = None
        entries, self.entries = self.entries, []
        return BotTurn(entries, " ".join(spoken), ended_call=ended_call, capped=capped)

    async def _complete(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> Any:
        reply, _ = await self.openai.chat_completion(
            list(messages), self.session_id, seed=self.seed, tools=tools or None
        )
        return reply

    async def _execute(self, entry: _AgentEntry, calls: list[ToolCall]) -> _ToolOutcome:
        outcome = _ToolOutcome()
        context = self.contexts[entry.agent_id]
        for call in calls:
            name = call.function.name
            result: Any
            offered = self.offered.get(entry.agent_id, frozenset())
            if (target := handoff_target(name)) is not None:
                if name not in offered or target not in self.service_agents:
                    result = {"error": f"Invalid handoff target: {target}"}
                elif outcome.handoff_to is not None:
                    result = handoff_not_executed(outcome.handoff_to)
                else:
                    result = handoff_result(target)
                    outcome.handoff_to = target
                    if events.observed():
                        events.emit(events.Handoff(source=entry.agent_id, target=target))
            elif name not in offered:
                result = {"error": f"Tool '{name}' is not available to agent '{entry.agent_id}'."}
            else:
                with speaking_as(entry.agent_id):  # the tool call is this agent's (tracing)
                    result = await self.tools.execute(name, call.function.arguments)
                if name == END_CALL_TOOL:
                    outcome.ended_call = True
            content = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
            context.append({"role": "tool", "tool_call_id": call.id, "content": content})
            entry.calls.append(call)
            entry.results.append(safe_parse_tool_result(content))
        return outcome

    def _take_over(self, target: str) -> None:
        """Legacy handoff: the new agent starts from its prompt, the client's last words and
        the takeover instruction (its earlier context, if any, is not reused)."""
        context = [self._system(target)]
        if self.last_client_text is not None:
            context.append({"role": "user", "content": self.last_client_text})
        context.append({"role": "user", "content": TAKEOVER_INSTRUCTION})
        self.contexts[target] = context
        self.current = target

    def _close(self, entry: _AgentEntry) -> None:
        speaker = BASIC_AGENT_SPEAKER if self.basic else f"{AGENT_SPEAKER_PREFIX}{entry.agent_id}"
        has_tools = bool(entry.calls)
        self.entries.append(
            HistoryEntry(
                turn=entry.turn,
                speaker=speaker,
                content=" ".join(entry.content),
                timestamp=now_iso(),
                tool_calls=list(entry.calls) if has_tools else None,
                tool_results=list(entry.results) if has_tools else None,
            )
        )
