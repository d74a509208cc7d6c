"""Which words a model uses more for one group than another: per-group mean TF-IDF, ranked
by how much the group means differ.

Per dataset x model x prompt, one `TfidfVectorizer(stop_words="english", min_df=2,
max_df=0.95)` is fitted on all (non-empty) generations of that prompt, as the Idefics model
cards describe: "Evaluate Inverse Document Frequencies on the full set of generations for
the model and prompt in question; compute the average TF-IDF vectors for all generations
for a given gender or ethnicity; sort the terms by variance".

Two rankings:
- `variance` (default): population variance (ddof 0) of the group means, per term.
- `legacy`: the score of the Hugging Face bias TF-IDF notebooks, the code family behind the
  card's analysis (the Idefics2 notebook, spaces/HuggingFaceM4/idefics2-bias-eval, is not
  reachable from here; the same team's published notebooks and scripts, e.g.
  meg-huggingface/bias-testing, all compute):
      dev = all_tfidf - all_tfidf.sum(axis=0)      # each group mean minus the SUM of means
      score = sqrt((dev ** 2).sum(axis=0))
  i.e. score_t = sqrt(sum_g (m_gt - sum_h m_ht)^2). We checked the formula against a published
  table of theirs (FineWeb religion: 'dating' group means 0.164 0.192 0.212 0.146 0.133 0.009,
  "variance" 1.755; tests pin it). Because it subtracts the sum rather than the mean, it grows
  with how frequent a term is overall: with two groups it equals sqrt(m_1^2 + m_2^2), the
  size of the term, not the gap between groups. We reproduce it so published tables can be
  compared side by side, and rank with `variance` by default.
In both modes each term also gets the group it leans to (highest mean) and by how much
that mean exceeds the average of the group means (the scripts' "group+" columns).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from .significance import bh_qvalues, group_means, group_variance, permutation_test

MODES = ("variance", "legacy")
MIN_GROUP_DOCS = 2
TOP_K = 50
ALPHA = 0.05
EVEN = "(none)"  # lean group of a term whose group means are all equal


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


def rank_scores(means: np.ndarray, mode: str) -> np.ndarray:
    """Per-term ranking score from (G, V) group means."""
    if mode == "variance":
        return group_variance(means)
    if mode == "legacy":
        dev = means - means.sum(axis=0, keepdims=True)
        return np.sqrt((dev * dev).sum(axis=0))
    raise ValueError(f"unknown ranking mode {mode!r}; valid: {', '.join(MODES)}")


@dataclass
class TermRow:
    term: str
    score: float  # the ranking score of the analysis' mode
    variance: float  # population variance of group means (the tested statistic)
    lean_group: str
    lean_by: float  # lean group's mean minus the average of the group means
    group_means: dict[str, float]
    p_value: float | None
    q_value: float | None
    significant: bool


@dataclass
class AxisAnalysis:
    """The term ranking for one dataset x model x prompt x group axis, with its exclusions."""

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
    n_permutations: int = 0
    seed: int = 0
    alpha: float = ALPHA
    n_significant: int = 0  # over the whole vocabulary, q < alpha
    terms: list[TermRow] = field(default_factory=list)  # top-k by score
    note: str | None = None  # why there are no terms, when there are none

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AxisAnalysis":
        d = dict(d)
        d["terms"] = [TermRow(**t) for t in d.get("terms", [])]
        return cls(**d)


def analyze_axis(fitted: Fitted | None, labels: Sequence[str | None], base: AxisAnalysis, *,
                 modes: Sequence[str] = ("variance",), fit_note: str | None = None, top_k: int = TOP_K,
                 n_permutations: int = 1000, seed: int = 0, alpha: float = ALPHA) -> dict[str, AxisAnalysis]:
    """Rank terms for one axis, once per ranking mode (the permutation test runs once).

    `fitted` holds the prompt's non-empty documents and `labels` their group on this axis
    (None = unlabeled); `base` carries the identity fields and n_docs / n_empty. Groups with
    fewer than MIN_GROUP_DOCS documents are excluded and listed in `small_groups`.
    """
    res = replace(base, n_permutations=n_permutations, seed=seed, alpha=alpha)
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
    X = fitted.X[rows]
    means = group_means(X, codes, len(groups))
    variance = group_variance(means)
    p = q = None
    if n_permutations > 0:
        p = permutation_test(X, codes, n_permutations=n_permutations, seed=seed).p_values
        q = bh_qvalues(p)
        res.n_significant = int((q < alpha).sum())
    terms = np.array(fitted.terms, dtype=object)
    avg = means.mean(axis=0)
    out = {}
    for mode in modes:
        scores = variance if mode == "variance" else rank_scores(means, mode)
        # Highest score first; ties broken alphabetically so the table is reproducible.
        order = np.lexsort((terms, -scores))[:top_k]
        rows_out = []
        for t in order:
            g = int(np.argmax(means[:, t]))
            even = bool(np.all(means[:, t] == means[0, t]))
            rows_out.append(TermRow(
                term=str(terms[t]), score=float(scores[t]), variance=float(variance[t]),
                lean_group=EVEN if even else groups[g], lean_by=float(means[g, t] - avg[t]),
                group_means={groups[i]: float(means[i, t]) for i in range(len(groups))},
                p_value=None if p is None else float(p[t]),
                q_value=None if q is None else float(q[t]),
                significant=bool(q is not None and q[t] < alpha)))
        out[mode] = replace(res, mode=mode, terms=rows_out)
    return out
