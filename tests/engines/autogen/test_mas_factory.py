"""What the Swarm factory builds: shared handoff tools and the flat termination condition."""

from __future__ import annotations

from autogen_agentchat.base import Handoff, OrTerminationCondition
from autogen_agentchat.messages import (
    HandoffMessage,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import FunctionExecutionResult

from conversation_engine.core.contract import END_CALL_TOOL
from conversation_engine.engines.autogen.mas_factory import (
    MODEL_CALL_CAP_REASON,
    AutogenMASFactory,
    _SharedToolHandoff,
)

AGENTS = ["agent", "support"]


def handoff_kwargs(target: str = "support") -> dict[str, str]:
    return {
        "target": target,
        "name": f"handoff_{target}",
        "description": f"Transfer the conversation to {target}.",
        "message": f"Transferred to {target}.",
    }


async def test_handoff_tool_is_autogens_tool_built_once() -> None:
    ours = _SharedToolHandoff(**handoff_kwargs())
    autogens = Handoff(**handoff_kwargs())
    tool = ours.handoff_tool
    # Same schema on the wire as AutoGen's own handoff tool, and the same result.
    assert tool.schema == autogens.handoff_tool.schema
    assert await tool.run_json({}, CancellationToken()) == "Transferred to support."
    # One tool per distinct handoff, however many agents or conversations offer it.
    assert _SharedToolHandoff(**handoff_kwargs()).handoff_tool is tool
    assert tool.schema is tool.schema
    assert _SharedToolHandoff(**handoff_kwargs("client")).handoff_tool is not tool


async def test_termination_is_one_flat_or() -> None:
    condition = AutogenMASFactory("s", max_internal_messages=3).create_termination(AGENTS)
    assert isinstance(condition, OrTerminationCondition)
    assert not any(isinstance(child, OrTerminationCondition) for child in condition._conditions)


async def fired(messages: list, max_calls: int = 3) -> str | None:
    condition = AutogenMASFactory("s", max_internal_messages=max_calls).create_termination(AGENTS)
    stop = await condition(messages)
    return None if stop is None else stop.content


def call(name: str) -> ToolCallRequestEvent:
    return ToolCallRequestEvent(
        source="agent", content=[FunctionCall(id="1", name=name, arguments="{}")]
    )


def result(name: str) -> ToolCallExecutionEvent:
    return ToolCallExecutionEvent(
        source="agent",
        content=[FunctionExecutionResult(call_id="1", content="{}", name=name, is_error=False)],
    )


async def test_termination_fires_on_the_same_events() -> None:
    # The task itself never stops a run.
    assert await fired([HandoffMessage(source="client", target="agent", content="hi")]) is None
    assert await fired([call("get_cart"), result("get_cart")]) is None
    assert await fired([TextMessage(source="support", content="Hello")]) == (
        "Text message received from 'support'"
    )
    assert await fired([HandoffMessage(source="agent", target="client", content="x")]) == (
        "Handoff to client from agent detected."
    )
    assert await fired([call(END_CALL_TOOL), result(END_CALL_TOOL)]) == (
        f"Function '{END_CALL_TOOL}' was executed."
    )
    both = await fired([TextMessage(source="agent", content="Bye. TERMINATE")])
    assert both == "Text message received from 'agent', Text 'TERMINATE' mentioned"
    capped = await fired([call("get_cart"), result("get_cart")] * 2, max_calls=2)
    assert capped is not None and capped.startswith(MODEL_CALL_CAP_REASON)


def test_the_service_agent_s_hooks_are_the_ones_autogen_0_7_5_calls() -> None:
    # ServiceAgent changes AssistantAgent through two static hooks of its tool loop; if an
    # AutoGen upgrade stops calling them through `cls`, these fixes silently stop working.
    import inspect

    from autogen_agentchat.agents import AssistantAgent

    from conversation_engine.engines.autogen.mas_factory import ServiceAgent

    loop = inspect.getsource(AssistantAgent._process_model_result)
    assert "cls._execute_tool_call(" in loop and "cls._check_and_handle_handoff(" in loop
    assert ServiceAgent._execute_tool_call is not AssistantAgent._execute_tool_call
    assert ServiceAgent._check_and_handle_handoff is not AssistantAgent._check_and_handle_handoff


async def test_a_tool_call_autogen_cannot_parse_becomes_an_error_result() -> None:
    import asyncio

    from conversation_engine.engines.autogen.mas_factory import ServiceAgent

    call = FunctionCall(id="c1", name="get_cart", arguments="[" * 100_000)
    executed, result = await ServiceAgent._execute_tool_call(
        tool_call=call,
        workbench=[],
        handoff_tools=[],
        agent_name="agent",
        cancellation_token=CancellationToken(),
        stream=asyncio.Queue(),
    )
    assert result.is_error and "RecursionError" in result.content
    assert executed.id == "c1" and executed.name == "get_cart"
