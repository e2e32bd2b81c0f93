"""From two engines' batch rows to the comparison: every metric, per engine and paired."""

from __future__ import annotations

from typing import Any

import pytest

from conversation_engine.compare.analysis import (
    METRICS,
    BootstrapSettings,
    Comparison,
    MetricComparison,
    compare_rows,
)
from conversation_engine.compare.stats import MIN_SCENARIOS
from tests.compare.batch_rows import row

SCENARIOS = range(6)
"""Enough to describe; too few to flag anything (fewer than `MIN_SCENARIOS`)."""
ENOUGH = range(12)
"""As many as the bundled shop scenarios: a shift seen in all of them is flagged (p = 2/4096)."""


def compare(
    rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], **options: Any
) -> Comparison:
    return compare_rows(rows_a, rows_b, label_a="legacy", label_b="autogen", **options)


def paired(comparison: Comparison, key: str) -> MetricComparison:
    found = [
        item for item in (*comparison.paired, *comparison.breakdowns) if item.metric.key == key
    ]
    assert len(found) == 1, f"{key}: {[item.metric.key for item in comparison.paired]}"
    return found[0]


# ------------------------------------------------------------------------------ per engine


def test_engine_summary_counts_statuses_end_reasons_tools_handoffs_usage_violations() -> None:
    rows = [
        row(0, tools=["rag_find_products", "add_to_cart", "handoff_support"], duration=1.0),
        row(1, tools=["rag_find_products", "handoff_support"], end_reason="agent_end_call"),
        row(2, tools=["rag_find_products", "rag_find_products", "handoff_agent"], duration=3.0),
        row(3, status="timeout", end_reason="timeout", turns=9, duration=9.0, violations=["x"]),
        row(4, status="failed", end_reason="error", turns=0, duration=0.5),
    ]
    summary = compare(rows, rows).a
    assert summary.label == "legacy" and summary.runs == 5
    assert summary.status_counts == {"completed": 3, "timeout": 1, "failed": 1}
    assert summary.end_reasons == {
        "client_end_call": 2,
        "agent_end_call": 1,
        "timeout": 1,
        "error": 1,
    }
    # Four rows have a history (the failed one has none): 6 + 1 calls to four conversations.
    assert summary.tool_calls == {"add_to_cart": 2, "rag_find_products": 5}
    assert summary.tool_calls_per_conversation == {"add_to_cart": 0.5, "rag_find_products": 1.25}
    assert summary.handoffs == {"agent": 1, "support": 2}
    assert summary.metrics["tool_calls"].mean == pytest.approx(7 / 4)
    assert summary.metrics["handoffs"].mean == pytest.approx(3 / 4)
    assert summary.metrics["failed"].mean == pytest.approx(1 / 5)
    assert summary.usage.total_tokens == 5000
    assert summary.usage.cost_usd == pytest.approx(0.05)
    assert summary.usage.evaluation_tokens == 4 * 50
    assert (summary.contract_violations, summary.conversations_with_violations) == (1, 1)
    assert summary.violation_examples == ["x"]


def test_engine_summary_turn_and_wall_time_percentiles() -> None:
    rows = [row(s, turns=s + 1, duration=float(s + 1)) for s in range(10)]
    metrics = compare(rows, rows).a.metrics
    assert (metrics["turns"].p50, metrics["turns"].p95) == (5.5, pytest.approx(9.55))
    duration = metrics["duration_seconds"]
    assert (duration.p50, duration.p95) == (5.5, pytest.approx(9.55))
    assert (duration.min, duration.max, duration.n) == (1.0, 10.0, 10)


def test_pass_k_on_a_known_table() -> None:
    # Four trials per scenario; scenario 0 passes 4 of 4, scenario 1 3 of 4, scenario 2 2 of 4.
    passes = {0: 4, 1: 3, 2: 2}
    rows = [
        row(s, trial, score=3 if trial < passes[s] else 2) for s in passes for trial in range(4)
    ]
    pass_k = compare(rows, rows, repeat=2).a.pass_k
    assert pass_k.k == 2
    # pass^2 = C(p, 2) / C(4, 2): 6/6, 3/6, 1/6.
    assert pass_k.per_scenario == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 6)}
    assert pass_k.mean == pytest.approx((1 + 0.5 + 1 / 6) / 3)
    assert pass_k.curve == [pytest.approx(0.75), pytest.approx((1 + 0.5 + 1 / 6) / 3)]
    # A lower threshold makes every trial pass.
    assert compare(rows, rows, repeat=2, pass_threshold=2).a.pass_k.mean == 1.0
    # k defaults to the most trials any scenario has.
    assert compare(rows, rows).repeat == 4


def test_pass_k_leaves_out_unjudged_runs_and_counts_failures_as_not_passed() -> None:
    rows = [
        row(0, 0),
        row(0, 1, score=None, evaluation_status="failed"),  # the evaluator's outage
        row(1, 0),
        row(1, 1, status="failed"),
    ]
    summary = compare(rows, rows, repeat=2).a
    assert summary.pass_k.per_scenario == {0: None, 1: 0.0}
    assert summary.evaluation_failures == 1
    assert summary.metrics["score"].n == 3


# ------------------------------------------------------------------------------ paired


def test_every_metric_is_compared_in_order() -> None:
    rows = [row(s) for s in SCENARIOS]
    keys = [item.metric.key for item in compare(rows, rows).paired]
    expected = [metric.key for metric in METRICS]
    at = expected.index("duration_seconds") + 1
    expected[at:at] = ["duration_p50", "duration_p95"]
    assert keys == [*expected, "pass_k"]


def test_identical_engines_have_no_real_difference() -> None:
    rows = [row(s, duration=0.1 * (s + 1), tokens=900 + 37 * s) for s in SCENARIOS]
    comparison = compare(rows, [dict(r) for r in rows])
    assert comparison.significant() == []
    for item in (*comparison.paired, *comparison.breakdowns):
        assert (item.difference.low, item.difference.high) == (0, 0), item.metric.key
        assert item.verdict == "no real difference"


def test_a_constant_shift_is_flagged_with_its_direction() -> None:
    # Wall times differ between scenarios (as they do): a quantile sees a shift only through
    # values that are not all tied.
    rows_a = [row(s, turns=4, tokens=1000, duration=1.0 + 0.01 * s) for s in ENOUGH]
    rows_b = [row(s, turns=6, tokens=1100, duration=0.5 + 0.01 * s) for s in ENOUGH]
    comparison = compare(rows_a, rows_b)
    turns = paired(comparison, "turns")
    assert (turns.value_a, turns.value_b) == (4, 6)
    assert (turns.difference.estimate, turns.difference.low, turns.difference.high) == (2, 2, 2)
    # Five differences can be tested (the others are 0 on every pair): Holm multiplies the
    # smallest p-value, 2/4096 each, by 5.
    assert turns.difference.p_value == 2 / 4096
    assert turns.difference.adjusted_p == pytest.approx(5 * 2 / 4096)
    assert paired(comparison, "score").difference.p_value is None
    assert turns.verdict == "autogen higher"  # more turns is neither better nor worse
    tokens = paired(comparison, "total_tokens")
    assert tokens.difference.estimate == 100
    assert tokens.verdict == "autogen higher (worse than legacy)"
    duration = paired(comparison, "duration_seconds")
    assert duration.verdict == "autogen lower (better than legacy)"
    for key in ("duration_p50", "duration_p95"):
        assert paired(comparison, key).difference.estimate == pytest.approx(-0.5)
    flagged = {item.metric.key for item in comparison.significant()}
    assert flagged == {"turns", "total_tokens", "duration_seconds", "duration_p50", "duration_p95"}


def test_noise_around_zero_is_not_flagged() -> None:
    rows_a = [row(s, duration=1.0) for s in range(10)]
    rows_b = [row(s, duration=1.5 if s % 2 else 0.5) for s in range(10)]
    duration = paired(compare(rows_a, rows_b), "duration_seconds")
    assert duration.difference.estimate == pytest.approx(0)
    assert duration.difference.low == pytest.approx(-0.3)
    assert duration.difference.high == pytest.approx(0.3)
    assert not duration.difference.significant
    assert duration.verdict == "no real difference"


def test_wall_time_quantiles_are_compared_over_the_paired_runs() -> None:
    rows_a = [row(s, duration=float(s + 1)) for s in ENOUGH]
    rows_b = [row(s, duration=2.0 * (s + 1)) for s in ENOUGH]
    comparison = compare(rows_a, rows_b)
    p50, p95 = paired(comparison, "duration_p50"), paired(comparison, "duration_p95")
    assert (p50.value_a, p50.value_b, p50.difference.estimate) == (6.5, 13, 6.5)
    assert p95.value_a == pytest.approx(11.45) and p95.value_b == pytest.approx(22.9)
    assert p95.difference.estimate == pytest.approx(11.45)
    # B is twice A on every pair: every resample's difference is positive. The p95 of 12
    # values reads only the top two (A: 11, 12; B: 22, 24). Swapping scenarios 0-4 (B at most
    # 10) changes neither top two, so 2^5 of the 4096 arrangements are exactly as extreme as
    # the observed one; swapping any other lowers the difference: p = 2 × 32/4096 = 1/64.
    assert p95.difference.low is not None and p95.difference.low > 0
    assert p95.difference.p_value == 1 / 64
    # Holm over the three wall-time differences: 1/64 is the largest p-value, times 1.
    assert p95.difference.adjusted_p == 1 / 64
    assert p50.difference.significant and p95.difference.significant
    assert p50.verdict == "autogen higher (worse than legacy)"
    # The family: the mean, p50 and p95 of wall time, nothing else differs.
    assert [item.metric.key for item in comparison.significant()] == [
        "duration_seconds",
        "duration_p50",
        "duration_p95",
    ]


def test_too_few_scenarios_never_flag_anything() -> None:
    rows_a = [row(s, trial, turns=4) for s in range(2) for trial in range(5)]
    rows_b = [row(s, trial, turns=8) for s in range(2) for trial in range(5)]
    turns = paired(compare(rows_a, rows_b), "turns")
    assert (turns.difference.low, turns.difference.high) == (4, 4)
    assert turns.difference.n_pairs == 10 and turns.difference.n_scenarios == 2
    assert not turns.difference.significant
    assert "only 2 scenario(s)" in turns.difference.note
    # One scenario short of the minimum: the same shift, tested, and still not flagged.
    fewer = range(MIN_SCENARIOS - 1)
    shifted = compare([row(s, turns=4) for s in fewer], [row(s, turns=8) for s in fewer])
    turns = paired(shifted, "turns")
    assert turns.difference.p_value == 2 / 2 ** (MIN_SCENARIOS - 1)
    assert turns.difference.adjusted_p is None and shifted.significant() == []
    assert turns.verdict == "no real difference"
    enough = range(MIN_SCENARIOS)
    shifted = compare([row(s, turns=4) for s in enough], [row(s, turns=8) for s in enough])
    assert [item.metric.key for item in shifted.significant()] == ["turns"]


def test_pass_k_is_paired_by_scenario() -> None:
    rows_a = [row(s, trial, score=2) for s in ENOUGH for trial in range(2)]
    rows_b = [row(s, trial, score=3) for s in ENOUGH for trial in range(2)]
    comparison = compare(rows_a, rows_b)
    pass_k = paired(comparison, "pass_k")
    assert pass_k.metric.label == "pass^2 per scenario"
    assert (pass_k.value_a, pass_k.value_b, pass_k.difference.n_pairs) == (0, 1, 12)
    # One value per scenario, the two trials of each move together: 2^12 arrangements.
    assert pass_k.difference.p_value == paired(comparison, "score").difference.p_value == 2 / 4096
    assert pass_k.verdict == "autogen higher (better than legacy)"
    assert paired(comparison, "passed").difference.estimate == 1
    assert paired(comparison, "score").difference.estimate == 1


def test_missing_runs_and_one_sided_scenarios_are_left_out_of_the_pairs() -> None:
    rows_a = [row(s) for s in range(6)]
    rows_b = [row(s) for s in range(5)] + [row(6)]  # B never ran scenario 5; only B ran 6
    comparison = compare(rows_a, rows_b)
    assert paired(comparison, "turns").difference.n_pairs == 5
    assert comparison.scenario_count == 7
    table = {scenario.index: scenario for scenario in comparison.scenarios}
    assert sorted(table) == list(range(7))
    assert table[5].trials[0].a is not None and table[5].trials[0].b is None
    assert table[6].trials[0].a is None and table[6].trials[0].b is not None
    assert table[6].score_mean_a is None and table[6].score_mean_b == 3


def test_a_side_that_ran_nothing_gives_no_pairs() -> None:
    comparison = compare([row(s) for s in SCENARIOS], [])
    assert comparison.b.runs == 0 and comparison.b.pass_k.mean is None
    for item in comparison.paired:
        assert item.difference.n_pairs == 0 and item.difference.estimate is None
        assert item.verdict == "no real difference"


def test_failed_runs_count_as_failures_and_drop_out_of_history_metrics() -> None:
    rows_a = [row(s) for s in SCENARIOS]
    rows_b = [row(s, status="failed", end_reason="error") if s == 0 else row(s) for s in SCENARIOS]
    comparison = compare(rows_a, rows_b)
    failed = paired(comparison, "failed")
    assert (failed.value_a, failed.value_b) == (0, pytest.approx(1 / 6))
    assert not failed.difference.significant  # one scenario in six is not enough evidence
    assert paired(comparison, "tool_calls").difference.n_pairs == 5  # a failed run has no history
    assert paired(comparison, "score").difference.n_pairs == 6  # a failed run scores 1
    assert paired(comparison, "status:failed").value_b == pytest.approx(1 / 6)
    assert comparison.b.status_counts == {"failed": 1, "completed": 5}


def test_a_failed_evaluation_is_left_out_of_the_score() -> None:
    rows_a = [row(s) for s in SCENARIOS]
    rows_b = [row(0, score=None, evaluation_status="failed"), *(row(s) for s in range(1, 6))]
    comparison = compare(rows_a, rows_b)
    assert paired(comparison, "score").difference.n_pairs == 5
    assert paired(comparison, "turns").difference.n_pairs == 6
    assert comparison.b.evaluation_failures == 1


def test_breakdowns_compare_status_mix_end_reasons_and_each_tool() -> None:
    rows_a = [row(s, tools=["rag_find_products"]) for s in ENOUGH]
    rows_b = [
        row(s, tools=["rag_find_products", "change_delivery_date"], end_reason="agent_end_call")
        for s in ENOUGH
    ]
    comparison = compare(rows_a, rows_b)
    keys = [item.metric.key for item in comparison.breakdowns]
    assert keys == [
        "status:completed",
        "end_reason:agent_end_call",
        "end_reason:client_end_call",
        "tool:change_delivery_date",
        "tool:rag_find_products",
    ]
    assert paired(comparison, "status:completed").difference.estimate == 0
    assert paired(comparison, "end_reason:agent_end_call").difference.estimate == 1
    assert paired(comparison, "end_reason:client_end_call").difference.estimate == -1
    new_tool = paired(comparison, "tool:change_delivery_date")
    assert (new_tool.value_a, new_tool.value_b) == (0, 1)
    assert new_tool.metric.label == "change_delivery_date calls per conversation"
    assert not paired(comparison, "tool:rag_find_products").difference.significant
    flagged = {item.metric.key for item in comparison.significant()}
    assert flagged == {
        "tool_calls",
        "end_reason:agent_end_call",
        "end_reason:client_end_call",
        "tool:change_delivery_date",
    }
    # Metrics and breakdowns are one family: these four, corrected together.
    for key in flagged:
        assert paired(comparison, key).difference.adjusted_p == pytest.approx(4 * 2 / 4096)
    assert comparison.b.tool_calls_per_conversation == {
        "change_delivery_date": 1.0,
        "rag_find_products": 1.0,
    }


def test_contract_violations_are_compared() -> None:
    rows_a = [row(s) for s in ENOUGH]
    rows_b = [row(s, violations=["history[1]: content is null"]) for s in ENOUGH]
    comparison = compare(rows_a, rows_b)
    violations = paired(comparison, "contract_violations")
    assert violations.difference.estimate == 1
    assert violations.verdict == "autogen higher (worse than legacy)"
    assert comparison.b.contract_violations == 12
    assert comparison.b.violation_examples == ["history[1]: content is null"]


def test_tokens_and_cost_are_compared_per_conversation() -> None:
    rows_a = [row(s, tokens=1000, cost=0.010) for s in ENOUGH]
    rows_b = [row(s, tokens=1000 + 10 * s, cost=0.012) for s in ENOUGH]
    comparison = compare(rows_a, rows_b)
    tokens = paired(comparison, "total_tokens")
    assert tokens.difference.estimate == pytest.approx(55)
    # Scenario 0 has no difference: it cannot move, and 11 others can: p = 2/2^11.
    assert tokens.difference.p_value == 2 / 2048
    cost = paired(comparison, "cost_usd")
    assert cost.difference.estimate == pytest.approx(0.002)
    assert cost.verdict == "autogen higher (worse than legacy)"
    assert comparison.b.usage.total_tokens == 12000 + 660


@pytest.mark.parametrize("unknown_on", ["a", "b", "both"])
def test_an_unknown_cost_is_not_compared(unknown_on: str) -> None:
    rows_a = [row(s, cost=0.010) for s in ENOUGH]
    rows_b = [row(s, cost=0.012) for s in ENOUGH]
    # One conversation of unknown cost is enough to make the side's cost unknown.
    if unknown_on in ("a", "both"):
        rows_a[3] = row(3, cost=None)
    if unknown_on in ("b", "both"):
        rows_b = [row(s, cost=None) for s in ENOUGH]
    comparison = compare(rows_a, rows_b)
    cost = paired(comparison, "cost_usd")
    assert cost.difference.n_pairs == 0 and cost.difference.estimate is None
    assert not cost.difference.significant and cost.verdict == "no real difference"
    sides = {"a": comparison.a, "b": comparison.b}
    for side, summary in sides.items():
        unknown = unknown_on in (side, "both")
        assert (summary.usage.cost_usd is None) is unknown
        assert (summary.metrics["cost_usd"].n == 0) is unknown  # no partial figure
    # A side whose cost is known keeps its figure; the unknown one has none.
    expected = {"a": 0.010, "b": 0.012}
    for side, value in (("a", cost.value_a), ("b", cost.value_b)):
        if unknown_on in (side, "both"):
            assert value is None
        else:
            assert value == pytest.approx(expected[side])
    # The tokens are still compared.
    assert paired(comparison, "total_tokens").difference.n_pairs == 12
    assert comparison.model_dump(mode="json")["a"]["usage"]["cost_usd"] == (
        None if unknown_on in ("a", "both") else pytest.approx(0.12)
    )


def test_the_comparison_is_reproducible_and_round_trips_through_json() -> None:
    rows_a = [
        row(s, t, duration=0.3 + 0.07 * ((s * 5 + t) % 7)) for s in range(8) for t in range(2)
    ]
    rows_b = [
        row(s, t, duration=0.3 + 0.05 * ((s * 3 + t) % 9)) for s in range(8) for t in range(2)
    ]
    first = compare(rows_a, rows_b).model_dump(exclude={"generated_at"})
    assert compare(rows_a, rows_b).model_dump(exclude={"generated_at"}) == first
    comparison = compare(rows_a, rows_b)
    assert Comparison.model_validate_json(comparison.model_dump_json()) == comparison
    # comparison.json says how it decided.
    bootstrap = comparison.model_dump(mode="json")["bootstrap"]
    assert bootstrap["test"] == "scenario sign-flip permutation"
    assert (bootstrap["correction"], bootstrap["alpha"]) == ("holm", 0.05)
    assert bootstrap["min_scenarios"] == MIN_SCENARIOS


def test_a_seed_past_exact_enumeration_still_reproduces() -> None:
    # 20 scenarios > 2^10 permutations: arrangements are drawn, from the seed.
    rows_a = [row(s, duration=1.0 + 0.1 * (s % 5)) for s in range(20)]
    rows_b = [row(s, duration=1.0 + 0.1 * ((s * 3) % 7)) for s in range(20)]
    settings = BootstrapSettings(resamples=200, permutations=1024)
    first = paired(compare(rows_a, rows_b, bootstrap=settings), "duration_seconds").difference
    again = paired(compare(rows_a, rows_b, bootstrap=settings), "duration_seconds").difference
    assert first.p_value is not None and first == again
    other = BootstrapSettings(resamples=200, permutations=1024, seed=settings.seed + 1)
    assert paired(compare(rows_a, rows_b, bootstrap=other), "duration_seconds").difference != first


def test_identical_engines_with_noisy_runs_flag_nothing() -> None:
    # The same rows on both sides, varied between scenarios and trials: every difference is 0,
    # nothing is tested, nothing is flagged, and the note says why.
    rows = [
        row(s, t, turns=3 + (s * t) % 5, duration=0.2 + 0.13 * ((s + 2 * t) % 7), tokens=900 + s)
        for s in ENOUGH
        for t in range(3)
    ]
    comparison = compare(rows, [dict(r) for r in rows])
    assert comparison.significant() == []
    for item in (*comparison.paired, *comparison.breakdowns):
        assert item.difference.p_value is None and item.difference.adjusted_p is None
        assert item.difference.note == "every paired difference is 0: nothing to test"
