"""A budget below a batch's cost stops it within one conversation's cost, and a resume with a
higher cap finishes it; an unpriced model with a budget is an error, never $0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.batch.processor import BatchProcessor
from conversation_engine.compare.harness import resume_comparison, run_comparison
from conversation_engine.core.errors import UserInputError
from conversation_engine.llm.endpoint import OpenAIWrapper
from conversation_engine.observability.budget import (
    Budget,
    BudgetReachedError,
    UnpricedModelError,
)
from conversation_engine.observability.prices import PriceError, cost_usd, extra_prices
from tests.shop import HANDOFF_SCENARIO

MODEL = "gpt-4o-mini"


def _row_cost(row: dict) -> float:
    total = 0.0
    for usage in (row.get("usage"), row.get("evaluation_usage")):
        if usage:
            total += cost_usd(MODEL, usage["prompt_tokens"], usage["completion_tokens"]) or 0.0
    return total


async def _batch(tmp_path: Path, budget: Budget, batch_id: str | None = None) -> dict:
    async with OpenAIWrapper.simulated(model=MODEL) as wrapper:
        processor = BatchProcessor(
            wrapper, 1, engine="legacy", output_dir=tmp_path, max_turns=3, budget=budget
        )
        if batch_id is None:
            batch_id = processor.create_batch_job(
                [HANDOFF_SCENARIO], prompt_spec_name="multiagent_prompts", repeat=4
            )
            summary = await processor.run_batch(batch_id)
        else:
            summary = await processor.resume_batch(batch_id)
        await processor.aclose()
        return summary


async def test_a_budget_stops_the_batch_and_a_higher_cap_finishes_it(tmp_path: Path) -> None:
    cap = 0.0012  # about two conversations of this scenario at gpt-4o-mini's price
    first = await _batch(tmp_path, Budget(cap))

    assert first["status"] == "cancelled"
    assert first["budget"]["reached"] is True
    rows = first["results"]
    assert 0 < len(rows) < 4
    costs = [_row_cost(row) for row in rows]
    spent = first["budget"]["spent_usd"]
    # The live estimate is what the rows' tokens cost (the evaluator included) ...
    assert spent == pytest.approx(sum(costs), abs=1e-6)
    # ... and the last conversation started below the cap, so it overshoots by at most one.
    assert cap <= spent < cap + max(costs)
    # The simulated LLM's own cost stays unknown: the budget prices what was asked for.
    assert all(row["usage"]["cost_usd"] is None for row in rows)

    second = await _batch(tmp_path, Budget(1.0), first["batch_id"])
    assert second["status"] == "completed"
    assert len(second["results"]) == 4
    assert sorted(row["trial"] for row in second["results"]) == [0, 1, 2, 3]
    # The cap counts the whole batch: what the first run spent, then the rest.
    total = sum(_row_cost(row) for row in second["results"])
    assert second["budget"]["spent_usd"] == pytest.approx(total, abs=1e-6)


async def test_an_unpriced_model_with_a_budget_is_an_error(tmp_path: Path) -> None:
    async with OpenAIWrapper.simulated() as wrapper:
        with pytest.raises(UnpricedModelError, match=r"model 'simulated'.*MODEL_PRICES"):
            BatchProcessor(wrapper, 1, engine="legacy", output_dir=tmp_path, budget=Budget(1.0))


async def test_model_prices_price_an_unknown_model(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"simulated": [0.001, 0.002]}', encoding="utf-8")
    budget = Budget(10.0, extra_prices=str(prices))
    budget.check_priced(["simulated", MODEL])
    assert budget.cost("simulated", 1000, 500) == pytest.approx(0.002)


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(UserInputError, match="positive"):
        Budget(0)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=60))
def test_any_model_prices_text_is_a_table_or_one_clear_error(text: str) -> None:
    if not text.strip().startswith("{"):
        text = "{" + text  # a path is read from disk: keep to JSON text here
    try:
        table = extra_prices(text)
    except PriceError as error:
        assert "MODEL_PRICES" in str(error)
    else:
        assert all(len(prices) == 2 for prices in table.values())


async def test_a_comparison_stops_at_its_budget_and_resumes_with_a_higher_cap(
    tmp_path: Path,
) -> None:
    out = tmp_path / "compare"
    options = {"engine_a": "legacy", "engine_b": "legacy", "max_turns": 3, "concurrency": 1}
    budget = Budget(0.0012)  # about two of the six conversations, both sides counted
    async with OpenAIWrapper.simulated(model=MODEL) as wrapper:
        with pytest.raises(BudgetReachedError, match=r"Budget reached.*of 6 conversations"):
            await run_comparison(
                [HANDOFF_SCENARIO], repeat=3, out_dir=out, openai_wrapper=wrapper,
                budget=budget, **options,
            )  # fmt: skip
    # One cap for both sides: it counts every row either side wrote, and stopped them both.
    rows = [row for side in ("a", "b") for row in _stored_rows(out, side)]
    assert 0 < len(rows) < 6
    spent = budget.spent_usd
    assert spent == pytest.approx(sum(_row_cost(row) for row in rows), abs=1e-6)
    assert budget.cap_usd <= spent < budget.cap_usd + max(_row_cost(row) for row in rows)
    assert not (out / "comparison.json").exists()  # no report of a part of the runs

    async with OpenAIWrapper.simulated(model=MODEL) as wrapper:
        finished = await resume_comparison(out, openai_wrapper=wrapper, budget=Budget(1.0))
    assert len(finished.a.rows) == len(finished.b.rows) == 3
    assert sorted(row["trial"] for row in finished.b.rows) == [0, 1, 2]
    assert (out / "comparison.json").exists()


def _stored_rows(out: Path, side: str) -> list[dict]:
    job = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    results = out / "batches" / job["batch_ids"][side] / "results.ndjson"
    lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
    return [json.loads(line) for line in lines if line.strip()]
