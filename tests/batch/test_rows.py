"""`BatchRow`: typed rows that store exactly what they were given, and `UsageTotals`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversation_engine.batch.rows import (
    BatchRow,
    RowKey,
    UsageTotals,
    build_row,
    in_key_order,
    rows_by_key,
)
from conversation_engine.batch.storage import (
    ResultsLog,
    read_results,
    read_rows,
    render_json,
    summarize,
)
from conversation_engine.core._safe_text import json_dumps
from conversation_engine.core.distribution import Distribution

LONE = "lone \ud800 surrogate"


def failed_row_dict() -> dict[str, Any]:
    """A `failed` row in the order `build_row` writes it (error before score, no history)."""
    return {
        "scenario_index": 2,
        "trial": 1,
        "scenario": f"s {LONE}",
        "session_id": "",
        "status": "failed",
        "total_turns": 0,
        "duration_seconds": 0.5,
        "error": LONE,
        "error_type": "ValueError",
        "score": 1,
        "comment": f"Разговор не завершен: {LONE}",
        "seed": 7,
        "end_reason": "error",
        "contract_violations": [],
        "engine": "legacy",
        "prompt_version": "v1.0",
        "batch_id": "b",
        "legacy_extra": {"kept": True},
    }


def test_a_row_keeps_its_keys_their_order_and_extras() -> None:
    data = failed_row_dict()
    row = BatchRow.model_validate(data)
    assert row.to_dict() == data and list(row.to_dict()) == list(data)
    assert dict(row) == data and list(row.model_dump()) == list(data)
    assert row.model_extra == {"legacy_extra": {"kept": True}}
    assert row.key == RowKey(2, 1) == (2, 1)
    assert row.is_failed and row.evaluator_score == 1.0 and not row.has_history
    assert row.has("error") and not row.has("usage")


def test_a_row_read_back_is_written_as_the_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "results.ndjson"
    line = (json_dumps(failed_row_dict()) + "\n").encode("utf-8")
    assert b"\\ud800" in line  # the lone surrogate as its JSON escape
    path.write_bytes(line)
    (row,) = read_rows(path)
    again = tmp_path / "again.ndjson"
    with ResultsLog(again) as log:
        log.append(row)
    assert again.read_bytes() == line
    assert read_results(path) == [failed_row_dict()]


def test_engine_values_are_stored_as_they_came_and_read_safely() -> None:
    result = {
        "session_id": "s",
        "scenario": "x",
        "status": "completed",
        "total_turns": "four",  # an engine breaking the contract: kept, read as no number
        "duration_seconds": True,
        "usage": "junk",
        "conversation_history": [
            "not an entry",
            {"speaker": "client", "content": "hi", "tool_calls": [{"function": {"name": "x"}}]},
            {
                "speaker": "agent_a",
                "content": "ok",
                "tool_calls": [
                    {"function": {"name": "add_to_cart"}},
                    {"function": {"name": "handoff_b"}},
                    "junk",
                ],
            },
        ],
    }
    row = build_row(
        result,
        scenario_index=0,
        trial=0,
        seed=1,
        evaluation={"score": 3, "comment": "", "evaluation_status": "success"},
        evaluate=True,
        violations=["total_turns is a str"],
        extra={"engine": "e"},
    )
    assert row.total_turns == "four" and row.turns is None
    assert row.duration_seconds is True and row.duration is None
    assert row.usage == "junk" and row.usage_object == {} and row.usage_value("cost_usd") is None
    assert row.tool_call_names() == ["add_to_cart", "handoff_b"]
    assert len(row.history) == 2 and row.evaluator_score == 3.0
    assert BatchRow.model_validate(json.loads(json_dumps(row.to_dict()))).to_dict() == row.to_dict()


def test_rows_of_an_old_batch_folder_still_read(tmp_path: Path) -> None:
    # A row as the first versions wrote it: no trial, seed, usage or contract_violations.
    old = {
        "scenario_index": 0,
        "scenario": "a",
        "session_id": "s",
        "status": "completed",
        "total_turns": 2,
        "score": 2,
        "comment": "",
        "evaluation_status": "success",
        "conversation_history": [],
    }
    path = tmp_path / "results.ndjson"
    path.write_text(json.dumps(old) + "\n" + json.dumps({"trial": "not a number"}) + "\n")
    (row,) = read_rows(path)  # the second line is not a batch row: skipped
    assert row.key == (0, 0) and row.contract_violations == [] and row.to_dict() == old


def test_key_order_and_pairing() -> None:
    rows = [{"scenario_index": 1, "trial": 0}, {"scenario_index": 0, "trial": 1}, {}]
    assert [row.key for row in in_key_order(rows)] == [(-1, 0), (0, 1), (1, 0)]
    assert set(rows_by_key(rows)) == {RowKey(1, 0), RowKey(0, 1), RowKey(-1, 0)}
    document = json.loads(render_json("b", rows, "t"))
    assert document["results"] == [{}, {"scenario_index": 0, "trial": 1}, rows[0]]


def test_usage_totals_add_objects_and_ignore_the_rest() -> None:
    totals = UsageTotals.of(
        [
            {"calls": 1, "prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
            {"calls": "2", "total_tokens": None, "cost_usd": 0.25},
            {"calls": "many", "cost_usd": "0.5"},
            "junk",
            None,
        ]
    )
    # The first usage says nothing of its cost: the total cost is unknown, not 0.75.
    assert totals == UsageTotals(
        calls=3, prompt_tokens=8, completion_tokens=2, total_tokens=10, cost_usd=None
    )
    priced = UsageTotals.of([{"cost_usd": 0.25}, {"cost_usd": "0.5"}, "junk", None])
    assert priced.cost_usd == pytest.approx(0.75)


@pytest.mark.parametrize("unknown", [None, "cheap", True, "missing"])
def test_one_unknown_cost_makes_the_total_unknown(unknown: object) -> None:
    usage: dict[str, object] = {"calls": 1, "total_tokens": 15}
    if unknown != "missing":
        usage["cost_usd"] = unknown
    known = {"calls": 2, "total_tokens": 30, "cost_usd": 0.25}
    for order in ([known, usage, known], [usage, known, known], [known, known, usage]):
        totals = UsageTotals.of(order)
        assert totals.cost_usd is None, order  # never a partial sum (0.5)
        assert totals.calls == 5 and totals.total_tokens == 75
    both = UsageTotals.of([known]).plus(UsageTotals.of([usage]))
    assert both.cost_usd is None and both.calls == 3
    assert UsageTotals.of([known]).plus(UsageTotals.of([known])).cost_usd == pytest.approx(0.5)
    assert UsageTotals.of([]).cost_usd == 0.0


def test_the_summary_writes_distributions_in_its_own_shape() -> None:
    rows = [{"scenario_index": i, "score": s, "total_turns": i} for i, s in enumerate((1, 3, 3))]
    dumped = summarize(rows).model_dump(mode="json")
    assert list(dumped["turn_statistics"]) == ["count", "mean", "median", "std", "min", "max"]
    assert dumped["score_statistics"]["count"] == 3
    assert dumped["score_statistics"]["distribution"] == {"1": 1, "2": 0, "3": 2}
    turns = Distribution.model_validate(dumped["turn_statistics"])
    assert turns.n == 3 and turns.mean == 1.0 and turns.p95 is None
    assert Distribution.of([0, 1, 2]).summary_dict() == dumped["turn_statistics"]
