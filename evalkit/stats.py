"""Aggregation statistics shared by tasks, audits and comparisons."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .types import MetricValue

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


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
    idx = rng.integers(0, n, size=(n_resamples, n))
    means = x[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return MetricValue(mean * scale, float(lo) * scale, float(hi) * scale, n)
