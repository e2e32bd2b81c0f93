"""The comparison statistics on inputs whose answers can be worked out by hand."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Hashable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation_engine.compare.stats import (
    DEFAULT_SEED,
    MIN_SCENARIOS,
    Distribution,
    Interval,
    alpha_of,
    decide,
    holm,
    paired_bootstrap,
    paired_quantile_bootstrap,
    pass_hat_k,
    quantile,
)

# ------------------------------------------------------------------------------ quantile


def test_quantile_is_linear_interpolation_between_order_statistics() -> None:
    hundred = [float(v) for v in range(1, 101)]
    assert quantile(hundred, 0.5) == 50.5
    assert quantile(hundred, 0.95) == pytest.approx(95.05)
    assert quantile([1, 2, 3, 4], 0.25) == 1.75
    assert quantile([3, 1, 2], 0.5) == 2  # order of the input does not matter
    assert quantile([7], 0.95) == 7
    assert quantile([1, 2], 0) == 1
    assert quantile([1, 2], 1) == 2
    assert quantile([], 0.5) is None


def test_quantile_matches_the_inclusive_method_of_the_standard_library() -> None:
    sample = [0.12, 0.5, 0.31, 2.4, 0.9, 0.05, 1.7, 0.33, 0.8]
    cuts = statistics.quantiles(sample, n=100, method="inclusive")
    for percent in (5, 25, 50, 75, 95):
        assert quantile(sample, percent / 100) == pytest.approx(cuts[percent - 1])


def test_quantile_rejects_q_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        quantile([1.0], 1.5)


def test_distribution_of_a_known_sample() -> None:
    found = Distribution.of([1, 2, 3, 4, 5])
    assert (found.n, found.mean, found.median, found.min, found.max) == (5, 3, 3, 1, 5)
    assert found.std == pytest.approx(math.sqrt(2.5))
    assert found.p50 == 3
    assert found.p95 == pytest.approx(4.8)


def test_distribution_of_one_value_and_of_none() -> None:
    one = Distribution.of([2.5])
    assert (one.n, one.mean, one.std, one.p50, one.p95) == (1, 2.5, 0.0, 2.5, 2.5)
    assert Distribution.of([]) == Distribution()


# ------------------------------------------------------------------------------ pass^k


@pytest.mark.parametrize(
    ("passes", "trials", "k", "expected"),
    [
        (3, 4, 1, 0.75),  # pass^1 is the pass rate
        (3, 4, 2, 0.5),  # C(3,2)/C(4,2) = 3/6
        (3, 4, 3, 0.25),  # C(3,3)/C(4,3) = 1/4
        (3, 4, 4, 0.0),  # with k = trials: all passed or nothing
        (4, 4, 4, 1.0),
        (0, 4, 1, 0.0),
        (2, 5, 2, 0.1),  # C(2,2)/C(5,2) = 1/10
    ],
)
def test_pass_hat_k_on_a_known_table(passes: int, trials: int, k: int, expected: float) -> None:
    assert pass_hat_k(passes, trials, k) == pytest.approx(expected)


def test_pass_hat_k_needs_k_trials_and_k_at_least_one() -> None:
    assert pass_hat_k(2, 3, 5) is None
    with pytest.raises(ValueError, match="at least 1"):
        pass_hat_k(1, 1, 0)


# ------------------------------------------------------------------------------ paired bootstrap


def test_constant_difference_gives_a_zero_width_interval_at_that_value() -> None:
    interval = paired_bootstrap([(scenario, 0.7) for scenario in range(12)])
    assert interval.estimate == pytest.approx(0.7)
    assert interval.low == interval.high == interval.estimate  # no width, not even rounding
    assert interval.n_pairs == 12 and interval.n_scenarios == 12
    # Only "no swap" and "swap all" of the 2^12 arrangements are as extreme: p = 2/4096.
    assert interval.p_value == interval.adjusted_p == 2 / 4096
    assert interval.significant and interval.note == ""


def test_identical_engines_give_zero_zero_and_no_flag() -> None:
    interval = paired_bootstrap([(scenario, 0.0) for scenario in range(20)])
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.significant
    assert interval.p_value is None and interval.adjusted_p is None
    assert "every paired difference is 0" in interval.note


def test_symmetric_two_point_sample_gives_its_binomial_interval() -> None:
    # Ten scenarios, five with difference −1 and five with +1. A resample's mean is
    # (2K − 10)/10 with K ~ Binomial(10, 1/2): P(K ≤ 1) = 1.1% and P(K ≤ 2) = 5.5%, so the
    # 2.5% and 97.5% points are K = 2 and K = 8, the interval [−0.6, +0.6].
    interval = paired_bootstrap([(s, -1.0 if s % 2 else 1.0) for s in range(10)])
    assert interval.estimate == 0
    assert interval.low == pytest.approx(-0.6)
    assert interval.high == pytest.approx(0.6)
    assert not interval.significant


def test_shifted_sample_matches_the_normal_interval_and_is_flagged() -> None:
    # Fifty scenarios alternating 0 and 2: mean 1, standard error 1/√50 ≈ 0.141, so about
    # 1 ± 1.96 × 0.141 = [0.72, 1.28]; the resampled means are 2K/50 with K ~ Binomial(50, 1/2)
    # and K = 18 and K = 32 are exactly those points.
    interval = paired_bootstrap([(s, float(2 * (s % 2))) for s in range(50)])
    assert interval.estimate == 1
    assert interval.low == pytest.approx(0.72)
    assert interval.high == pytest.approx(1.28)
    assert interval.significant


def test_resampling_draws_whole_scenarios() -> None:
    # Scenario "x" has three trials at +1, scenario "y" one trial at +3: the estimate is the
    # mean over pairs, 6/4 = 1.5. A resample is {x, x} (mean 1), {x, y} (1.5) or {y, y} (3),
    # so the interval is [1, 3]; resampling single trials would make it narrower.
    interval = paired_bootstrap([("x", 1.0), ("x", 1.0), ("x", 1.0), ("y", 3.0)])
    assert interval.estimate == 1.5
    assert (interval.low, interval.high) == (1.0, 3.0)
    assert interval.n_pairs == 4 and interval.n_scenarios == 2


def test_one_pair_is_never_flagged() -> None:
    interval = paired_bootstrap([("only", 2.0)])
    assert (interval.estimate, interval.low, interval.high) == (2.0, 2.0, 2.0)
    assert not interval.significant
    assert "only 1 scenario" in interval.note


def test_too_few_scenarios_are_not_flagged_even_when_the_test_rejects() -> None:
    # Nine scenarios all +1: p = 2/512 < 0.05, the interval is [1, 1], but 9 < MIN_SCENARIOS.
    interval = paired_bootstrap([(s, 1.0) for s in range(9)])
    assert MIN_SCENARIOS == 10
    assert interval.low == 1.0 and interval.p_value == 2 / 512
    assert not interval.significant and interval.adjusted_p is None
    assert "only 9 scenario(s); at least 10 are needed" in interval.note
    assert paired_bootstrap([(s, 1.0) for s in range(9)], min_scenarios=9).significant


def test_no_pairs_gives_no_interval() -> None:
    interval = paired_bootstrap([])
    assert (interval.estimate, interval.low, interval.high, interval.n_pairs) == (
        None,
        None,
        None,
        0,
    )
    assert not interval.significant and "no pairs" in interval.note


def test_the_seed_makes_intervals_reproducible() -> None:
    noisy = [(s, float((s * 37) % 11) - 4.0) for s in range(15)]
    first = paired_bootstrap(noisy)
    assert paired_bootstrap(noisy, seed=DEFAULT_SEED) == first
    assert paired_bootstrap(noisy, seed=DEFAULT_SEED + 1) != first


def test_confidence_sets_the_percentiles() -> None:
    sample = [(s, float(s)) for s in range(30)]
    wide = paired_bootstrap(sample, confidence=0.99)
    narrow = paired_bootstrap(sample, confidence=0.5)
    assert wide.low is not None and narrow.low is not None
    assert wide.high is not None and narrow.high is not None
    assert wide.low < narrow.low < narrow.high < wide.high
    assert narrow.confidence == 0.5


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap([(0, 1.0)], resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([(0, 1.0)], confidence=1.0)
    with pytest.raises(ValueError, match="permutations"):
        paired_bootstrap([(0, 1.0)], permutations=0)


# ------------------------------------------------------------------------------ quantile difference


def test_quantile_difference_of_a_constant_shift_is_that_shift() -> None:
    # Every B above every A: any swap lowers quantile(B) or raises quantile(A), so only "no
    # swap" and "swap all" are as extreme, p = 2/4096, for p50 and p95 alike.
    pairs = [(s, 1 + 0.01 * s, 1.25 + 0.01 * s) for s in range(12)]
    for q in (0.5, 0.95):
        interval = paired_quantile_bootstrap(pairs, q)
        assert interval.estimate == pytest.approx(0.25)
        assert (interval.low, interval.high) == (interval.estimate, interval.estimate)
        assert interval.p_value == 2 / 4096
        assert interval.significant
    fewer = paired_quantile_bootstrap(pairs[:9], 0.5)
    assert fewer.p_value == 2 / 512 and not fewer.significant


def test_quantile_difference_is_the_difference_of_the_quantiles() -> None:
    pairs = [(0, 1.0, 2.0), (1, 2.0, 4.0), (2, 3.0, 9.0)]
    assert paired_quantile_bootstrap(pairs, 0.5).estimate == 2.0  # median 4 − median 2
    assert paired_quantile_bootstrap(pairs, 1.0).estimate == 6.0  # max 9 − max 3
    same = paired_quantile_bootstrap([(s, float(s), float(s)) for s in range(6)], 0.95)
    assert (same.estimate, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)
    assert same.p_value is None and "every paired difference is 0" in same.note


def test_quantile_difference_degenerate_inputs() -> None:
    assert paired_quantile_bootstrap([], 0.5).estimate is None
    one = paired_quantile_bootstrap([("s", 1.0, 4.0)], 0.95)
    assert (one.estimate, one.low, one.high, one.significant) == (3.0, 3.0, 3.0, False)
    with pytest.raises(ValueError, match="between 0 and 1"):
        paired_quantile_bootstrap([("s", 1.0, 4.0)], 95)


def test_a_quantile_moves_only_when_enough_scenarios_move() -> None:
    # Twelve scenarios, A always 1.0 and B always 0.5: the p50 difference is −0.5. After k
    # swaps B holds 12 − k values 0.5 and the median stays 0.5 while 12 − k ≥ 7; A's median
    # stays 1.0 likewise, so every arrangement with k ≤ 5 (or, mirrored, k ≥ 7) is as extreme:
    # P = (1 + 12 + 66 + 220 + 495 + 792) / 4096 = 1586/4096 on each side. Ties hide a shift
    # from a quantile; the mean of the same data is as extreme as it gets.
    pairs = [(s, 1.0, 0.5) for s in range(12)]
    p50 = paired_quantile_bootstrap(pairs, 0.5)
    assert p50.estimate == -0.5
    assert p50.p_value == 2 * 1586 / 4096 and not p50.significant
    assert paired_bootstrap([(s, b - a) for s, a, b in pairs]).p_value == 2 / 4096


# ------------------------------------------------------------------------------ sign-flip test


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        # All six positive: only "no swap" (and, mirrored, "swap all") is as extreme: 2/64.
        ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2 / 64),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2 / 64),
        # Five +1 and one −1: the mean is 4/6; a sum of signs ≥ 4 means at most one minus,
        # 1 + 6 = 7 of 64 arrangements, doubled: 14/64.
        ([1.0, 1.0, 1.0, 1.0, 1.0, -1.0], 14 / 64),
        # 1..5 and −6: the signed sum is 9 = 21 − 2 × (sum of the minus set), so the minus set
        # sums to at most 6: {}, six singletons, {1,2} {1,3} {1,4} {1,5} {2,3} {2,4}, {1,2,3},
        # 14 of 64, doubled: 28/64 (the Wilcoxon-like count).
        ([1.0, 2.0, 3.0, 4.0, 5.0, -6.0], 28 / 64),
        # Symmetric about zero: every arrangement is as extreme as the observed 0.
        ([1.0, -1.0, 2.0, -2.0, 3.0, -3.0], 1.0),
    ],
)
def test_sign_flip_p_values_of_six_scenarios_by_hand(
    differences: list[float], expected: float
) -> None:
    interval = paired_bootstrap(list(enumerate(differences)), min_scenarios=6)
    assert interval.p_value == pytest.approx(expected, abs=1e-15)


def test_the_test_swaps_whole_scenarios_not_single_trials() -> None:
    # Six scenarios of three trials, all +1: 18 pairs, but 2^6 arrangements, not 2^18.
    interval = paired_bootstrap([(s, 1.0) for s in range(6) for _ in range(3)], min_scenarios=6)
    assert interval.n_pairs == 18 and interval.p_value == 2 / 64


def _brute_force_p(
    pairs: Sequence[tuple[Hashable, float, float]], statistic_of: object, q: float | None = None
) -> float:
    """Two-sided p-value by enumerating every swap of whole clusters, in plain Python."""
    clusters: dict[Hashable, list[tuple[float, float]]] = {}
    for cluster, a, b in pairs:
        clusters.setdefault(cluster, []).append((a, b))
    groups = list(clusters.values())

    def statistic(swaps: Sequence[bool]) -> float:
        drawn = [
            (b, a) if swap else (a, b)
            for swap, group in zip(swaps, groups, strict=True)
            for a, b in group
        ]
        if q is None:
            return sum(b - a for a, b in drawn) / len(drawn)
        high, low = quantile([b for _, b in drawn], q), quantile([a for a, _ in drawn], q)
        assert high is not None and low is not None
        return high - low

    observed = statistic([False] * len(groups))
    null = [statistic(swaps) for swaps in itertools.product([False, True], repeat=len(groups))]
    tolerance = 1e-9
    greater = sum(value >= observed - tolerance for value in null) / len(null)
    less = sum(value <= observed + tolerance for value in null) / len(null)
    return min(1.0, 2 * min(greater, less))


UNEVEN = [
    (cluster, a, a + shift)
    for cluster, trials, shift in [(0, 1, 0.4), (1, 3, -0.1), (2, 2, 0.3), (3, 1, 0.9),
                                   (4, 4, 0.2), (5, 2, -0.5), (6, 3, 0.6)]
    for a in (1.0 + 0.37 * cluster + 0.11 * trial for trial in range(trials))
]  # fmt: skip
"""Seven scenarios of one to four trials, mostly shifted up: a case for exact enumeration."""


def test_mean_p_value_matches_enumerating_every_swap() -> None:
    interval = paired_bootstrap([(s, b - a) for s, a, b in UNEVEN], min_scenarios=7)
    assert interval.p_value == pytest.approx(_brute_force_p(UNEVEN, None))
    assert interval.p_value is not None and interval.p_value < 0.5


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_quantile_p_value_matches_enumerating_every_swap(q: float) -> None:
    interval = paired_quantile_bootstrap(UNEVEN, q, min_scenarios=7)
    assert interval.p_value == pytest.approx(_brute_force_p(UNEVEN, None, q))


def test_past_the_permutation_count_swaps_are_drawn_from_the_seed() -> None:
    # Twenty scenarios all +1: 2^20 arrangements > 1000, so 1000 are drawn; none of them is
    # as extreme as the observed, which counts itself: p = 2 × 1/1001.
    shifted = [(s, 1.0) for s in range(20)]
    assert paired_bootstrap(shifted, permutations=1000).p_value == 2 / 1001
    # With 2^10 = 1024 ≤ permutations every arrangement is enumerated: exactly 2/1024.
    assert paired_bootstrap(shifted[:10], permutations=1024).p_value == 2 / 1024
    noisy = [(s, float(s % 3) - 0.9) for s in range(15)]
    first = paired_bootstrap(noisy, permutations=1000)
    assert paired_bootstrap(noisy, permutations=1000) == first  # the same seed, the same p
    assert paired_bootstrap(noisy, permutations=1000, seed=DEFAULT_SEED + 1) != first


def test_swapping_the_engines_gives_the_same_p_values() -> None:
    for q in (0.5, 0.95):
        forward = paired_quantile_bootstrap(UNEVEN, q, min_scenarios=7)
        backward = paired_quantile_bootstrap([(s, b, a) for s, a, b in UNEVEN], q, min_scenarios=7)
        assert forward.estimate == pytest.approx(-(backward.estimate or 0.0))
        assert forward.p_value == backward.p_value


# ------------------------------------------------------------------------------ Holm


@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 → 0.06 (never
        # below the step before it), back in the order given.
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.01, 0.02, 0.025], [0.03, 0.04, 0.04]),
        ([0.01, 0.01], [0.02, 0.02]),  # ties
        ([0.5, 0.6], [1.0, 1.0]),  # capped at 1
        ([0.2], [0.2]),  # a family of one is not corrected
        ([], []),
    ],
)
def test_holm_against_hand_computed_values(p_values: list[float], expected: list[float]) -> None:
    assert holm(p_values) == pytest.approx(expected)


def test_holm_refuses_what_is_not_a_p_value() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        holm([0.1, 1.5])


def _tested(p_value: float | None, n_scenarios: int = 12, note: str = "") -> Interval:
    return Interval(
        estimate=1.0,
        low=0.5,
        high=1.5,
        n_pairs=n_scenarios,
        n_scenarios=n_scenarios,
        confidence=0.95,
        p_value=p_value,
        significant=p_value is not None,
        note=note,
    )


def test_decide_corrects_over_the_differences_that_can_be_flagged() -> None:
    family = [
        _tested(0.004),
        _tested(0.02),
        _tested(0.3),
        _tested(None, note="every paired difference is 0: nothing to test"),
        _tested(0.0001, n_scenarios=4, note="only 4 scenario(s)"),  # too few: not in the family
    ]
    decided = decide(family, alpha=0.05, min_scenarios=10)
    # Holm over the three that can be flagged: 0.004 × 3, 0.02 × 2, 0.3 × 1.
    assert [item.adjusted_p for item in decided] == pytest.approx([0.012, 0.04, 0.3, None, None])
    assert [item.significant for item in decided] == [True, True, False, False, False]
    assert decided[3].note.startswith("every paired difference is 0")
    assert decided[4].note == "only 4 scenario(s)" and decided[4].p_value == 0.0001
    # Alone, 0.02 would be flagged; among 20 such differences it is not, and the note says why.
    crowd = decide([_tested(0.02)] * 20, alpha=0.05, min_scenarios=10)
    assert not any(item.significant for item in crowd)
    assert crowd[0].note == (
        "p = 0.02 on its own, 0.4 after Holm's correction over 20 differences: not enough "
        "to call it real"
    )


def test_alpha_is_one_minus_the_confidence() -> None:
    assert alpha_of(0.95) == 0.05
    assert alpha_of(0.99) == 0.01


# ------------------------------------------------------------------------------ A/A calibration


def _aa_differences(rng: random.Random, scenarios: int, trials: int) -> list[tuple[int, float]]:
    """A and B as two draws around each trial's own level: exchangeable within every pair."""
    differences = []
    for scenario in range(scenarios):
        level = rng.gauss(0, 3)
        for _ in range(trials):
            base = level + rng.gauss(0, 1)
            differences.append((scenario, (base + rng.gauss(0, 1)) - (base + rng.gauss(0, 1))))
    return differences


def test_comparisons_of_an_engine_with_itself_rarely_flag_anything() -> None:
    # 150 seeded A/A comparisons of six metrics each, 10 scenarios × 2 trials. Each test on its
    # own rejects at 5 %, so about a quarter of the comparisons have some p < 0.05; after Holm
    # at most 5 % of comparisons may flag anything (binomial: 7.5 expected at most, 15 is far).
    rng = random.Random(20240115)
    flagged = raw = 0
    for _ in range(150):
        family = [paired_bootstrap(_aa_differences(rng, 10, 2), resamples=20) for _ in range(6)]
        decided = decide(family, alpha=0.05, min_scenarios=MIN_SCENARIOS)
        flagged += any(item.significant for item in decided)
        raw += any(item.p_value is not None and item.p_value < 0.05 for item in family)
    assert flagged <= 15
    assert raw >= 25  # without the correction this report would cry wolf


@settings(max_examples=40, deadline=None)
@given(
    scenarios=st.integers(2, 14),
    trials=st.integers(1, 3),
    noise=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 2**32 - 1),
    metrics=st.integers(1, 5),
)
def test_property_aa_decisions_are_consistent(
    scenarios: int, trials: int, noise: float, seed: int, metrics: int
) -> None:
    rng = random.Random(seed)
    family: list[Interval] = []
    for _ in range(metrics):
        pairs = [
            (s, base, base + noise * (rng.random() - rng.random()))
            for s in range(scenarios)
            for base in (rng.uniform(0, 10) for _ in range(trials))
        ]
        family.append(paired_bootstrap([(s, b - a) for s, a, b in pairs], resamples=20))
        family.append(paired_quantile_bootstrap(pairs, 0.95, resamples=20))
    decided = decide(family, alpha=0.05, min_scenarios=MIN_SCENARIOS)
    for item in decided:
        assert item.adjusted_p is None or item.p_value is not None
        if item.adjusted_p is not None and item.p_value is not None:
            assert item.p_value <= item.adjusted_p <= 1
            assert item.n_scenarios >= MIN_SCENARIOS
        if item.significant:
            assert item.adjusted_p is not None and item.adjusted_p < 0.05
        if noise == 0.0:  # B is A exactly: nothing to test, nothing flagged
            assert item.p_value is None and not item.significant
            assert "scenario" in item.note or "every paired difference is 0" in item.note


def test_the_readme_minimum_sample_numbers() -> None:
    # The README's table: with 12 scenarios a shift in all of them has p = 2/4096, and one in
    # 11 of 12 whose odd scenario moved least the other way p = 4/4096 (it and its flip are as
    # extreme); among 15 tested differences Holm multiplies the smallest by 15.
    everywhere = paired_bootstrap([(s, 1.0) for s in range(12)])
    almost = paired_bootstrap([*((s, 1.0) for s in range(11)), (11, -0.5)])
    assert (everywhere.p_value, almost.p_value) == (1 / 2048, 1 / 1024)
    others = [_tested(0.5)] * 13
    decided = decide([everywhere, almost, *others], alpha=0.05, min_scenarios=MIN_SCENARIOS)
    assert decided[0].adjusted_p == pytest.approx(15 / 2048)
    assert decided[1].adjusted_p == pytest.approx(14 / 1024)
    assert decided[0].significant and decided[1].significant
    # Ten scenarios: 2/1024 survives a family of 25, not of 26.
    ten = paired_bootstrap([(s, 1.0) for s in range(10)])
    assert decide([ten, *[_tested(0.5)] * 24], alpha=0.05, min_scenarios=10)[0].significant
    assert not decide([ten, *[_tested(0.5)] * 25], alpha=0.05, min_scenarios=10)[0].significant
