"""`AutogenConversationEngine`: the legacy contract, with the bot run as an AutoGen Swarm.

One conversation, end to end: the scenario's variables are enriched and its session id decided
once; the spec is formatted strictly; tools are bound to the session; a Swarm is built; then
the agent side (one `Swarm.run_stream` per exchange, resumed with a `HandoffMessage` from the
client to the agent that spoke last) and the simulated client (outside the team) take turns
until someone ends the call, `max_turns` exchanges are done, or the wall-clock bound expires.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Mapping
from typing import Any

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    HandoffMessage,
    ModelClientStreamingChunkEvent,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_agentchat.teams import Swarm
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, RequestUsage
from autogen_core.tools import BaseTool

from conversation_engine.autogen.adapter import ConversationAdapter
from conversation_engine.autogen.client import SimulatedClient
from conversation_engine.autogen.mas_factory import (
    MODEL_CALL_CAP_REASON,
    TERMINATE_WORD,
    AutogenMASFactory,
)
from conversation_engine.autogen.model_client import autogen_model_client
from conversation_engine.autogen.tool_factory import AutogenToolFactory
from conversation_engine.contract import CLIENT_SPEAKER, END_CALL_TOOL, EndReason
from conversation_engine.deadline import CANCEL_GRACE_SECONDS, cancel_and_wait
from conversation_engine.engine_base import ContractEngine, Conversation
from conversation_engine.outcome import ConversationOutcome, unwrap_error
from conversation_engine.settings import Settings
from conversation_engine.specs import PromptSpec
from conversation_engine.tools.base import ToolBackend

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

#: Errors after which one more attempt from the last checkpoint is worth it.
TRANSIENT_ERRORS = frozenset(
    {"APIConnectionError", "APITimeoutError", "InternalServerError", "RateLimitError"}
)


class AutogenConversationEngine(ContractEngine):
    """Drop-in replacement for the legacy `ConversationEngine`, running the bot as a Swarm.

    Construction loads and validates the prompt spec (a bad spec raises `SpecError` at once).
    One engine serves any number of concurrent conversations: all per-conversation state
    (team, agents, model client, tools, client) is built fresh for each.

    Options: `tool_backend` (default: the emulated shop, or the HTTP tool API when
    `TOOLS_URL` is set), `client_data` (the client-data source used for enrichment),
    `swarm_retries` (extra attempts after a transient model error, each on a team rebuilt
    from the last checkpoint), `settings`.
    """

    def __init__(
        self,
        openai_wrapper: Any,
        prompt_spec_name: str = "default_prompts",
        *,
        tool_backend: ToolBackend | None = None,
        client_data: Any = None,
        swarm_retries: int = 1,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(
            openai_wrapper,
            prompt_spec_name,
            tool_backend=tool_backend,
            client_data=client_data,
            settings=settings,
        )
        self.swarm_retries = swarm_retries

    def _new_conversation(
        self, spec: PromptSpec, outcome: ConversationOutcome, *, basic: bool, greeting: str | None
    ) -> _SwarmConversation:
        return _SwarmConversation(self, spec, outcome, basic=basic, greeting=greeting)

    def _record(self, conversation: Conversation | None, outcome: ConversationOutcome) -> None:
        if isinstance(conversation, _SwarmConversation):
            conversation.record(outcome)


class _SwarmConversation:
    """One conversation's team, client and transcript. Never shared, never reused."""

    def __init__(
        self,
        engine: AutogenConversationEngine,
        spec: PromptSpec,
        outcome: ConversationOutcome,
        *,
        basic: bool,
        greeting: str | None,
    ) -> None:
        self.spec = spec
        self.outcome = outcome
        self.basic = basic
        self.greeting = greeting
        self.retries = engine.swarm_retries
        self.endpoint = engine.openai
        self.model_client: ChatCompletionClient = autogen_model_client(
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
        self.adapter = ConversationAdapter(
            {spec.autogen_name(a): a for a in agent_ids}, basic=basic
        )
        client_spec = spec.client
        assert client_spec is not None, "validated specs always have a client"
        self.client = SimulatedClient(client_spec.prompt, self.model_client)
        self.team = self._build_team()
        self.checkpoint: Mapping[str, Any] | None = None
        self.messages: list[AutogenMessage] = []
        self.last_agent = spec.autogen_name(spec.entry_agent_id)
        self.internal_cap_hits = 0

    def _build_team(self) -> Swarm:
        return self.factory.create_swarm_team(
            self.spec, self.tools, self.model_client, basic=self.basic
        )

    async def play(self, max_turns: int) -> None:
        client_opens = self.greeting is not None
        pending = self.client.say_first(self.greeting).text if self.greeting else None
        for exchange in range(1, max_turns + 1):
            task = None if pending is None else self._client_message(pending)
            run = await self._agent_turn(task)
            if self._agent_ended_call(run):
                self.outcome.end_reason = EndReason.AGENT_END_CALL
                return
            if client_opens and exchange == max_turns:
                break
            reply = await self.client.reply(self.adapter.spoken_text(run))
            self._count(reply.usage)
            if reply.end_call is not None:
                self.messages.append(
                    ToolCallRequestEvent(
                        source=CLIENT_SPEAKER, content=[reply.end_call], created_at=reply.created_at
                    )
                )
                self.outcome.end_reason = EndReason.CLIENT_END_CALL
                return
            pending = reply.text
            if exchange == max_turns:
                # The client's last words are part of the transcript even though no run follows.
                self.messages.append(self._client_message(pending))
        self.outcome.end_reason = EndReason.MAX_TURNS

    def _client_message(self, text: str) -> HandoffMessage:
        return HandoffMessage(source=CLIENT_SPEAKER, target=self.last_agent, content=text)

    async def _agent_turn(self, task: HandoffMessage | None) -> list[AutogenMessage]:
        """One Swarm run; messages are kept as they arrive, so a failure keeps what was said."""
        for attempt in range(self.retries + 1):
            mark = len(self.messages)
            try:
                stop_reason = await self._stream_run(task)
            except Exception as error:
                # AutoGen 0.7.5 leaves a team whose agent raised unusable: never run it again.
                error_type, _ = unwrap_error(error)
                if attempt < self.retries and error_type in TRANSIENT_ERRORS:
                    logger.info("Retrying turn of %s after %s", self.outcome.session_id, error_type)
                    del self.messages[mark:]
                    await self._rebuild()
                    continue
                raise
            run = self.messages[mark:]
            self._after_run(run, stop_reason)
            if self.retries:
                self.checkpoint = await self.team.save_state()
            return run
        raise AssertionError("unreachable")

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
                what=f"Swarm run of {self.outcome.session_id}",
                on_stuck=self._cancel_runtime_tasks,
            )
            raise
        return stop_reason[0] if stop_reason else ""

    def _cancel_runtime_tasks(self) -> None:
        """Cancel the message handlers AutoGen's embedded runtime has in flight for this team.

        `_runtime._background_tasks` is private to AutoGen 0.7.5 (pinned); without it the
        team's handlers would stay pending after the conversation ended.
        """
        runtime = getattr(self.team, "_runtime", None)
        for task in list(getattr(runtime, "_background_tasks", ())):
            task.cancel()

    async def _rebuild(self) -> None:
        self.team = self._build_team()
        if self.checkpoint is not None:
            await self.team.load_state(self.checkpoint)

    def _after_run(self, run: list[AutogenMessage], stop_reason: str) -> None:
        self.last_agent = self.adapter.last_agent(run, self.last_agent)
        if stop_reason.startswith(MODEL_CALL_CAP_REASON) and not (
            run and isinstance(run[-1], TextMessage)
        ):
            # The per-turn cap stopped an agent mid tool loop: the turn is recorded as it
            # stands (its tool calls, no text) and the conversation goes on.
            self.internal_cap_hits += 1
            logger.warning(
                "Session %s: internal message cap hit (%s)", self.outcome.session_id, stop_reason
            )

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
        self.outcome.usage.add(usage.prompt_tokens, usage.completion_tokens)
        self.endpoint.log_usage(
            self.outcome.session_id, usage.prompt_tokens, usage.completion_tokens
        )

    def record(self, outcome: ConversationOutcome) -> None:
        """Put the transcript so far on the outcome (called on success and on failure)."""
        outcome.history = self.adapter.to_history(self.messages)
        if self.internal_cap_hits:
            outcome.extra["internal_cap_hits"] = self.internal_cap_hits
