"""`evalkit invariance`: the tiny model in fp32 answers identically at batch size 1 and N; a
pair with planted answer changes reports them with the right share, interval and samples."""
from __future__ import annotations

import json

import pytest

from evalkit.cli.commands import main
from evalkit.analyses.invariance import compare_answers
from evalkit.results.schema import Results, write_run
from evalkit.analyses.stats import wilson_interval
from evalkit.types import SampleRecord

from tests.helpers.htmldom import parse  # noqa: E402


def test_tiny_model_fp32_batch_size_changes_no_answer(tmp_path, tiny_cache, capsys):
    out = tmp_path / "inv"
    rc = main(["invariance", "--task", "docvqa", "--limit", "6", "--batch-size", "3", "--pairs", "batch,served",
               "--runs-dir", str(tmp_path), "--run-name", "inv", "--cache-dir", str(tiny_cache), "--device", "cpu"])
    assert rc == 0
    doc = json.loads((out / "invariance.json").read_text(encoding="utf-8"))
    batch, served = doc["pairs"]
    assert (batch["pair"], batch["status"], batch["a"], batch["b"]) == ("batch", "ran", "bs1-fp32-default-attn",
                                                                        "bs3-fp32-default-attn")
    assert (batch["n"], batch["n_changed"], batch["changed"], batch["diff"]) == (6, 0, [], 0.0)
    # the 6 questions are on 4 pages (docId 2291, 2453 x2, 2517, 2658 x2); with no change to size the
    # design effect by, the pages count as the samples
    assert batch["n_clusters"] == 4
    assert batch["share_ci_low"] == 0.0 and batch["share_ci_high"] == pytest.approx(wilson_interval(0, 4)[1])
    assert served["status"] == "not configured" and "served" in served["reason"]
    assert doc["pipeline_check"] is True  # the tiny backend's random_weights, read from its runs
    root = parse((out / "invariance.html").read_text(encoding="utf-8"))
    assert root.one("div", id="banner-pipeline-check")
    row = root.one("tr", cls="pair", data_pair="batch")
    assert row.attrs["data-status"] == "ran" and row.one("td", cls="n-changed").text() == "0"
    assert "not configured" in root.one("tr", cls="pair", data_pair="served").one("td", cls="reason").text()
    assert "0 of 6 answers changed" in capsys.readouterr().out


def _run(path, preds, scores):
    recs = [SampleRecord(str(i), f"s{i}", "", p, [], s) for i, (p, s) in enumerate(zip(preds, scores))]
    write_run(path, Results(run_name=path.name, task={"name": "docvqa"}, data={}, model={}, generation={},
                            headline="anls", metrics={}), recs)
    return path


def test_planted_changes_are_counted_with_a_wilson_interval(tmp_path):
    n = 40
    a = _run(tmp_path / "a", ["x"] * n, [1.0] * n)
    # 4 answers change; 2 of them lose their score
    b = _run(tmp_path / "b", ["x"] * 36 + ["y", "y", "x ", "z"], [1.0] * 36 + [0.0, 0.0, 1.0, 1.0])
    r = compare_answers("dtype", "A", "B", a, b)
    assert (r.n, r.n_changed) == (40, 4)
    assert r.share_changed == 0.1
    lo, hi = wilson_interval(4, 40)
    assert (r.share_ci_low, r.share_ci_high) == (lo, hi)
    assert lo == pytest.approx(0.0396, abs=1e-3) and hi == pytest.approx(0.2301, abs=1e-3)
    assert r.diff == pytest.approx(-5.0)
    assert [c["sample_id"] for c in r.changed] == ["s36", "s37", "s38", "s39"]
    assert r.changed[0] == {"sample_id": "s36", "prediction_a": "x", "prediction_b": "y", "score_a": 1.0, "score_b": 0.0}


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (None, None)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)


@pytest.mark.parametrize("args,message", [
    (["--pairs", "batch,foo"], "unknown invariance pair(s) ['foo']; valid: batch, dtype, attn, served"),
    (["--batch-size", "1"], "--batch-size 1: the batch pair compares 1 with N; use N >= 2"),
])
def test_bad_invariance_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["invariance", "--task", "docvqa", "--runs-dir", str(tmp_path), "--run-name", "o", *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"evalkit: error: {message}"
    assert not (tmp_path / "o").exists()


def test_answers_that_change_page_by_page_count_by_page(tmp_path):
    # 40 questions on 8 pages of 5; every answer on pages 0 and 1 changes (10 of 40). By question
    # that is Wilson(10, 40); but the changes arrive as 2 of 8 pages, so the interval is Wilson on
    # the effective size n / design effect, here exactly the 8 pages: Wilson(2, 8).
    def run(path, preds):
        recs = [SampleRecord(str(i), f"s{i}", "", p, [], 1.0, cluster=f"docId={i // 5}") for i, p in enumerate(preds)]
        write_run(path, Results(run_name=path.name, task={"name": "docvqa"}, data={}, model={}, generation={},
                                headline="anls", metrics={}), recs)
        return path

    a = run(tmp_path / "a", ["x"] * 40)
    b = run(tmp_path / "b", ["y"] * 10 + ["x"] * 30)
    r = compare_answers("dtype", "A", "B", a, b)
    assert (r.n, r.n_changed, r.n_clusters) == (40, 10, 8)
    lo, hi = wilson_interval(2, 8)
    assert (r.share_ci_low, r.share_ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert hi - lo > 2 * (wilson_interval(10, 40)[1] - wilson_interval(10, 40)[0]) * 0.6
    assert r.diff == 0.0 and r.diff_p_value == 1.0
