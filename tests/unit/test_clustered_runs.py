"""Cluster-aware statistics through the commands a user runs: the issue's DocVQA-schema case
(80 pages x 5 questions, each page all right or all wrong) scored with `evalkit score`,
compared with `evalkit compare`, and the report pages parsed; old run folders still read."""
from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalkit.cli.commands import main
from evalkit.reports.run_report import render_run_report
from evalkit.results.schema import read_run

from tests.helpers.htmldom import by_id, parse

PAGES, PER_PAGE = 80, 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("clustered")
    rows = [{"questionId": p * PER_PAGE + q, "question": f"q{q} on page {p}?", "image": None,
             "docId": 1000 + p, "answers": ["yes"]} for p in range(PAGES) for q in range(PER_PAGE)]
    data = root / "docvqa.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    out = {}
    for name, right_pages in (("A", 40), ("B", 44)):
        preds = root / f"{name}.jsonl"
        preds.write_text("".join(json.dumps({"id": r["questionId"],
                                             "prediction": "yes" if r["docId"] - 1000 < right_pages else "no"}) + "\n"
                                 for r in rows))
        assert main(["score", "--task", "docvqa", "--predictions", str(preds), "--data", str(data),
                     "--runs-dir", str(root), "--run-name", name]) == 0
        out[name] = root / name
    assert main(["compare", str(out["A"]), str(out["B"]), "--out", str(root / "cmp")]) == 0
    out["cmp"] = root / "cmp"
    return out


def test_results_record_the_pages_as_clusters(runs):
    res, recs = read_run(runs["A"])
    assert recs[0].cluster == "docId=1000" and recs[-1].cluster == "docId=1079"
    st = res.statistics
    assert st["cluster_key"] == "docId" and st["n_fallback"] == 0
    h = st["headline"]
    assert (h["n"], h["n_clusters"], h["mean_cluster_size"], h["max_cluster_size"]) == (400, 80, 5.0, 5)
    assert h["design_effect"] == pytest.approx(5.0) and h["icc"] == pytest.approx(1.0)
    m = res.metrics["anls"]
    assert m["value"] == 50.0
    assert h["half_width"] == pytest.approx((m["ci_high"] - m["ci_low"]) / 2)
    # 80 independent units, not 400: the half-width is near 1.96 * sqrt(.25 / 80) = 11 points
    assert 8.0 < h["half_width"] < 13.5
    assert h["clusters_for_1pt"] == math.ceil(80 * h["half_width"] ** 2)


def test_compare_by_page_four_pages_are_four_coin_flips(runs, capsys):
    d = json.loads((runs["cmp"] / "compare.json").read_text())
    assert d["schema_version"] == 2
    (c,) = d["comparisons"]
    assert c["delta"] == pytest.approx(5.0) and c["n_pairs"] == 400 and c["n_clusters"] == 80
    assert c["p_value"] == 0.125 and c["max_cluster_size"] == 5
    assert c["mcnemar"] is None and "only 4 cluster(s) are discordant" in c["mcnemar_note"]
    assert c["mdd"] > 5.0  # 80 pages cannot reliably detect +5 points
    page = parse((runs["cmp"] / "compare.html").read_text())
    row = page.one("tr", cls="delta")
    assert float(row.attrs["data-p"]) == 0.125
    assert row.one("td", cls="n-clusters").text() == "80"
    assert float(row.one("td", cls="mdd").attrs["data-value"]) == c["mdd"]
    li = page.one("ul", id="detectability").one("li")
    assert li.attrs["data-detectable"] == "no" and "run more samples" in li.text()
    assert "four coin flips" in by_id(page, "reading-comparison").text()


def test_run_report_shows_clusters_beside_the_interval(runs):
    res, _ = read_run(runs["B"])
    page = parse(render_run_report(runs["B"]).read_text())
    box = by_id(page, "headline-clusters")
    assert box.attrs["data-cluster-key"] == "docId"
    assert by_id(page, "n-clusters").text() == "80"
    assert by_id(page, "design-effect").text() == "5.00"
    assert by_id(page, "icc").text() == "1.000"
    h = res.statistics["headline"]
    assert by_id(page, "half-width").text() == f"{h['half_width']:.1f}"
    assert by_id(page, "clusters-for-1pt").text() == f"{h['clusters_for_1pt']:,}"
    assert "Design effect" in by_id(page, "reading-statistics").text()


def test_old_run_folder_without_clusters_still_reads_renders_and_compares(runs, tmp_path):
    # A run written before clusters: no `statistics` in results.json, no `cluster` per sample.
    import shutil
    for name in ("A", "B"):
        old = tmp_path / name
        shutil.copytree(runs[name], old)
        res = json.loads((old / "results.json").read_text())
        del res["statistics"]
        (old / "results.json").write_text(json.dumps(res))
        lines = [json.loads(x) for x in (old / "samples.jsonl").read_text().splitlines() if x.strip()]
        (old / "samples.jsonl").write_text("".join(json.dumps({k: v for k, v in x.items() if k != "cluster"}) + "\n"
                                                   for x in lines))
    res, recs = read_run(tmp_path / "A")
    assert res.statistics == {} and all(r.cluster is None for r in recs)
    page = parse(render_run_report(tmp_path / "A").read_text())
    assert not page.find_all(id="headline-clusters") and not page.find_all(id="reading-statistics")
    assert main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "cmp")]) == 0
    (c,) = json.loads((tmp_path / "cmp" / "compare.json").read_text())["comparisons"]
    # sample by sample, as before clusters: 20 independent wins
    assert c["n_clusters"] == 400 and c["p_value"] < 1e-3 and c["mcnemar"]["kind"] == "exact"


# ------------------------------------------------------------------ each task's cluster key
@pytest.mark.parametrize("name,key,n_rows,n_clusters", [
    ("docvqa", "docId", 60, 36), ("vqav2", "image_id", 60, None), ("textvqa", "image_id", 40, None),
    ("mmmu", "image", 30, None), ("mathvista", "image", 30, None), ("fairface", "image", 36, None)])
def test_each_task_names_its_cluster_on_the_shipped_sample(name, key, n_rows, n_clusters):
    from evalkit.pipeline.data import load_task_data
    from evalkit.pipeline.records import new_record
    from evalkit.registry import TASKS

    task = TASKS.get(name)()
    assert task.cluster_by == key
    rows = list(load_task_data(task).rows)
    clusters = [new_record(task, row, i, str(i)).cluster for i, row in enumerate(rows)]
    assert len(rows) == n_rows and None not in clusters
    prefix = "image:" if key == "image" else f"{key}="
    assert all(c.startswith(prefix) for c in clusters)
    if key != "image":
        assert clusters == [f"{key}={row[key]}" for row in rows]
        if n_clusters is not None:
            assert len(set(clusters)) == n_clusters
    else:
        # rows that share an image's bytes share a cluster, and only those
        from evalkit.pipeline.images import image_key
        col = task.image_columns[0]
        digests = [image_key(row[col]) for row in rows]
        assert len(set(clusters)) == len(set(digests))


def test_missing_cluster_column_falls_back_to_the_image_and_none_means_alone():
    from evalkit.tasks.docvqa import DocVQA

    row = {"questionId": 1, "question": "q?", "image": b"\x89PNG fake bytes", "answers": ["a"]}
    same_image = dict(row, questionId=2)
    t = DocVQA()
    assert t.cluster(row) == t.cluster(same_image) and t.cluster(row).startswith("image:")
    assert t.cluster(dict(row, docId=7)) == "docId=7"
    assert t.cluster(dict(row, image=None)) is None  # no key, no image: its own cluster

    class Alone(DocVQA):
        cluster_by = None
    assert Alone().cluster(dict(row, docId=7)) is None


def test_a_run_on_one_page_says_it_has_no_interval(tmp_path, capsys):
    """Every question on one page is one cluster: no interval can be drawn, and the summary lines
    of score and compare say so instead of failing to format a missing bound (the official
    MMMU outputs, whose placeholder images are all one picture, crashed `evalkit score` here)."""
    rows = [{"questionId": q, "question": f"q{q}?", "image": None, "docId": 7, "answers": ["yes"]} for q in range(6)]
    data = tmp_path / "one_page.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    for name, right in (("A", 3), ("B", 5)):
        preds = tmp_path / f"{name}.jsonl"
        preds.write_text("".join(json.dumps({"id": r["questionId"], "prediction": "yes" if r["questionId"] < right
                                             else "no"}) + "\n" for r in rows))
        assert main(["score", "--task", "docvqa", "--predictions", str(preds), "--data", str(data),
                     "--runs-dir", str(tmp_path), "--run-name", name]) == 0
    out = capsys.readouterr().out
    assert "anls = 50.0 (no interval: one cluster) on 6 scored" in out
    assert "anls = 83.3 (no interval: one cluster) on 6 scored" in out
    assert main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--runs-dir", str(tmp_path),
                 "--run-name", "cmp"]) == 0
    out = capsys.readouterr().out
    assert "A: anls = 50.0 (no interval: one cluster)" in out
    assert "B - A: +33.3 (no interval: one cluster)" in out
