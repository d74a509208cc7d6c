"""TF-IDF term ranking, the legacy notebook score, the permutation test and BH q-values,
on corpora small enough to check by hand."""
import math

import numpy as np
import pytest

from audits.appearance import MASK_WORDS
from audits.significance import bh_qvalues, permutation_test
from audits.tfidf import EVEN, MIN_GROUP_DOCS, AxisAnalysis, analyze_axis, fit_tfidf, group_means, rank_scores

FILLERS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def planted_corpus():
    """40 documents, group A = docs 0-19, group B = docs 20-39.

    Fillers: doc i holds FILLERS[(i+k) % 10] for k < 5, so doc i and doc i+20 hold the same
    fillers and every filler is in exactly half of each group.
    Planted: 'embezzlement' in A docs 0-14 and B doc 35 (15 vs 1).
    Even: 'software' in A docs 16-19 and B docs 36-39, docs that hold nothing else but the
    same fillers, so its TF-IDF rows are identical in both groups: equal group means.
    """
    docs, labels = [], []
    for i in range(40):
        words = [FILLERS[(i + k) % 10] for k in range(5)]
        if i < 15 or i == 35:
            words.append("embezzlement")
        if i in (16, 17, 18, 19, 36, 37, 38, 39):
            words.append("software")
        docs.append(" ".join(words))
        labels.append("A" if i < 20 else "B")
    return docs, labels


def base(axis="gender", mode="variance"):
    return AxisAnalysis(dataset="d", model="m", prompt_id="resume", axis=axis, mode=mode, n_docs=40)


def test_planted_term_ranks_first_leans_to_its_group_and_is_significant():
    docs, labels = planted_corpus()
    fitted, note = fit_tfidf(docs)
    assert note is None
    # 10 fillers + the two planted words; nothing else survives.
    assert len(fitted.terms) == 12
    res = analyze_axis(fitted, labels, base(), n_permutations=1000, seed=0)["variance"]
    top = res.terms[0]
    assert top.term == "embezzlement"
    assert top.lean_group == "A"
    assert top.group_means["A"] > top.group_means["B"]
    # A 15-vs-1 split: each shuffle reaches it with chance ~1e-5, so none of the 1000 does
    # and p = (1 + 0) / (1 + 1000). BH over the 12 terms, it being the smallest p alone:
    # q = p * 12 / 1.
    assert top.p_value == pytest.approx(1 / 1001)
    assert top.q_value == pytest.approx(12 / 1001)
    assert top.q_value < 0.05 and top.significant
    assert res.n_significant == 1


def test_evenly_spread_term_is_not_significant():
    docs, labels = planted_corpus()
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, labels, base(), n_permutations=1000, seed=0)["variance"]
    soft = next(t for t in res.terms if t.term == "software")
    # Identical rows in both groups: variance 0, every shuffle ties or beats it -> p = 1.
    assert soft.variance == 0.0
    assert soft.group_means["A"] == soft.group_means["B"]
    assert soft.lean_group == EVEN
    assert soft.p_value == 1.0 and soft.q_value == 1.0
    assert not soft.significant
    assert res.terms[-1].term == "software"  # lowest score ranks last


def test_legacy_and_corrected_rankings_on_three_documents():
    """Three documents, A = {doc1, doc2}, B = {doc3}:
        doc1 "data cash", doc2 "data lab", doc3 "cash cash lab".
    Every term is in exactly 2 of 3 documents (min_df 2 keeps it; max_df 0.95*3 = 2.85 keeps
    it), so all idf are equal and cancel in the L2 normalisation; rows are normalised counts:
        doc1: data 1/sqrt2, cash 1/sqrt2    doc2: data 1/sqrt2, lab 1/sqrt2
        doc3: cash 2/sqrt5, lab 1/sqrt5
    Group means: A: data 1/sqrt2, cash 1/(2 sqrt2), lab 1/(2 sqrt2); B: data 0, cash 2/sqrt5, lab 1/sqrt5.
    Corrected (population variance of 2 means = (a-b)^2/4):
        data 1/8 = 0.125; cash (2/sqrt5 - sqrt2/4)^2/4 = 0.07314; lab (1/sqrt5 - sqrt2/4)^2/4 = 0.002193
        -> data, cash, lab.
    Legacy sqrt(sum_g (m_g - sum_h m_h)^2) = sqrt(a^2 + b^2) for two groups:
        data sqrt(1/2) = 0.7071; cash sqrt(1/8 + 4/5) = 0.9618; lab sqrt(1/8 + 1/5) = 0.5701
        -> cash, data, lab: the legacy score follows overall frequency, not the gap.
    """
    fitted, _ = fit_tfidf(["data cash", "data lab", "cash cash lab"])
    assert fitted.terms == ["cash", "data", "lab"]
    means = group_means(fitted.X, np.array([0, 0, 1]), 2)
    var = dict(zip(fitted.terms, rank_scores(means, "variance")))
    leg = dict(zip(fitted.terms, rank_scores(means, "legacy")))
    r2, r5 = math.sqrt(2), math.sqrt(5)
    assert var["data"] == pytest.approx(1 / 8)
    assert var["cash"] == pytest.approx((2 / r5 - r2 / 4) ** 2 / 4)
    assert var["lab"] == pytest.approx((1 / r5 - r2 / 4) ** 2 / 4)
    assert leg["data"] == pytest.approx(math.sqrt(1 / 2))
    assert leg["cash"] == pytest.approx(math.sqrt(1 / 8 + 4 / 5))
    assert leg["lab"] == pytest.approx(math.sqrt(1 / 8 + 1 / 5))
    assert sorted(var, key=lambda t: -var[t]) == ["data", "cash", "lab"]
    assert sorted(leg, key=lambda t: -leg[t]) == ["cash", "data", "lab"]


def test_legacy_matches_published_notebook_table_row():
    # The HF FineWeb religion TF-IDF table (same notebook lineage) lists for 'dating' the
    # group means 0.164, 0.192, 0.212, 0.146, 0.133, 0.009 and "variance" 1.755: the legacy
    # formula gives sqrt(sum (m - 0.856)^2) = 1.755 from those (rounded) means.
    m = np.array([[0.164], [0.192], [0.212], [0.146], [0.133], [0.009]])
    assert rank_scores(m, "legacy")[0] == pytest.approx(1.755, abs=5e-4)


def test_both_modes_share_one_permutation_test():
    docs, labels = planted_corpus()
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, labels, base(), modes=("variance", "legacy"), n_permutations=200)
    p_var = {t.term: t.p_value for t in res["variance"].terms}
    p_leg = {t.term: t.p_value for t in res["legacy"].terms}
    assert p_var == p_leg
    assert res["legacy"].mode == "legacy" and res["variance"].mode == "variance"


def test_small_groups_and_unlabeled_docs_are_excluded_and_counted():
    docs, labels = planted_corpus()
    labels = list(labels)
    labels[0] = "C"  # a one-document group
    labels[1] = None  # no label
    labels[2] = ""  # blank counts as no label
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, labels, base(), n_permutations=0)["variance"]
    assert res.small_groups == {"C": 1}
    assert res.n_unlabeled == 2
    assert res.group_sizes == {"A": 17, "B": 20}
    assert res.n_used == 37
    assert MIN_GROUP_DOCS == 2
    # No permutation test asked for: no p-values and nothing called significant.
    assert res.terms[0].p_value is None and not res.terms[0].significant


def test_no_terms_is_a_documented_result_not_a_crash():
    # Each word appears once: min_df 2 leaves an empty vocabulary.
    fitted, note = fit_tfidf(["apple pie", "banana split", "cherry tart"])
    assert fitted is None and note.startswith("no terms")
    res = analyze_axis(fitted, ["A", "A", "B"], base(), fit_note=note)["variance"]
    assert res.terms == [] and res.note == note


def test_single_group_gives_no_comparison():
    docs, _ = planted_corpus()
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, ["A"] * 40, base(), n_permutations=10)["variance"]
    assert res.terms == [] and res.note.startswith("no comparison")


def test_mask_appearance_removes_listed_words():
    docs = ["she has curly hair and a law degree", "he has curly hair and a law degree",
            "she studied law", "he studied finance"]
    plain, _ = fit_tfidf(docs)
    masked, _ = fit_tfidf(docs, sorted(MASK_WORDS))
    # 'curly' and 'hair' are in two documents each; 'he'/'she' are sklearn stop words already.
    assert {"curly", "hair"} <= set(plain.terms)
    assert not ({"curly", "hair"} & set(masked.terms))
    assert "law" in masked.terms


def test_bh_qvalues_hand_example():
    # p sorted: 0.01, 0.02, 0.03, 0.5 (m = 4): p*m/rank = 0.04, 0.04, 0.04, 0.5;
    # running min from the top keeps them. Returned in the input order.
    q = bh_qvalues([0.03, 0.5, 0.01, 0.02])
    assert q == pytest.approx([0.04, 0.5, 0.04, 0.04])
    # 0.04*3/2 = 0.06 exceeds 0.05*3/3 = 0.05 at the next rank, so the step-up lowers it to 0.05.
    assert bh_qvalues([0.01, 0.04, 0.05]) == pytest.approx([0.03, 0.05, 0.05])


def test_permutation_test_matches_a_plain_loop():
    """The chunked sparse implementation against a direct per-permutation computation with
    the same shuffles (same generator, same order)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(5)
    X = sp.random(30, 8, density=0.4, random_state=1, format="csr")
    codes = rng.integers(0, 3, size=30)
    codes[:3] = [0, 1, 2]
    res = permutation_test(X, codes, n_permutations=50, seed=3)
    dense = X.toarray()

    def stat(c):
        return np.stack([dense[c == g].mean(axis=0) for g in range(3)]).var(axis=0)

    obs = stat(codes)
    perms = np.random.default_rng(3).permuted(np.broadcast_to(codes, (50, 30)), axis=1)
    hits = sum((stat(p) >= obs - 1e-12) for p in perms)
    assert np.allclose(res.observed, obs)
    assert res.p_values == pytest.approx((1 + hits) / 51)
