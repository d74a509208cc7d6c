"""Time the audit's term analysis at the original study's scale (a benchmark, not a test).

Target (the audit issue): 30,000 documents of about 300 words, under 2 minutes on 2 CPU cores
for the fit plus one axis' ranking, stratified CMH test of every frequent term, effect sizes
and toxicity-style permutation test; reported per stage.

The corpus is synthetic and deterministic: Zipf-distributed pseudo-words over a 20,000-word
vocabulary, so the document-term matrix has the sparsity of real prose. Two axes are timed,
each stratified by length bins and by the other axis as in the audit: 2 groups (gender, 70/30)
and 7 groups (FairFace race, 30% down to 5%).

    .venv/bin/python benchmarks/bench_tfidf.py [--docs 30000] [--words 300] [--permutations 2000]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from evalkit.audits.significance import combine_strata, length_bins, presence_test
from evalkit.audits.tfidf import MIN_DOCS, AxisAnalysis, analyze_axis, fit_tfidf, word_count
from evalkit.audits.toxicity import group_test


def synthetic_corpus(n_docs: int, n_words: int, vocab: int = 20_000, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1)
    prob = 1.0 / ranks ** 1.1
    prob /= prob.sum()
    names = np.array([f"w{i:05d}" for i in range(vocab)])
    lengths = rng.integers(int(n_words * 0.7), int(n_words * 1.3) + 1, size=n_docs)
    words = rng.choice(vocab, size=int(lengths.sum()), p=prob)
    out, start = [], 0
    for n in lengths:
        out.append(" ".join(names[words[start:start + n]]))
        start += n
    return out


def run(n_docs: int = 30_000, n_words: int = 300, n_permutations: int = 2000) -> dict:
    """Fit on a synthetic corpus, then analyse one 2-group and one 7-group axis, stage by stage:
    length strata, the CMH test over all frequent terms, the whole analyze_axis (ranking, test,
    effect sizes of the reported terms) and the toxicity group test with `n_permutations`."""
    t0 = time.perf_counter()
    texts = synthetic_corpus(n_docs, n_words)
    t_corpus = time.perf_counter() - t0

    t0 = time.perf_counter()
    fitted, note = fit_tfidf(texts)
    t_fit = time.perf_counter() - t0
    assert fitted is not None, note
    rng = np.random.default_rng(1)
    gender = np.where(rng.random(n_docs) < 0.3, "F", "M")
    race = rng.choice([f"r{i}" for i in range(7)], size=n_docs, p=[0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05])
    lengths = np.array([word_count(t) for t in texts])
    timings = {"docs": n_docs, "words_per_doc": n_words, "toxicity_permutations": n_permutations,
               "vocab": len(fitted.terms), "nnz": int(fitted.X.nnz),
               "corpus_s": round(t_corpus, 2), "fit_s": round(t_fit, 2)}
    tox = rng.beta(1, 20, n_docs)
    for axis, labels, other in (("gender", gender, race), ("race", race, gender)):
        G = len(set(labels))
        key = f"{axis}_{G}groups"
        names = sorted(set(labels))
        codes = np.array([names.index(x) for x in labels])
        P = fitted.X.copy()
        P.data[:] = 1.0
        t0 = time.perf_counter()
        strata = combine_strata(length_bins(lengths), np.unique(other, return_inverse=True)[1])
        frequent = np.nonzero(np.asarray(P.sum(axis=0)).ravel() >= MIN_DOCS)[0]
        timings[f"{key}_strata_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        test = presence_test(P[:, frequent], codes, strata, G)
        timings[f"{key}_cmh_test_s"] = round(time.perf_counter() - t0, 2)
        timings[f"{key}_tested_terms"] = int(test.tested.sum())
        base = AxisAnalysis(dataset="synthetic", model="none", prompt_id="resume", axis=axis,
                            mode="variance", n_docs=n_docs)
        t0 = time.perf_counter()
        res = analyze_axis(fitted, list(labels), base, lengths=lengths, strata={"other": list(other)},
                           modes=("variance", "legacy"))["variance"]
        dt = time.perf_counter() - t0
        timings[f"{key}_analyze_axis_s"] = round(dt, 2)
        timings[f"{key}_fit_plus_axis_s"] = round(t_fit + dt, 2)
        timings[f"{key}_significant_terms"] = res.n_significant  # labels are random: expect ~0
        t0 = time.perf_counter()
        group_test(tox, codes, np.unique(other, return_inverse=True)[1], n_permutations=n_permutations)
        timings[f"{key}_toxicity_test_s"] = round(time.perf_counter() - t0, 2)
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=30_000)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--permutations", type=int, default=2000, help="toxicity group test shuffles")
    ap.add_argument("--out", type=Path, default=None, help="write the timings as JSON here")
    args = ap.parse_args()
    timings = run(args.docs, args.words, args.permutations)
    print(json.dumps(timings, indent=2))
    if args.out:
        args.out.write_text(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
