from __future__ import annotations

import json
import time

import pytest

from conversation_engine.core.contract import (
    ContractRule,
    ConversationResult,
    ConversationStatus,
    EndReason,
    HistoryEntry,
    ToolCall,
    Usage,
    client_end_call_content,
    contract_violations,
    is_geo_block,
    safe_parse_tool_result,
    timestamp_moment,
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
            "a 'client' entry has tool_results",
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


# ------------------------------------------------------------------ end reasons and statuses


def test_end_reasons_keep_their_legacy_values() -> None:
    assert [reason.value for reason in EndReason] == [
        "client_end_call",
        "agent_end_call",
        "max_turns",
        "timeout",
        "api_blocked",
        "error",
    ]
    result = ConversationResult(
        session_id="s",
        scenario="x",
        status="completed",
        total_turns=0,
        duration_seconds=0,
        end_reason="max_turns",
    )
    assert result.end_reason is EndReason.MAX_TURNS
    assert json.dumps(result.to_contract_dict()["end_reason"]) == '"max_turns"'


# ------------------------------------------------------------------------- naive timestamps


def _timed(*timestamps: str) -> dict:
    history = [
        {"turn": 1, "speaker": "agent_agent", "content": "Hello", "timestamp": timestamps[0]},
        {"turn": 1, "speaker": "client", "content": "Hi", "timestamp": timestamps[1]},
    ]
    return _result(history)


def _goes_back(result: dict, **options: object) -> bool:
    return any("goes back in time" in p for p in contract_violations(result, **options))


def test_a_timestamp_without_a_zone_is_read_as_utc() -> None:
    assert timestamp_moment("2025-01-01T10:00:00") == timestamp_moment("2025-01-01T10:00:00Z")
    assert timestamp_moment("2025-01-01T12:00:00+02:00") == timestamp_moment("2025-01-01T10:00:00")
    assert timestamp_moment("yesterday") is None and timestamp_moment(None) is None


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("first", "second", "goes_back"),
    [
        ("2025-01-01T10:00:00", "2025-01-01T10:00:01+00:00", False),  # naive, then aware
        ("2025-01-01T10:00:01", "2025-01-01T10:00:00+00:00", True),
        ("2025-01-01T10:00:00+00:00", "2025-01-01T10:00:01", False),  # aware, then naive
        ("2025-01-01T10:00:01+00:00", "2025-01-01T10:00:00", True),
        ("2025-01-01T11:30:00+02:00", "2025-01-01T10:00:00", False),  # 09:30 UTC, then 10:00
        ("2025-01-01T10:00:00", "2025-01-01T11:30:00+02:00", True),
        ("2025-01-01T10:00:00", "2025-01-01T10:00:00Z", False),  # the same moment
    ],
)
def test_naive_and_aware_timestamps_order_as_utc(
    first: str, second: str, goes_back: bool, strict: bool
) -> None:
    assert _goes_back(_timed(first, second), strict=strict) is goes_back


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_the_verdict_does_not_depend_on_the_local_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert not _goes_back(_timed("2025-01-01T10:00:00+00:00", "2025-01-01T10:00:01"))
        assert _goes_back(_timed("2025-01-01T10:00:01", "2025-01-01T10:00:00+00:00"))
    finally:
        monkeypatch.undo()
        time.tzset()


def test_strict_rules_require_a_zone_and_still_order_naive_timestamps() -> None:
    result = _timed("2025-01-01T10:00:01", "2025-01-01T10:00:00+00:00")
    assert not any("time zone" in p for p in contract_violations(result))
    problems = contract_violations(result, strict=True, rules=["timestamps"])
    assert problems == [
        "conversation_history[0]: timestamp '2025-01-01T10:00:01' has no time zone",
        "conversation_history[1]: timestamp 2025-01-01T10:00:00+00:00 goes back in time, "
        "before the previous entry's 2025-01-01T10:00:01",
    ]


# ------------------------------------------------------------------------------ strict rules


def _conforming() -> dict:
    """A tools-mode result that passes every strict rule: a handoff, a tool call, end_call."""
    handoff = {"status": "handoff_completed", "target_agent": "support", "message": "ok"}
    history = [
        {
            "turn": 1,
            "speaker": "agent_sales",
            "content": "",
            "timestamp": T0,
            "tool_calls": [_call("handoff_support", "{}", "c1")],
            "tool_results": [handoff],
        },
        {
            "turn": 1,
            "speaker": "agent_support",
            "content": "Support here.",
            "timestamp": T0,
            "tool_calls": [_call("get_cart", "{}", "c2")],
            "tool_results": [{"items": []}],
        },
        {
            "turn": 1,
            "speaker": "client",
            "content": client_end_call_content("done"),
            "timestamp": T1,
            "tool_calls": [_call("end_call", json.dumps({"reason": "done"}), "c3")],
        },
    ]
    return _result(history)


def test_a_conforming_result_passes_the_strict_rules() -> None:
    assert contract_violations(_conforming(), basic_mode=False, strict=True) == []


@pytest.mark.parametrize("cost", [None, 0.0042])
def test_a_usage_with_an_unknown_or_known_cost_conforms(cost: float | None) -> None:
    usage = {"calls": 3, "prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}
    result = {**_conforming(), "usage": {**usage, "cost_usd": cost}}
    assert contract_violations(result, basic_mode=False, strict=True) == []
    assert contract_violations(json.loads(json.dumps(result)), strict=True) == []


def test_usage_cost_is_unknown_once_any_call_is() -> None:
    usage = Usage()
    usage.add(10, 5, 0.25)
    assert usage.cost_usd == 0.25
    usage.add(10, 5, None)  # e.g. answered by the simulated LLM
    usage.add(10, 5, 0.25)
    assert usage.cost_usd is None  # never the partial 0.5
    assert (usage.calls, usage.total_tokens) == (3, 45)
    priced = Usage()
    priced.add(1, 1, 0.5)
    priced.merge(Usage(calls=1, prompt_tokens=2, completion_tokens=0, total_tokens=2, cost_usd=1))
    assert priced.cost_usd == 1.5 and priced.calls == 2 and priced.total_tokens == 4
    priced.merge(usage)
    assert priced.cost_usd is None and priced.calls == 5
    assert Usage().cost_usd == 0.0  # no call, nothing spent
    assert Usage.total_cost(0.1, 0.2) == pytest.approx(0.3)
    assert Usage.total_cost(0.1, None) is None


def test_an_unknown_cost_is_null_in_the_contract_dict() -> None:
    usage = Usage()
    usage.add(10, 5, None)
    result = ConversationResult(
        session_id="s-1",
        scenario="demo",
        status=ConversationStatus.COMPLETED,
        total_turns=0,
        duration_seconds=0.5,
        usage=usage,
    )
    data = result.to_contract_dict()  # exclude_none drops absent keys, not the unknown cost
    assert data["usage"] == {
        "calls": 1,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost_usd": None,
    }
    assert "error" not in data and "end_reason" not in data
    assert json.loads(result.model_dump_json(exclude_none=True))["usage"]["cost_usd"] is None
    assert ConversationResult.model_validate(data).usage == usage


@pytest.mark.parametrize(
    ("rule", "mutate", "message"),
    [
        (
            "result_schema",
            lambda r: r.pop("tools_used"),
            "a tools-mode result needs tools_used: true",
        ),
        ("session_id", lambda r: r.update(session_id=""), "result['session_id'] is empty"),
        (
            "session_id",
            lambda r: r["conversation_history"][1].update(session_id="other"),
            "conversation_history[1]: session_id 'other' is not the result's 's-1'",
        ),
        (
            "turn_numbering",
            lambda r: r["conversation_history"][2].update(turn=2) or r.update(total_turns=2),
            "conversation_history[2]: turn is 2, expected 1 (this client entry answers within "
            "the exchange of the entry before it)",
        ),
        (
            "speakers",
            lambda r: r["conversation_history"][1].update(speaker="agent_sales"),
            "conversation_history[1]: after a handoff to 'support' the next entry is by "
            "'agent_sales', expected 'agent_support'",
        ),
        (
            "tool_calls_shape",
            lambda r: r["conversation_history"][1]["tool_calls"][0].update(extra=1),
            "conversation_history[1].tool_calls[0]: has keys ['extra', 'function', 'id', "
            "'type'], expected ['function', 'id', 'type']",
        ),
        (
            "tool_calls_shape",
            lambda r: r["conversation_history"][1]["tool_calls"][0]["function"].update(
                arguments="[1]"
            ),
            "conversation_history[1].tool_calls[0]: function.arguments '[1]' is not a JSON object",
        ),
        (
            "tool_calls_shape",
            lambda r: r["conversation_history"][1].update(tool_calls=[], tool_results=[]),
            "conversation_history[1]: tool_calls is [], expected a non-empty list",
        ),
        (
            "tool_results_alignment",
            lambda r: r["conversation_history"][1].pop("tool_results"),
            "conversation_history[1]: 1 tool_calls but no tool_results",
        ),
        (
            "tool_results_alignment",
            lambda r: r["conversation_history"][1].update(tool_results=['{"items": []}']),
            "conversation_history[1].tool_results[0]: JSON left as a string "
            "('{\"items\": []}'); results are parsed",
        ),
        (
            "client_end_call_entry",
            lambda r: r["conversation_history"][2].update(content="[ЗАВЕРШИЛ ЗВОНОК: other]"),
            "conversation_history[2]: content is '[ЗАВЕРШИЛ ЗВОНОК: other]', expected "
            "'[ЗАВЕРШИЛ ЗВОНОК: done]'",
        ),
        (
            "client_end_call_entry",
            lambda r: r["conversation_history"][2].pop("tool_calls"),
            "conversation_history[2]: the client's end_call marker without the end_call in "
            "tool_calls",
        ),
        (
            "client_end_call_entry",
            lambda r: r["conversation_history"].append(
                {"turn": 1, "speaker": "client", "content": "and", "timestamp": T1}
            ),
            "conversation_history[2]: the conversation went on after the client's end_call",
        ),
    ],
)
def test_strict_rules_add_the_conformance_requirements(rule: str, mutate, message: str) -> None:
    data = _conforming()
    mutate(data)
    assert message not in contract_violations(data, basic_mode=False)
    assert message in contract_violations(data, basic_mode=False, strict=True)
    assert message in contract_violations(data, basic_mode=False, strict=True, rules=[rule])
    others = [r for r in ContractRule if r != rule]
    assert message not in contract_violations(data, basic_mode=False, strict=True, rules=others)


def test_rules_select_violations_and_unknown_rules_are_refused() -> None:
    data = _conforming()
    data["conversation_history"][0]["content"] = None
    assert contract_violations(data, rules=["content_not_null"]) == [
        "conversation_history[0]: content is None, expected a string"
    ]
    assert contract_violations(data, rules=["timestamps"]) == []
    assert contract_violations([1], rules=["timestamps"]) == ["result is a list, not a dict"]
    with pytest.raises(ValueError):
        contract_violations(data, rules=["no_such_rule"])


@pytest.mark.parametrize(
    "entry",
    [
        {"speaker": "client", "tool_calls": [{"function": "end_call"}]},
        {"speaker": "client", "tool_calls": [["x"]], "tool_results": "x"},
        {"speaker": 3, "turn": True, "timestamp": 5, "tool_calls": {"a": 1}},
        {"speaker": "agent_a", "tool_calls": [{"id": 1, "function": {"arguments": None}}]},
        {"speaker": "agent_a", "tool_calls": [None], "tool_results": [None, None]},
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_odd_entries_are_reported_never_raised(entry: dict, strict: bool) -> None:
    data = _result([{"turn": 1, "content": "x", "timestamp": T0, **entry}])
    for basic_mode in (None, True, False):
        assert contract_violations(data, basic_mode=basic_mode, strict=strict)
