"""The statistics of an A/B comparison: descriptive numbers, pass^k, paired bootstrap intervals.

Everything is small enough for the standard library. Randomness comes from a seeded
`random.Random`, so a report is reproducible to the last digit.

Why a *clustered* paired bootstrap: differences are paired by scenario and trial (both engines
ran the same scenario with the same seed), but the trials of one scenario are not independent
of each other: they share a persona, a goal and a difficulty. Resampling single pairs would
treat k trials as k independent scenarios and make intervals too narrow. Each bootstrap
resample therefore draws whole scenarios, with all their paired trials (with one trial per
scenario this is the ordinary paired bootstrap). The same resampling gives intervals for the
difference of two quantiles (p50, p95 wall time). A difference counts as real only when its
percentile interval excludes zero, and only with enough scenarios for the interval to mean
something (`MIN_SCENARIOS`): LLM runs vary a lot between trials, and a report that cries wolf
is worse than none.

`Distribution` and `quantile` (descriptive statistics) live in `conversation_engine.core.distribution`,
shared with the batch summary; they are re-exported here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Iterator

from pydantic import BaseModel

from conversation_engine.core.distribution import Distribution, quantile

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 20240115
MIN_SCENARIOS = 5
"""Below this many scenarios a percentile interval is too optimistic to flag anything."""


class Interval(BaseModel):
    """A paired difference (B − A) with its bootstrap confidence interval."""

    estimate: float | None
    """The mean difference over all pairs (None without pairs)."""
    low: float | None
    high: float | None
    n_pairs: int
    n_scenarios: int
    confidence: float
    significant: bool
    """True when the interval excludes zero and there were at least `MIN_SCENARIOS` scenarios."""
    note: str = ""
    """Why nothing could be concluded, when that is the case."""


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


def _check_settings(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _resamples(n_clusters: int, resamples: int, seed: int) -> Iterator[list[int]]:
    """Cluster indexes of each bootstrap resample: n_clusters draws with replacement."""
    rng = random.Random(seed)
    for _ in range(resamples):
        yield [rng.randrange(n_clusters) for _ in range(n_clusters)]


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
) -> Interval:
    low, high = _percentile_interval(replicates, confidence)
    # Summation order differs between resamples: a constant shift must not look like noise.
    tolerance = 1e-12 * max(1.0, abs(estimate))
    if abs(low - estimate) < tolerance:
        low = estimate
    if abs(high - estimate) < tolerance:
        high = estimate
    excludes_zero = low > 0 or high < 0
    note = ""
    if n_clusters < min_scenarios:
        note = (
            f"only {n_clusters} scenario(s); at least {min_scenarios} are needed to call a "
            "difference real"
        )
    return Interval(
        estimate=estimate,
        low=low,
        high=high,
        n_pairs=n_pairs,
        n_scenarios=n_clusters,
        confidence=confidence,
        significant=excludes_zero and n_clusters >= min_scenarios,
        note=note,
    )


def paired_bootstrap(
    differences: Iterable[tuple[Hashable, float]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    min_scenarios: int = MIN_SCENARIOS,
) -> Interval:
    """Mean paired difference and its clustered percentile bootstrap interval.

    `differences` are `(cluster, b_minus_a)` pairs, the cluster being the scenario. Each
    resample draws as many clusters as there are, with replacement, and takes the mean over
    all their pairs. Identical engines give [0, 0]; a constant shift c gives [c, c].
    """
    _check_settings(resamples, confidence)
    sums: dict[Hashable, float] = {}
    counts: dict[Hashable, int] = {}
    for cluster, difference in differences:
        sums[cluster] = sums.get(cluster, 0.0) + difference
        counts[cluster] = counts.get(cluster, 0) + 1
    n_pairs = sum(counts.values())
    if not n_pairs:
        return _no_pairs(confidence)
    cluster_sums = list(sums.values())
    cluster_counts = [counts[cluster] for cluster in sums]
    means = [
        sum(cluster_sums[i] for i in picks) / sum(cluster_counts[i] for i in picks)
        for picks in _resamples(len(counts), resamples, seed)
    ]
    return _interval(
        sum(cluster_sums) / n_pairs,
        means,
        n_pairs=n_pairs,
        n_clusters=len(counts),
        confidence=confidence,
        min_scenarios=min_scenarios,
    )


def paired_quantile_bootstrap(
    pairs: Iterable[tuple[Hashable, float, float]],
    q: float,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    min_scenarios: int = MIN_SCENARIOS,
) -> Interval:
    """Difference of the q-quantiles, quantile(B) − quantile(A), with a clustered interval.

    `pairs` are `(cluster, a, b)`: both engines' values for the same scenario and trial. Each
    resample draws whole clusters, as `paired_bootstrap` does, and takes the difference of the
    quantiles of the drawn A and B values (how p50 and p95 wall time compare). A constant shift
    c of every B value gives [c, c].
    """
    _check_settings(resamples, confidence)
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
    )


__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MIN_SCENARIOS",
    "Distribution",
    "Interval",
    "paired_bootstrap",
    "paired_quantile_bootstrap",
    "pass_hat_k",
    "quantile",
]
