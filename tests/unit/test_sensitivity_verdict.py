"""Scoring sensitivity (variants with CIs, paired differences, disagreeing samples) in
results.json and the report, and the model-card verdict, on constructed runs."""
from __future__ import annotations

from dataclasses import replace

import pytest

from evalkit.results.schema import DataInfo, ModelInfo, Results, write_run
from evalkit.analyses.sensitivity import Rule, scoring_sensitivity, variant_result
from evalkit.types import SampleRecord
from evalkit.analyses.verdict import card_verdict, tost_p_value
from evalkit.reports.run_report import render_run_report

from tests.helpers.htmldom import by_id, parse  # noqa: E402


def _records(head, var, name="v"):
    return [SampleRecord(str(i), f"s{i}", "", "p", [], h, extras={"variants": {name: v}} if v is not None else {})
            for i, (h, v) in enumerate(zip(head, var))]


def test_variant_difference_ci_and_disagreeing_ids():
    # 100 samples: headline right on the first 50; the variant also gets s50..s59 right -> +10 points
    head = [1.0] * 50 + [0.0] * 50
    var = [1.0] * 60 + [0.0] * 40
    r = variant_result(_records(head, var), Rule("v", "d", "src"))
    assert r.value == pytest.approx(60.0) and r.n == 100
    assert r.diff == pytest.approx(10.0)
    assert r.disagree_ids == [f"s{i}" for i in range(50, 60)] and r.n_disagree == 10
    # 10 of 100 differences of +1: the paired interval is about 10 +- 1.96 * 3 points, above 0
    assert 3.0 < r.diff_ci_low < 10.0 < r.diff_ci_high < 17.0


def test_variant_difference_resamples_pages():
    # The same +10 points, but the variant's 10 extra right answers are the 10 questions of 2 of
    # 20 pages (5 questions each): the paired interval resamples pages, so it is wider than the
    # per-question one above and its lower end can reach 0 (a resample may hold neither page).
    head = [1.0] * 50 + [0.0] * 50
    var = [1.0] * 60 + [0.0] * 40
    recs = [replace(r, cluster=f"page{i // 5}") for i, r in enumerate(_records(head, var))]
    r = variant_result(recs, Rule("v", "d"))
    flat = variant_result(_records(head, var), Rule("v", "d"))
    assert r.diff == flat.diff == pytest.approx(10.0)
    assert (r.diff_ci_high - r.diff_ci_low) > 1.6 * (flat.diff_ci_high - flat.diff_ci_low)
    assert r.diff_ci_low == 0.0  # P(no resample holds either page) = (18/20)^20 = 12% > 2.5%
    assert (r.ci_high - r.ci_low) > (flat.ci_high - flat.ci_low)  # the variant's own interval too


def test_identical_rules_have_zero_difference_and_no_disagreement_and_missing_variant_values_are_unpaired():
    recs = _records([1.0, 0.0, 0.5, 1.0], [1.0, 0.0, 0.5, None])
    r = variant_result(recs, Rule("v", "d"))
    assert (r.n, r.diff, r.diff_ci_low, r.diff_ci_high, r.n_disagree) == (3, 0.0, 0.0, 0.0, 0)


def test_sensitivity_section_in_results_and_report(tmp_path):
    recs = _records([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], name="vqa_2017")
    sens = scoring_sensitivity("vqa_accuracy", Rule("h", "the headline rule", "script @ abc"),
                               [Rule("vqa_2017", "the 2017 script", "script @ old")], recs)
    res = Results(run_name="r", task={"name": "vqav2", "metric": "vqa_accuracy", "reference": {"no_split": 80.8},
                                      "split": "validation", "reference_split": "test-dev"},
                  data={"source": "shipped sample"}, model={"name": "tiny-idefics2", "pipeline_check": True,
                                                            "do_image_splitting": False},
                  generation={}, headline="vqa_accuracy",
                  metrics={"vqa_accuracy": {"value": 50.0, "ci_low": 0.0, "ci_high": 100.0, "n": 4}},
                  scoring_sensitivity=sens)
    write_run(tmp_path, res, recs)
    root = parse(render_run_report(tmp_path).read_text(encoding="utf-8"))
    section = by_id(root, "scoring-sensitivity")
    assert "script @ abc" in by_id(section, "headline-rule").text()
    row = section.one("tr", cls="variant", data_variant="vqa_2017")
    assert row.one("td", cls="value").text() == "50.0"
    assert row.one("td", cls="diff").text() == "0.0"
    assert row.one("td", cls="n-disagree").text() == "2"
    assert [li.text() for li in section.one("details", cls="disagree", data_variant="vqa_2017").find_all("li")] == \
        ["s1", "s3"]
    verdict = by_id(root, "card-verdict")
    assert verdict.attrs["data-status"] == "not_applicable" and "does not apply" in verdict.text()


TASK = {"name": "textvqa", "split": "validation", "reference_split": "validation",
        "reference": {"no_split": 70.4, "split": 73.0}}
REAL = ModelInfo(name="hf", model_id="HuggingFaceM4/idefics2-8b", pipeline_check=False, do_image_splitting=True)
FULL = DataInfo(source="hub", n_rows=5000, n_total=5000)


def test_verdict_equivalent_when_the_90pct_interval_lies_inside_the_margin():
    # score 73.2, 95% CI +-0.5 -> se 0.255; 73.2 - (73 + 1) = -0.8 -> p_high = Phi(-3.14) ~ 0.0008
    v = card_verdict(TASK, REAL, FULL, {"value": 73.2, "ci_low": 72.7, "ci_high": 73.7})
    assert v.status == "equivalent" and v.card_row == "split" and v.card_value == 73.0
    assert v.p_value == pytest.approx(0.00085, abs=2e-4)


def test_verdict_not_equivalent_when_the_interval_is_wide_or_far():
    wide = card_verdict(TASK, REAL, FULL, {"value": 73.0, "ci_low": 70.0, "ci_high": 76.0})
    assert wide.status == "not_equivalent" and wide.p_value > 0.05
    far = card_verdict(TASK, REAL, FULL, {"value": 75.0, "ci_low": 74.9, "ci_high": 75.1})
    assert far.status == "not_equivalent" and far.p_value > 0.99


def test_verdict_lists_settings_that_differ_and_does_not_apply_to_random_weights():
    docvqa = {**TASK, "name": "docvqa", "reference_split": "test", "reference": {"no_split": 67.3, "split": 74.0}}
    v = card_verdict(docvqa, replace(REAL, do_image_splitting=False), DataInfo(source="hub", n_rows=100, n_total=5349),
                     {"value": 67.3, "ci_low": 67.0, "ci_high": 67.6})
    assert v.status == "settings_differ" and v.card_row == "no_split"
    assert v.differences == ["data split: the card scored test, this run validation",
                             "data: 100 of 5349 rows (a --limit subset)"]
    tiny = card_verdict(TASK, ModelInfo(name="tiny-idefics2", pipeline_check=True, do_image_splitting=False), FULL,
                        {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0})
    assert tiny.status == "not_applicable" and "random weights" in tiny.summary


def test_tost_is_symmetric_and_half_at_the_margin():
    assert tost_p_value(71.0, 70.0, 72.0, 70.0, 1.0) == pytest.approx(0.5)
    assert tost_p_value(69.5, 69.0, 70.0, 70.0, 1.0) == pytest.approx(tost_p_value(70.5, 70.0, 71.0, 70.0, 1.0))


def test_bootstrap_in_blocks_equals_one_draw(monkeypatch):
    import numpy as np

    from evalkit.analyses import stats

    x = list(np.random.default_rng(3).random(500))
    whole = stats.bootstrap_mean(x)
    monkeypatch.setattr(stats, "CHUNK_CELLS", 1700)  # 3 resamples per block, the last block shorter
    assert stats.bootstrap_mean(x) == whole


def test_verdict_for_scored_predictions_says_why_it_does_not_apply():
    v = card_verdict(TASK, ModelInfo(name="predictions file", pipeline_check=False), FULL,
                     {"value": 70.0, "ci_low": 69.0, "ci_high": 71.0}, from_predictions_file=True)
    assert v.status == "not_applicable" and "scored from a file" in v.summary
