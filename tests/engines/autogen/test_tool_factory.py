"""AutogenToolFactory: catalogue schemas unchanged, session binding, a real AssistantAgent run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import (
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
    ToolCallSummaryMessage,
)
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import CreateResult, ModelInfo, RequestUsage
from autogen_core.tools import BaseTool, StaticWorkbench
from autogen_ext.models.openai._openai_client import convert_tools
from autogen_ext.models.replay import ReplayChatCompletionClient

from conversation_engine.core.errors import UnknownToolError
from conversation_engine.engines.autogen.tool_factory import AutogenToolFactory
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, CONTROL_TOOLS, ToolCatalogue
from conversation_engine.tools.session import SessionTools
from conversation_engine.tools.shop import EmulatedShop

MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=True,
    json_output=False,
    family="unknown",
    structured_output=False,
)


class SpyShop(EmulatedShop):
    """The real shop, recording the arguments and session each call receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, dict[str, Any], str]] = []

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        self.received.append((tool_name, dict(arguments), session_id))
        return await super().call(tool_name, arguments, session_id)


def expected_schema(name: str) -> dict[str, Any]:
    """What AutoGen hands a model client: the catalogue's function entry with strict off."""
    return {**ToolCatalogue().schema(name)["function"], "strict": False}


def test_tools_expose_the_catalogue_schema_unchanged() -> None:
    factory = AutogenToolFactory("s-1", EmulatedShop())
    names = [*BUSINESS_TOOLS, "end_call", "call_transfer"]
    tools = factory.get_tools_for_agent(names)
    assert [tool.name for tool in tools] == names
    for tool in tools:
        assert isinstance(tool, BaseTool)
        assert dict(tool.schema) == expected_schema(tool.name)
        assert tool.description == ToolCatalogue().schema(tool.name)["function"]["description"]
    # On the wire (OpenAI client): the catalogue entry, execution_message included.
    wire = convert_tools(tools)
    for entry in wire:
        name = entry["function"]["name"]
        catalogue = ToolCatalogue().schema(name)
        assert entry["type"] == "function"
        assert entry["function"]["parameters"] == catalogue["function"]["parameters"]
        assert entry["function"]["description"] == catalogue["function"]["description"]
        assert entry["function"].get("strict") is False
    rag = next(entry for entry in wire if entry["function"]["name"] == "rag_find_products")
    parameters: dict[str, Any] = dict(rag["function"]["parameters"])
    assert "execution_message" in parameters["required"]


def test_handoffs_skipped_duplicates_dropped_unknown_rejected() -> None:
    factory = AutogenToolFactory("s-1", EmulatedShop())
    tools = factory.get_tools_for_agent(["get_cart", "handoff_sales", "get_cart", "end_call"])
    assert [tool.name for tool in tools] == ["get_cart", "end_call"]
    with pytest.raises(UnknownToolError, match="'teleport'"):
        factory.get_tools_for_agent(["get_cart", "teleport"])


def test_session_tools_attribute() -> None:
    shop = EmulatedShop()
    factory = AutogenToolFactory("s-7", shop)
    assert isinstance(factory.session_tools, SessionTools)
    assert factory.session_tools.session_id == "s-7"
    assert factory.session_tools.backend is shop


async def test_run_json_returns_the_json_text_bound_to_the_session() -> None:
    shop = SpyShop()
    (tool,) = AutogenToolFactory("s-9", shop).get_tools_for_agent(["set_current_location"])
    result = await tool.run_json(
        {"location_id": 3, "execution_message": "Setting it."}, CancellationToken()
    )
    assert result == '{"status": "location_set", "location_id": 3}'
    assert tool.return_value_as_string(result) == result
    assert shop.received == [("set_current_location", {"location_id": 3}, "s-9")]
    assert shop.session_state("s-9").location_id == 3


async def test_workbench_reports_problems_as_results_not_errors() -> None:
    (tool,) = AutogenToolFactory("s", EmulatedShop()).get_tools_for_agent(["change_delivery_date"])
    result = await StaticWorkbench([tool]).call_tool(
        "change_delivery_date", {"delivery_date": "tomorrow"}
    )
    assert result.is_error is False
    assert json.loads(result.to_text()) == {
        "error": "Invalid delivery date 'tomorrow'; use a real calendar date as YYYY-MM-DD."
    }


async def test_end_call_through_autogen_does_not_reach_the_backend() -> None:
    shop = SpyShop()
    (tool,) = AutogenToolFactory("s", shop).get_tools_for_agent(["end_call"])
    result = await tool.run_json({"reason": "done"}, CancellationToken())
    assert json.loads(result) == {"status": "call_ended", "reason": "done"}
    assert shop.received == []
    assert dict(tool.schema) == {**CONTROL_TOOLS["end_call"]["function"], "strict": False}


async def test_real_assistant_agent_runs_a_catalogue_tool() -> None:
    shop = SpyShop()
    factory = AutogenToolFactory("sess-agent", shop)
    tools = factory.get_tools_for_agent(["rag_find_products", "add_to_cart"])
    arguments = {"message": "chiken filet", "execution_message": "Let me find that for you."}
    client = ReplayChatCompletionClient(
        [
            CreateResult(
                finish_reason="function_calls",
                content=[
                    FunctionCall(
                        id="call_1", name="rag_find_products", arguments=json.dumps(arguments)
                    )
                ],
                usage=RequestUsage(prompt_tokens=10, completion_tokens=5),
                cached=False,
            )
        ],
        model_info=MODEL_INFO,
    )
    agent = AssistantAgent(
        "sales",
        client,
        tools=tools,
        system_message="You sell food.",
        reflect_on_tool_use=False,
    )

    result = await agent.run(task="Do you have chicken fillet?")

    # The backend got the call for this session, without execution_message.
    assert shop.received == [("rag_find_products", {"message": "chiken filet"}, "sess-agent")]
    # The execution event carries the shop's JSON text, not a Python repr.
    expected_text = json.dumps(
        await EmulatedShop().call("rag_find_products", {"message": "chiken filet"}, "x"),
        ensure_ascii=False,
    )
    request = next(m for m in result.messages if isinstance(m, ToolCallRequestEvent))
    assert json.loads(request.content[0].arguments) == arguments
    execution = next(m for m in result.messages if isinstance(m, ToolCallExecutionEvent))
    (outcome,) = execution.content
    assert outcome.is_error is False
    assert outcome.name == "rag_find_products"
    assert outcome.content == expected_text
    assert json.loads(outcome.content)["products"][0]["name"] == "Chicken fillet, chilled"
    assert isinstance(result.messages[-1], ToolCallSummaryMessage)
    # The model was offered the catalogue schemas unchanged.
    offered = client.create_calls[0]["tools"]
    assert [dict(schema) for schema in offered] == [
        expected_schema("rag_find_products"),
        expected_schema("add_to_cart"),
    ]
