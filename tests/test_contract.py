from __future__ import annotations

import json

import pytest

from conversation_engine.contract import (
    ConversationResult,
    ConversationStatus,
    HistoryEntry,
    ToolCall,
    client_end_call_content,
    contract_violations,
    is_geo_block,
    safe_parse_tool_result,
)

T0 = "2025-01-01T10:00:00+00:00"
T1 = "2025-01-01T10:00:01+00:00"


def _call(name: str = "get_cart", arguments: str = "{}", call_id: str = "call_1") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _result(history: list[dict], **overrides: object) -> dict:
    result = {
        "session_id": "s-1",
        "scenario": "demo",
        "status": "completed",
        "total_turns": max((e["turn"] for e in history), default=0),
        "duration_seconds": 1.5,
        "conversation_history": history,
        "start_time": T0,
        "end_time": T1,
        "tools_used": True,
    }
    result.update(overrides)
    return result


def test_to_contract_dict_drops_absent_keys_and_keeps_empty_content() -> None:
    result = ConversationResult(
        session_id="s-1",
        scenario="demo",
        status=ConversationStatus.COMPLETED,
        total_turns=1,
        duration_seconds=0.5,
        conversation_history=[
            HistoryEntry(turn=1, speaker="agent_agent", content=None, timestamp=T0),
            HistoryEntry(turn=1, speaker="client", content="Hi", timestamp=T1),
        ],
        start_time=T0,
        end_time=T1,
        tools_used=True,
    )
    data = result.to_contract_dict()
    assert set(data) == {
        "session_id",
        "scenario",
        "status",
        "total_turns",
        "duration_seconds",
        "conversation_history",
        "start_time",
        "end_time",
        "tools_used",
    }
    assert data["status"] == "completed"
    assert data["conversation_history"][0] == {
        "turn": 1,
        "speaker": "agent_agent",
        "content": "",
        "timestamp": T0,
    }
    assert contract_violations(data) == []


def test_to_contract_dict_keeps_null_values_inside_tool_results() -> None:
    entry = HistoryEntry(
        turn=1,
        speaker="agent_agent",
        content="",
        timestamp=T0,
        tool_calls=[ToolCall(id="c1", function={"name": "get_cart", "arguments": "{}"})],
        tool_results=[{"cart": [], "note": None}],
    )
    result = ConversationResult(
        session_id="s",
        scenario="x",
        status="completed",
        total_turns=1,
        duration_seconds=0,
        conversation_history=[entry],
    )
    dumped = result.to_contract_dict()["conversation_history"][0]
    assert dumped["tool_results"] == [{"cart": [], "note": None}]
    assert dumped["tool_calls"] == [_call("get_cart", "{}", "c1")]


def test_round_trip_through_json_validates() -> None:
    history = [
        {
            "turn": 1,
            "speaker": "agent_agent",
            "content": "Hello",
            "timestamp": T0,
            "tool_calls": [_call()],
            "tool_results": [{"items": []}],
        },
        {
            "turn": 1,
            "speaker": "client",
            "content": client_end_call_content("done"),
            "timestamp": T1,
            "tool_calls": [_call("end_call", json.dumps({"reason": "done"}), "c2")],
        },
    ]
    data = _result(history)
    parsed = ConversationResult.model_validate(json.loads(json.dumps(data)))
    assert parsed.to_contract_dict() == data
    assert contract_violations(data) == []


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.pop("session_id"), "no 'session_id'"),
        (lambda r: r.update(status="done"), "status 'done'"),
        (lambda r: r.update(error=None), "'error'] is null"),
        (lambda r: r["conversation_history"][0].update(content=None), "content is None"),
        (lambda r: r["conversation_history"][0].update(turn=0), "expected a positive int"),
        (lambda r: r["conversation_history"][1].update(speaker="customer"), "speaker 'customer'"),
        (
            lambda r: r["conversation_history"][1].update(tool_results=["x"]),
            "client entry with tool_results",
        ),
        (
            lambda r: r["conversation_history"][0]["tool_calls"][0]["function"].update(
                arguments={"a": 1}
            ),
            "not a JSON string",
        ),
        (
            lambda r: r["conversation_history"][0].update(tool_results=[1, 2]),
            "1 tool_calls but 2 tool_results",
        ),
        (
            lambda r: r["conversation_history"][1].update(timestamp="2024-01-01T00:00:00+00:00"),
            "goes back in time",
        ),
        (lambda r: r["conversation_history"][1].update(timestamp="yesterday"), "not ISO-8601"),
        (lambda r: r.update(total_turns=3), "total_turns is 3"),
        (lambda r: r["conversation_history"][1].update(turn=3), "turn jumps"),
    ],
)
def test_violations_name_the_problem(mutate, fragment: str) -> None:
    data = _result(
        [
            {
                "turn": 1,
                "speaker": "agent_agent",
                "content": "Hello",
                "timestamp": T0,
                "tool_calls": [_call()],
                "tool_results": [{"items": []}],
            },
            {"turn": 1, "speaker": "client", "content": "Hi", "timestamp": T1},
        ]
    )
    mutate(data)
    problems = contract_violations(data)
    assert any(fragment in p for p in problems), problems


def test_basic_mode_rules() -> None:
    data = _result(
        [
            {"turn": 1, "speaker": "agent_agent", "content": "Hello", "timestamp": T0},
            {"turn": 1, "speaker": "client", "content": "Hi", "timestamp": T1},
        ],
        tools_used=True,
    )
    problems = contract_violations(data, basic_mode=True)
    assert any("tools_used: false" in p for p in problems)
    assert any("not 'agent' or 'client' in basic mode" in p for p in problems)


def test_failed_api_blocked_needs_its_flags() -> None:
    data = _result([], status="failed_api_blocked", error="blocked", error_type="APIBlockedError")
    problems = contract_violations(data)
    assert any("graceful_degradation" in p for p in problems)
    assert any("partial_completion" in p for p in problems)


def test_non_dict_result() -> None:
    assert contract_violations([1]) == ["result is a list, not a dict"]


def test_safe_parse_tool_result() -> None:
    assert safe_parse_tool_result('{"a": 1}') == {"a": 1}
    assert safe_parse_tool_result("plain text") == "plain text"
    assert safe_parse_tool_result("[1, 2]") == [1, 2]
    assert safe_parse_tool_result({"already": "parsed"}) == {"already": "parsed"}
    assert safe_parse_tool_result(None) is None


def test_geo_block_detection() -> None:
    assert is_geo_block("Error code: 403 - unsupported_country_region_territory")
    assert is_geo_block("API blocked due to Geographic Restrictions")
    assert not is_geo_block("Error code: 403 - forbidden")
