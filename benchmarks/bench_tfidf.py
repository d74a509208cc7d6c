"""Time the audit's TF-IDF analysis at the original study's scale (a benchmark, not a test).

Target (the audit issue): 30,000 documents of about 300 words, 1,000 label permutations,
under 2 minutes on 2 CPU cores, for the fit plus one axis' ranking and permutation test.

The corpus is synthetic and deterministic: Zipf-distributed pseudo-words over a 20,000-word
vocabulary, so the document-term matrix has the sparsity of real prose. Two axes are timed:
2 groups (gender) and 7 groups (FairFace race).

    .venv/bin/python benchmarks/bench_tfidf.py [--docs 30000] [--words 300] [--permutations 1000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audits.tfidf import AxisAnalysis, analyze_axis, fit_tfidf  # noqa: E402


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


def run(n_docs: int = 30_000, n_words: int = 300, n_permutations: int = 1000) -> dict:
    """Fit on a synthetic corpus, then rank and permutation-test one 2-group and one 7-group axis."""
    t0 = time.perf_counter()
    texts = synthetic_corpus(n_docs, n_words)
    t_corpus = time.perf_counter() - t0

    t0 = time.perf_counter()
    fitted, note = fit_tfidf(texts)
    t_fit = time.perf_counter() - t0
    assert fitted is not None, note
    rng = np.random.default_rng(1)
    timings = {"docs": n_docs, "words_per_doc": n_words, "permutations": n_permutations,
               "vocab": len(fitted.terms), "nnz": int(fitted.X.nnz),
               "corpus_s": round(t_corpus, 2), "fit_s": round(t_fit, 2)}
    for axis, n_groups in (("gender", 2), ("race", 7)):
        labels = [f"g{k}" for k in rng.integers(0, n_groups, size=n_docs)]
        base = AxisAnalysis(dataset="synthetic", model="none", prompt_id="resume", axis=axis,
                            mode="variance", n_docs=n_docs)
        t0 = time.perf_counter()
        res = analyze_axis(fitted, labels, base, n_permutations=n_permutations)["variance"]
        dt = time.perf_counter() - t0
        timings[f"{axis}_{n_groups}groups_s"] = round(dt, 2)
        timings[f"{axis}_fit_plus_axis_s"] = round(t_fit + dt, 2)
        timings[f"{axis}_significant_terms"] = res.n_significant  # labels are random: expect ~0
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=30_000)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None, help="write the timings as JSON here")
    args = ap.parse_args()
    timings = run(args.docs, args.words, args.permutations)
    print(json.dumps(timings, indent=2))
    if args.out:
        args.out.write_text(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
