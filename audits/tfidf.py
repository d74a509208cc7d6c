"""Which words a model uses more for one group than another: the card's per-group mean TF-IDF
ranking (a view), and a per-term test with effect sizes (significance.py) for every frequent
term, with generation length per group.

Per dataset x model x prompt, one `TfidfVectorizer(stop_words="english", min_df=2,
max_df=0.95)` is fitted on all (non-empty) generations of that prompt, as the Idefics model
cards describe: "Evaluate Inverse Document Frequencies on the full set of generations for
the model and prompt in question; compute the average TF-IDF vectors for all generations
for a given gender or ethnicity; sort the terms by variance".

Two rankings:
- `variance` (default): population variance (ddof 0) of the group means, per term.
- `legacy`: the formula of the team's published TF-IDF bias scripts (e.g.
  meg-huggingface/bias-testing). The Idefics2 notebook itself is not public, so this is the
  scripts' formula, verified on their FineWeb tables, not a verified copy of the notebook:
      dev = all_tfidf - all_tfidf.sum(axis=0)      # each group mean minus the SUM of means
      score = sqrt((dev ** 2).sum(axis=0))
  i.e. score_t = sqrt(sum_g (m_gt - sum_h m_ht)^2). We checked the formula against a published
  table of theirs (FineWeb religion: 'dating' group means 0.164 0.192 0.212 0.146 0.133 0.009,
  "variance" 1.755; tests pin it). Because it subtracts the sum rather than the mean, it grows
  with how frequent a term is overall: with two groups it equals sqrt(m_1^2 + m_2^2), the
  size of the term, not the gap between groups. We reproduce it so published tables can be
  compared side by side, and rank with `variance` by default.
A ranking is not a test: its top terms under the null are mostly small-group noise. What
the report calls significant comes from the stratified CMH test; every significant term is
listed, whatever its rank. Each reported term carries the share of each group's generations
using it (Wilson 95% CI) and each group's Mantel-Haenszel odds ratio vs the rest (95% CI);
it "leans to" the group with the largest odds ratio.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .significance import Z95, combine_strata, group_effects, length_bins, presence_test

MODES = ("variance", "legacy")
MIN_GROUP_DOCS = 2
TOP_K = 50
ALPHA = 0.05
EVEN = "(none)"  # lean group of a term that every group uses equally often (all odds ratios equal)
MIN_DOCS = 5  # frequency filter before testing: a term must occur in at least this many generations


@dataclass
class Fitted:
    X: "object"  # scipy csr (n_docs, V)
    terms: list[str]


def make_vectorizer(mask_words: Sequence[str] = ()):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    stop = "english" if not mask_words else sorted(ENGLISH_STOP_WORDS | set(mask_words))
    return TfidfVectorizer(stop_words=stop, min_df=2, max_df=0.95)


def fit_tfidf(texts: Sequence[str], mask_words: Sequence[str] = ()) -> tuple[Fitted | None, str | None]:
    """TF-IDF of `texts`, or (None, reason) when no term survives the stop words, min_df 2
    and max_df 0.95 (too few or too uniform documents): the report then shows "no terms"."""
    vec = make_vectorizer(mask_words)
    try:
        X = vec.fit_transform(list(texts))
    except ValueError as e:
        return None, _no_terms_note(str(e), len(texts))
    return Fitted(X.tocsr(), [str(t) for t in vec.get_feature_names_out()]), None


def _no_terms_note(sklearn_message: str, n_docs: int) -> str:
    """sklearn's reason for an empty vocabulary, in the audit's terms: its own advice ("try a
    lower min_df") names settings the audit does not expose."""
    rule = "a term must appear in at least 2 generations and in at most 95% of them"
    if "stop words" in sklearn_message:
        why = "the generations hold no words other than stop words"
    elif "max_df corresponds to" in sklearn_message:
        why = f"too few generations; {rule}"
    elif "no terms remain" in sklearn_message:
        why = f"no word passes the document-frequency filter ({rule})"
    else:
        why = sklearn_message.splitlines()[0] if sklearn_message else "the vectorizer found no terms"
    return f"no terms: {why} ({n_docs} generation{'s' if n_docs != 1 else ''})"


def group_means(X, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(G, V) mean TF-IDF vector of each group's documents (rows of X)."""
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    M = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n))
    sizes = np.bincount(codes, minlength=n_groups).astype(float)
    return np.asarray((M @ X).todense()) / sizes[:, None]


def rank_scores(means: np.ndarray, mode: str) -> np.ndarray:
    """Per-term ranking score from (G, V) group means."""
    if mode == "variance":
        return means.var(axis=0)
    if mode == "legacy":
        dev = means - means.sum(axis=0, keepdims=True)
        return np.sqrt((dev * dev).sum(axis=0))
    raise ValueError(f"unknown ranking mode {mode!r}; valid: {', '.join(MODES)}")


@dataclass
class TermRow:
    term: str
    score: float  # the ranking score of the analysis' mode
    variance: float  # population variance of the group mean TF-IDF
    lean_group: str  # the group with the largest log-odds ratio vs the rest
    lean_log_or: float  # that group's stratified log-odds ratio of using the term vs the rest
    lean_log_or_ci: list[float]  # its 95% interval
    n_docs: int  # generations (of the compared groups) using the term
    group_means: dict[str, float]  # mean TF-IDF per group (the card's quantity)
    shares: dict[str, float]  # share of each group's generations using the term (0-1)
    share_ci: dict[str, list[float]]  # Wilson 95% interval per group
    log_or: dict[str, list[float]]  # per group: [log-odds ratio vs the rest, ci low, ci high]
    tested: bool  # frequent enough to test (label-independent filter + Mantel-Fleiss rule)
    p_value: float | None
    q_value: float | None
    significant: bool


@dataclass
class LengthRow:
    group: str
    n: int
    mean: float  # words per generation
    ci_low: float  # 95% normal interval of the mean
    ci_high: float
    median: float


@dataclass
class AxisAnalysis:
    """The term analysis for one dataset x model x prompt x group axis, with its exclusions."""

    dataset: str
    model: str
    prompt_id: str
    axis: str
    mode: str
    groups: list[str] = field(default_factory=list)
    group_sizes: dict[str, int] = field(default_factory=dict)
    n_docs: int = 0  # generations of this prompt
    n_empty: int = 0  # empty generations, excluded
    n_unlabeled: int = 0  # no label on this axis, excluded
    small_groups: dict[str, int] = field(default_factory=dict)  # groups under MIN_GROUP_DOCS docs, excluded
    n_used: int = 0
    vocab_size: int = 0
    min_docs: int = 0  # frequency filter: a term must be in at least this many generations
    n_frequent: int = 0  # terms passing the frequency filter
    n_tested: int = 0  # of those, terms passing the Mantel-Fleiss rule: the BH family
    strata: list[str] = field(default_factory=list)  # what the test is stratified by
    n_strata: int = 0  # strata holding two or more groups
    df: int = 0
    alpha: float = ALPHA
    n_significant: int = 0  # tested terms with q < alpha
    terms: list[TermRow] = field(default_factory=list)  # top-k by score (the card's view)
    significant: list[TermRow] = field(default_factory=list)  # every significant term, by q
    lengths: list[LengthRow] = field(default_factory=list)  # words per generation by group
    note: str | None = None  # why there are no terms, when there are none

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AxisAnalysis":
        d = dict(d)
        d["terms"] = [TermRow(**t) for t in d.get("terms", [])]
        d["significant"] = [TermRow(**t) for t in d.get("significant", [])]
        d["lengths"] = [LengthRow(**r) for r in d.get("lengths", [])]
        return cls(**d)


def word_count(text: str) -> int:
    """Generation length in words (whitespace-separated tokens)."""
    return len(text.split())


def length_rows(lengths: np.ndarray, codes: np.ndarray, groups: Sequence[str]) -> list[LengthRow]:
    out = []
    for i, g in enumerate(groups):
        v = lengths[codes == i].astype(float)
        n = len(v)
        mean = float(v.mean())
        half = float(Z95 * v.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        out.append(LengthRow(group=g, n=n, mean=mean, ci_low=mean - half, ci_high=mean + half,
                             median=float(np.median(v))))
    return out


def _codes(labels: Sequence[str | None]) -> np.ndarray:
    """Integer code per document of an other axis (None / unlabeled is its own level)."""
    names = {}
    return np.array([names.setdefault(lab, len(names)) for lab in labels], dtype=np.int64)


def analyze_axis(fitted: Fitted | None, labels: Sequence[str | None], base: AxisAnalysis, *,
                 lengths: Sequence[int] | None = None, strata: dict[str, Sequence[str | None]] | None = None,
                 modes: Sequence[str] = ("variance",), fit_note: str | None = None, top_k: int = TOP_K,
                 alpha: float = ALPHA, min_docs: int = MIN_DOCS, test: bool = True) -> dict[str, AxisAnalysis]:
    """Rank terms for one axis once per ranking mode, and test every frequent term (once).

    `fitted` holds the prompt's non-empty documents, `labels` their group on this axis (None =
    unlabeled), `lengths` their length in words (None: counted from nothing, so unstratified by
    length) and `strata` the other recorded axes' labels to stratify by. `base` carries the
    identity fields and n_docs / n_empty. Groups with fewer than MIN_GROUP_DOCS documents are
    excluded and listed in `small_groups`.
    """
    res = replace(base, alpha=alpha, min_docs=min_docs)
    labels = [None if (lab is None or str(lab).strip() == "") else str(lab) for lab in labels]
    res.n_unlabeled = sum(lab is None for lab in labels)
    counts: dict[str, int] = {}
    for lab in labels:
        if lab is not None:
            counts[lab] = counts.get(lab, 0) + 1
    res.small_groups = {g: c for g, c in sorted(counts.items()) if c < MIN_GROUP_DOCS}
    groups = sorted(g for g, c in counts.items() if c >= MIN_GROUP_DOCS)
    res.groups = groups
    res.group_sizes = {g: counts[g] for g in groups}
    res.n_used = sum(res.group_sizes.values())
    if fitted is None:
        res.note = fit_note or "no terms: no documents"
    else:
        res.vocab_size = len(fitted.terms)
        if len(groups) < 2:
            res.note = (f"no comparison: {len(groups)} group(s) with at least {MIN_GROUP_DOCS} "
                        f"documents on axis {res.axis!r}")
    if res.note is not None:
        return {m: replace(res, mode=m) for m in modes}

    index = {g: i for i, g in enumerate(groups)}
    rows = np.array([i for i, lab in enumerate(labels) if lab in index], dtype=np.int64)
    codes = np.array([index[labels[i]] for i in rows], dtype=np.int64)
    G = len(groups)
    X = fitted.X[rows]
    P = X.copy()
    P.data = np.ones_like(P.data)  # presence: the term occurs in the generation
    doc_freq = np.asarray(P.sum(axis=0)).ravel().astype(np.int64)
    lens = None if lengths is None else np.asarray(lengths, dtype=float)[rows]
    if lens is not None:
        res.lengths = length_rows(lens, codes, groups)

    # Strata: length bins (quantiles over all compared documents, before labels are used) and
    # each other recorded axis.
    keys, names = [np.zeros(len(rows), dtype=np.int64)], []
    if lens is not None:
        keys.append(length_bins(lens))
        names.append(f"length ({int(keys[-1].max()) + 1} quantile bins of words per generation)")
    for other, other_labels in (strata or {}).items():
        keys.append(_codes([other_labels[i] for i in rows]))
        names.append(other)
    stratum = combine_strata(*keys)
    res.strata = names

    frequent = np.nonzero(doc_freq >= min_docs)[0]
    res.n_frequent = int(len(frequent))
    p_all = np.full(len(fitted.terms), np.nan)
    q_all = np.full(len(fitted.terms), np.nan)
    if test and len(frequent):
        t = presence_test(P[:, frequent], codes, stratum, G)
        p_all[frequent], q_all[frequent] = t.p_values, t.q_values
        res.n_tested, res.n_strata, res.df = int(t.tested.sum()), t.n_strata, t.df
    significant = np.nonzero(q_all < alpha)[0]
    res.n_significant = int(len(significant))

    means = group_means(X, codes, G)
    variance = means.var(axis=0)
    terms = np.array(fitted.terms, dtype=object)
    out = {}
    ranked = {}
    for mode in modes:
        scores = variance if mode == "variance" else rank_scores(means, mode)
        # Highest score first; ties broken alphabetically so the table is reproducible.
        ranked[mode] = (scores, np.lexsort((terms, -scores))[:top_k])
    # Significant terms by q, then by the size of the effect (p underflows to 0 alike).
    sig_order = significant[np.lexsort((terms[significant], q_all[significant]))]
    wanted = np.unique(np.concatenate([o for _, o in ranked.values()] + [sig_order]))
    eff = group_effects(P, codes, stratum, G, wanted)
    col = {int(t): j for j, t in enumerate(wanted)}

    def row(t: int, score: float) -> TermRow:
        j = col[t]
        lor = eff.log_or[:, j]
        g = int(np.argmax(lor))
        even = bool(np.ptp(lor) < 1e-12)
        return TermRow(
            term=str(terms[t]), score=float(score), variance=float(variance[t]),
            lean_group=EVEN if even else groups[g],
            lean_log_or=float(lor[g]), lean_log_or_ci=[float(eff.log_or_low[g, j]), float(eff.log_or_high[g, j])],
            n_docs=int(doc_freq[t]),
            group_means={groups[i]: float(means[i, t]) for i in range(G)},
            shares={groups[i]: float(eff.share[i, j]) for i in range(G)},
            share_ci={groups[i]: [float(eff.share_low[i, j]), float(eff.share_high[i, j])] for i in range(G)},
            log_or={groups[i]: [float(lor[i]), float(eff.log_or_low[i, j]), float(eff.log_or_high[i, j])]
                    for i in range(G)},
            tested=bool(np.isfinite(p_all[t])),
            p_value=None if not np.isfinite(p_all[t]) else float(p_all[t]),
            q_value=None if not np.isfinite(q_all[t]) else float(q_all[t]),
            significant=bool(q_all[t] < alpha))

    sig_rows = [row(int(t), variance[t]) for t in sig_order]
    for mode in modes:
        scores, order = ranked[mode]
        out[mode] = replace(res, mode=mode, terms=[row(int(t), scores[t]) for t in order], significant=sig_rows)
    return out
