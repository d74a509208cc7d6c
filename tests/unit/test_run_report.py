"""The run report and the runs index, checked by parsing the written HTML.

The fake run below is written through evalkit.results.schema.write_run, so the report is tested on
the same files a real run leaves. Expected strings are the hand-rounded results values.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from evalkit.pipeline.images import thumbnail_data_uri
from evalkit.results.schema import Results, write_run
from evalkit.types import SampleRecord
from evalkit.reports.html import fmt_bytes, fmt_ci, fmt_duration, fmt_num, fmt_value
from evalkit.reports.index import render_index
from evalkit.reports.run_report import render_run_report

from tests.helpers.htmldom import by_id, parse  # noqa: E402

SCRIPT_PAYLOAD = "<script>alert(1)</script>"
IMG_PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"


def _thumb() -> str:
    img = Image.new("RGB", (200, 120), (230, 240, 250))
    return thumbnail_data_uri(img, size=64)


def make_records() -> list[SampleRecord]:
    return [
        SampleRecord("0", "q1", "What is the date?", "March 3, 1998", ["March 3, 1998"], 1.0,
                     groups={"question_types": ["form"]}, thumb=_thumb(), n_output_tokens=4),
        SampleRecord("1", "q2", "What is the total?", SCRIPT_PAYLOAD, ["$1,234"], 0.0,
                     groups={"question_types": ["table/list"]}, n_output_tokens=6),
        SampleRecord("2", "q3", "Who signed <b>it</b>?", IMG_PAYLOAD, ["Acme & Co", "Acme & Co", "ACME"], 0.5,
                     groups={"question_types": ["form", "table/list"]},
                     thumb="http://example.invalid/tracker.png"),  # not a data URI: must not become <img src>
        SampleRecord("3", "q4", "Which page?", None, ["2"], None,
                     error="image is corrupt or truncated: broken data stream"),
        SampleRecord("4", "q5", "What year?", None, ["1998"], None, error="prompt too long: 9000 tokens > 8192"),
        SampleRecord("5", "q6", "Name?", "Smith", [], None),
    ]


def make_results(name: str = "docvqa-tiny", *, pipeline_check: bool = True, shipped: bool = True,
                 missing: list[str] | None = None, extra: list[str] | None = None,
                 model_id: str = "embedded") -> Results:
    return Results(
        run_name=name,
        task={"name": "docvqa", "title": "DocVQA", "hub_id": "lmms-lab/DocVQA", "hub_config": "DocVQA",
              "split": "validation", "id_field": "questionId", "metric": "anls", "max_new_tokens": 32,
              "reference": {"no_split": 67.3, "split": 74.0},
              "reference_note": "The card's numbers are on the test split."},
        data={"source": "shipped sample" if shipped else "hub", "description": "6 rendered pages",
              "n_rows": 6, "n_total": 6, "note": "Synthetic documents rendered by tasks/samplegen/docvqa.py."},
        model={"name": "tiny-idefics2", "model_id": model_id, "dtype": "float32",
               "do_image_splitting": False, "pipeline_check": pipeline_check},
        generation={"prompt_style": "instruct", "batch_size": 4, "final_batch_size": 2, "largest_batch": 4,
                    "requests": [{"kind": "generate", "n_requests": 5, "max_new_tokens": 32, "do_sample": False,
                                  "stop": ["<end_of_utterance>"]}]},
        headline="anls",
        metrics={"anls": {"value": 58.3333, "ci_low": 41.66, "ci_high": 75.0, "n": 3},
                 "exact_match": {"value": 33.3333, "ci_low": 0.0, "ci_high": 100.0, "n": 3}},
        breakdowns={"question_types": {
            "form": {"value": 75.0, "ci_low": 50.0, "ci_high": 100.0, "n": 2},
            "table/list": {"value": 25.04, "ci_low": 0.0, "ci_high": 49.96, "n": 2}}},
        counts={"n_samples": 6, "n_scored": 3, "n_errors": 2, "n_unscored": 1},
        errors=[{"uid": "3", "sample_id": "q4", "error": "image is corrupt or truncated: broken data stream"},
                {"uid": "4", "sample_id": "q5", "error": "prompt too long: 9000 tokens > 8192"}],
        unscored=[{"sample_id": "q6", "reason": "no gold answer"}],
        missing_predictions=missing or [],
        extra_predictions=extra or [],
        tokens={"image_tokens_per_sample": 64.0, "image_tokens_per_image": 64, "input_tokens_mean": 150.25,
                "output_tokens_total": 30},
        timing={"start": "2024-05-01T10:00:00", "end": "2024-05-01T10:02:05", "wall_s": 125.0,
                "samples_per_s": 0.048, "tokens_per_s": 7.44, "padding_fraction": 0.125},
        memory={"peak_bytes": 3 * 1024 ** 3, "device": "cpu"},
        environment={"versions": {"torch": "2.5.1", "transformers": "5.24.0", "datasets": None},
                     "git_commit": "abc1234"},
    )


def make_run(root: Path, name: str = "docvqa-tiny", **kw) -> tuple[Path, Results, list[SampleRecord]]:
    run_dir = root / name
    results, records = make_results(name, **kw), make_records()
    write_run(run_dir, results, records)
    return run_dir, results, records


@pytest.fixture
def report(tmp_path):
    run_dir, results, records = make_run(tmp_path)
    path = render_run_report(run_dir)
    html = path.read_text(encoding="utf-8")
    return path, html, parse(html), results, records


# ---------------------------------------------------------------- run report
def test_report_is_written_into_the_run_folder(report, tmp_path):
    path, html, *_ = report
    assert path == tmp_path / "docvqa-tiny" / "report.html"
    assert html.startswith("<!doctype html>")


def test_headline_with_ci_and_model_card_reference(report):
    _, _, dom, results, _ = report
    # 58.3333 -> "58.3"; CI 41.66 -> "41.7", 75.0 -> "75.0"; n 3
    assert by_id(dom, "headline-value").text() == "58.3" == f"{results.metrics['anls']['value']:.1f}"
    assert by_id(dom, "headline-ci-low").text() == "41.7"
    assert by_id(dom, "headline-ci-high").text() == "75.0"
    assert by_id(dom, "headline-n").text() == "3"
    assert by_id(dom, "headline-metric").text() == "anls"
    # The tiny pipeline-check model matches no published number: none is shown as if comparable.
    assert by_id(dom, "reference-none").text().startswith("No published number matches this model")
    assert not dom.find_all("div", cls="ref-row") and "67.3" not in by_id(dom, "reference").text()


def test_reference_numbers_are_the_run_models_own(tmp_path):
    """A run of idefics2-8b (real weights) shows its card's two numbers from the reference table."""
    run_dir = tmp_path / "real"
    write_run(run_dir, make_results("real", pipeline_check=False, model_id="HuggingFaceM4/idefics2-8b"),
              make_records())
    dom = parse(render_run_report(run_dir).read_text(encoding="utf-8"))
    assert by_id(dom, "reference-model").text() == "Idefics2-8B"
    assert by_id(dom, "reference-no-split").text() == "67.3"
    assert by_id(dom, "reference-split").text() == "74.0"
    # The run used no splitting, so the no-split reference is the comparable one.
    match = dom.one("div", cls="match")
    assert "67.3" in match.text() and "74.0" not in match.text()
    assert "test split" in by_id(dom, "reference").text()
    assert "https://huggingface.co/HuggingFaceM4/idefics2-8b" in by_id(dom, "reference").text()


def test_title_names_task_and_run(report):
    _, _, dom, *_ = report
    assert dom.one("title").text() == "DocVQA — docvqa-tiny"
    assert by_id(dom, "page-title").text() == "DocVQA — docvqa-tiny"


def test_metric_table_lists_every_metric(report):
    _, _, dom, results, _ = report
    rows = by_id(dom, "metrics").find_all("tr", data_metric=None)
    assert [r.attrs["data-metric"] for r in rows] == list(results.metrics)
    em = by_id(dom, "metrics").one("tr", data_metric="exact_match")
    # 33.3333 -> 33.3, CI 0.0 - 100.0
    assert [em.one("td", cls=c).text() for c in ("value", "ci-low", "ci-high", "n")] == ["33.3", "0.0", "100.0", "3"]
    assert "headline-row" in by_id(dom, "metrics").one("tr", data_metric="anls").attrs["class"]


def test_breakdown_rows_equal_results_breakdowns(report):
    _, _, dom, results, _ = report
    section = by_id(dom, "breakdowns")
    for axis, groups in results.breakdowns.items():
        table = section.one("table", cls="breakdown", data_axis=axis)
        shown = {tr.attrs["data-group"]: (tr.one("td", cls="value").text(), tr.one(cls="ci-low").text(),
                                          tr.one(cls="ci-high").text(), tr.one("td", cls="n").text())
                 for tr in table.find_all("tr", data_group=None)}
        expected = {g: (f"{v['value']:.1f}", f"{v['ci_low']:.1f}", f"{v['ci_high']:.1f}", str(v["n"]))
                    for g, v in groups.items()}
        assert shown == expected
    # 25.04 -> "25.0", 49.96 -> "50.0": rounding, not truncation
    assert expected["table/list"] == ("25.0", "0.0", "50.0", "2")
    # Two groups with values -> a bar chart, inline.
    fig = section.one("img", data_figure="breakdown-question_types")
    assert fig.attrs["src"].startswith("data:image/png;base64,")


def test_length_histogram_inlined(report):
    _, _, dom, *_ = report
    img = dom.one("img", data_figure="length-histogram")
    assert img.attrs["src"].startswith("data:image/png;base64,")
    # predictions of records without error: "March 3, 1998" (3 words), the script payload (1),
    # the img payload (3: `<img`, `src=x`, `onerror=...`), "Smith" (1) -> 4, mean 2.0, median 2.0
    captions = [f.text() for f in dom.find_all("figcaption")]
    assert "4 predictions; mean 2.0 words, median 2.0." in captions


def test_pipeline_banner_and_data_note(report):
    _, _, dom, *_ = report
    banner = by_id(dom, "banner-pipeline-check").text()
    assert ("Pipeline check: tiny-idefics2 has random weights — these numbers test the pipeline, "
            "they are not a model score.") in " ".join(banner.split())
    note = by_id(dom, "banner-data-source").text()
    assert "Synthetic documents rendered by tasks/samplegen/docvqa.py." in note


def test_no_banner_for_a_real_model_on_hub_data(tmp_path):
    run_dir, *_ = make_run(tmp_path, pipeline_check=False, shipped=False)
    html = render_run_report(run_dir).read_text(encoding="utf-8")
    dom = parse(html)
    assert not dom.find_all(id="banner-pipeline-check")
    assert not dom.find_all(id="banner-data-source")
    assert "random weights" not in html


def test_model_output_and_dataset_strings_are_escaped(report):
    _, html, dom, *_ = report
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "<b>it</b>" not in html  # question text is data too
    samples = by_id(dom, "samples")
    assert samples.one("tr", data_sample_id="q2").one("td", cls="prediction").text() == SCRIPT_PAYLOAD
    assert samples.one("tr", data_sample_id="q3").one("td", cls="prediction").text() == IMG_PAYLOAD
    # The only <script> elements are our own (the table filter), none carries the payload.
    assert all("alert" not in s.text() for s in dom.find_all("script"))


def test_no_network_references(report):
    _, html, dom, *_ = report
    for node in dom.iter():
        for attr in ("src", "href", "action", "data", "poster"):
            value = node.attrs.get(attr)
            if value is not None:
                assert value.startswith("data:image/"), (node.tag, attr, value[:60])
    assert not dom.find_all("link")
    # Stronger for this fake run, whose data holds no URL except the refused thumbnail.
    assert "http://" not in html and "https://" not in html
    csp = dom.one("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in csp and "img-src data:" in csp


def test_counts_and_errors(report):
    _, _, dom, results, _ = report
    assert by_id(dom, "error-count").text() == str(len(results.errors)) == "2"
    rows = by_id(dom, "errors").find_all("tr", cls="error-row")
    assert [r.find_all("td")[0].text() for r in rows] == ["q4", "q5"]
    assert "prompt too long: 9000 tokens &gt; 8192" not in dom.text()  # escaped once, not twice
    assert "prompt too long: 9000 tokens > 8192" in by_id(dom, "errors").text()
    counts = {tr.attrs["data-count"]: tr.one("td").text() for tr in by_id(dom, "counts").find_all("tr")}
    assert counts == {"n_samples": "6", "n_scored": "3", "n_errors": "2", "n_unscored": "1"}
    assert by_id(dom, "unscored-count").text() == "1"
    assert "no gold answer" in by_id(dom, "unscored").text()
    # No score-mode sections when nothing is missing or extra.
    assert not dom.find_all(id="missing-predictions") and not dom.find_all(id="extra-predictions")


def test_missing_and_extra_predictions_listed(tmp_path):
    run_dir, *_ = make_run(tmp_path, missing=["q7", "q8"], extra=["zz1"])
    dom = parse(render_run_report(run_dir).read_text(encoding="utf-8"))
    assert "q7, q8" in by_id(dom, "missing-predictions").text()
    assert "(2)" in by_id(dom, "missing-predictions").text()
    assert "zz1" in by_id(dom, "extra-predictions").text()


def test_run_metadata(report):
    _, _, dom, *_ = report
    meta = {tr.attrs["data-key"]: tr.one("td").text() for tr in by_id(dom, "run-metadata").find_all("tr")}
    assert meta["model_name"] == "tiny-idefics2"
    assert meta["dtype"] == "float32"
    assert meta["do_image_splitting"] == "no"
    assert meta["image_tokens_per_sample"] == "64"  # 64.0 shown as a whole number
    assert meta["input_tokens_mean"] == "150.2"  # 150.25 is exact in binary: half-even rounds down
    assert meta["padding_fraction"] == "12.5%"
    assert meta["batch_size"] == "4 (ran at 2)"  # halved after an OOM
    assert meta["prompt_style"] == "instruct"
    assert meta["samples_per_s"] == "0.05"  # 0.048 to 2 decimals
    assert meta["tokens_per_s"] == "7.4"
    assert meta["wall_s"] == "2 min 05 s"  # 125 s
    assert meta["peak_memory"] == "3.0 GiB (cpu)"  # 3 * 1024**3 bytes
    assert meta["versions"] == "torch 2.5.1, transformers 5.24.0"  # the unknown datasets version left out
    assert "n_cached" not in meta and "architecture" not in meta  # optional, not recorded here
    assert meta["git_commit"] == "abc1234"
    assert meta["start"] == "2024-05-01T10:00:00" and meta["end"] == "2024-05-01T10:02:05"
    assert meta["dataset"] == "lmms-lab/DocVQA / DocVQA / validation"


def test_sample_browser(report):
    _, _, dom, _, records = report
    rows = by_id(dom, "samples").find_all("tr", cls="sample")
    assert [r.attrs["data-sample-id"] for r in rows] == [r.sample_id for r in records]
    assert [r.attrs["data-status"] for r in rows] == ["full", "zero", "partial", "error", "error", "unscored"]
    q1, q3, q4 = rows[0], rows[2], rows[3]
    assert q1.one("img").attrs["src"].startswith("data:image/jpeg;base64,")
    assert not q3.find_all("img")  # the http:// thumbnail was refused
    assert q1.one("td", cls="score").text() == "1.00"
    assert q3.one("td", cls="score").text() == "0.50"
    # Repeated gold answers are shown once with their count.
    assert [li.text() for li in q3.one("td", cls="gold").find_all("li")] == ["Acme & Co (×2)", "ACME"]
    assert "broken data stream" in q4.one("td", cls="error").text()
    assert q4.one("td", cls="prediction").text() == "—"
    assert "question_types: form" in q1.one("td", cls="question").text()
    # The filter bar is hidden until its script runs, so the page never shows a dead control.
    assert "hidden" in dom.one(data_filter_for="samples").attrs


def test_sample_table_is_capped(tmp_path):
    run_dir, *_ = make_run(tmp_path)
    dom = parse(render_run_report(run_dir, max_sample_rows=2).read_text(encoding="utf-8"))
    assert len(by_id(dom, "samples").find_all("tr", cls="sample")) == 2
    assert "The first 2 of 6 samples" in dom.text()


def test_formatters():
    assert fmt_num(67.25, 1) == "67.2"  # binary 67.25 is exact: round-half-even gives 67.2
    assert fmt_num(None) == "—" and fmt_num(float("nan")) == "—" and fmt_num(True) == "—"
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(1536) == "1.5 KiB"
    assert fmt_bytes(5 * 1024 ** 2) == "5.0 MiB"
    assert fmt_duration(42.34) == "42.3 s"
    assert fmt_duration(3725) == "1 h 02 min 05 s"  # 3600 + 120 + 5
    assert fmt_ci(41.66, 75.0) == "41.7–75.0" and fmt_ci(None, None) == "—"
    assert fmt_value(64.0) == "64" and fmt_value(0.048) == "0.05" and fmt_value(12345) == "12,345"
    assert fmt_value(True) == "yes" and fmt_value(None) == "—" and fmt_value({"a": 1, "b": None}) == "a 1"


# ---------------------------------------------------------------- index
def test_index_lists_runs_and_unreadable_folders(tmp_path):
    a, *_ = make_run(tmp_path, "run-a", pipeline_check=True)
    b, rb, _ = make_run(tmp_path, "run b", pipeline_check=False, shipped=False)
    rb.timing.start = "2024-06-01T09:30:00"  # newer than run-a: listed first
    (b / "results.json").write_text(json.dumps(rb.to_dict()), encoding="utf-8")
    render_run_report(a)  # run b has no report yet
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "old-schema").mkdir()
    (tmp_path / "old-schema" / "results.json").write_text('{"schema_version": 0}', encoding="utf-8")
    (tmp_path / "not-a-run").mkdir()  # no results.json: not listed at all

    path = render_index(tmp_path)
    assert path == tmp_path / "index.html"
    dom = parse(path.read_text(encoding="utf-8"))
    rows = by_id(dom, "runs").find_all("tr", cls="run")
    assert [r.attrs["data-run"] for r in rows] == ["run b", "run-a"]
    row_a, row_b = rows[1], rows[0]
    assert row_a.one("a").attrs["href"] == "run-a/report.html"
    assert not row_b.find_all("a") and "no report.html yet" in row_b.text()
    assert row_a.attrs["data-pipeline-check"] == "true" and row_b.attrs["data-pipeline-check"] == "false"
    assert row_a.one("td", cls="value").text() == "58.3"
    assert row_a.one("td", cls="ci").text() == "41.7–75.0"
    assert "2024-05-01 10:00" in row_a.text() and "DocVQA" in row_a.text() and "tiny-idefics2" in row_a.text()
    bad = {tr.attrs["data-run"]: tr.one("td", cls="reason").text() for tr in by_id(dom, "unreadable").find_all("tr", data_run=None)}
    assert set(bad) == {"broken", "old-schema"}
    assert "not valid JSON" in bad["broken"]
    assert "schema_version 0" in bad["old-schema"]
    assert "not-a-run" not in dom.text()


def test_index_of_empty_folder(tmp_path):
    dom = parse(render_index(tmp_path).read_text(encoding="utf-8"))
    assert not dom.find_all(id="runs")
    assert "No run folders" in dom.text()
