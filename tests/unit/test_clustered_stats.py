"""Cluster-aware statistics (issue 20): constructed data where the right answer is known.

- singleton clusters give today's per-question numbers exactly (pinned from the pre-cluster code);
- whole-cluster outcomes widen the interval by about sqrt(m), with design effect m and ICC 1;
- the issue's 80 pages x 5 questions case: 4 pages better is 4 coin flips, p = 0.125;
- independent outcomes in clusters give the per-question interval within noise;
- the minimum detectable difference has 80% power in a simulation;
- realistic scale: thousands of clusters with skewed sizes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.analyses.clustered import (Z_80, Z_975, cluster_summary, clustered_se, durkalski_p, icc_anova,
                               min_detectable_difference)
from evalkit.analyses.compare import mcnemar_for, paired_delta, sign_flip_p_value
from evalkit.analyses.stats import bootstrap_mean, cluster_codes


def _pages(n_pages: int, m: int) -> list[str]:
    return [f"page{p}" for p in range(n_pages) for _ in range(m)]


# ------------------------------------------------------------------ singletons = today's numbers
def test_singleton_clusters_reproduce_the_per_question_bootstrap_exactly():
    rng = np.random.default_rng(7)
    vals = list(rng.integers(0, 2, 300).astype(float))
    # pinned from evalkit.analyses.stats.bootstrap_mean before clusters existed (seed 0, 1,000 resamples)
    expected = (53.666666666666664, 48.0, 59.0, 300)
    for clusters in (None, [f"q{i}" for i in range(300)], [None] * 300):
        mv = bootstrap_mean(vals, clusters=clusters)
        assert (mv.value, mv.ci_low, mv.ci_high, mv.n) == expected
    anls = [round(float(v), 3) for v in rng.random(50)]
    mv = bootstrap_mean(anls, clusters=list(range(50)), n_resamples=2000, seed=3)
    assert (mv.value, mv.ci_low, mv.ci_high) == (48.396, 39.98515, 56.81455)


def test_singleton_clusters_reproduce_the_per_question_paired_statistics_exactly():
    rng = np.random.default_rng(11)
    a = rng.integers(0, 2, 400).astype(float)
    b = np.where(rng.random(400) < 0.15, 1 - a, a)
    # pinned from evalkit.analyses.compare.paired_delta before clusters existed (Monte Carlo sign flips)
    for clusters in (None, [str(i) for i in range(400)]):
        pd = paired_delta(list(a), list(b), clusters)
        assert (pd.n, pd.delta, pd.ci_low, pd.ci_high, pd.p_value) == (400, 0.5, -3.25, 4.25, 0.8978102189781022)
        assert pd.n_clusters == 400


def test_summary_of_singletons_has_design_effect_one_and_no_icc():
    vals = [1.0, 0.0, 1.0, 1.0, 0.0]
    s = cluster_summary(vals, None, ci_low=20.0, ci_high=100.0)
    assert (s.n, s.n_clusters, s.mean_cluster_size, s.max_cluster_size) == (5, 5, 1.0, 1)
    assert s.design_effect == pytest.approx(1.0) and s.icc is None
    # half-width 40 points: +-1 point needs 40^2 = 1,600 times the clusters
    assert s.half_width == 40.0 and s.clusters_for_1pt == 8000


def test_cluster_codes_number_by_first_appearance_and_none_is_alone():
    assert cluster_codes(["b", "a", "b", None, None, "a"]).tolist() == [0, 1, 0, 2, 3, 1]


# ------------------------------------------------------------------ whole-cluster outcomes
def test_whole_page_outcomes_widen_the_interval_by_about_sqrt_m():
    # 80 pages x 5 questions, each page all right (40) or all wrong (40).
    page_right = np.random.default_rng(1).permutation([1.0] * 40 + [0.0] * 40)
    vals = [float(v) for v in page_right for _ in range(5)]
    clusters = _pages(80, 5)
    naive = bootstrap_mean(vals, n_resamples=4000)
    clus = bootstrap_mean(vals, clusters=clusters, n_resamples=4000)
    assert naive.value == clus.value == 50.0
    ratio = (clus.ci_high - clus.ci_low) / (naive.ci_high - naive.ci_low)
    assert 1.9 < ratio < 2.6  # sqrt(5) = 2.24, up to bootstrap noise
    s = cluster_summary(vals, clusters, ci_low=clus.ci_low, ci_high=clus.ci_high)
    assert (s.n, s.n_clusters, s.mean_cluster_size, s.max_cluster_size) == (400, 80, 5.0, 5)
    # every question of a page shares its outcome: variance x m exactly, correlation 1
    assert s.design_effect == pytest.approx(5.0) and s.icc == pytest.approx(1.0)


def test_four_better_pages_are_four_coin_flips():
    # The case: B gets 4 more pages right (+5 points carried by 4 pages). Per question the
    # test saw 20 independent wins (p = 2 / 2^20); by page it is 4 sign flips: 2 of 16 patterns
    # reach |sum| = 20, p = 0.125.
    a_pages = [1.0] * 40 + [0.0] * 40
    b_pages = [1.0] * 44 + [0.0] * 36
    a = [v for v in a_pages for _ in range(5)]
    b = [v for v in b_pages for _ in range(5)]
    clusters = _pages(80, 5)
    pd = paired_delta(a, b, clusters, n_resamples=2000)
    assert pd.delta == pytest.approx(5.0)
    assert pd.p_value == 0.125
    assert pd.n_clusters == 80
    assert sign_flip_p_value(a, b, n_resamples=2000) < 1e-3  # what ignoring the pages said
    # the interval by page is about sqrt(5) wider than per question; the detectable difference
    # (80% power) is above the observed 5 points: this run could not reliably see such a gap
    naive = paired_delta(a, b, n_resamples=2000)
    assert 1.7 < (pd.ci_high - pd.ci_low) / (naive.ci_high - naive.ci_low) < 2.8
    assert pd.mdd == pytest.approx((Z_975 + Z_80) * 100 * math.sqrt(4 * (5 - 400 * 0.05 / 80) ** 2
                                                                   + 76 * (400 * 0.05 / 80) ** 2) / 400)
    assert pd.mdd > 5.0 > naive.mdd
    # McNemar: plain exact test would be invalid; Durkalski's needs more discordant pages
    mc, note = mcnemar_for(a, b, clusters)
    assert mc is None and "only 4 cluster(s) are discordant" in note
    mc1, note1 = mcnemar_for(a, b, [str(i) for i in range(400)])
    assert mc1["kind"] == "exact" and (mc1["b"], mc1["c"]) == (0, 20)


def test_durkalski_by_hand_and_equal_to_mcnemar_chi_square_for_singletons():
    # clusters: k1 has b-c = +2, k2 has -1, k3 has +1: X^2 = (2 - 1 + 1)^2 / (4 + 1 + 1) = 4/6
    a = [1, 1, 0, 1, 1, 0]
    b = [0, 0, 1, 1, 0, 0]
    clusters = ["k1", "k1", "k2", "k2", "k3", "k3"]
    p, k = durkalski_p(a, b, clusters)
    assert k == 3 and p == pytest.approx(math.erfc(math.sqrt((4 / 6) / 2)))
    # one pair per cluster: (b - c)^2 / (b + c), McNemar's chi-square without continuity correction
    a1 = [1] * 7 + [0] * 2
    b1 = [0] * 7 + [1] * 2
    p1, _ = durkalski_p(a1, b1, list(range(9)))
    assert p1 == pytest.approx(math.erfc(math.sqrt((25 / 9) / 2)))


def test_durkalski_shown_with_enough_discordant_clusters():
    # 30 pages x 3 questions; B better on 12 pages (one question each), worse on 2
    a, b, clusters = [], [], []
    for p in range(30):
        for q in range(3):
            clusters.append(f"p{p}")
            a.append(0.0 if (p < 12 and q == 0) else 1.0 if (12 <= p < 14 and q == 0) else 1.0)
            b.append(1.0 if (p < 12 and q == 0) else 0.0 if (12 <= p < 14 and q == 0) else 1.0)
    mc, note = mcnemar_for(a, b, clusters)
    assert mc["kind"] == "durkalski" and mc["discordant_clusters"] == 14
    assert mc["p_value"] == pytest.approx(math.erfc(math.sqrt((10 ** 2 / 14) / 2)))
    assert "Durkalski" in note


# ------------------------------------------------------------------ independent outcomes
def test_independent_outcomes_in_clusters_keep_the_per_question_interval():
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 9, 1500)
    clusters = [c for c, m in enumerate(sizes) for _ in range(m)]
    vals = list((rng.random(len(clusters)) < 0.6).astype(float))
    naive = bootstrap_mean(vals, n_resamples=2000)
    clus = bootstrap_mean(vals, clusters=clusters, n_resamples=2000)
    ratio = (clus.ci_high - clus.ci_low) / (naive.ci_high - naive.ci_low)
    assert 0.9 < ratio < 1.1
    s = cluster_summary(vals, clusters)
    assert 0.9 < s.design_effect < 1.1 and abs(s.icc) < 0.05


# ------------------------------------------------------------------ detectable difference
def _clustered_diffs(rng, sizes, shift, sd_cluster=0.3, sd_item=0.5):
    codes = np.repeat(np.arange(len(sizes)), sizes)
    return shift + rng.normal(0, sd_cluster, len(sizes))[codes] + rng.normal(0, sd_item, len(codes)), codes


def test_minimum_detectable_difference_has_80_percent_power_in_simulation():
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 8, 300)
    d0, codes = _clustered_diffs(rng, sizes, 0.0)
    mdd = min_detectable_difference(np.zeros(len(d0)), d0, codes, scale=1.0)
    assert mdd == pytest.approx((Z_975 + Z_80) * clustered_se(d0, codes))
    # draw many comparisons whose true difference is the MDD; a two-sided 5% test on the
    # clustered SE should reject about 80% of them
    rejects = 0
    sims = 1000
    for _ in range(sims):
        d, _ = _clustered_diffs(rng, sizes, mdd)
        rejects += abs(d.mean() / clustered_se(d, codes)) > Z_975
    assert 0.74 < rejects / sims < 0.86
    # the cluster sign-flip test the comparison reports has about the same power
    flips = sum(sign_flip_p_value(np.zeros(len(codes)), _clustered_diffs(rng, sizes, mdd)[0], codes,
                                  n_resamples=499, seed=s) < 0.05 for s in range(120))
    assert 0.65 < flips / 120 < 0.92


def test_limit_200_cannot_separate_a_two_point_difference():
    # 200 questions of 0/1 outcomes, ~15% of them flipping between the configurations: the
    # run could only detect a difference of several points.
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.5).astype(float)
    b = np.where(rng.random(200) < 0.15, 1 - a, a)
    pd = paired_delta(list(a), list(b), n_resamples=1000)
    assert pd.mdd > 6.0


# ------------------------------------------------------------------ realistic scale
def test_thousands_of_skewed_clusters():
    rng = np.random.default_rng(9)
    g = 4000
    sizes = np.minimum(rng.zipf(1.8, g), 60)  # most pages 1-2 questions, a few with dozens
    codes = np.repeat(np.arange(g), sizes)
    n = len(codes)
    rho = 0.3
    x = (math.sqrt(rho) * rng.normal(size=g)[codes] + math.sqrt(1 - rho) * rng.normal(size=n))
    vals = list(x)
    mv = bootstrap_mean(vals, clusters=list(codes), scale=1.0, n_resamples=1000)
    s = cluster_summary(vals, list(codes), ci_low=mv.ci_low, ci_high=mv.ci_high)
    assert s.n == n and s.n_clusters == g and s.max_cluster_size == int(sizes.max())
    # Kish's design effect for unequal sizes: 1 + (sum m^2 / n - 1) rho
    expected_deff = 1 + (float((sizes ** 2).sum()) / n - 1) * rho
    assert s.design_effect == pytest.approx(expected_deff, rel=0.25)
    assert icc_anova(x, codes) == pytest.approx(rho, abs=0.05)
    # the bootstrap interval agrees with the clustered standard error
    assert (mv.ci_high - mv.ci_low) / 2 == pytest.approx(Z_975 * clustered_se(x, codes), rel=0.12)
    # the per-question interval is too narrow by about sqrt(design effect)
    naive = bootstrap_mean(vals, scale=1.0, n_resamples=1000)
    assert (mv.ci_high - mv.ci_low) / (naive.ci_high - naive.ci_low) == pytest.approx(
        math.sqrt(s.design_effect), rel=0.15)


def test_clusters_must_align_with_values():
    with pytest.raises(ValueError, match="clusters must align"):
        bootstrap_mean([1.0, 0.0], clusters=["a"])
    with pytest.raises(ValueError, match="clusters must align"):
        paired_delta([1.0, 0.0], [1.0, 1.0], ["a"])


def test_stats_bench_runs_and_its_page_shows_the_ratio(tmp_path):
    # `make bench` times the full scale; here the same code on a small case, rendered as bench.html does.
    from benchmarks import stats_bench
    from benchmarks.run import TEMPLATES
    from evalkit.reports.html import make_env

    from tests.helpers.htmldom import by_id, parse

    r = stats_bench.run(n=3000, g=600, n_resamples=50, repeats=1)
    assert (r.n_samples, r.n_clusters) == (3000, 600) and r.ratio == r.cluster_s / r.per_sample_s
    assert r.cluster_peak_bytes > 0 and r.max_cluster_size > 5
    page = tmp_path / "stats.html"
    page.write_text(make_env([TEMPLATES]).get_template("stats_bench.html.j2").render(r={"stats": r.__dict__}))
    assert by_id(parse(page.read_text()), "stats-ratio").text() == f"{r.ratio:.2f}"


def test_one_cluster_has_no_interval():
    # five questions on one page are one observation: no spread to resample
    mv = bootstrap_mean([1.0, 0.0, 1.0, 1.0, 1.0], clusters=["p"] * 5)
    assert (mv.value, mv.ci_low, mv.ci_high, mv.n) == (80.0, None, None, 5)
    assert bootstrap_mean([1.0], clusters=["p"]).ci_low == 100.0  # one value, as before clusters
