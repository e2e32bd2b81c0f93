"""`ContractEngine`: the contract's constructor, its two methods and the run skeleton.

An engine supplies only its bot (`_new_bot`). The constructor (endpoint, settings, spec,
tools, client data), the scenario handling, the simulated customer and the exchange loop
(`engines.driver`), the hard deadline, the usage count and the rule that every failure
becomes a result live here once, so every engine keeps them alike.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from conversation_engine.core._deadline import bounded
from conversation_engine.core.call_context import (
    ConversationRef,
    current_conversation,
    in_conversation,
)
from conversation_engine.core.contract import Usage
from conversation_engine.core.outcome import ConversationOutcome, seed_of, unwrap_error
from conversation_engine.core.settings import Settings, get_settings
from conversation_engine.engines.bot import Bot, RewindableBot
from conversation_engine.engines.customer import (
    Customer,
    CustomerFactory,
    CustomerSeat,
    SimulatedClient,
)
from conversation_engine.engines.driver import ConversationDriver
from conversation_engine.engines.host import HostService, log_spec_source, warn_emulated_tools
from conversation_engine.engines.scripted_customer import ScriptedCustomer
from conversation_engine.inputs.scenario import (
    IN_FLIGHT_SESSIONS,
    Scenario,
    default_client_data,
    parse_scenario,
    prepare_variables,
)
from conversation_engine.inputs.specs import (
    CLIENT_AGENT,
    PromptSpec,
    load_prompt_spec,
    resolve_spec_path,
)
from conversation_engine.llm.endpoint import OpenAIWrapper, as_blocked_error
from conversation_engine.observability import events
from conversation_engine.tools.base import ToolBackend
from conversation_engine.tools.catalogue import ToolCatalogue
from conversation_engine.tools.declared import with_declared_tools
from conversation_engine.tools.default import default_tool_backend
from conversation_engine.tools.session import SessionTools

logger = logging.getLogger(__name__)

# The customer `run_with_customer` asked for; a context variable rather than a parameter of
# `_run`, so the run skeleton stays one path whoever the customer is.
_CUSTOMER_FACTORY: ContextVar[CustomerFactory | None] = ContextVar(
    "conversation_engine_customer_factory", default=None
)


def greeting_of(variables: Mapping[str, Any]) -> str | None:
    """The client's opening line when the scenario gives one (`client_greeting`/`GREETING`)."""
    text = variables.get("client_greeting") or variables.get("GREETING")
    return str(text) if text else None


class ContractEngine(ABC):
    """Base of the shipped engines: `run_conversation` and `run_conversation_with_tools`.

    `openai_wrapper` is our `OpenAIWrapper` or the host service's own wrapper, which is read,
    never changed (see `conversation_engine.engines.host`): the engine then talks to the host's
    endpoint, logs every model call's tokens to the host's logger, honours the host's
    `Config`, and loads specs from the host's prompts directory only. Construction loads and
    validates the spec (a bad one raises `SpecError` at once) and is cheap enough to do per
    scenario; nothing needs closing.

    Options (every engine): `tool_backend` (default: the emulated shop, or the HTTP tool API
    when `TOOLS_URL` is set; the spec's `python_tools` are served in front of it, whichever
    it is; the engine's own shop forgets a session's cart when its conversation ends, so
    pass a shop to read carts afterwards), `client_data` (the client-data source used for enrichment),
    `settings`, and for A/B comparisons `customer_endpoint` and `customer_spec`: the endpoint
    the simulated customer talks through and the spec whose `client` prompt it plays, so that
    two sides with different models or specs still face the same customer.
    """

    def __init__(
        self,
        openai_wrapper: Any,
        prompt_spec_name: str = "default_prompts",
        *,
        tool_backend: ToolBackend | None = None,
        client_data: Any = None,
        settings: Settings | None = None,
        customer_endpoint: OpenAIWrapper | None = None,
        customer_spec: str | PromptSpec | None = None,
    ) -> None:
        host = HostService.of(openai_wrapper)
        base = settings or get_settings()
        self.openai_wrapper = openai_wrapper
        """The wrapper as the caller passed it."""
        self.settings: Settings = base if host is None else host.settings(base)
        self.openai: OpenAIWrapper = openai_wrapper if host is None else host.endpoint()
        """The endpoint every model call of this engine goes through."""
        self.prompt_spec_name = prompt_spec_name
        if tool_backend is None and host is not None and not self.settings.TOOLS_URL:
            warn_emulated_tools()
        backend = tool_backend or default_tool_backend(
            self.settings, self.openai.service_http_client
        )
        # A backend the engine made itself is read by nobody else once a conversation ended:
        # what it keeps per session (the emulated shop's carts) goes then, or a long batch
        # would hold every conversation's cart to the end.
        self._forget_session: Callable[[str], object] | None = (
            getattr(backend, "reset", None) if tool_backend is None else None
        )
        if host is not None and not _names_a_file(prompt_spec_name):
            spec_path = host.resolve_spec(prompt_spec_name, base)
        else:
            spec_path = resolve_spec_path(prompt_spec_name, self.settings.PROMPTS_DIR)
        catalogue = SessionTools("validation", backend).catalogue
        # Validated against the backend's tools plus the spec's own python_tools ...
        self.prompt_specification: PromptSpec = load_prompt_spec(
            spec_path, tool_names=catalogue.names
        )
        log_spec_source(prompt_spec_name, spec_path)
        # ... which are served in-process in front of that backend (tools/declared.py).
        self.tool_backend: ToolBackend = with_declared_tools(
            backend, self.prompt_specification.declared_python_tools
        )
        self.catalogue: ToolCatalogue = (
            catalogue
            if self.tool_backend is backend
            else SessionTools("validation", self.tool_backend).catalogue
        )
        self.client_data = client_data or default_client_data(
            self.settings, self.openai.service_http_client
        )
        self.customer_openai: OpenAIWrapper = customer_endpoint or self.openai
        """The endpoint the simulated customer talks through (an A/B comparison gives both
        sides the same one, whatever model each side's bot uses)."""
        if isinstance(customer_spec, str):
            customer_spec = load_prompt_spec(
                resolve_spec_path(customer_spec, self.settings.PROMPTS_DIR),
                tool_names=self.catalogue.names,
            )
        self.customer_specification: PromptSpec = customer_spec or self.prompt_specification
        """The spec whose `client` prompt the customer plays (by default this engine's)."""

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

    async def run_with_customer(
        self,
        scenario: dict[str, Any],
        customer: CustomerFactory,
        *,
        basic: bool = False,
        max_turns: int | None = None,
        timeout_sec: float | None = None,
    ) -> dict[str, Any]:
        """One conversation whose customer `customer(seat)` builds, in place of the scenario's
        own (a person at a terminal: `conversation-engine chat`); the result is the usual one.

        When the engine's bot can save its state (`RewindableBot`: both shipped engines), the
        driver keeps a checkpoint before each of the customer's answers, so the customer may
        take lines back (`ClientReply.take_back`).
        """
        token = _CUSTOMER_FACTORY.set(customer)
        try:
            return await self._run(scenario, max_turns, timeout_sec, basic=basic)
        finally:
            _CUSTOMER_FACTORY.reset(token)

    @abstractmethod
    def _new_bot(self, spec: PromptSpec, outcome: ConversationOutcome, *, basic: bool) -> Bot:
        """A fresh bot for the formatted `spec`, for the session and seed of `outcome`.

        Its model calls must count against the session on `self.openai` (`chat_completion`
        does; other clients call `record_usage`), as the customer's do.
        """

    async def _run(
        self, scenario: Any, max_turns: int | None, timeout_sec: float | None, *, basic: bool
    ) -> dict[str, Any]:
        name = scenario.get("name") if isinstance(scenario, Mapping) else None
        outcome = ConversationOutcome(
            scenario_name=str(name or "unknown"), tools_used=not basic, engine=type(self).__name__
        )
        # A batch says which conversation this is (trial, side); a lone call is its own.
        ref = current_conversation() or ConversationRef(scenario=outcome.scenario_name)
        with in_conversation(ref):
            play = self._play(scenario, max_turns, timeout_sec, outcome, ref, basic=basic)
            if not events.observed():
                return await play
            return await self._observed(play, basic=basic)

    async def _observed(self, play: Awaitable[dict[str, Any]], *, basic: bool) -> dict[str, Any]:
        """The conversation `play` (a `_play`), framed by its start and end events (tracing,
        `--follow`)."""
        events.emit(
            events.ConversationStarted(
                engine=type(self).__name__, spec=self.prompt_spec_name, tools=not basic
            )
        )
        result: dict[str, Any] = {"status": "cancelled"}
        try:
            result = await play
            return result
        finally:
            events.emit(
                events.ConversationEnded(
                    status=str(result.get("status")),
                    end_reason=result.get("end_reason"),
                    error_type=result.get("error_type"),
                    turns=int(result.get("total_turns") or 0),
                )
            )

    async def _play(
        self,
        scenario: Any,
        max_turns: int | None,
        timeout_sec: float | None,
        outcome: ConversationOutcome,
        ref: ConversationRef,
        *,
        basic: bool,
    ) -> dict[str, Any]:
        turns_limit = self.settings.resolve_max_turns(max_turns)
        timeout = self.settings.resolve_timeout(timeout_sec)
        driver: ConversationDriver | None = None
        deadline = asyncio.timeout(timeout)
        held: str | None = None  # this conversation's session id while it runs
        try:
            async with deadline:
                parsed = parse_scenario(scenario)
                variables, session_id = await prepare_variables(
                    parsed, client_data=self.client_data
                )
                # Never share a session (its cart, its usage): a duplicate in flight is refused.
                outcome.session_id = ref.session_id = held = IN_FLIGHT_SESSIONS.claim(session_id)
                outcome.seed = seed_of(variables)
                spec = self.prompt_specification.format(
                    variables, self.prompt_specification.conversation_agent_ids
                )
                bot = self._new_bot(spec, outcome, basic=basic)
                customer, rewindable = self._new_customer(parsed, spec, variables, outcome, bot)
                driver = ConversationDriver(
                    bot,
                    customer,
                    outcome,
                    basic=basic,
                    greeting=greeting_of(variables),
                    rewindable=rewindable,
                )
                # Bounded even if the bot ignores its cancellation (deadline.py).
                await bounded(driver.play(turns_limit), what=f"conversation {held}")
                # Finished while the session is still held, so its usage is only ever its own.
                return self._finish(driver, outcome).completed()
        except Exception as error:  # every failure becomes a result; cancellation propagates
            if isinstance(error, TimeoutError) and deadline.expired():
                return self._finish(driver, outcome).timed_out(timeout)
            # A TimeoutError the deadline did not cause (a library's own) is a plain failure.
            blocked = as_blocked_error(error)
            logger.warning("Conversation %s failed: %s", outcome.session_id, unwrap_error(error)[0])
            context = {
                "max_turns": turns_limit,
                "timeout_sec": timeout,
                "spec_name": self.prompt_spec_name,
            }
            return self._finish(driver, outcome).failed(blocked or error, **context)
        finally:
            if held is not None:
                IN_FLIGHT_SESSIONS.release(held)
                if self._forget_session is not None:
                    self._forget_session(held)

    def _new_customer(
        self,
        scenario: Scenario,
        spec: PromptSpec,
        variables: Mapping[str, Any],
        outcome: ConversationOutcome,
        bot: Bot,
    ) -> tuple[Customer, bool]:
        """The conversation's customer, and whether the driver keeps checkpoints for it: the
        simulated customer, the scenario's script in front of it, or `run_with_customer`'s."""
        simulated = SimulatedClient(
            self._customer_prompt(spec, variables),
            self.customer_openai,
            outcome.session_id,
            seed=outcome.seed,
        )
        script = scenario.customer_script
        own: Customer = simulated if script is None else ScriptedCustomer(script, simulated)
        factory = _CUSTOMER_FACTORY.get()
        if factory is None:
            return own, False
        rewindable = isinstance(bot, RewindableBot)
        seat = CustomerSeat(variables, outcome.history, own, can_take_back=rewindable)
        return factory(seat), rewindable

    def _customer_prompt(self, spec: PromptSpec, variables: Mapping[str, Any]) -> str:
        """The customer's persona: the formatted `client` prompt of the customer spec."""
        if self.customer_specification is not self.prompt_specification:
            spec = self.customer_specification.format(variables, [CLIENT_AGENT])
        client = spec.client
        assert client is not None, "validated specs always have a client"
        return client.prompt

    def _finish(
        self, driver: ConversationDriver | None, outcome: ConversationOutcome
    ) -> ConversationOutcome:
        if driver is not None:
            driver.record_unfinished()
        endpoints = dict.fromkeys((self.openai, self.customer_openai))
        usage = Usage()
        for endpoint in endpoints:
            part = endpoint.pop_usage(outcome.session_id) if outcome.session_id else Usage()
            if not part.calls:
                continue  # nothing spent there (an unpriced endpoint unused costs nothing)
            # Each endpoint's tokens at its own model's price; unknown (None) if any of its
            # calls was (the simulated LLM, a model not in the price table), and then so is
            # the conversation's cost.
            if part.cost_usd is not None:
                part.cost_usd = endpoint.cost_of(part.prompt_tokens, part.completion_tokens)
            usage.merge(part)
        outcome.usage = usage
        return outcome


def _names_a_file(name: str) -> bool:
    """True when the spec is given as a path, which then needs no prompts directory."""
    return "/" in name or "\\" in name or Path(name).is_file()
