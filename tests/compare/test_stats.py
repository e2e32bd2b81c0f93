"""The comparison statistics on inputs whose answers can be worked out by hand."""

from __future__ import annotations

import math
import statistics

import pytest

from conversation_engine.compare.stats import (
    DEFAULT_SEED,
    Distribution,
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
    interval = paired_bootstrap([(scenario, 0.7) for scenario in range(6)])
    assert interval.estimate == pytest.approx(0.7)
    assert interval.low == interval.high == interval.estimate  # no width, not even rounding
    assert interval.n_pairs == 6 and interval.n_scenarios == 6
    assert interval.significant and interval.note == ""


def test_identical_engines_give_zero_zero_and_no_flag() -> None:
    interval = paired_bootstrap([(scenario, 0.0) for scenario in range(20)])
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.significant


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


def test_too_few_scenarios_are_not_flagged_even_when_the_interval_excludes_zero() -> None:
    interval = paired_bootstrap([(s, 1.0) for s in range(4)])
    assert interval.low == 1.0 and not interval.significant
    assert "at least 5" in interval.note
    assert paired_bootstrap([(s, 1.0) for s in range(4)], min_scenarios=4).significant


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


# ------------------------------------------------------------------------------ quantile difference


def test_quantile_difference_of_a_constant_shift_is_that_shift() -> None:
    pairs = [(s, 0.1 * s, 0.1 * s + 0.25) for s in range(8)]
    for q in (0.5, 0.95):
        interval = paired_quantile_bootstrap(pairs, q)
        assert interval.estimate == pytest.approx(0.25)
        assert (interval.low, interval.high) == (interval.estimate, interval.estimate)
        assert interval.significant


def test_quantile_difference_is_the_difference_of_the_quantiles() -> None:
    pairs = [(0, 1.0, 2.0), (1, 2.0, 4.0), (2, 3.0, 9.0)]
    assert paired_quantile_bootstrap(pairs, 0.5).estimate == 2.0  # median 4 − median 2
    assert paired_quantile_bootstrap(pairs, 1.0).estimate == 6.0  # max 9 − max 3
    same = paired_quantile_bootstrap([(s, float(s), float(s)) for s in range(6)], 0.95)
    assert (same.estimate, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)


def test_quantile_difference_degenerate_inputs() -> None:
    assert paired_quantile_bootstrap([], 0.5).estimate is None
    one = paired_quantile_bootstrap([("s", 1.0, 4.0)], 0.95)
    assert (one.estimate, one.low, one.high, one.significant) == (3.0, 3.0, 3.0, False)
    with pytest.raises(ValueError, match="between 0 and 1"):
        paired_quantile_bootstrap([("s", 1.0, 4.0)], 95)
