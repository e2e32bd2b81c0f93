"""`AutogenMASFactory`: builds one conversation's AutoGen Swarm from a formatted prompt spec."""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import (
    ChatAgent,
    Handoff,
    OrTerminationCondition,
    Response,
    TerminatedException,
    TerminationCondition,
)
from autogen_agentchat.conditions import (
    FunctionCallTermination,
    HandoffTermination,
    TextMentionTermination,
    TextMessageTermination,
)
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    HandoffMessage,
    StopMessage,
    ToolCallRequestEvent,
    ToolCallSummaryMessage,
)
from autogen_agentchat.teams import Swarm
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import ChatCompletionClient, CreateResult, FunctionExecutionResult
from autogen_core.tools import BaseTool, FunctionTool, ToolSchema, Workbench

from conversation_engine.core.call_context import set_role
from conversation_engine.core.contract import CLIENT_SPEAKER, END_CALL_TOOL
from conversation_engine.core.settings import get_settings
from conversation_engine.engines.autogen.naming import autogen_name
from conversation_engine.inputs.specs import PromptSpec
from conversation_engine.llm._completion_check import tool_call_arguments
from conversation_engine.tools.catalogue import handoff_description, handoff_tool_name

#: What an agent says to end the call without the `end_call` tool (AutoGen's convention).
TERMINATE_WORD = "TERMINATE"

USER_HANDOFF_DESCRIPTION = (
    "Hand the conversation back to the customer when you need their answer. Prefer simply "
    "replying in text; use this only if you have nothing to say."
)


#: How a `ModelCallCap` stop reason starts; the engine recognises cap hits by it.
MODEL_CALL_CAP_REASON = "Maximum number of model calls"


class ModelCallCap(TerminationCondition):
    """Stops a Swarm run once its agents have made `max_calls` model calls.

    AutoGen's `MaxMessageTermination` counts chat messages, and a tool loop inside one agent
    yields a single summary message however many model calls it made, so it cannot bound a
    model that never stops calling tools. Each model call of an agent shows up as exactly one
    `ToolCallRequestEvent` (it called tools) or one text message (it spoke); summaries and
    handoff messages are the consequences of a request already counted. The check runs
    between agent responses, so the agents' `max_tool_iterations` bounds the calls inside one.
    """

    def __init__(self, max_calls: int, agent_names: Sequence[str]) -> None:
        self._max_calls = max_calls
        self._agents = frozenset(agent_names)
        self._calls = 0

    @property
    def terminated(self) -> bool:
        return self._calls >= self._max_calls

    async def __call__(
        self, messages: Sequence[BaseAgentEvent | BaseChatMessage]
    ) -> StopMessage | None:
        if self.terminated:
            raise TerminatedException("Model call cap already reached")
        self._calls += sum(1 for message in messages if self._is_model_call(message))
        if self.terminated:
            return StopMessage(
                content=f"{MODEL_CALL_CAP_REASON} ({self._max_calls}) in one turn reached",
                source="ModelCallCap",
            )
        return None

    def _is_model_call(self, message: BaseAgentEvent | BaseChatMessage) -> bool:
        if message.source not in self._agents:
            return False
        if isinstance(message, ToolCallRequestEvent):
            return True
        return isinstance(message, BaseChatMessage) and not isinstance(
            message, ToolCallSummaryMessage | HandoffMessage
        )

    async def reset(self) -> None:
        self._calls = 0


def handoff_message(target: str) -> str:
    """The text a handoff leaves in the team's thread (`HandoffMessage.content`)."""
    return f"Transferred to {target}, adopting the role of {target} immediately."


class _HandoffTool(FunctionTool):
    """A handoff's `FunctionTool` whose JSON schema is built once.

    `BaseTool.schema` regenerates the schema with pydantic on every read, and AutoGen 0.7.5
    reads it twice per model call for each handoff tool of the calling agent (the runtime
    protocol check `isinstance(tool, Tool)` reads every property). The tool's arguments
    never change, so neither does its schema.
    """

    @functools.cached_property
    def schema(self) -> ToolSchema:  # type: ignore[override]
        return super().schema


@functools.lru_cache(maxsize=1024)
def _handoff_tool(name: str, description: str, message: str) -> BaseTool[Any, Any]:
    """The tool of a handoff, shared by every agent and conversation that offers the same one.

    It has no state (calling it returns `message`), and building one creates a pydantic model
    from a signature, so one per distinct handoff is built per process. It is a coroutine
    function: AutoGen runs a plain function tool on a worker thread, a hop a handoff does not
    need.
    """

    async def transfer() -> str:
        return message

    return _HandoffTool(transfer, name=name, description=description, strict=True)


class _SharedToolHandoff(Handoff):
    """A `Handoff` whose `handoff_tool` is the cached `_handoff_tool`, not a new one per agent."""

    @property
    def handoff_tool(self) -> BaseTool[Any, Any]:
        return _handoff_tool(self.name, self.description, self.message)


class ServiceAgent(AssistantAgent):
    """An `AssistantAgent` whose tool calls cannot hang its turn and whose `end_call` ends it.

    Two behaviours of AutoGen 0.7.5's `AssistantAgent` are changed, through the two static
    hooks its tool loop calls (`cls._execute_tool_call`, `cls._check_and_handle_handoff`):

    * A tool call that raises inside AutoGen (arguments that are not a JSON string, such as
      `null`; JSON nested too deep to parse; a handoff given arguments its tool rejects)
      killed the task running the reply's tool calls, and the agent then waited forever for
      results that never came. Here every call returns a result: the arguments are normalised
      as the legacy engine does (`tool_call_arguments`), a handoff ignores its arguments (it
      takes none, and AutoGen hands off on the call's name whatever its tool returned), and
      any other exception becomes that call's error result.
    * After `end_call` ran, the agent went on calling the model within the same turn (the
      team's `FunctionCallTermination` is only checked between agent responses). Here a
      successful `end_call` ends the agent's response at once, with the summary of the
      reply's tool calls, as the legacy engine stops its tool loop.

    Several handoffs in one reply: AutoGen executes only the first; its warning saying so is
    silenced here, and the adapter records the others as not executed.
    """

    def __init__(self, name: str, *args: Any, agent_id: str, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        self.agent_id = agent_id
        """The spec's id of this agent (its AutoGen name is derived from it)."""

    async def on_messages_stream(
        self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken
    ) -> AsyncGenerator[BaseAgentEvent | BaseChatMessage | Response, None]:
        # Its model calls are made on its behalf (recording, replay, tracing). The runtime
        # handles each message in a task of its own, so the role set here stays this agent's.
        set_role(self.agent_id)
        async for item in super().on_messages_stream(messages, cancellation_token):
            yield item

    @staticmethod
    async def _execute_tool_call(
        tool_call: FunctionCall,
        workbench: Sequence[Workbench],
        handoff_tools: list[BaseTool[Any, Any]],
        agent_name: str,
        cancellation_token: CancellationToken,
        stream: asyncio.Queue[Any],
    ) -> tuple[FunctionCall, FunctionExecutionResult]:
        call_id = tool_call.id if isinstance(tool_call.id, str) else ""
        name = str(tool_call.name)
        arguments = tool_call_arguments(tool_call.arguments)
        if any(tool.name == name for tool in handoff_tools):
            arguments = "{}"
        call = FunctionCall(id=call_id, name=name, arguments=arguments)
        try:
            return await AssistantAgent._execute_tool_call(
                tool_call=call,
                workbench=workbench,
                handoff_tools=handoff_tools,
                agent_name=agent_name,
                cancellation_token=cancellation_token,
                stream=stream,
            )
        except Exception as error:  # cancellation is a BaseException and propagates
            return call, FunctionExecutionResult(
                content=f"Error: {type(error).__name__}: {error}",
                call_id=call_id,
                is_error=True,
                name=name,
            )

    @staticmethod
    def _check_and_handle_handoff(
        model_result: CreateResult,
        executed_calls_and_results: list[tuple[FunctionCall, FunctionExecutionResult]],
        inner_messages: list[BaseAgentEvent | BaseChatMessage],
        handoffs: dict[str, Any],
        agent_name: str,
    ) -> Response | None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Multiple handoffs detected")
            response = AssistantAgent._check_and_handle_handoff(
                model_result=model_result,
                executed_calls_and_results=executed_calls_and_results,
                inner_messages=inner_messages,
                handoffs=handoffs,
                agent_name=agent_name,
            )
        if response is not None:
            return response
        if any(
            call.name == END_CALL_TOOL and not result.is_error
            for call, result in executed_calls_and_results
        ):
            return AssistantAgent._summarize_tool_use(
                executed_calls_and_results=executed_calls_and_results,
                inner_messages=inner_messages,
                handoffs=handoffs,
                tool_call_summary_format="{result}",
                tool_call_summary_formatter=None,
                agent_name=agent_name,
            )
        return None


class AutogenMASFactory:
    """Builds the Swarm of one conversation; a new factory and team per session.

    The client and the evaluator are never participants: the simulated client talks to the
    team from outside, so an agent's handoff to it stops the run (`HandoffTermination`).
    """

    def __init__(self, session_id: str, *, max_internal_messages: int | None = None) -> None:
        self.session_id = session_id
        self.max_internal_messages = max_internal_messages or get_settings().MAX_INTERNAL_MESSAGES

    def create_swarm_team(
        self,
        spec: PromptSpec,
        tools: Sequence[BaseTool],
        model_client: ChatCompletionClient,
        user_handoff_target: str = CLIENT_SPEAKER,
        *,
        basic: bool = False,
    ) -> Swarm:
        """A Swarm of the spec's service agents, entry agent first.

        `spec` must already be formatted with the scenario's variables. Each agent gets the
        tools its spec lists (picked by name from `tools`), `handoff_<target>` handoffs with
        the spec's descriptions plus one to `user_handoff_target`. `basic=True` builds the
        entry agent alone, with no tools and no handoffs.
        """
        agent_ids = [spec.entry_agent_id] if basic else spec.service_agent_ids
        agents: list[ChatAgent] = [
            self._create_agent(spec, agent_id, tools, model_client, user_handoff_target, basic)
            for agent_id in agent_ids
        ]
        names = [agent.name for agent in agents]
        return Swarm(
            agents, termination_condition=self.create_termination(names, user_handoff_target)
        )

    def _create_agent(
        self,
        spec: PromptSpec,
        agent_id: str,
        tools: Sequence[BaseTool],
        model_client: ChatCompletionClient,
        user_handoff_target: str,
        basic: bool,
    ) -> ServiceAgent:
        agent = spec.agents[agent_id]
        # Typed as AssistantAgent's parameters are (lists are invariant).
        agent_tools: list[BaseTool[Any, Any] | Callable[..., Any]] = []
        handoffs: list[Handoff | str] = []
        if not basic:
            by_name = {tool.name: tool for tool in tools}
            agent_tools = [by_name[name] for name in agent.tools if name in by_name]
            for target, description in agent.handoffs.items():
                name = autogen_name(spec, target)
                handoffs.append(
                    _SharedToolHandoff(
                        target=name,
                        name=handoff_tool_name(name),
                        description=handoff_description(target, description),
                        message=handoff_message(target),
                    )
                )
            handoffs.append(
                _SharedToolHandoff(
                    target=user_handoff_target,
                    name=handoff_tool_name(user_handoff_target),
                    description=USER_HANDOFF_DESCRIPTION,
                    message=handoff_message(user_handoff_target),
                )
            )
        return ServiceAgent(
            autogen_name(spec, agent_id),
            model_client,
            agent_id=agent_id,
            tools=agent_tools or None,
            handoffs=handoffs or None,
            system_message=agent.prompt,
            description=agent.description or f"Agent {agent_id}",
            reflect_on_tool_use=False,
            # Tool loops are bounded per agent rather than by the team-wide message count,
            # and looping inside the agent avoids a Swarm round per tool call.
            max_tool_iterations=self.max_internal_messages,
        )

    def create_termination(
        self, agent_names: Sequence[str], user_handoff_target: str = CLIENT_SPEAKER
    ) -> TerminationCondition:
        """Stop when an agent speaks to the client, ends the call, or hits the per-turn cap.

        The cap counts model calls, as the legacy engine does (`MAX_INTERNAL_MESSAGES`).

        Text termination is scoped to each agent: an unscoped one would also fire on the
        task message itself.

        The conditions are OR-ed in one flat `OrTerminationCondition`: `a | b | c` nests a
        two-way OR per operator, and each level runs its children through `asyncio.gather`
        (a task per child) at every check. Flat, the check costs half as much; what fires,
        and the stop reason, are the same.
        """
        conditions: list[TerminationCondition] = [HandoffTermination(target=user_handoff_target)]
        conditions += [TextMessageTermination(source=name) for name in agent_names]
        conditions.append(FunctionCallTermination(END_CALL_TOOL))
        conditions.append(TextMentionTermination(TERMINATE_WORD, sources=list(agent_names)))
        conditions.append(ModelCallCap(self.max_internal_messages, agent_names))
        return OrTerminationCondition(*conditions)
