"""What a clustered sample says and could detect: design effect, intra-cluster correlation,
interval half-width, clusters needed, and the paired cluster-level tests that compare,
sensitivity and invariance share.

Formulas (values x_i in clusters c of sizes m_c, n = sum m_c, G clusters, S_c = sum_{i in c} x_i):
- clustered variance of the mean (Miller, "Adding Error Bars to Evals", arXiv 2411.00640,
  eq. for clustered standard errors): Var_cl = sum_c (S_c - m_c * mean)^2 / n^2;
  the naive one, every value independent: Var_iid = sum_i (x_i - mean)^2 / n^2;
  design effect (Kish 1965) = Var_cl / Var_iid, exactly 1 when every cluster is one value.
- intra-cluster correlation: the one-way ANOVA estimator for unequal cluster sizes
  (Donner 1986; Snedecor & Cochran): rho = (MSB - MSW) / (MSB + (m0 - 1) MSW),
  m0 = (n - sum m_c^2 / n) / (G - 1).
- clusters needed for a half-width h: the half-width shrinks as 1/sqrt(G) at a fixed mix of
  cluster sizes, so G_h = ceil(G * (half_width / h)^2).
- minimum detectable difference of a paired comparison at power 1 - beta and two-sided level
  alpha (the normal-approximation power formula, e.g. Chow, Shao & Wang, "Sample Size
  Calculations in Clinical Research", ch. 3; Miller 2024 sec. on power):
  MDD = (z_{1 - alpha/2} + z_{1 - beta}) * SE_cl(mean difference).
- the p-value of a paired difference: a sign-flip permutation test on the per-cluster summed
  differences D_c (H0: within each cluster the two configurations are exchangeable, so each
  D_c is as likely to have the opposite sign). With singleton clusters it is today's
  per-sample sign-flip test, draw for draw.
- McNemar's exact test only when every cluster is one question; otherwise Durkalski et al.'s
  cluster-adjusted McNemar ("Analysis of clustered matched-pair data", Stat Med 2003):
  X^2 = (sum_c (b_c - c_c))^2 / sum_c (b_c - c_c)^2 on 1 df, b_c (c_c) the cluster's
  A-right-B-wrong (A-wrong-B-right) pairs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Hashable, Sequence

import numpy as np

from .stats import DEFAULT_SEED, bootstrap_mean, cluster_codes

Z_975 = 1.959963984540054  # two-sided alpha 0.05
Z_80 = 0.8416212335729143  # power 0.80
EXACT_MAX_FLIPS = 16  # 65,536 sign patterns: exact and still instant
DURKALSKI_MIN_CLUSTERS = 10  # discordant clusters below which the chi-square approximation is not shown
# Float sums of the same numbers in another order may differ in the last bits; a flipped sum
# within this of the observed one counts as "as extreme".
_TIE_EPS = 1e-9


@dataclass
class ClusterSummary:
    """How a metric's samples cluster and what that does to its interval (0-100 scale)."""

    n: int
    n_clusters: int
    mean_cluster_size: float | None
    max_cluster_size: int
    design_effect: float | None  # clustered / naive variance of the mean; None when the values do not vary
    icc: float | None  # None when every cluster is one sample or the values do not vary
    half_width: float | None  # of the 95% interval, in points
    clusters_for_1pt: int | None  # clusters a run would need for a +-1 point interval

    def to_dict(self) -> dict:
        return asdict(self)


def _sums(x: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.bincount(codes, weights=x), np.bincount(codes).astype(float)


def clustered_se(x: np.ndarray, codes: np.ndarray) -> float:
    """Standard error of mean(x) with clusters (Miller 2024), on x's own scale."""
    n = len(x)
    s, m = _sums(x, codes)
    return math.sqrt(float(((s - m * x.mean()) ** 2).sum())) / n


def design_effect(x: np.ndarray, codes: np.ndarray) -> float | None:
    s, m = _sums(x, codes)
    naive = float(((x - x.mean()) ** 2).sum())
    if naive <= 0:
        return None
    return float(((s - m * x.mean()) ** 2).sum()) / naive


def icc_anova(x: np.ndarray, codes: np.ndarray) -> float | None:
    n = len(x)
    s, m = _sums(x, codes)
    g = len(s)
    if g < 2 or n == g:
        return None
    cmeans = s / m
    msb = float((m * (cmeans - x.mean()) ** 2).sum()) / (g - 1)
    msw = float(((x - cmeans[codes]) ** 2).sum()) / (n - g)
    m0 = (n - float((m ** 2).sum()) / n) / (g - 1)
    denom = msb + (m0 - 1) * msw
    if denom <= 0:
        return None
    return (msb - msw) / denom


def clusters_needed(n_clusters: int, half_width: float | None, target: float = 1.0) -> int | None:
    if half_width is None or n_clusters == 0:
        return None
    return max(1, math.ceil(n_clusters * (half_width / target) ** 2))


def cluster_summary(values: Sequence[float | None], clusters: Sequence[Hashable | None] | None, *,
                    ci_low: float | None = None, ci_high: float | None = None) -> ClusterSummary:
    """The summary for the values a metric averaged; the interval is the one already drawn."""
    keep = [i for i, v in enumerate(values) if v is not None]
    x = np.asarray([values[i] for i in keep], dtype=float)
    codes = cluster_codes([clusters[i] for i in keep] if clusters is not None else [None] * len(keep))
    n = len(x)
    half = (ci_high - ci_low) / 2 if ci_low is not None and ci_high is not None else None
    if n == 0:
        return ClusterSummary(0, 0, None, 0, None, None, None, None)
    sizes = np.bincount(codes)
    g = len(sizes)
    return ClusterSummary(n=n, n_clusters=g, mean_cluster_size=n / g, max_cluster_size=int(sizes.max()),
                          design_effect=design_effect(x, codes), icc=icc_anova(x, codes), half_width=half,
                          clusters_for_1pt=clusters_needed(g, half) if n > 1 else None)


# ---------------------------------------------------------------------------- paired, by cluster
@dataclass
class PairedDelta:
    """B - A on the 0-100 scale over n pairs in n_clusters clusters, with its cluster-bootstrap
    95% CI, cluster-level sign-flip p-value and minimum detectable difference (80% power, alpha 0.05)."""

    n: int
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_clusters: int = 0
    mdd: float | None = None


def _pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(f"paired statistics need equal lengths, got {len(a)} and {len(b)}")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def _codes(n: int, clusters: Sequence[Hashable | None] | None) -> np.ndarray:
    if clusters is None:
        return np.arange(n)
    if len(clusters) != n:
        raise ValueError(f"clusters must align with the pairs: got {len(clusters)} labels for {n} pairs")
    return cluster_codes(clusters)


def sign_flip_p_value(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable | None] | None = None, *,
                      n_resamples: int, seed: int = DEFAULT_SEED,
                      exact_max: int = EXACT_MAX_FLIPS) -> float | None:
    """Two-sided p = P(|sum(s_c D_c)| >= |sum(D_c)|) over random signs s_c, D_c the per-cluster summed differences."""
    x, y = _pairs(a, b)
    if len(x) == 0:
        return None
    diff = y - x
    codes = _codes(len(x), clusters)
    dc = diff if codes.max() + 1 == len(codes) else np.bincount(codes, weights=diff)
    d = dc[dc != 0]
    m = len(d)
    if m == 0:
        return 1.0  # identical scores: no evidence of any difference
    observed = abs(float(d.sum())) - _TIE_EPS
    if m <= exact_max:
        # Every sign pattern once: bit j of pattern k says whether D_j is flipped.
        patterns = (np.arange(2 ** m)[:, None] >> np.arange(m)[None, :]) & 1
        sums = np.abs(((1 - 2 * patterns) * d[None, :]).sum(axis=1))
        return float((sums >= observed).sum() / len(sums))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_resamples, 2000):  # chunks keep memory flat for large m
        k = min(2000, n_resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(k, m))
        hits += int((np.abs((signs * d[None, :]).sum(axis=1)) >= observed).sum())
    return (1 + hits) / (1 + n_resamples)


def min_detectable_difference(a: Sequence[float], b: Sequence[float],
                              clusters: Sequence[Hashable | None] | None = None, *,
                              scale: float = 100.0) -> float | None:
    """(z_.975 + z_.80) * clustered SE of the mean difference, times `scale`; None when the
    differences do not vary (no variance to size the test by)."""
    x, y = _pairs(a, b)
    if len(x) < 2:
        return None
    se = clustered_se(y - x, _codes(len(x), clusters))
    if se <= 0:
        return None
    return (Z_975 + Z_80) * se * scale


def paired_delta(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable | None] | None = None, *,
                 n_resamples: int, seed: int = DEFAULT_SEED, scale: float = 100.0) -> PairedDelta:
    x, y = _pairs(a, b)
    codes = _codes(len(x), clusters) if len(x) else np.zeros(0, dtype=np.int64)
    mv = bootstrap_mean(list(y - x), clusters=list(codes), scale=scale, n_resamples=n_resamples, seed=seed)
    return PairedDelta(n=len(x), delta=mv.value, ci_low=mv.ci_low, ci_high=mv.ci_high,
                       p_value=sign_flip_p_value(a, b, clusters, n_resamples=n_resamples, seed=seed),
                       n_clusters=int(codes.max()) + 1 if len(codes) else 0,
                       mdd=min_detectable_difference(a, b, clusters, scale=scale))


def durkalski_p(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable | None]) -> tuple[float, int]:
    """(p-value, discordant clusters) of Durkalski et al.'s clustered McNemar test on 0/1 pairs."""
    x, y = _pairs(a, b)
    codes = _codes(len(x), clusters)
    per = np.bincount(codes, weights=((x == 1) & (y == 0)).astype(float)) - \
        np.bincount(codes, weights=((x == 0) & (y == 1)).astype(float))
    denom = float((per ** 2).sum())
    k = int((per != 0).sum())
    if denom == 0:
        return 1.0, 0
    chi2 = float(per.sum()) ** 2 / denom
    return math.erfc(math.sqrt(chi2 / 2)), k  # chi-square 1 df upper tail


# ---------------------------------------------------------------------------- results.json
def run_statistics(cluster_by: str | None, image_key_name: str, records: Sequence, headline: dict) -> dict:
    """The `statistics` section of results.json: the cluster key and the headline's ClusterSummary.
    `records` are the run's SampleRecords; the headline averages the scored ones' `score`."""
    scored = [r for r in records if r.error is None and r.score is not None]
    summary = cluster_summary([r.score for r in scored], [r.cluster for r in scored],
                              ci_low=headline.get("ci_low"), ci_high=headline.get("ci_high"))
    n_fallback = (sum(1 for r in scored if r.cluster is not None and r.cluster.startswith(image_key_name + ":"))
                  if cluster_by not in (None, image_key_name) else 0)
    return {
        "cluster_key": cluster_by if cluster_by is not None else "none",
        "cluster_fallback": ("a digest of the sample's first image's bytes, where the row lacks the key"
                             if cluster_by not in (None, image_key_name) else None),
        "n_fallback": n_fallback,
        "headline": summary.to_dict(),
        "method": ("95% percentile bootstrap resampling whole clusters (each cluster's samples kept together); "
                   "design effect = clustered / naive variance of the mean (Miller 2024); ICC: one-way ANOVA "
                   "estimator; clusters_for_1pt = ceil(n_clusters x half_width^2)"),
    }
