"""`AutogenConversationEngine`: the legacy contract, with the bot run as an AutoGen Swarm.

The shared driver (`engines.driver`) runs the conversation with the shared simulated customer;
this module supplies the bot, `SwarmBot`: tools bound to the session, a Swarm built from the
formatted spec, and one `Swarm.run_stream` per exchange, resumed with a `HandoffMessage` from
the client to the agent that spoke last.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Mapping
from typing import Any, cast

import openai
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    HandoffMessage,
    ModelClientStreamingChunkEvent,
    TextMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
)
from autogen_agentchat.teams import Swarm
from autogen_core import CancellationToken
from autogen_core.models import RequestUsage
from autogen_core.tools import BaseTool
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from conversation_engine.core._deadline import CANCEL_GRACE_SECONDS, cancel_and_wait
from conversation_engine.core.contract import CLIENT_SPEAKER, END_CALL_TOOL, HistoryEntry
from conversation_engine.core.outcome import ConversationOutcome
from conversation_engine.engines.autogen._quiet_runtime import install as quiet_runtime
from conversation_engine.engines.autogen.adapter import ConversationAdapter
from conversation_engine.engines.autogen.mas_factory import (
    MODEL_CALL_CAP_REASON,
    TERMINATE_WORD,
    AutogenMASFactory,
)
from conversation_engine.engines.autogen.model_client import (
    EndpointModelClient,
    autogen_model_client,
)
from conversation_engine.engines.autogen.naming import autogen_name
from conversation_engine.engines.autogen.tool_factory import AutogenToolFactory
from conversation_engine.engines.base import ContractEngine
from conversation_engine.engines.bot import BotTurn
from conversation_engine.inputs.specs import PromptSpec
from conversation_engine.llm.rate_limit import RetryAfterTooLongError
from conversation_engine.observability import events

logger = logging.getLogger(__name__)


def silence_handled_autogen_warnings() -> None:
    """Ignore the warnings AutoGen's OpenAI client prints about replies the engine handles.

    It warns on stderr, once per distinct reply, about tool calls whose arguments are null
    (`completion_check.tool_call_arguments` reads them as `{}`) and about a finish reason that
    does not match the tool calls (the engine goes by the tool calls). Installed on import.
    """
    warnings.filterwarnings("ignore", message="Tool call function arguments field is not a string")
    warnings.filterwarnings("ignore", message="Finish reason mismatch")


silence_handled_autogen_warnings()

AutogenMessage = BaseAgentEvent | BaseChatMessage

#: Model errors after which one more attempt from the last checkpoint is worth it.
TRANSIENT_MODEL_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
    openai.RateLimitError,
)


class AutogenConversationEngine(ContractEngine):
    """Drop-in replacement for the legacy `ConversationEngine`, running the bot as a Swarm.

    Construction loads and validates the prompt spec (a bad spec raises `SpecError` at once).
    One engine serves any number of concurrent conversations: all per-conversation state
    (team, agents, model client, tools, client) is built fresh for each.

    Options: those of every engine (`ContractEngine`), and `swarm_retries`: extra attempts
    after a transient model error, each on a team rebuilt from the last checkpoint.
    """

    def __init__(
        self,
        openai_wrapper: Any,
        prompt_spec_name: str = "default_prompts",
        *,
        swarm_retries: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(openai_wrapper, prompt_spec_name, **options)
        self.swarm_retries = swarm_retries
        # No event payloads, spans or span attributes while nobody listens (_quiet_runtime).
        quiet_runtime()

    def _new_bot(self, spec: PromptSpec, outcome: ConversationOutcome, *, basic: bool) -> SwarmBot:
        return SwarmBot(self, spec, outcome, basic=basic)


class SwarmBot:
    """One conversation's team and the messages of its exchange in progress. Never shared."""

    def __init__(
        self,
        engine: AutogenConversationEngine,
        spec: PromptSpec,
        outcome: ConversationOutcome,
        *,
        basic: bool,
    ) -> None:
        self.spec = spec
        self.session_id = outcome.session_id
        self.basic = basic
        self.retries = engine.swarm_retries
        self.endpoint = engine.openai
        self.model_client: EndpointModelClient = autogen_model_client(
            engine.openai, seed=outcome.seed
        )
        self.factory = AutogenMASFactory(
            outcome.session_id, max_internal_messages=engine.settings.MAX_INTERNAL_MESSAGES
        )
        tool_names = sorted(
            {name for agent_id in spec.service_agent_ids for name in spec.agents[agent_id].tools}
        )
        self.tools: list[BaseTool] = (
            []
            if basic
            else AutogenToolFactory(outcome.session_id, engine.tool_backend).get_tools_for_agent(
                tool_names
            )
        )
        agent_ids = [spec.entry_agent_id] if basic else spec.service_agent_ids
        self.agent_ids = {autogen_name(spec, a): a for a in agent_ids}
        """AutoGen agent names to the spec's agent ids."""
        self.adapter = ConversationAdapter(self.agent_ids, basic=basic)
        self.team = self._build_team()
        self.checkpoint: Mapping[str, Any] | None = None
        self.messages: list[AutogenMessage] = []
        """The messages of the exchange in progress, kept as they arrive."""
        self.failed_attempts: list[AutogenMessage] = []
        """The messages of this exchange's attempts that failed: their tool calls ran."""
        self.turn = 0
        self.failed = False
        """A run raised, so the team must be rebuilt before it runs again."""
        self.last_agent = autogen_name(spec, spec.entry_agent_id)

    def _build_team(self) -> Swarm:
        return self.factory.create_swarm_team(
            self.spec, self.tools, self.model_client, basic=self.basic
        )

    async def respond(self, heard: str | None, *, turn: int) -> BotTurn:
        """One exchange: a Swarm run on the customer's words (None: the entry agent opens)."""
        self.turn = turn
        self.messages = []
        self.failed_attempts = []
        task = None if heard is None else self._client_message(heard)
        run, capped = await self._agent_turn(task)
        return BotTurn(
            self.adapter.agent_entries(run, turn),
            self.adapter.spoken_text(run),
            ended_call=self._agent_ended_call(run),
            capped=capped,
        )

    async def save_state(self) -> object:
        """The team's state (AutoGen's `save_state`) and the agent the customer speaks to."""
        return (await self.team.save_state(), self.last_agent)

    async def load_state(self, state: object) -> None:
        """Return to a state `save_state` gave, on a team rebuilt from it (a team is never
        reused across a rewind: AutoGen keeps per-run bookkeeping its state does not hold)."""
        team_state, last_agent = cast(tuple[Mapping[str, Any], str], state)
        self.checkpoint = team_state
        self.last_agent = last_agent
        await self._rebuild()

    def unfinished(self) -> list[HistoryEntry]:
        """The interrupted exchange's messages as history (tool calls without results marked),
        those of every attempt: a retry starts from the checkpoint, but the tools an earlier
        attempt called did run (a cart line added is there), so the partial history says so."""
        messages = [*self.failed_attempts, *self.messages]
        self.messages, self.failed_attempts = [], []
        return self.adapter.agent_entries(messages, self.turn)

    def _client_message(self, text: str) -> HandoffMessage:
        return HandoffMessage(source=CLIENT_SPEAKER, target=self.last_agent, content=text)

    async def _agent_turn(self, task: HandoffMessage | None) -> tuple[list[AutogenMessage], bool]:
        """One Swarm run and whether the cap stopped it; a transient model error is retried."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            retry=retry_if_exception(self._is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return await retrying(self._run_once, task)

    async def _run_once(self, task: HandoffMessage | None) -> tuple[list[AutogenMessage], bool]:
        """One attempt; messages are kept as they arrive, so a failure keeps what was said."""
        if self.failed:
            # AutoGen 0.7.5 leaves a team whose agent raised unusable: never run it again.
            await self._rebuild()
        self.failed_attempts.extend(self.messages)  # empty unless an attempt failed before
        self.messages = []
        self.model_client.last_error = None
        try:
            stop_reason = await self._stream_run(task)
        except Exception:
            self.failed = True
            raise
        run = self.messages
        capped = self._after_run(run, stop_reason)
        if self.retries:
            self.checkpoint = await self.team.save_state()
        return run, capped

    def _is_transient(self, error: BaseException) -> bool:
        """Whether the run failed on a model error worth another attempt (decided by type)."""
        cause = self.model_client.last_error or error
        # A 429 whose Retry-After is longer than we wait would only be refused again now.
        too_long = isinstance(cause, RetryAfterTooLongError)
        return isinstance(cause, TRANSIENT_MODEL_ERRORS) and not too_long

    def _log_retry(self, state: RetryCallState) -> None:
        cause = self.model_client.last_error
        logger.info("Retrying turn of %s after %s", self.session_id, type(cause).__name__)

    async def _stream_run(self, task: HandoffMessage | None) -> str:
        """Run the team once, appending its messages; cancellable mid model or tool call.

        Cancelling a task that iterates `run_stream` is not enough: the stream's cleanup
        waits for the team's runtime to go idle, i.e. for the in-flight model call to end.
        So the stream is consumed in its own task, and on cancellation the run's
        `CancellationToken` is cancelled first, which aborts the call inside the runtime.
        """
        token = CancellationToken()
        stop_reason: list[str] = []

        async def consume() -> None:
            async for item in self.team.run_stream(task=task, cancellation_token=token):
                if isinstance(item, TaskResult):
                    stop_reason.append(item.stop_reason or "")
                elif not isinstance(item, ModelClientStreamingChunkEvent):
                    self.messages.append(item)
                    if item.models_usage is not None:
                        self._count(item.models_usage)
                    if events.observed():
                        self._report(item)

        consumer = asyncio.ensure_future(consume())
        try:
            await asyncio.shield(consumer)
        except asyncio.CancelledError:
            token.cancel()
            # The wait for the run to wind down is bounded: AutoGen's cleanup waits for its
            # runtime to go idle, which a handler stuck in the team never lets happen. When
            # cancelling the stream is not enough, the runtime's own tasks are cancelled.
            await cancel_and_wait(
                consumer,
                CANCEL_GRACE_SECONDS / 2,
                what=f"Swarm run of {self.session_id}",
                on_stuck=self._cancel_runtime_tasks,
            )
            raise
        return stop_reason[0] if stop_reason else ""

    def _report(self, message: AutogenMessage) -> None:
        """Tell observers what an agent said or whom it handed over to, as the legacy bot does
        (tool calls are reported where they run, in `SessionTools`)."""
        agent = self.agent_ids.get(message.source)
        if agent is None:
            return  # the customer's words: the driver reports those
        if isinstance(message, HandoffMessage):
            target = self.agent_ids.get(message.target, message.target)
            events.emit(events.Handoff(source=agent, target=target, role=agent))
        elif isinstance(message, TextMessage | ThoughtEvent) and message.content.strip():
            events.emit(events.AgentMessage(agent=agent, text=message.content.strip(), role=agent))

    def _cancel_runtime_tasks(self) -> None:
        """Cancel the message handlers AutoGen's embedded runtime has in flight for this team.

        `_runtime._background_tasks` is private to AutoGen 0.7.5 (pinned); without it the
        team's handlers would stay pending after the conversation ended.
        """
        runtime = getattr(self.team, "_runtime", None)
        for task in list(getattr(runtime, "_background_tasks", ())):
            task.cancel()
            # Nobody awaits these handlers any more: their outcome (a cancellation, or an
            # error AutoGen raises while winding down) is ours to retrieve, not to print.
            task.add_done_callback(_retrieve_outcome)

    async def _rebuild(self) -> None:
        self.failed = False
        self.team = self._build_team()
        if self.checkpoint is not None:
            await self.team.load_state(self.checkpoint)

    def _after_run(self, run: list[AutogenMessage], stop_reason: str) -> bool:
        """Follow the turn to the agent that spoke last; True when the cap stopped the run."""
        self.last_agent = self.adapter.last_agent(run, self.last_agent)
        if stop_reason.startswith(MODEL_CALL_CAP_REASON) and not (
            run and isinstance(run[-1], TextMessage)
        ):
            # The per-turn cap stopped an agent mid tool loop: the turn is recorded as it
            # stands (its tool calls, no text) and the conversation goes on.
            logger.warning(
                "Session %s: internal message cap hit (%s)", self.session_id, stop_reason
            )
            return True
        return False

    @staticmethod
    def _agent_ended_call(run: list[AutogenMessage]) -> bool:
        for message in run:
            if message.source == CLIENT_SPEAKER:
                continue
            if isinstance(message, ToolCallExecutionEvent) and any(
                result.name == END_CALL_TOOL and not result.is_error for result in message.content
            ):
                return True
            if isinstance(message, TextMessage) and TERMINATE_WORD in message.content:
                return True
        return False

    def _count(self, usage: RequestUsage) -> None:
        # Counted against the session on the endpoint, where the customer's calls count too.
        self.endpoint.record_usage(self.session_id, usage.prompt_tokens, usage.completion_tokens)


def _retrieve_outcome(task: asyncio.Future[Any]) -> None:
    """Mark a finished task's exception as retrieved (asyncio logs it otherwise)."""
    if not task.cancelled():
        task.exception()
