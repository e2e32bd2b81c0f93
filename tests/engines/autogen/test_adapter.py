from __future__ import annotations

from datetime import UTC, datetime, timedelta

from autogen_agentchat.messages import (
    HandoffMessage,
    TextMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
    ToolCallSummaryMessage,
)
from autogen_core import FunctionCall
from autogen_core.models import FunctionExecutionResult, RequestUsage

from conversation_engine.core.contract import ConversationResult, contract_violations
from conversation_engine.engines.autogen.adapter import (
    ConversationAdapter,
    count_model_calls,
    usage_of,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def request(
    source: str, name: str, arguments: str, call_id: str, t: int, usage: bool = True
) -> ToolCallRequestEvent:
    return ToolCallRequestEvent(
        source=source,
        content=[FunctionCall(id=call_id, name=name, arguments=arguments)],
        created_at=at(t),
        models_usage=RequestUsage(prompt_tokens=10, completion_tokens=2) if usage else None,
    )


def execution(
    source: str, name: str, content: str, call_id: str, t: int, is_error: bool = False
) -> ToolCallExecutionEvent:
    return ToolCallExecutionEvent(
        source=source,
        content=[
            FunctionExecutionResult(content=content, name=name, call_id=call_id, is_error=is_error)
        ],
        created_at=at(t),
    )


def conversation() -> list:
    """Agent opens; client asks; sales searches, hands off; support changes date; client ends."""
    return [
        TextMessage(
            source="agent",
            content="Hello! How can I help?",
            created_at=at(1),
            models_usage=RequestUsage(prompt_tokens=50, completion_tokens=8),
        ),
        HandoffMessage(
            source="client", target="agent", content="I'd like chicken fillet.", created_at=at(2)
        ),
        ThoughtEvent(source="agent", content="Let me check.", created_at=at(3)),
        request(
            "agent",
            "rag_find_products",
            '{"message": "chicken fillet", "execution_message": "Checking"}',
            "call_1",
            3,
        ),
        execution(
            "agent",
            "rag_find_products",
            '{"products": [{"product_code": "CB-00000101"}]}',
            "call_1",
            4,
        ),
        ToolCallSummaryMessage(
            source="agent",
            content="(summary repeats results)",
            tool_calls=[],
            results=[],
            created_at=at(4),
        ),
        TextMessage(
            source="agent",
            content="Found it. Added to cart.",
            created_at=at(5),
            models_usage=RequestUsage(prompt_tokens=60, completion_tokens=9),
        ),
        HandoffMessage(
            source="client",
            target="agent",
            content="Change my delivery date to 2024-01-18.",
            created_at=at(6),
        ),
        request("agent", "handoff_support", "{}", "call_1", 7),  # call id repeats on purpose
        execution("agent", "handoff_support", "Transferred to support.", "call_1", 7),
        HandoffMessage(
            source="agent", target="support", content="Transferred to support.", created_at=at(7)
        ),
        request("support", "change_delivery_date", '{"delivery_date": "2024-01-18"}', "call_2", 8),
        execution("support", "change_delivery_date", "Delivery date changed", "call_2", 8),
        TextMessage(
            source="support",
            content="Done, it's the 18th.",
            created_at=at(9),
            models_usage=RequestUsage(prompt_tokens=70, completion_tokens=7),
        ),
        ToolCallRequestEvent(
            source="client",
            content=[
                FunctionCall(id="call_9", name="end_call", arguments='{"reason": "order complete"}')
            ],
            created_at=at(10),
        ),
    ]


def test_history_follows_legacy_rules() -> None:
    history = ConversationAdapter({"agent": "agent", "support": "support"}).to_history(
        conversation()
    )
    rows = [(e.turn, e.speaker, e.content) for e in history]
    assert rows == [
        (1, "agent_agent", "Hello! How can I help?"),
        (1, "client", "I'd like chicken fillet."),
        (2, "agent_agent", "Let me check. Found it. Added to cart."),
        (2, "client", "Change my delivery date to 2024-01-18."),
        (3, "agent_agent", ""),
        (3, "agent_support", "Done, it's the 18th."),
        (3, "client", "[ЗАВЕРШИЛ ЗВОНОК: order complete]"),
    ]
    search = history[2]
    assert (
        search.tool_calls[0].function.arguments
        == '{"message": "chicken fillet", "execution_message": "Checking"}'
    )
    assert search.tool_results == [{"products": [{"product_code": "CB-00000101"}]}]
    handoff = history[4]
    assert [c.function.name for c in handoff.tool_calls] == ["handoff_support"]
    assert handoff.tool_results == [
        {
            "status": "handoff_completed",
            "target_agent": "support",
            "message": "Successfully handed off conversation to support",
        }
    ]
    assert history[5].tool_results == ["Delivery date changed"]
    end = history[6]
    assert end.tool_calls[0].function.name == "end_call" and end.tool_results is None
    assert history[0].timestamp == at(1).isoformat() and end.timestamp == at(10).isoformat()


def test_history_is_contract_valid() -> None:
    history = ConversationAdapter().to_history(conversation())
    result = ConversationResult(
        session_id="s",
        scenario="x",
        status="completed",
        total_turns=3,
        duration_seconds=1,
        conversation_history=history,
        tools_used=True,
    )
    assert contract_violations(result.to_contract_dict(), basic_mode=False) == []


def test_client_opening_numbers_exchanges_from_the_client() -> None:
    messages = [
        HandoffMessage(
            source="client", target="agent", content="Hi, I need eggs.", created_at=at(1)
        ),
        TextMessage(source="agent", content="Sure.", created_at=at(2)),
        HandoffMessage(source="client", target="agent", content="Thanks.", created_at=at(3)),
        TextMessage(source="agent", content="Bye.", created_at=at(4)),
    ]
    turns = [(e.turn, e.speaker) for e in ConversationAdapter().to_history(messages)]
    assert turns == [(1, "client"), (1, "agent_agent"), (2, "client"), (2, "agent_agent")]


def test_basic_mode_names_the_agent_agent_and_drops_tool_fields() -> None:
    messages = [
        TextMessage(source="agent", content="Hello", created_at=at(1)),
        ToolCallRequestEvent(
            source="client",
            content=[FunctionCall(id="c", name="end_call", arguments="{}")],
            created_at=at(2),
        ),
    ]
    history = ConversationAdapter(basic=True).to_history(messages)
    assert [(e.speaker, e.content, e.tool_calls) for e in history] == [
        ("agent", "Hello", None),
        ("client", "[ЗАВЕРШИЛ ЗВОНОК: Client ended the call]", None),
    ]


def test_errors_and_invalid_handoffs_become_results() -> None:
    messages = [
        request("agent", "handoff_nobody", "{}", "c1", 1),
        execution(
            "agent",
            "handoff_nobody",
            "Error: tool 'handoff_nobody' not found",
            "c1",
            1,
            is_error=True,
        ),
        request("agent", "add_to_cart", "{bad json", "c2", 2),
        execution("agent", "add_to_cart", "Error: Expecting property name", "c2", 2, is_error=True),
        TextMessage(source="agent", content="Sorry.", created_at=at(3)),
    ]
    (entry,) = ConversationAdapter().to_history(messages)
    assert entry.tool_results == [
        {"error": "Invalid handoff target: nobody"},
        "Error: Expecting property name",
    ]
    assert entry.tool_calls[1].function.arguments == "{bad json"


def test_interrupted_tool_call_keeps_alignment() -> None:
    messages = [request("agent", "get_cart", "{}", "c1", 1)]
    (entry,) = ConversationAdapter().to_history(messages)
    assert len(entry.tool_calls) == len(entry.tool_results) == 1
    assert "interrupted" in entry.tool_results[0]["error"]


def test_spoken_text_and_last_agent() -> None:
    adapter = ConversationAdapter()
    run = conversation()[7:14]
    assert adapter.spoken_text(run) == "Done, it's the 18th."
    assert adapter.last_agent(run, default="agent") == "support"
    assert adapter.spoken_text(conversation()[1:7]) == "Let me check. Found it. Added to cart."


def test_id_mapping_back_to_spec_ids() -> None:
    messages = [
        request("order_desk", "handoff_agent", "{}", "c1", 1),
        execution("order_desk", "handoff_agent", "ok", "c1", 1),
        HandoffMessage(
            source="order_desk", target="agent", content="Transferred", created_at=at(1)
        ),
    ]
    (entry,) = ConversationAdapter({"order_desk": "order-desk", "agent": "agent"}).to_history(
        messages
    )
    assert entry.speaker == "agent_order-desk"


def test_usage() -> None:
    messages = conversation()
    assert usage_of(messages) == RequestUsage(prompt_tokens=210, completion_tokens=30)
    assert count_model_calls(messages) == 6


def test_of_two_handoffs_in_one_reply_only_the_first_is_completed() -> None:
    # AutoGen executes both handoff tools but hands off only to the first target.
    calls = [
        FunctionCall(id="c1", name="handoff_billing", arguments="{}"),
        FunctionCall(id="c2", name="handoff_support", arguments="{}"),
        FunctionCall(id="c3", name="handoff_nobody", arguments="{}"),
    ]
    results = [
        FunctionExecutionResult(content="ok", name="handoff_billing", call_id="c1"),
        FunctionExecutionResult(content="ok", name="handoff_support", call_id="c2"),
        FunctionExecutionResult(
            content="Error: tool 'handoff_nobody' not found",
            name="handoff_nobody",
            call_id="c3",
            is_error=True,
        ),
    ]
    messages = [
        HandoffMessage(
            source="client", target="agent", content="Invoice, please.", created_at=at(1)
        ),
        ToolCallRequestEvent(source="agent", content=calls, created_at=at(2)),
        ToolCallExecutionEvent(source="agent", content=results, created_at=at(3)),
        HandoffMessage(source="agent", target="billing", content="Transferred", created_at=at(3)),
        TextMessage(source="billing", content="Billing here.", created_at=at(4)),
    ]
    history = ConversationAdapter().to_history(messages)
    first, second, third = history[1].tool_results
    assert first["status"] == "handoff_completed" and first["target_agent"] == "billing"
    assert second == {
        "error": "Not executed: the handoff to billing in the same reply ran first; "
        "one handoff per reply."
    }
    assert third == {"error": "Invalid handoff target: nobody"}
    assert history[2].speaker == "agent_billing"


def test_arguments_that_are_not_a_string_are_recorded_as_json_text() -> None:
    messages = [
        ToolCallRequestEvent(
            source="agent",
            content=[FunctionCall(id="c1", name="get_cart", arguments=None)],  # type: ignore[arg-type]
            created_at=at(1),
        ),
        ToolCallExecutionEvent(
            source="agent",
            content=[FunctionExecutionResult(content="{}", name="get_cart", call_id="c1")],
            created_at=at(2),
        ),
    ]
    (entry,) = ConversationAdapter().to_history(messages)
    assert entry.tool_calls is not None and entry.tool_calls[0].function.arguments == "{}"
