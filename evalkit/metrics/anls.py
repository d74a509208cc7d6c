"""ANLS, the Average Normalized Levenshtein Similarity of DocVQA (Biten et al. 2019, ST-VQA;
used by Mathew et al. 2021 for DocVQA).

The rule followed is the one in the official evaluation script distributed by the Robust
Reading Competition for DocVQA / InfographicVQA (rrc.cvc.uab.es/?ch=17; docvqa.org), which is
also what lmms-eval uses. Per question:

1. Both strings are normalised as `" ".join(s.strip().lower().split())`: case folded with
   str.lower, leading/trailing whitespace removed, and inner whitespace runs (spaces, tabs,
   newlines) collapsed to a single space.
2. d = Levenshtein distance (insert, delete, substitute, each cost 1) of the normalised strings.
3. The denominator is max(len(gold.upper()), len(prediction.upper())) of the strings as given,
   *before* normalisation. This is a quirk of the official script that we keep so that scores
   match it exactly: extra whitespace in the raw strings enlarges the denominator.
   NL = d / denominator, or 0 when both strings are empty.
4. similarity = 1 - min over gold answers of NL.
5. The similarity is kept if it is >= threshold, else the question scores 0. Note the boundary:
   the script tests `similarity < threshold`, so NL exactly 0.5 gives 0.5, not 0. The paper's
   formula (NL < tau -> 1 - NL, else 0) would give 0 there; the official scorer, which produced
   every published number, keeps it, and so do we.

The benchmark number is the mean of this per-question value over questions (times 100).
"""
from __future__ import annotations

from typing import Sequence

from rapidfuzz.distance import Levenshtein as _Levenshtein


def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit costs, two-row dynamic programme."""
    if len(a) < len(b):
        a, b = b, a  # keep the row as short as possible
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1,            # delete ca
                           cur[j - 1] + 1,         # insert cb
                           prev[j - 1] + (ca != cb)))  # substitute or keep
        prev = cur
    return prev[-1]


def _normalise(s: str) -> str:
    return " ".join(s.strip().lower().split())


def normalized_distance(prediction: str, gold: str) -> float:
    """NL of one (prediction, gold) pair as the official script computes it (see module doc)."""
    length = max(len(gold.upper()), len(prediction.upper()))
    if length == 0:
        return 0.0
    # rapidfuzz's exact Levenshtein distance (C++, bit-parallel): the same integer as
    # `levenshtein` above (tests/test_hostile_inputs.py sweeps random pairs), in linear time
    # for the long strings a runaway generation produces.
    return _Levenshtein.distance(_normalise(gold), _normalise(prediction)) / length


def anls(prediction: str, golds: Sequence[str], threshold: float = 0.5) -> float:
    """Per-question ANLS in [0, 1]: best similarity over `golds`, 0 if below `threshold`.

    Raises ValueError for an empty `golds` (such a question has nothing to score against;
    the task records it as unscored instead).
    """
    if not golds:
        raise ValueError("anls needs at least one gold answer")
    similarity = 1.0 - min(normalized_distance(prediction, g) for g in golds)
    return similarity if similarity >= threshold else 0.0


def anls_paper(prediction: str, golds: Sequence[str], threshold: float = 0.5) -> float:
    """The papers' formula: the best similarity only when its NL is strictly below `threshold`
    (the official scorer keeps NL == threshold; see the module docstring)."""
    if not golds:
        raise ValueError("anls needs at least one gold answer")
    nl = min(normalized_distance(prediction, g) for g in golds)
    return 1.0 - nl if nl < threshold else 0.0
