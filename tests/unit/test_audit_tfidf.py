"""TF-IDF term ranking, the legacy score of the published scripts, the stratified CMH term test
and BH q-values, on corpora small enough to check by hand."""
import math

import numpy as np
import pytest

from evalkit.audits.appearance import MASK_WORDS
from scipy import stats

from evalkit.audits.significance import bh_qvalues, group_effects, presence_test
from evalkit.audits.tfidf import EVEN, MIN_GROUP_DOCS, AxisAnalysis, analyze_axis, fit_tfidf, group_means, rank_scores

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
    res = analyze_axis(fitted, labels, base())["variance"]
    top = res.terms[0]
    assert top.term == "embezzlement"
    assert top.lean_group == "A"
    assert top.shares == {"A": 0.75, "B": 0.05}
    # Unstratified 2x2 (no lengths given): 16 of 40 documents, 20 per group. E = 8, d = 15 - 8
    # = 7, var = 16*24/(40*39) * (20 - 20*20/40) = 2.4615; Q = (7 - 0.5)^2 / var = 17.16.
    q_stat = 6.5 ** 2 / (16 * 24 / (40 * 39) * 10)
    assert top.p_value == pytest.approx(stats.chi2.sf(q_stat, 1))
    # Tested: the 10 fillers (20 documents each) and embezzlement; 'software' (8 documents,
    # expected 4 per group) fails the Mantel-Fleiss rule. BH over 11 terms, smallest p alone.
    assert res.n_frequent == 12 and res.n_tested == 11
    assert top.q_value == pytest.approx(top.p_value * 11)
    assert top.q_value < 0.05 and top.significant
    assert res.n_significant == 1 and [t.term for t in res.significant] == ["embezzlement"]
    # Odds ratio of A vs B (one stratum: MH = the plain odds ratio): (15*19)/(5*1) = 57,
    # Woolf interval log 57 +- 1.96 sqrt(1/15 + 1/5 + 1/1 + 1/19).
    assert top.lean_log_or == pytest.approx(math.log(57))
    half = 1.959963984540054 * math.sqrt(1 / 15 + 1 / 5 + 1 + 1 / 19)
    assert top.lean_log_or_ci == pytest.approx([math.log(57) - half, math.log(57) + half])


def test_evenly_spread_term_is_not_significant():
    docs, labels = planted_corpus()
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, labels, base())["variance"]
    soft = next(t for t in res.terms if t.term == "software")
    # Identical rows in both groups: variance 0, equal shares, leaning nowhere; too rare to test.
    assert soft.variance == 0.0
    assert soft.group_means["A"] == soft.group_means["B"]
    assert soft.shares == {"A": 0.2, "B": 0.2}
    assert soft.lean_group == EVEN
    assert not soft.tested and soft.p_value is None and soft.q_value is None
    assert not soft.significant
    assert res.terms[-1].term == "software"  # lowest score ranks last
    # A filler in 10 documents of each group: d = 0, so Q = 0 and p = 1.
    filler = next(t for t in res.terms if t.term == "alpha")
    assert filler.tested and filler.p_value == 1.0


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


def test_legacy_matches_published_scripts_table_row():
    # The HF FineWeb religion TF-IDF table (the team's published bias scripts) lists for 'dating' the
    # group means 0.164, 0.192, 0.212, 0.146, 0.133, 0.009 and "variance" 1.755: the legacy
    # formula gives sqrt(sum (m - 0.856)^2) = 1.755 from those (rounded) means.
    m = np.array([[0.164], [0.192], [0.212], [0.146], [0.133], [0.009]])
    assert rank_scores(m, "legacy")[0] == pytest.approx(1.755, abs=5e-4)


def test_both_modes_share_one_test():
    docs, labels = planted_corpus()
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, labels, base(), modes=("variance", "legacy"))
    p_var = {t.term: t.p_value for t in res["variance"].terms}
    p_leg = {t.term: t.p_value for t in res["legacy"].terms}
    assert p_var == p_leg
    assert res["legacy"].mode == "legacy" and res["variance"].mode == "variance"
    assert res["legacy"].significant == res["variance"].significant


def test_small_groups_and_unlabeled_docs_are_excluded_and_counted():
    docs, labels = planted_corpus()
    labels = list(labels)
    labels[0] = "C"  # a one-document group
    labels[1] = None  # no label
    labels[2] = ""  # blank counts as no label
    fitted, _ = fit_tfidf(docs)
    res = analyze_axis(fitted, labels, base(), test=False)["variance"]
    assert res.small_groups == {"C": 1}
    assert res.n_unlabeled == 2
    assert res.group_sizes == {"A": 17, "B": 20}
    assert res.n_used == 37
    assert MIN_GROUP_DOCS == 2
    # No test asked for: no p-values and nothing called significant.
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
    res = analyze_axis(fitted, ["A"] * 40, base())["variance"]
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


def _cmh_loop(P, codes, strata, G, term):
    """The generalised CMH statistic of one term by its textbook definition, stratum by stratum."""
    d, V = np.zeros(G), np.zeros((G, G))
    for h in np.unique(strata):
        m = strata == h
        n = np.bincount(codes[m], minlength=G).astype(float)
        N = n.sum()
        if (n > 0).sum() < 2:
            continue
        x = np.bincount(codes[m], weights=P[m, term], minlength=G)
        t = x.sum()
        d += x - n * t / N
        V += t * (N - t) / (N * (N - 1)) * (np.diag(n) - np.outer(n, n) / N)
    return float(d[:-1] @ np.linalg.solve(V[:-1, :-1], d[:-1]))


def test_presence_test_matches_the_textbook_statistic():
    """3 groups, 4 strata, 40 random terms: the vectorised statistic equals a per-term loop,
    and with a single stratum it is (N-1)/N times Pearson's chi-square of the 3x2 table."""
    rng = np.random.default_rng(5)
    n, V = 400, 40
    P = (rng.random((n, V)) < rng.uniform(0.1, 0.6, V)).astype(float)
    codes = rng.integers(0, 3, n)
    strata = rng.integers(0, 4, n)
    res = presence_test(P, codes, strata, 3, min_expected=0)
    assert res.tested.all() and res.df == 2
    for term in range(V):
        assert res.statistic[term] == pytest.approx(_cmh_loop(P, codes, strata, 3, term))
    one = presence_test(P, codes, np.zeros(n, dtype=int), 3, min_expected=0)
    for term in range(5):
        table = np.array([[((codes == g) & (P[:, term] == 1)).sum(), ((codes == g) & (P[:, term] == 0)).sum()]
                          for g in range(3)])
        pearson = stats.chi2_contingency(table, correction=False)[0]
        assert one.statistic[term] == pytest.approx(pearson * (n - 1) / n)
        assert one.p_values[term] == pytest.approx(stats.chi2.sf(pearson * (n - 1) / n, 2))


def test_mantel_fleiss_rule_leaves_rare_terms_untested():
    """A term in 3 of 100 documents, all 3 in the 10-document group: expected 0.3 there. The
    exact chance of that split is C(10,3)/C(100,3) = 7.4e-4, but the chi-square tail says
    2e-5: 40 times too small, the anti-conservative corner the rule exists for. Not tested.
    A term in 50 documents (expected 5 in the small group, 5 below its maximum of 10) is; one
    in 60 (expected 6, only 4 below the maximum) is not."""
    codes = np.array([0] * 10 + [1] * 90)
    P = np.zeros((100, 3))
    P[:3, 0] = 1
    P[::2, 1] = 1
    P[:60, 2] = 1
    strata = np.zeros(100, dtype=int)
    res = presence_test(P, codes, strata, 2)
    assert res.tested.tolist() == [False, True, False]
    assert np.isnan(res.p_values[0]) and np.isnan(res.q_values[0])
    assert res.q_values[1] == res.p_values[1]  # BH over the one tested term
    exact = math.comb(10, 3) / math.comb(100, 3)
    naive = presence_test(P, codes, strata, 2, min_expected=0).p_values[0]
    assert exact == pytest.approx(7.42e-4, rel=1e-3) and naive < exact / 30


def test_mh_odds_ratio_over_two_strata_by_hand():
    """Two strata (a, b, c, d = group-with, group-without, rest-with, rest-without):
    stratum 1: 4, 6, 2, 8 (N 20); stratum 2: 3, 2, 5, 10 (N 20).
    R = ad/N: 32/20 + 30/20 = 3.1; S = bc/N: 12/20 + 10/20 = 1.1; OR_MH = 3.1/1.1."""
    codes = np.array([0] * 10 + [1] * 10 + [0] * 5 + [1] * 15)
    strata = np.array([0] * 20 + [1] * 20)
    term = np.zeros(40)
    term[:4] = 1  # stratum 1, group 0: 4 of 10
    term[10:12] = 1  # stratum 1, group 1: 2 of 10
    term[20:23] = 1  # stratum 2, group 0: 3 of 5
    term[25:30] = 1  # stratum 2, group 1: 5 of 15
    eff = group_effects(term[:, None], codes, strata, 2, np.array([0]))
    assert eff.log_or[0, 0] == pytest.approx(math.log(3.1 / 1.1))
    assert eff.log_or[1, 0] == pytest.approx(-math.log(3.1 / 1.1))
    assert eff.share[:, 0] == pytest.approx([7 / 15, 7 / 25])
    # Robins-Breslow-Greenland variance, by hand from P = (a+d)/N, Q = (b+c)/N per stratum.
    P1, Q1, R1, S1 = 12 / 20, 8 / 20, 32 / 20, 12 / 20
    P2, Q2, R2, S2 = 13 / 20, 7 / 20, 30 / 20, 10 / 20
    R, S = R1 + R2, S1 + S2
    var = ((P1 * R1 + P2 * R2) / (2 * R * R) + (P1 * S1 + Q1 * R1 + P2 * S2 + Q2 * R2) / (2 * R * S)
           + (Q1 * S1 + Q2 * S2) / (2 * S * S))
    assert eff.log_or_high[0, 0] - eff.log_or[0, 0] == pytest.approx(1.959963984540054 * math.sqrt(var))
