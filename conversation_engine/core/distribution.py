"""Descriptive statistics of one quantity: `Distribution` (and the `quantile` it uses).

The one model for "how a metric is spread" wherever it is reported: per engine in an A/B
comparison (`comparison.json`, `compare.analysis`) and for a batch's scores, turns and
durations (`summary.json`, `batch.storage`, which writes it in its own legacy shape: `count`
for `n` and no quantiles).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, Field


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics.

    The usual definition (numpy's default, "type 7"): p50 is the median, p95 of [1..100] is
    95.05. None for no values.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Distribution(BaseModel):
    """Descriptive statistics of one quantity; all None (and `n` 0) when there is no value."""

    n: int = Field(default=0, validation_alias=AliasChoices("n", "count"))
    """How many values (`count` in a batch's `summary.json`)."""
    mean: float | None = None
    median: float | None = None
    std: float | None = None
    """Sample standard deviation (n - 1), 0 for a single value."""
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if not values:
            return cls()
        return cls(
            n=len(values),
            mean=statistics.fmean(values),
            median=statistics.median(values),
            std=statistics.stdev(values) if len(values) > 1 else 0.0,
            min=min(values),
            max=max(values),
            p50=quantile(values, 0.5),
            p95=quantile(values, 0.95),
        )

    def summary_dict(self) -> dict[str, Any]:
        """The shape of a batch's `summary.json`: `count`, mean, median, std, min, max, then any
        fields a subclass adds (no quantiles: the file predates them)."""
        data = self.model_dump(mode="json", exclude={"p50", "p95"})
        return {"count": data.pop("n"), **data}


__all__ = ["Distribution", "quantile"]
