"""Synthetic generation corpora for the audit's statistics tests: words drawn from a Zipf law
over a large vocabulary (the sparsity and frequency spread of real prose), unequal groups,
optional planted terms and per-group length factors."""
from __future__ import annotations

import numpy as np

VOCAB = 8_200  # ranks drawn from: about 8,000 distinct words occur in 2,000 docs of ~150 words
RACES7 = ("r0", "r1", "r2", "r3", "r4", "r5", "r6")
RACE_SHARES = (0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05)


def _word(i: int) -> str:
    # Letters only (sklearn's token pattern keeps them whole; no digit-only tokens).
    s, i = "", int(i)
    for _ in range(4):
        s = "bcdfghjklmnpqrstvwxz"[i % 20] + "aeiou"[(i // 20) % 5] + s
        i //= 100
    return s


WORDS = np.array([_word(i) for i in range(VOCAB)])


def zipf_corpus(seed: int, n_docs: int = 2000, mean_words: float = 150.0, zipf_s: float = 1.05,
                female_share: float = 0.3, length_factor: dict | None = None,
                planted: list[tuple[str, str, str, float, float]] = ()):
    """Documents, gender labels (70/30) and race labels (7 groups, 30% .. 5%).

    length_factor: {("gender", "F"): 2.0} multiplies those documents' lengths (same per-word
    rates). planted: (word, axis, group, share in group, share elsewhere): the word is appended
    to that share of the group's documents and of the others'.
    """
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n_docs) < female_share, "F", "M")
    race = rng.choice(np.array(RACES7), size=n_docs, p=np.array(RACE_SHARES))
    lengths = np.maximum(5, rng.lognormal(np.log(mean_words), 0.35, size=n_docs)).astype(float)
    for (axis, group), f in (length_factor or {}).items():
        lab = gender if axis == "gender" else race
        lengths[lab == group] *= f
    lengths = lengths.astype(int)
    p = 1.0 / np.arange(1, VOCAB + 1) ** zipf_s
    p /= p.sum()
    draws = rng.choice(VOCAB, size=int(lengths.sum()), p=p)
    docs, start = [], 0
    for n in lengths:
        docs.append(list(WORDS[draws[start:start + n]]))
        start += n
    for word, axis, group, p_in, p_out in planted:
        lab = gender if axis == "gender" else race
        use = rng.random(n_docs) < np.where(lab == group, p_in, p_out)
        for i in np.nonzero(use)[0]:
            docs[i].append(word)
    return [" ".join(d) for d in docs], list(gender), list(race)
