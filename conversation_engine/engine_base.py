"""`ContractEngine`: the contract's two methods and the run skeleton every engine shares.

An engine supplies only its conversation (`_new_conversation`) and what to copy from it onto
the outcome (`_record`); the scenario handling, the hard deadline and the rule that every
failure becomes a result live here once, so both engines keep them alike.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol

from conversation_engine.llm import OpenAIWrapper, as_blocked_error, estimate_cost
from conversation_engine.outcome import ConversationOutcome, seed_of, unwrap_error
from conversation_engine.scenario import parse_scenario, prepare_variables
from conversation_engine.settings import Settings
from conversation_engine.specs import PromptSpec

logger = logging.getLogger(__name__)


class Conversation(Protocol):
    """One conversation's state and loop, built fresh for each run."""

    async def play(self, turns_limit: int) -> None: ...


def greeting_of(variables: Mapping[str, Any]) -> str | None:
    """The client's opening line when the scenario gives one (`client_greeting`/`GREETING`)."""
    text = variables.get("client_greeting") or variables.get("GREETING")
    return str(text) if text else None


class ContractEngine(ABC):
    """Base of the shipped engines: `run_conversation` and `run_conversation_with_tools`."""

    settings: Settings
    openai: OpenAIWrapper
    prompt_spec_name: str
    prompt_specification: PromptSpec
    client_data: Any

    async def run_conversation(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        """Basic mode: the entry agent alone, no tools and no handoffs; speakers `agent`/`client`."""
        return await self._run(scenario, max_turns, timeout_sec, basic=True)

    async def run_conversation_with_tools(
        self, scenario: dict[str, Any], max_turns: int | None = None, timeout_sec: int | None = None
    ) -> dict[str, Any]:
        """Tools mode: the spec's agents, tools and handoffs; speakers `agent_<id>`/`client`."""
        return await self._run(scenario, max_turns, timeout_sec, basic=False)

    @abstractmethod
    def _new_conversation(
        self,
        spec: PromptSpec,
        outcome: ConversationOutcome,
        *,
        basic: bool,
        greeting: str | None,
    ) -> Conversation:
        """A fresh conversation for the formatted `spec`, reporting into `outcome`."""

    @abstractmethod
    def _record(self, conversation: Conversation | None, outcome: ConversationOutcome) -> None:
        """Copy what `conversation` produced (history, usage) onto `outcome`; may be partial."""

    async def _run(
        self, scenario: Any, max_turns: int | None, timeout_sec: float | None, *, basic: bool
    ) -> dict[str, Any]:
        turns_limit = self.settings.resolve_max_turns(max_turns)
        timeout = self.settings.resolve_timeout(timeout_sec)
        name = scenario.get("name") if isinstance(scenario, Mapping) else None
        outcome = ConversationOutcome(
            scenario_name=str(name or "unknown"), tools_used=not basic, engine=type(self).__name__
        )
        conversation: Conversation | None = None
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                parsed = parse_scenario(scenario)
                variables, outcome.session_id = await prepare_variables(
                    parsed, client_data=self.client_data
                )
                outcome.seed = seed_of(variables)
                spec = self.prompt_specification.format(variables)
                conversation = self._new_conversation(
                    spec, outcome, basic=basic, greeting=greeting_of(variables)
                )
                await conversation.play(turns_limit)
        except Exception as error:  # every failure becomes a result; cancellation propagates
            if isinstance(error, TimeoutError) and deadline.expired():
                return self._finish(conversation, outcome).timed_out(timeout)
            # A TimeoutError the deadline did not cause (a library's own) is a plain failure.
            blocked = as_blocked_error(error)
            logger.warning("Conversation %s failed: %s", outcome.session_id, unwrap_error(error)[0])
            context = {
                "max_turns": turns_limit,
                "timeout_sec": timeout,
                "spec_name": self.prompt_spec_name,
            }
            return self._finish(conversation, outcome).failed(blocked or error, **context)
        return self._finish(conversation, outcome).completed()

    def _finish(
        self, conversation: Conversation | None, outcome: ConversationOutcome
    ) -> ConversationOutcome:
        self._record(conversation, outcome)
        outcome.usage.cost_usd = estimate_cost(
            self.openai.model, outcome.usage.prompt_tokens, outcome.usage.completion_tokens
        )
        return outcome
