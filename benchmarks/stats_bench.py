"""Cluster bootstrap vs the per-sample bootstrap, at the scale issue 20 names: 50,000 samples in
10,000 clusters of skewed sizes, 1,000 resamples each, same machine, same run. The claim is a
ratio (cluster time / per-sample time at most 2) with memory bounded by the same block-wise
draws (evalkit.analyses.stats.CHUNK_CELLS), so both peaks are measured with tracemalloc, which sees
numpy's buffers."""
from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from evalkit.analyses.stats import CHUNK_CELLS, DEFAULT_RESAMPLES, bootstrap_mean


@dataclass
class StatsBench:
    n_samples: int
    n_clusters: int
    max_cluster_size: int
    n_resamples: int
    per_sample_s: float
    cluster_s: float
    ratio: float  # cluster_s / per_sample_s; the claim is <= 2
    per_sample_peak_bytes: int
    cluster_peak_bytes: int
    chunk_cells: int


def _skewed_sizes(rng, n: int, g: int) -> np.ndarray:
    """g cluster sizes summing to n: every cluster at least 1, the rest spread by a Zipf-like draw."""
    weights = 1.0 / np.arange(1, g + 1) ** 0.5
    extra = rng.multinomial(n - g, weights / weights.sum())
    return 1 + rng.permutation(extra)


def _timed(fn, repeats: int) -> tuple[float, int]:
    best = float("inf")
    tracemalloc.start()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak


def run(n: int = 50_000, g: int = 10_000, n_resamples: int = DEFAULT_RESAMPLES, repeats: int = 3,
        seed: int = 0) -> StatsBench:
    rng = np.random.default_rng(seed)
    sizes = _skewed_sizes(rng, n, g)
    clusters = np.repeat(np.arange(g), sizes).tolist()
    values = (rng.random(n) < 0.6).astype(float).tolist()
    plain_s, plain_peak = _timed(lambda: bootstrap_mean(values, n_resamples=n_resamples), repeats)
    cl_s, cl_peak = _timed(lambda: bootstrap_mean(values, clusters=clusters, n_resamples=n_resamples), repeats)
    return StatsBench(n_samples=n, n_clusters=g, max_cluster_size=int(sizes.max()), n_resamples=n_resamples,
                      per_sample_s=plain_s, cluster_s=cl_s, ratio=cl_s / plain_s,
                      per_sample_peak_bytes=plain_peak, cluster_peak_bytes=cl_peak, chunk_cells=CHUNK_CELLS)


if __name__ == "__main__":
    import json
    from dataclasses import asdict
    print(json.dumps(asdict(run()), indent=2))
