"""The run report in a real browser (headless Chromium): it renders, our script runs, and
nothing from the data executes. Skips where no Chromium is installed."""
from __future__ import annotations

import re

import pytest
from PIL import Image

from tests.helpers.browser import chromium_or_skip, dump_dom, screenshot
from evalkit.results.schema import Results, write_run
from evalkit.types import SampleRecord
from evalkit.reports.run_report import render_run_report

# If either payload ran, it would change the document title (the DOM dump shows it).
IMG_PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT_PAYLOAD = "<script>document.title='pwned-by-script'</script>"


@pytest.fixture(scope="module")
def chromium():
    return chromium_or_skip()


def _write_run(run_dir):
    records = [
        SampleRecord("0", "a1", "What is written?", IMG_PAYLOAD, ["hello"], 0.0),
        SampleRecord("1", "a2", SCRIPT_PAYLOAD, "hello", ["hello"], 1.0),
        SampleRecord("2", "a3", "Broken?", None, ["x"], None, error="image is corrupt"),
    ]
    results = Results(
        run_name="browser-check",
        task={"name": "docvqa", "title": "DocVQA", "metric": "anls",
              "reference": {"no_split": 67.3, "split": 74.0}},
        data={"source": "shipped sample", "note": "three rows"},
        model={"name": "tiny-idefics2", "pipeline_check": True, "do_image_splitting": True},
        generation={"prompt_style": "instruct", "batch_size": 2},
        headline="anls",
        metrics={"anls": {"value": 50.0, "ci_low": 0.0, "ci_high": 100.0, "n": 2}},
        breakdowns={"kind": {"x": {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 1},
                             "y": {"value": 100.0, "ci_low": 100.0, "ci_high": 100.0, "n": 1}}},
        counts={"n_samples": 3, "n_errors": 1},
        errors=[{"uid": "2", "sample_id": "a3", "error": "image is corrupt"}],
    )
    write_run(run_dir, results, records)
    return render_run_report(run_dir)


def test_report_renders_and_data_does_not_execute(tmp_path, chromium):
    dom = dump_dom(_write_run(tmp_path / "run"), chromium)
    assert re.search(r'<span id="headline-value">50\.0</span>', dom)
    # The title is the page's own: neither payload ran.
    assert re.findall(r"<title>(.*?)</title>", dom) == ["DocVQA — browser-check"]
    # The payloads are text in the live DOM (serialized escaped), not elements.
    assert "&lt;img src=x onerror=\"document.title='pwned'\"&gt;" in dom
    assert "&lt;script&gt;document.title='pwned-by-script'&lt;/script&gt;" in dom
    assert 'id="banner-pipeline-check"' in dom
    # Our own filter script did run (CSP hash matches): it reveals the bar and counts rows.
    assert re.search(r'<div class="filter-bar" data-filter-for="samples">', dom)
    assert "3 of 3 rows shown" in dom


def test_the_title_check_catches_executing_markup(tmp_path, chromium):
    # Control for the test above: the same payload left unescaped does run and is detected.
    page = tmp_path / "unsafe.html"
    page.write_text(f"<!doctype html><title>safe</title><body>{IMG_PAYLOAD}</body>", encoding="utf-8")
    assert re.findall(r"<title>(.*?)</title>", dump_dom(page, chromium)) == ["pwned"]


def test_screenshot_is_not_blank(tmp_path, chromium):
    png = screenshot(_write_run(tmp_path / "run"), tmp_path / "report.png", width=1024, height=900,
                     binary=chromium)
    with Image.open(png) as im:
        assert im.size == (1024, 900)
        # A rendered page has dark text on a light background: many distinct grey levels.
        assert sum(1 for count in im.convert("L").histogram() if count) > 20
