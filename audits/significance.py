"""Which term differences between groups are more than noise: a permutation test for every
term at once, with Benjamini-Hochberg false-discovery-rate q-values.

Statistic per term t: the population variance (ddof 0) of the group means of its TF-IDF
weight. Null: group labels are exchangeable, so shuffling them (group sizes kept) gives the
statistic's null distribution. p = (1 + #{perm >= observed}) / (1 + N), which is never 0
and is exact-valid for any N (Phipson & Smyth 2010).

Speed: group means are a product of a sparse one-hot matrix with the document-term matrix,
so one product gives every term for a whole chunk of permutations. The largest group's
sum is the corpus total minus the others (the total does not change under shuffling), which
skips its rows: for two groups that halves the work.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# Ties count as ">=": a term whose statistic cannot change under shuffling must get p = 1,
# not a p that depends on floating-point noise in the last bits.
_REL_TOL = 1e-9
# Dense block of permuted group means kept in memory at once (float64 cells).
_CHUNK_CELLS = 8_000_000


@dataclass
class PermutationResult:
    observed: np.ndarray  # (V,) variance of group means with the real labels
    p_values: np.ndarray  # (V,)
    n_permutations: int
    seed: int


def _group_means(X: sp.csr_matrix, codes: np.ndarray, sizes: np.ndarray,
                 total: np.ndarray | None = None, ref: int | None = None) -> np.ndarray:
    """(B, G, V) group means for B label vectors `codes` (B, n). With `ref`, group ref's rows
    are skipped and its sum is taken as `total` minus the other groups' sums."""
    B, n = codes.shape
    G = len(sizes)
    keep = codes != ref if ref is not None else np.ones(codes.shape, dtype=bool)
    b_idx, doc_idx = np.nonzero(keep)
    rows = b_idx * G + codes[b_idx, doc_idx]
    P = sp.csr_matrix((np.ones(len(rows)), (rows, doc_idx)), shape=(B * G, n))
    sums = (P @ X).toarray().reshape(B, G, -1)
    if ref is not None:
        sums[:, ref, :] = total[None, :] - (sums.sum(axis=1) - sums[:, ref, :])
    return sums / sizes[None, :, None]


def group_means(X, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(G, V) mean vector of each group's documents (rows of X), for one label vector `codes`."""
    codes = np.asarray(codes, dtype=np.int64)
    sizes = np.bincount(codes, minlength=n_groups).astype(float)
    return _group_means(X, codes[None, :], sizes)[0]


def group_variance(means: np.ndarray) -> np.ndarray:
    """Population variance (ddof 0) over the group axis (-2) of group means: (G, V) -> (V,),
    (B, G, V) -> (B, V)."""
    return means.var(axis=-2)


def permutation_test(X, codes, n_permutations: int = 1000, seed: int = 0) -> PermutationResult:
    """Permutation p-value of the variance of group means, for every column of X.

    X: (n_docs, V) sparse TF-IDF; codes: (n_docs,) group index 0..G-1, every group present.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    sizes = np.bincount(codes).astype(np.float64)
    if len(sizes) < 2 or (sizes == 0).any():
        raise ValueError("permutation_test needs at least two non-empty groups")
    G, V = len(sizes), X.shape[1]
    total = np.asarray(X.sum(axis=0)).ravel()
    ref = int(np.argmax(sizes))
    # The observed statistic goes through the same arithmetic as the permuted ones, so a
    # term whose value cannot change compares equal to itself rather than off by rounding.
    observed = group_variance(_group_means(X, codes[None, :], sizes, total, ref))[0]
    tol = _REL_TOL * observed + _REL_TOL * 1e-3 * observed.max(initial=0.0)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_permutations, _CHUNK_CELLS // max(1, G * V)))
    hits = np.zeros(V, dtype=np.int64)
    done = 0
    while done < n_permutations:
        b = min(chunk, n_permutations - done)
        perm_codes = rng.permuted(np.broadcast_to(codes, (b, len(codes))), axis=1)
        stat = group_variance(_group_means(X, perm_codes, sizes, total, ref))
        hits += (stat >= observed - tol).sum(axis=0)
        done += b
    p = (1.0 + hits) / (1.0 + n_permutations)
    return PermutationResult(observed, p, n_permutations, seed)


def bh_qvalues(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    q_(i) = min over j >= i of p_(j) * m / j, capped at 1 (p sorted ascending, 1-based j).
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q
