"""Aggregation statistics shared by tasks, audits and comparisons."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .types import MetricValue

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CHUNK_CELLS = 4_000_000  # resampled indices held at once (32 MB of int64)


def bootstrap_mean(values: Sequence[float], *, scale: float = 100.0,
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> MetricValue:
    """Mean of per-sample values with a 95% percentile-bootstrap interval, times `scale`.

    The seed is fixed so the same records always give the same interval.
    """
    x = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(x)
    if n == 0:
        return MetricValue(None, None, None, 0)
    mean = float(x.mean())
    if n == 1:
        return MetricValue(mean * scale, mean * scale, mean * scale, 1)
    rng = np.random.default_rng(seed)
    # Resamples are drawn in blocks of rows so memory stays near CHUNK_CELLS indices whatever n
    # is; consecutive draws continue one stream, so the interval equals a single (n_resamples, n) draw.
    rows = max(1, CHUNK_CELLS // n)
    means = np.concatenate([x[rng.integers(0, n, size=(min(rows, n_resamples - start), n))].mean(axis=1)
                            for start in range(0, n_resamples, rows)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return MetricValue(mean * scale, float(lo) * scale, float(hi) * scale, n)


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion k/n (95% by default); (None, None) when n = 0.
    Unlike the normal interval it stays inside [0, 1] and is not degenerate at k = 0."""
    if n <= 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    # at k = 0 (k = n) the bound is exactly 0 (1); the formula reaches it only up to rounding
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi
