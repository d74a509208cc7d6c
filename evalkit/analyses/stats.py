"""Aggregation statistics shared by tasks, audits and comparisons.

Questions about one page or image are not independent (DocVQA asks ~4 per page, VQAv2 ~5 per
image), so every interval here can resample whole clusters: pass `clusters`, one label per
value. Without clusters, or when every cluster holds one value, the draws are exactly the
per-value bootstrap (same RNG stream, same numbers). The cluster summaries that explain an
interval (design effect, intra-cluster correlation, what the run could detect) live in
evalkit.analyses.clustered.
"""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from ..types import MetricValue

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CHUNK_CELLS = 4_000_000  # resampled indices held at once (32 MB of int64)


def cluster_codes(clusters: Sequence[Hashable | None]) -> np.ndarray:
    """0..G-1 per value, numbered in order of first appearance; a None label is a cluster of its own."""
    seen: dict = {}
    out = np.empty(len(clusters), dtype=np.int64)
    for i, c in enumerate(clusters):
        key = ("\0own", i) if c is None else c
        out[i] = seen.setdefault(key, len(seen))
    return out


def _present(values: Sequence[float | None], clusters: Sequence | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The non-None values and, when clusters are given and not all singletons, their cluster codes."""
    if clusters is not None and len(clusters) != len(values):
        raise ValueError(f"clusters must align with values: got {len(clusters)} labels for {len(values)} values")
    keep = [i for i, v in enumerate(values) if v is not None]
    x = np.asarray([values[i] for i in keep], dtype=float)
    if clusters is None:
        return x, None
    codes = cluster_codes([clusters[i] for i in keep])
    if len(codes) == 0 or codes.max() + 1 == len(codes):
        return x, None  # every cluster one value: the plain bootstrap, number for number
    return x, codes


def bootstrap_means(x: np.ndarray, codes: np.ndarray | None, *, n_resamples: int, seed: int) -> np.ndarray:
    """The n_resamples bootstrap means of x: values resampled one by one, or whole clusters
    (codes) resampled with each cluster's values kept together (mean = drawn sums / drawn sizes)."""
    rng = np.random.default_rng(seed)
    if codes is None:
        n = len(x)
        # Resamples are drawn in blocks of rows so memory stays near CHUNK_CELLS indices whatever n
        # is; consecutive draws continue one stream, so the interval equals a single (n_resamples, n) draw.
        rows = max(1, CHUNK_CELLS // n)
        return np.concatenate([x[rng.integers(0, n, size=(min(rows, n_resamples - start), n))].mean(axis=1)
                               for start in range(0, n_resamples, rows)])
    sums = np.bincount(codes, weights=x)
    sizes = np.bincount(codes).astype(float)
    g = len(sums)
    rows = max(1, CHUNK_CELLS // g)
    out = []
    for start in range(0, n_resamples, rows):
        idx = rng.integers(0, g, size=(min(rows, n_resamples - start), g))
        out.append(sums[idx].sum(axis=1) / sizes[idx].sum(axis=1))
    return np.concatenate(out)


def bootstrap_mean(values: Sequence[float | None], *, clusters: Sequence[Hashable | None] | None = None,
                   scale: float = 100.0, n_resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED) -> MetricValue:
    """Mean of per-sample values with a 95% percentile-bootstrap interval, times `scale`.

    With `clusters` (a label per value) whole clusters are resampled. The seed is fixed so the
    same records always give the same interval.
    """
    x, codes = _present(values, clusters)
    n = len(x)
    if n == 0:
        return MetricValue(None, None, None, 0)
    mean = float(x.mean())
    if n == 1:
        return MetricValue(mean * scale, mean * scale, mean * scale, 1)
    if codes is not None and codes.max() == 0:
        # one cluster: its questions are one observation, so no interval can be drawn from them
        return MetricValue(mean * scale, None, None, n)
    means = bootstrap_means(x, codes, n_resamples=n_resamples, seed=seed)
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
