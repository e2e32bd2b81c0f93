"""The statistics of an A/B comparison: descriptive numbers, pass^k, paired differences.

Every paired difference (B − A) gets two things, and they answer different questions:

* **An interval, for display**: a clustered paired percentile bootstrap. Differences are paired
  by scenario and trial (both engines ran the same scenario with the same seed), but the trials
  of one scenario are not independent of each other: they share a persona, a goal and a
  difficulty. Resampling single pairs would treat k trials as k independent scenarios and make
  intervals too narrow, so each bootstrap resample draws whole scenarios with all their paired
  trials. The same resampling gives intervals for the difference of two quantiles (p50, p95
  wall time). The interval shows how large the difference plausibly is; it does not decide.
* **A p-value, for the decision**: a paired permutation (sign-flip) test at the scenario level.
  Under the null hypothesis that A and B are exchangeable within each pair (the harness runs
  each pair's A and B in random order), swapping A and B for a whole scenario, all its trials
  together, is as likely as not. The p-value counts how many of those swaps give a difference
  at least as extreme as the one observed (two-sided). With 2^n_scenarios ≤ `permutations`
  every swap pattern is enumerated and the test is exact; beyond that the patterns are drawn
  at random from a seeded generator. Ties count against the difference, so a p-value is never
  smaller than it should be.

A report tests a dozen metrics and every status, end reason and tool at once, so the p-values
of one comparison are corrected together with Holm's step-down method (`holm`, `decide`): a
difference is flagged only when its Holm-adjusted p-value is below α = 1 − confidence and at
least `MIN_SCENARIOS` scenarios were paired. That bounds the chance that a comparison of an
engine with itself flags anything at all by α. Holm rather than Benjamini–Hochberg: readers act
on any single flag, so the error to control is a false flag anywhere in the report, not a
share of false flags among many.

Randomness comes from seeds (a `random.Random` for the bootstrap, a NumPy generator for drawn
permutations), so a report is reproducible to the last digit.

`Distribution` and `quantile` (descriptive statistics) live in `conversation_engine.core.distribution`,
shared with the batch summary; they are re-exported here.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel
from scipy.stats import permutation_test

from conversation_engine.core.distribution import Distribution, quantile

DEFAULT_RESAMPLES = 2000
"""Bootstrap resamples of the displayed intervals."""
DEFAULT_PERMUTATIONS = 2**16
"""Swap patterns of the permutation test: exact enumeration up to 16 scenarios (2^16 patterns),
65 536 seeded random patterns beyond (a p-value then resolves to about 1/65 537)."""
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 20240115
MIN_SCENARIOS = 10
"""Below this many scenarios nothing is flagged. The sign-flip test's smallest two-sided p-value
with n scenarios is 2 / 2^n (every scenario moved the same way): 1/16 with 5 scenarios, which no
test at α = 0.05 can reach, and 1/512 with 10, which survives Holm's correction in a family of
up to 25 differences (a report has 13 metrics plus its breakdowns). See the README."""
TEST: Final = "scenario sign-flip permutation"
CORRECTION: Final = "holm"

_BATCH = 4096
"""Swap patterns per vectorised batch. Fixed: drawn patterns depend on it, and so would p-values."""
_RNG_KEYWORD = "rng" if "rng" in inspect.signature(permutation_test).parameters else "random_state"
"""SciPy 1.15 renamed `random_state` to `rng`; both take a `numpy.random.Generator`, which draws
the same patterns either way."""


class Interval(BaseModel):
    """A paired difference (B − A): its bootstrap interval, its test and the decision."""

    estimate: float | None
    """The mean difference over all pairs (None without pairs); for a quantile metric, the
    difference of the quantiles."""
    low: float | None
    high: float | None
    """The clustered percentile bootstrap interval at `confidence`: shown, never decides."""
    n_pairs: int
    n_scenarios: int
    confidence: float
    p_value: float | None = None
    """Two-sided p-value of the scenario sign-flip permutation test, on its own; None where no
    test could run (no pairs, fewer than two scenarios, every difference zero)."""
    adjusted_p: float | None = None
    """`p_value` after Holm's correction over every difference of the comparison that could be
    flagged; None where this difference could not be (see `note`)."""
    significant: bool
    """Flagged after correction: `adjusted_p` below α = 1 − confidence, with at least
    `MIN_SCENARIOS` scenarios."""
    note: str = ""
    """Why nothing could be concluded, or why a small p-value was not flagged."""


def pass_hat_k(passes: int, trials: int, k: int) -> float | None:
    """The chance that k trials drawn from these `trials` all pass: C(passes, k) / C(trials, k).

    The unbiased pass^k estimate (τ-bench); with exactly k trials it is 1 if all passed, else 0.
    None when there are fewer than k trials.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if trials < k:
        return None
    return math.comb(passes, k) / math.comb(trials, k)


def _percentile_interval(values: list[float], confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low = quantile(values, alpha)
    high = quantile(values, 1 - alpha)
    assert low is not None and high is not None
    return low, high


def alpha_of(confidence: float) -> float:
    """The significance level of a comparison at `confidence`: 1 − confidence (0.05 at 95 %),
    rounded so that 1 − 0.95 is 0.05 and not 0.050000000000000044."""
    return round(1 - confidence, 12)


def _check_settings(resamples: int, confidence: float, permutations: int) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _resamples(n_clusters: int, resamples: int, seed: int) -> Iterator[list[int]]:
    """Cluster indexes of each bootstrap resample: n_clusters draws with replacement."""
    rng = random.Random(seed)
    for _ in range(resamples):
        yield [rng.randrange(n_clusters) for _ in range(n_clusters)]


# ------------------------------------------------------------------------------ the test


SwapStatistic = Callable[[NDArray[np.bool_]], Any]
"""The statistic of one arrangement: from `swapped` (shape `(..., n_clusters)`, True where a
scenario's A and B trade places) to the statistic (shape `(...)`)."""


def sign_flip_p_value(
    n_clusters: int, statistic: SwapStatistic, *, permutations: int, seed: int
) -> float:
    """Two-sided p-value of a paired permutation test that swaps A and B of whole clusters.

    `scipy.stats.permutation_test` with `permutation_type="samples"` swaps the two values of
    each pair. The pairs given to it are cluster indexes, x[i] = i and y[i] = i + n, so a
    swapped cluster shows up as x[i] ≥ n, and `statistic` can be any function of which clusters
    are swapped (a mean over pairs, a difference of quantiles over pooled pairs). Exact (every
    one of the 2^n arrangements) when 2^n ≤ `permutations`, else `permutations` arrangements
    drawn from a generator seeded with `seed` (then the p-value counts the observed arrangement
    too, (k + 1) / (permutations + 1), as a Monte Carlo p-value should).
    """
    if n_clusters < 2:
        raise ValueError(f"a permutation test needs at least 2 clusters, got {n_clusters}")
    index = np.arange(n_clusters)

    def on_indexes(x: NDArray[np.int_], y: NDArray[np.int_], axis: int = -1) -> Any:
        return statistic(np.moveaxis(np.asarray(x), axis, -1) >= n_clusters)

    result = permutation_test(
        (index, index + n_clusters),
        on_indexes,
        permutation_type="samples",
        vectorized=True,
        n_resamples=permutations,
        batch=_BATCH,
        alternative="two-sided",
        **{_RNG_KEYWORD: np.random.default_rng(seed)},
    )
    return float(result.pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    The i-th smallest of m p-values is multiplied by m − i + 1, capped at 1, and made no
    smaller than the adjusted value before it. Rejecting where the adjusted p-value is below α
    keeps the family-wise error rate (any false rejection at all) at most α, whatever the
    dependence between the tests.
    """
    for p in p_values:
        if not 0 <= p <= 1:
            raise ValueError(f"a p-value must be between 0 and 1, got {p}")
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def decide(intervals: Sequence[Interval], *, alpha: float, min_scenarios: int) -> list[Interval]:
    """Flag the differences of one comparison together: Holm over all that can be flagged.

    The family is every interval with a p-value and at least `min_scenarios` scenarios; each
    gets its Holm-adjusted p-value and is flagged when that is below `alpha`. The others (no
    pairs, every difference zero, too few scenarios) are never flagged and keep the note that
    says why. Leaving them out of the family costs no calibration: whether a difference can be
    tested does not change when A and B trade places, so under the null the family is fixed.
    Returns new intervals, in the order given.
    """
    family = [
        i
        for i, interval in enumerate(intervals)
        if interval.p_value is not None and interval.n_scenarios >= min_scenarios
    ]
    adjusted = dict(zip(family, holm([intervals[i].p_value or 0.0 for i in family]), strict=True))
    decided: list[Interval] = []
    for i, interval in enumerate(intervals):
        if i not in adjusted:
            decided.append(interval.model_copy(update={"adjusted_p": None, "significant": False}))
            continue
        p, adjusted_p = interval.p_value or 0.0, adjusted[i]
        flagged = adjusted_p < alpha
        note = ""
        if not flagged and p < alpha:
            note = (
                f"p = {p:.3g} on its own, {adjusted_p:.3g} after Holm's correction over "
                f"{len(family)} differences: not enough to call it real"
            )
        decided.append(
            interval.model_copy(
                update={"adjusted_p": adjusted_p, "significant": flagged, "note": note}
            )
        )
    return decided


# ------------------------------------------------------------------------------ differences


def _no_pairs(confidence: float) -> Interval:
    return Interval(
        estimate=None,
        low=None,
        high=None,
        n_pairs=0,
        n_scenarios=0,
        confidence=confidence,
        significant=False,
        note="no pairs where both engines have a value",
    )


def _interval(
    estimate: float,
    replicates: list[float],
    *,
    n_pairs: int,
    n_clusters: int,
    confidence: float,
    min_scenarios: int,
    p_value: float | None,
    all_zero: bool,
) -> Interval:
    """The interval and test of one difference, decided on its own (a family of one)."""
    low, high = _percentile_interval(replicates, confidence)
    # Summation order differs between resamples: a constant shift must not look like noise.
    tolerance = 1e-12 * max(1.0, abs(estimate))
    if abs(low - estimate) < tolerance:
        low = estimate
    if abs(high - estimate) < tolerance:
        high = estimate
    note = ""
    if all_zero:
        note = "every paired difference is 0: nothing to test"
    elif n_clusters < min_scenarios:
        note = (
            f"only {n_clusters} scenario(s); at least {min_scenarios} are needed to call a "
            "difference real"
        )
    elif p_value is None:
        note = "one scenario: no arrangement to test against"
    interval = Interval(
        estimate=estimate,
        low=low,
        high=high,
        n_pairs=n_pairs,
        n_scenarios=n_clusters,
        confidence=confidence,
        p_value=p_value,
        significant=False,
        note=note,
    )
    return decide([interval], alpha=alpha_of(confidence), min_scenarios=min_scenarios)[0]


def paired_bootstrap(
    differences: Iterable[tuple[Hashable, float]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    min_scenarios: int = MIN_SCENARIOS,
    permutations: int = DEFAULT_PERMUTATIONS,
) -> Interval:
    """Mean paired difference, its clustered bootstrap interval and its sign-flip test.

    `differences` are `(cluster, b_minus_a)` pairs, the cluster being the scenario. Each
    bootstrap resample draws as many clusters as there are, with replacement, and takes the
    mean over all their pairs: identical engines give [0, 0], a constant shift c gives [c, c].
    The test flips the sign of whole clusters (A and B trade places for all of a scenario's
    trials) and compares the pair-weighted mean with the means of every arrangement. The
    result is decided on its own; `decide` re-decides it within a comparison's family.
    """
    _check_settings(resamples, confidence, permutations)
    sums: dict[Hashable, float] = {}
    counts: dict[Hashable, int] = {}
    all_zero = True
    for cluster, difference in differences:
        sums[cluster] = sums.get(cluster, 0.0) + difference
        counts[cluster] = counts.get(cluster, 0) + 1
        all_zero = all_zero and difference == 0
    n_pairs = sum(counts.values())
    if not n_pairs:
        return _no_pairs(confidence)
    cluster_sums = list(sums.values())
    cluster_counts = [counts[cluster] for cluster in sums]
    means = [
        sum(cluster_sums[i] for i in picks) / sum(cluster_counts[i] for i in picks)
        for picks in _resamples(len(counts), resamples, seed)
    ]
    p_value = None
    if not all_zero and len(counts) >= 2:
        shares = np.array(cluster_sums) / n_pairs

        def mean_difference(swapped: NDArray[np.bool_]) -> Any:
            return np.where(swapped, -shares, shares).sum(axis=-1)

        p_value = sign_flip_p_value(
            len(counts), mean_difference, permutations=permutations, seed=seed
        )
    return _interval(
        sum(cluster_sums) / n_pairs,
        means,
        n_pairs=n_pairs,
        n_clusters=len(counts),
        confidence=confidence,
        min_scenarios=min_scenarios,
        p_value=p_value,
        all_zero=all_zero,
    )


def paired_quantile_bootstrap(
    pairs: Iterable[tuple[Hashable, float, float]],
    q: float,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    min_scenarios: int = MIN_SCENARIOS,
    permutations: int = DEFAULT_PERMUTATIONS,
) -> Interval:
    """Difference of the q-quantiles, quantile(B) − quantile(A), with interval and test.

    `pairs` are `(cluster, a, b)`: both engines' values for the same scenario and trial. Each
    bootstrap resample draws whole clusters, as `paired_bootstrap` does, and takes the
    difference of the quantiles of the drawn A and B values (how p50 and p95 wall time
    compare); a constant shift c of every B value gives [c, c]. The test swaps the A and B
    values of whole clusters and recomputes the difference of the quantiles over all pairs.
    """
    _check_settings(resamples, confidence, permutations)
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    groups: dict[Hashable, list[tuple[float, float]]] = {}
    for cluster, a, b in pairs:
        groups.setdefault(cluster, []).append((a, b))
    clusters = list(groups.values())
    n_pairs = sum(len(group) for group in clusters)
    if not n_pairs:
        return _no_pairs(confidence)

    def difference(drawn: list[list[tuple[float, float]]]) -> float:
        values = [pair for group in drawn for pair in group]
        high = quantile([b for _, b in values], q)
        low = quantile([a for a, _ in values], q)
        assert high is not None and low is not None
        return high - low

    all_zero = all(a == b for group in clusters for a, b in group)
    p_value = None
    if not all_zero and len(clusters) >= 2:
        values_a = np.array([a for group in clusters for a, _ in group])
        values_b = np.array([b for group in clusters for _, b in group])
        owner = np.array([i for i, group in enumerate(clusters) for _ in group])

        def quantile_difference(swapped: NDArray[np.bool_]) -> Any:
            flipped = swapped[..., owner]
            drawn_b = np.where(flipped, values_a, values_b)
            drawn_a = np.where(flipped, values_b, values_a)
            return np.quantile(drawn_b, q, axis=-1) - np.quantile(drawn_a, q, axis=-1)

        p_value = sign_flip_p_value(
            len(clusters), quantile_difference, permutations=permutations, seed=seed
        )

    return _interval(
        difference(clusters),
        [
            difference([clusters[i] for i in picks])
            for picks in _resamples(len(clusters), resamples, seed)
        ],
        n_pairs=n_pairs,
        n_clusters=len(clusters),
        confidence=confidence,
        min_scenarios=min_scenarios,
        p_value=p_value,
        all_zero=all_zero,
    )


__all__ = [
    "CORRECTION",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_PERMUTATIONS",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MIN_SCENARIOS",
    "TEST",
    "Distribution",
    "Interval",
    "alpha_of",
    "decide",
    "holm",
    "paired_bootstrap",
    "paired_quantile_bootstrap",
    "pass_hat_k",
    "quantile",
    "sign_flip_p_value",
]
