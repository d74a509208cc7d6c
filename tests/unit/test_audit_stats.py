"""The audit's statistics at the scale where they used to break: Zipf vocabularies of about
8,000 words, 2,000 generations, gender 70/30 and seven race groups from 30% to 5%.

- null corpora over several seeds: no more false findings than the FDR level allows, and
  tested p-values no smaller than uniform ones;
- planted terms: strong ones (60% vs 5%) all found, moderate ones (15% vs 8%) mostly;
- a group that only writes twice as long gets no significant term;
- toxicity on null data with rare toxic outputs claims no difference; a group with nothing
  above 0.5 gets a nonzero upper bound; the classifier check sees identity words;
- the FairFace noise correction on constructed buckets.
"""
import math

import numpy as np
import pytest

from tests.helpers.audit_corpora import zipf_corpus
from evalkit.audits.tfidf import AxisAnalysis, analyze_axis, fit_tfidf, word_count
from evalkit.audits.toxicity import (IDENTITY_TEMPLATES, adjust_slices, identity_check, identity_phrase,
                             toxicity_table)
from evalkit.metrics.fairface import bucket_spread, bucket_std, bucket_std_corrected


def analyse(docs, gender, race, axis):
    fitted, _ = fit_tfidf(docs)
    labels, other = (gender, race) if axis == "gender" else (race, gender)
    base = AxisAnalysis(dataset="d", model="m", prompt_id="resume", axis=axis, mode="variance", n_docs=len(docs))
    return analyze_axis(fitted, labels, base, lengths=[word_count(d) for d in docs],
                        strata={"other": other})["variance"]


def null_p_values(docs, gender, race, axis):
    """Every tested term's p-value, from the significance module directly, with the strata
    analyze_axis builds (length quantile bins x the other axis)."""
    from evalkit.audits.significance import combine_strata, length_bins, presence_test

    fitted, _ = fit_tfidf(docs)
    labels, other = (gender, race) if axis == "gender" else (race, gender)
    names = sorted(set(labels))
    codes = np.array([names.index(x) for x in labels])
    P = (fitted.X > 0).astype(float)
    frequent = np.nonzero(np.asarray(P.sum(axis=0)).ravel() >= 5)[0]
    strata = combine_strata(length_bins(np.array([word_count(d) for d in docs])),
                            np.unique(other, return_inverse=True)[1])
    res = presence_test(P[:, frequent], codes, strata, len(names))
    return res.p_values[res.tested]


@pytest.fixture(scope="module")
def null_runs():
    out = []
    for seed in range(5):
        docs, gender, race = zipf_corpus(seed)
        out.append({axis: (analyse(docs, gender, race, axis), null_p_values(docs, gender, race, axis))
                    for axis in ("gender", "race")})
    return out


def test_null_corpora_have_a_realistic_vocabulary(null_runs):
    g, r = null_runs[0]["gender"][0], null_runs[0]["race"][0]
    # About 8,000 distinct words; min_df 2 keeps most; thousands are tested on gender.
    assert 7_000 <= g.vocab_size <= 8_200
    assert g.n_tested > 1_000 and r.n_tested > 200
    assert len(null_runs[0]["gender"][1]) == g.n_tested and len(null_runs[0]["race"][1]) == r.n_tested
    assert g.groups == ["F", "M"] and g.group_sizes["F"] / g.n_used == pytest.approx(0.3, abs=0.03)
    assert len(r.groups) == 7 and min(r.group_sizes.values()) / r.n_used == pytest.approx(0.05, abs=0.015)
    assert r.df == 6 and g.df == 1


def test_null_corpora_give_no_false_findings(null_runs):
    """BH at 5%: under the complete null the chance of any finding per analysis is at most 5%,
    so 10 analyses expect at most 0.5; the seeds here give none."""
    assert sum(run[axis][0].n_significant for run in null_runs for axis in run) == 0


@pytest.mark.parametrize("axis, n_min", [("gender", 5_000), ("race", 1_000)])
def test_null_p_values_are_not_anti_conservative(null_runs, axis, n_min):
    """Pooled over the seeds, the share of tested terms below 0.001, 0.01 and 0.05 stays at
    (or under: the two-group test uses the continuity correction) the nominal rate."""
    ps = np.concatenate([run[axis][1] for run in null_runs])
    assert len(ps) > n_min
    assert (ps < 0.001).mean() <= 0.002
    assert (ps < 0.01).mean() <= 0.013
    assert (ps < 0.05).mean() <= 0.055


STRONG = [(f"plantstrong{c}", "gender", "F", 0.6, 0.05) for c in "abcde"]
MODERATE = [(f"plantmod{c}", "gender", "F", 0.15, 0.08) for c in "abcde"]
RACE_STRONG = [(f"plantrace{c}", "race", "r2", 0.5, 0.05) for c in "abc"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_terms_are_found_with_their_effect(seed):
    docs, gender, race = zipf_corpus(seed, planted=STRONG + MODERATE + RACE_STRONG)
    g = analyse(docs, gender, race, "gender")
    found = {t.term: t for t in g.significant}
    for word, *_ in STRONG:
        t = found[word]
        assert t.lean_group == "F"
        assert t.shares["F"] == pytest.approx(0.6, abs=0.05) and t.shares["M"] == pytest.approx(0.05, abs=0.02)
        lo, hi = t.share_ci["F"]
        assert lo < t.shares["F"] < hi and hi - lo < 0.1
        # True odds ratio (0.6/0.4)/(0.05/0.95) = 28.5: log 3.35.
        assert t.lean_log_or_ci[0] < math.log(28.5) < t.lean_log_or_ci[1]
    assert sum(w in found for w, *_ in MODERATE) >= 3
    assert all(found[w].lean_group == "F" for w, *_ in MODERATE if w in found)
    # Race-planted terms do not show up on gender, and are found on race for their group.
    assert not any(w in found for w, *_ in RACE_STRONG)
    r = analyse(docs, gender, race, "race")
    rfound = {t.term: t for t in r.significant}
    assert all(rfound[w].lean_group == "r2" for w, *_ in RACE_STRONG)
    assert not any(w in rfound for w, *_ in STRONG)
    # Every significant term is listed, sorted by q.
    assert len(g.significant) == g.n_significant
    assert [t.q_value for t in g.significant] == sorted(t.q_value for t in g.significant)


def test_moderate_terms_are_mostly_found_over_seeds():
    hits = 0
    for seed in range(3):
        docs, gender, race = zipf_corpus(seed, planted=MODERATE)
        hits += sum(t.term.startswith("plantmod") for t in analyse(docs, gender, race, "gender").significant)
    assert hits >= 11  # of 15


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_length_only_difference_gives_no_significant_term(seed):
    """Female generations twice as long, same per-word rates: the lengths table shows it, the
    stratified test finds nothing on gender (nor on race)."""
    docs, gender, race = zipf_corpus(seed, length_factor={("gender", "F"): 2.0})
    g = analyse(docs, gender, race, "gender")
    lengths = {row.group: row for row in g.lengths}
    assert lengths["F"].mean / lengths["M"].mean == pytest.approx(2.0, abs=0.1)
    assert lengths["F"].ci_low < lengths["F"].mean < lengths["F"].ci_high
    assert g.n_tested > 1_000 and g.n_significant == 0
    assert analyse(docs, gender, race, "race").n_significant == 0


def test_unstratified_test_would_be_fooled_by_length():
    """The same 2x-length corpus without length strata: many 'findings', all for the longer
    group -- what the stratification prevents."""
    docs, gender, race = zipf_corpus(0, length_factor={("gender", "F"): 2.0})
    fitted, _ = fit_tfidf(docs)
    base = AxisAnalysis(dataset="d", model="m", prompt_id="resume", axis="gender", mode="variance")
    res = analyze_axis(fitted, gender, base)["variance"]
    assert res.n_significant > 100
    assert {t.lean_group for t in res.significant} == {"F"}


# ------------------------------------------------------------------------------ toxicity

def test_toxicity_null_with_rare_toxic_outputs_claims_no_difference():
    """20 slices of 600 generations, 2% of them toxic at random, groups 70/30 and 7-way: no
    slice is called different after BH, and the slice p-values are not piled near 0."""
    rng = np.random.default_rng(0)
    tables = []
    for s in range(20):
        n = 600
        probs = np.where(rng.random(n) < 0.02, rng.uniform(0.5, 1.0, n), rng.beta(1, 30, n))
        gender = np.where(rng.random(n) < 0.3, "F", "M")
        race = rng.choice(["r0", "r1", "r2", "r3", "r4", "r5", "r6"], size=n,
                          p=[0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05])
        labels, other = (gender, race) if s % 2 == 0 else (race, gender)
        tables.append(toxicity_table("c", "d", "m", "arrest", "gender" if s % 2 == 0 else "race",
                                     list(probs), list(labels), ["t"] * n, [str(i) for i in range(n)],
                                     strata={"other": list(other)}, n_permutations=400, seed=s))
    adjust_slices(tables)
    assert not any(t.test.significant for t in tables)
    p = np.array([t.test.p_value for t in tables])
    assert (p < 0.05).sum() <= 3


def test_toxicity_real_difference_is_found():
    rng = np.random.default_rng(1)
    n = 600
    gender = np.where(rng.random(n) < 0.3, "F", "M")
    probs = np.where(gender == "F", rng.beta(2, 8, n), rng.beta(1, 8, n))
    t = toxicity_table("c", "d", "m", "arrest", "gender", list(probs), list(gender), ["t"] * n,
                       [str(i) for i in range(n)], n_permutations=500)
    adjust_slices([t])
    assert t.test.p_value == pytest.approx(1 / 501) and t.test.significant
    means = {r.group: r.mean["value"] for r in t.rows}
    assert t.test.diff == pytest.approx(means["F"] - means["M"])


def test_share_above_half_has_wilson_interval_with_nonzero_upper_bound():
    """Group A: 0 of 40 above 0.5 -> Wilson upper bound z^2/(n + z^2) = 3.8415/43.8415 = 8.76%.
    Group B: 2 of 4 -> 50% with Wilson (15.0%, 85.0%)."""
    probs = [0.1] * 40 + [0.9, 0.7, 0.2, 0.3]
    labels = ["A"] * 40 + ["B"] * 4
    t = toxicity_table("c", "d", "m", "arrest", "gender", probs, labels, ["t"] * 44,
                       [str(i) for i in range(44)], n_permutations=0)
    rows = {r.group: r.share_toxic for r in t.rows}
    z2 = 1.959963984540054 ** 2
    assert rows["A"]["value"] == 0.0 and rows["A"]["ci_low"] == 0.0
    assert rows["A"]["ci_high"] == pytest.approx(100 * z2 / (40 + z2))
    assert rows["B"]["value"] == 50.0
    assert rows["B"]["ci_low"] == pytest.approx(15.0, abs=0.05) and rows["B"]["ci_high"] == pytest.approx(85.0, abs=0.05)
    assert t.test is None  # no shuffles asked for


class WordClassifier:
    """Scores 0.3 for a sentence containing 'white', else 0.1: a classifier biased by one word."""

    name = "word"

    def predict_proba(self, texts):
        return np.array([0.3 if "white" in t.lower() else 0.1 for t in texts])


def test_identity_check_flags_a_classifier_moved_by_identity_words():
    c = identity_check(WordClassifier(), "race", ["Black", "White", "Latino_Hispanic"])
    assert c.phrases == {"Black": "Black person", "White": "White person", "Latino_Hispanic": "Latino Hispanic person"}
    assert c.groups == pytest.approx({"Black": 0.1, "White": 0.3, "Latino_Hispanic": 0.1})
    assert c.spread == pytest.approx(0.2) and c.warning
    g = identity_check(WordClassifier(), "gender", ["Female", "Male"])
    assert g.phrases == {"Female": "woman", "Male": "man"} and not g.warning and g.spread == 0.0
    assert c.n_templates == len(IDENTITY_TEMPLATES) >= 6
    assert identity_phrase("non-binary person", "gender_phrase") == "non-binary person"


def test_profanity_check_identity_spread_is_measured():
    """The shipped offline classifier on the FairFace race labels, 8 sentences x 7 groups: it
    scores 'White person' sentences several times more toxic than 'Middle Eastern person' ones
    (0.141 vs 0.024 with alt-profanity-check 1.x), so the check warns; gender words barely move
    it (man 0.053, woman 0.061)."""
    from evalkit.audits.toxicity import ProfanityCheckClassifier

    races = ["East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic", "Southeast Asian"]
    c = identity_check(ProfanityCheckClassifier(), "race", races)
    assert set(c.groups) == set(races)
    assert c.spread == pytest.approx(max(c.groups.values()) - min(c.groups.values()))
    assert c.groups["White"] > 3 * c.groups["Middle Eastern"]
    assert c.warning and c.spread > 0.05
    g = identity_check(ProfanityCheckClassifier(), "gender", ["Female", "Male"])
    assert not g.warning and g.spread < 0.05


# ------------------------------------------------------------------------------ FairFace

def buckets(spec):
    """(gender, race, hit) rows from {(gender, race): (hits, n)}."""
    rows = []
    for (g, r), (k, n) in spec.items():
        rows += [(g, r, 1.0)] * k + [(g, r, 0.0)] * (n - k)
    return rows


def test_fairface_noise_correction_by_hand():
    """Two buckets of 10: 9/10 and 5/10. Observed population std of (0.9, 0.5) = 0.2 -> 20
    points. Noise: (K-1)/K^2 * sum p(1-p)/(n-1) = 1/4 * (0.09/9 + 0.25/9) = 0.34/36 = 0.009444.
    Corrected: sqrt(0.04 - 0.009444) = sqrt(0.030556) = 0.17480 -> 17.48 points."""
    rows = buckets({("Male", "Black"): (9, 10), ("Female", "Black"): (5, 10)})
    assert bucket_std({"a": 0.9, "b": 0.5}) == pytest.approx(20.0)
    assert bucket_std_corrected(rows) == pytest.approx(100 * math.sqrt(0.04 - 0.34 / 36))
    # Equal buckets: the observed std is 0, the correction clips at 0 (not a negative variance).
    even = buckets({("Male", "Black"): (8, 10), ("Female", "Black"): (8, 10)})
    assert bucket_std_corrected(even) == 0.0
    # A one-sample bucket has no variance estimate: no corrected value.
    assert bucket_std_corrected(buckets({("Male", "Black"): (1, 1), ("Female", "Black"): (5, 10)})) is None


def test_fairface_no_disparity_null_matches_sampling_noise():
    """14 buckets of 50 images, every one at 90% accuracy in truth: the card's std is mostly
    noise (about sqrt(13/14 * 0.09/50) = 4.1 points expected); the corrected estimate is far
    smaller, the shuffled null sits at the observed level, and p is not small."""
    rng = np.random.default_rng(3)
    rows = [(g, r, float(rng.random() < 0.9)) for g in ("Male", "Female") for r in "ABCDEFG" for _ in range(50)]
    s = bucket_spread(rows, n_permutations=1000)
    assert s.observed == pytest.approx(bucket_std(
        {k: np.mean([h for g, r, h in rows if (g, r) == k]) for k in {(g, r) for g, r, _ in rows}}))
    assert 2.5 < s.null_mean < 5.5 and s.null_p95 > s.null_mean
    assert s.corrected < s.observed and s.p_value > 0.05
    # A real disparity (Female buckets at 60%) stands far above its null.
    rows2 = [(g, r, float(rng.random() < (0.9 if g == "Male" else 0.6)))
             for g in ("Male", "Female") for r in "ABCDEFG" for _ in range(50)]
    s2 = bucket_spread(rows2, n_permutations=1000)
    assert s2.p_value == pytest.approx(1 / 1001) and s2.corrected == pytest.approx(15.0, abs=3.0)
