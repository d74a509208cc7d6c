"""`evalkit compare`: the paired statistics on hand-computed cases, the comparison built from
run folders (written through evalkit.results.schema.write_run, as a real run leaves them), the page
against compare.json, and every bad input."""
from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from evalkit.cli.commands import main
from evalkit.analyses.compare import (build_comparison, mcnemar_exact, mcnemar_p, paired_bootstrap_ci,
                             sign_flip_p_value)
from evalkit.errors import EvalkitError
from evalkit.pipeline.images import thumbnail_data_uri
from evalkit.results.schema import Results, write_run
from evalkit.types import SampleRecord

PAYLOAD = "<script>document.title='pwned'</script>"


# ------------------------------------------------------------------------ statistics by hand
def test_mcnemar_exact_by_hand():
    # b=8, c=2: p = 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 2 * 56 / 1024 = 0.109375
    assert mcnemar_p(8, 2) == 0.109375
    assert mcnemar_p(2, 8) == 0.109375
    # b=5, c=0: p = 2 * 1/32
    assert mcnemar_p(5, 0) == 0.0625
    # b=3, c=3: 2 * (1 + 6 + 15 + 20) / 64 = 84/64 > 1, capped at 1
    assert mcnemar_p(3, 3) == 1.0
    assert mcnemar_p(0, 0) == 1.0
    # From per-sample 0/1 scores: 8 pairs A right/B wrong, 2 the other way, 5 both right, 3 both wrong.
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 3
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 3
    m = mcnemar_exact(a, b)
    assert (m.b, m.c, m.p_value) == (8, 2, 0.109375)
    with pytest.raises(ValueError):
        mcnemar_exact([0.5, 1], [1, 1])


def test_sign_flip_p_value_exact_by_hand():
    # d = (+1, +1, +1, -1): 16 sign patterns give sums 4 (1), 2 (4), 0 (6), -2 (4), -4 (1);
    # |sum| >= |2| in 10 of 16 -> p = 0.625.
    assert sign_flip_p_value([0, 0, 0, 1], [1, 1, 1, 0]) == 0.625
    # d = (+1, +1, +1): only the all-plus and all-minus patterns reach |3| -> 2/8.
    assert sign_flip_p_value([0, 0, 0], [1, 1, 1]) == 0.25
    # Zero differences carry no signs: same as above with two ties added.
    assert sign_flip_p_value([0, 0, 0, 1, 0], [1, 1, 1, 1, 0]) == 0.25
    assert sign_flip_p_value([0.3, 0.7], [0.3, 0.7]) == 1.0
    # On 0/1 scores the sign-flip test is exact McNemar: 8 up, 2 down -> 0.109375 (see above).
    assert sign_flip_p_value([0] * 8 + [1] * 2, [1] * 8 + [0] * 2) == 0.109375


def test_sign_flip_p_value_monte_carlo_path():
    # 17 non-zero differences (> the exact limit of 16): 9 of +1, 8 of -1. Any sign pattern
    # sums to an odd number, so |sum| >= |1| always: p = (1 + 10000) / (1 + 10000) = 1.
    assert sign_flip_p_value([0] * 9 + [1] * 8, [1] * 9 + [0] * 8) == 1.0
    # 20 differences all +1: the exact p is 2 / 2^20; the estimate never says 0 and is 1/10001
    # unless a random draw hits one of the two extreme patterns.
    p = sign_flip_p_value([0] * 20, [1] * 20)
    assert 1 / 10001 <= p <= 3 / 10001


def test_paired_bootstrap_resamples_pairs_jointly():
    # Every pair differs by exactly 0.5: any joint resample has mean difference 0.5, so the
    # interval collapses to the point. (Resampling A and B separately would widen it.)
    assert paired_bootstrap_ci([0.0, 0.25, 0.5], [0.5, 0.75, 1.0]) == (50.0, 50.0, 50.0)
    # Differences (0, 1): resample means are 0, 0.5, 1 with chance 1/4, 1/2, 1/4, so with 10,000
    # draws the 2.5th and 97.5th percentiles are 0 and 100; the point estimate is 50.
    assert paired_bootstrap_ci([1, 0], [1, 1]) == (50.0, 0.0, 100.0)
    assert paired_bootstrap_ci([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)
    assert paired_bootstrap_ci([], []) == (None, None, None)
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1, 0], [1])


# ------------------------------------------------------------------------ run folders
def _run(root: Path, name: str, scores: dict[str, float | None], *, task: str = "docvqa",
         errors: dict[str, str] | None = None, split: bool = False, headline: float = 0.0,
         questions: dict[str, str] | None = None, thumbs: dict[str, str] | None = None) -> Path:
    errors, questions, thumbs = errors or {}, questions or {}, thumbs or {}
    records = [SampleRecord(uid=str(i), sample_id=sid, question=questions.get(sid, f"question {sid}?"),
                            prediction=None if sid in errors else f"answer {sid} {name}",
                            gold=["gold"], score=None if sid in errors else s, error=errors.get(sid),
                            n_image_tokens=320 if split else 64, thumb=thumbs.get(sid))
               for i, (sid, s) in enumerate(scores.items())]
    results = Results(
        run_name=name, task={"name": task, "title": task.upper(), "metric": "acc"},
        data={"source": "shipped sample", "n_rows": len(records)},
        model={"name": "tiny-idefics2", "dtype": "fp32", "do_image_splitting": split, "pipeline_check": True},
        generation={}, headline="acc",
        metrics={"acc": {"value": headline, "ci_low": headline - 5, "ci_high": headline + 5, "n": len(records)}},
        counts={"n_samples": len(records)},
        tokens={"image_tokens_per_sample": 320.0 if split else 64.0, "image_tokens_per_image": 64,
                "input_tokens_mean": 400.0 if split else 150.0},
        timing={"samples_per_s": 2.5 if split else 4.0, "wall_s": 12.0},
        memory={"peak_bytes": 3 * 2 ** 30, "kind": "cuda max_memory_allocated"})
    write_run(root / name, results, records)
    return root / name


def _three_runs(tmp_path):
    # A covers s0..s11, B and C cover s2..s13: shared s2..s11 (10 samples); each run drops 2.
    # On the shared samples A is right on s2, s3 only; B is right everywhere except s2, s3:
    # b (A right, B wrong) = 2, c = 8 -> McNemar p = 0.109375, delta = 0.8 - 0.2 = +60.0.
    # C scores 0.5 (not 0/1: McNemar n/a) and errors on s11, so A-C pairs are s2..s10 (9):
    # delta = (0.5 - 2/9) * 100.
    ids = [f"s{i}" for i in range(14)]
    thumb = thumbnail_data_uri(Image.new("RGB", (40, 30), "red"))
    a = _run(tmp_path, "A-nosplit", {s: (1.0 if s in ("s2", "s3") else 0.0) for s in ids[:12]}, headline=16.7,
             questions={"s4": PAYLOAD}, thumbs={"s4": thumb, "s5": "javascript:alert(1)"})
    b = _run(tmp_path, "B-split", {s: (0.0 if s in ("s2", "s3") else 1.0) for s in ids[2:]}, split=True,
             headline=83.3)
    c = _run(tmp_path, "C-half", {s: 0.5 for s in ids[2:]}, errors={"s11": "image is corrupt"}, headline=50.0)
    return a, b, c


def test_comparison_from_run_folders(tmp_path):
    a, b, c = _three_runs(tmp_path)
    comp = build_comparison([a, b, c])
    assert comp.task == "docvqa" and comp.metric == "acc"
    assert comp.n_shared == 10 and comp.n_shared_scored == 9
    assert [r.n_dropped for r in comp.runs] == [2, 2, 2]
    assert [r.n_samples for r in comp.runs] == [12, 12, 12]
    assert [r.headline["value"] for r in comp.runs] == [16.7, 83.3, 50.0]
    assert [r.image_tokens_per_sample for r in comp.runs] == [64.0, 320.0, 64.0]
    assert comp.runs[1].samples_per_s == 2.5 and comp.runs[1].peak_memory_bytes == 3 * 2 ** 30
    # shared_mean is on the 9 samples all three scored (s2..s10): A right on 2 of them.
    assert comp.runs[0].shared_mean == pytest.approx(200 / 9)

    ab, ac = comp.comparisons
    assert (ab.baseline, ab.other, ab.n_pairs) == ("A-nosplit", "B-split", 10)
    assert ab.delta == pytest.approx(60.0)
    assert ab.mcnemar == {"b": 2, "c": 8, "p_value": 0.109375, "kind": "exact"}
    assert ab.p_value == 0.109375  # sign flips on 0/1 scores = exact McNemar
    assert ab.ci_low < ab.delta < ab.ci_high
    assert (ab.n_better, ab.n_worse, ab.n_same) == (8, 2, 0)

    assert ac.n_pairs == 9 and ac.delta == pytest.approx((0.5 - 2 / 9) * 100)
    assert ac.mcnemar is None and ac.mcnemar_note.startswith("n/a")
    assert comp.n_changed == 10  # every shared sample differs between A and B


def test_bad_inputs(tmp_path):
    a = _run(tmp_path, "a", {"1": 1.0, "2": 0.0})
    other_task = _run(tmp_path, "v", {"1": 1.0}, task="vqav2")
    disjoint = _run(tmp_path, "d", {"7": 1.0, "8": 0.0})
    with pytest.raises(EvalkitError, match="different tasks.*'docvqa'.*'vqav2'"):
        build_comparison([a, other_task])
    with pytest.raises(EvalkitError, match="no such run folder"):
        build_comparison([a, tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalkitError, match="not a run folder"):
        build_comparison([a, tmp_path / "empty"])
    with pytest.raises(EvalkitError, match="share no samples"):
        build_comparison([a, disjoint])
    with pytest.raises(EvalkitError, match="at least two"):
        build_comparison([a])
    # Through the CLI: one line on stderr, exit code 2.
    assert main(["compare", str(a), str(other_task), "--out", str(tmp_path / "o")]) == 2


# ------------------------------------------------------------------------ the page vs compare.json
class _Cells(HTMLParser):
    """Collects text of elements by (tag, class), with their attributes, in document order."""

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, dict, list[str]]] = []
        self.found: list[tuple[str, dict, str]] = []
        self.title_seen = []

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "meta", "br", "input"):
            self.found.append((tag, dict(attrs), ""))
            return
        self.stack.append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        while self.stack:
            t, attrs, text = self.stack.pop()
            content = "".join(text)
            self.found.append((t, attrs, content))
            if self.stack:
                self.stack[-1][2].append(content)
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)

    def select(self, tag=None, cls=None, **attrs):
        out = []
        for t, a, text in self.found:
            if tag and t != tag:
                continue
            if cls and cls not in (a.get("class") or "").split():
                continue
            if all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append((a, text.strip()))
        return out


def test_cli_writes_json_and_a_page_that_matches_it(tmp_path, capsys):
    a, b, c = _three_runs(tmp_path)
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), str(c), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "B-split - A-nosplit: +60.0" in printed
    data = json.loads((out / "compare.json").read_text())
    html = (out / "compare.html").read_text()
    page = _Cells()
    page.feed(html)

    rows = page.select("tr", cls="delta")
    assert [r[0]["data-run"] for r in rows] == ["B-split", "C-half"]
    for (attrs, _), d in zip(rows, data["comparisons"]):
        assert float(attrs["data-delta"]) == d["delta"]  # the page carries the exact number
        assert float(attrs["data-p"]) == d["p_value"]
    shown = [t for _, t in page.select("td", cls="delta")]
    assert shown == [f"{d['delta']:+.1f}" for d in data["comparisons"]] == ["+60.0", "+27.8"]
    assert [t for _, t in page.select("td", cls="dropped")] == ["2", "2", "2"]
    assert [t for _, t in page.select("td", cls="image-tokens")] == ["64.0", "320.0", "64.0"]
    assert data["runs"][1]["image_tokens_per_sample"] == 320.0
    assert page.select("td", cls="mcnemar")[1][1] == "n/a"
    assert page.select("img", data_figure="metric-by-config")
    assert page.select("span", id="changed-count")[0][1] == "10" == str(data["n_changed"])
    assert len(page.select("tr", cls="changed")) == 10 == len(data["changed"])
    assert "thumb" not in data["changed"][0]  # thumbnails stay in samples.jsonl, not compare.json
    # The question payload is escaped text; the bogus thumbnail URI never becomes an <img src>.
    assert PAYLOAD not in html and "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    assert "javascript:" not in html
    assert len([i for i, _ in page.select("img") if i.get("src", "").startswith("data:image/jpeg")]) == 1
    # Default output folder: compare-<task> beside the first run.
    assert main(["compare", str(a), str(b)]) == 0
    assert (tmp_path / "compare-docvqa" / "compare.html").is_file()


def test_compare_page_in_chromium(tmp_path):
    from tests.helpers.browser import chromium_or_skip, dump_dom

    chromium = chromium_or_skip()
    a, b, _ = _three_runs(tmp_path)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    dom = dump_dom(tmp_path / "cmp" / "compare.html", chromium)
    assert "<title>DOCVQA — comparison of 2 runs</title>" in dom  # the payload did not run
    assert 'id="banner-pipeline-check"' in dom and 'data-figure="metric-by-config"' in dom
    assert math.isfinite(float(dom.split('data-delta="')[1].split('"')[0]))
