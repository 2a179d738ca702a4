"""Percentiles and spreads for the benchmarks' samples, computed one way everywhere.

Nearest-rank percentiles: the value reported is always one that was measured, never an
interpolation between two (a p99 of 200 samples is the 198th smallest, not a blend of the last two),
so a figure can be traced back to one request or one dispatch.
"""
from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`; NaN when there are none."""
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def spread(values: Sequence[float]) -> float:
    """Largest minus smallest; 0 for one value, NaN for none."""
    return max(values) - min(values) if values else math.nan


def per_second(count: int, seconds: float) -> float:
    """A throughput; NaN when no time passed (nothing meaningful to divide by)."""
    return count / seconds if seconds > 0 else math.nan
