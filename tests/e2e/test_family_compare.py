"""`evalkit compare` across model families (issue 14 item 4): three tiny builds of different
architectures on the same DocVQA samples; the comparison pairs them and shows each one's family,
image tokens and speed beside its score."""
from __future__ import annotations

import json
from html.parser import HTMLParser

from evalkit.cli.commands import main
from evalkit.results.schema import read_run
from tests.helpers.family_checks import eval_docvqa_runs

MODELS = ("tiny-idefics2", "tiny-idefics3", "tiny-llava-next")


class _Cells(HTMLParser):
    """Text of each `tr.config` / `tr.cost` row's cells, by run label and cell class."""

    def __init__(self):
        super().__init__()
        self.rows: dict[tuple[str, str], dict[str, str]] = {}
        self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("data-run"):
            self._row, self._cell = self.rows.setdefault((a.get("class", ""), a["data-run"]), {}), None
        elif tag in ("td", "span") and self._row is not None and a.get("class"):
            self._cell = a["class"].split()[-1]
            self._row.setdefault(self._cell, "")

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag in ("td", "span"):
            self._cell = None

    def handle_data(self, data):
        if self._row is not None and self._cell is not None:
            self._row[self._cell] += data.strip()


def test_compare_across_families_shows_family_image_tokens_and_speed(tmp_path, tiny_cache, capsys):
    runs = eval_docvqa_runs(MODELS, tmp_path, tiny_cache)
    out = tmp_path / "cmp"
    capsys.readouterr()
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    comp = json.loads((out / "compare.json").read_text())
    assert comp["n_shared"] == 3 and [r["label"] for r in comp["runs"]] == list(MODELS)
    assert [r["config"]["family"] for r in comp["runs"]] == ["idefics2", "idefics3", "llava-next"]
    assert all(r["pipeline_check"] for r in comp["runs"])
    per_sample = []
    for run, r in zip(runs, comp["runs"]):
        _, records = read_run(run)
        counts = [rec.n_image_tokens for rec in records]
        per_sample.append(counts)
        assert r["image_tokens_per_sample"] == sum(counts) / len(counts)
        assert r["samples_per_s"] > 0
    # One image per DocVQA question: 8 perceiver latents (Idefics2), one 56 px crop = 4 tokens
    # (Idefics3 without splitting); LLaVA-NeXT's count follows each page's aspect ratio.
    assert per_sample[0] == [8, 8, 8] and per_sample[1] == [4, 4, 4]
    assert "  tiny-idefics2: anls = 0.0 (0.0-0.0); 8.0 image tokens/sample; " in printed
    assert "  tiny-idefics3: anls = 0.0 (0.0-0.0); 4.0 image tokens/sample; " in printed
    assert f"{comp['runs'][2]['samples_per_s']:.2f} samples/s; dropped 0 unshared samples" in printed
    assert all(14 <= n <= 24 for n in per_sample[2])
    page = _Cells()
    page.feed((out / "compare.html").read_text())
    cells = {label: {**page.rows.get(("config", label), {}), **page.rows.get(("cost", label), {})} for label in MODELS}
    assert [cells[m]["family"] for m in MODELS] == ["(idefics2)", "(idefics3)", "(llava-next)"]
    for m, r in zip(MODELS, comp["runs"]):
        assert float(cells[m]["image-tokens"]) == round(r["image_tokens_per_sample"], 1)
        assert cells[m]["samples-per-s"]
    # Per image where the count is fixed (8 latents, one 56 px crop); LLaVA-NeXT's varies: unknown.
    assert [r["image_tokens_per_image"] for r in comp["runs"]] == [8, 4, None]
