"""`evalkit compare` of Qwen2-VL and PaliGemma on the same DocVQA samples (issue 14 item 4): one
family's image tokens vary per page (dynamic resolution), the other's are fixed, and the
comparison reports each run's own per-sample mean beside its score."""
from __future__ import annotations

import json

from evalkit.cli.commands import main
from evalkit.pipeline.data import load_task_data
from evalkit.models import ModelSpec, load_backend
from evalkit.results.schema import read_run
from evalkit.tasks.docvqa import DocVQA
from tests.helpers.family_checks import eval_docvqa_runs, processor_image_tokens

MODELS = ("tiny-qwen2-vl", "tiny-paligemma")


def test_compare_qwen2_vl_and_paligemma_on_the_same_samples(tmp_path, tiny_cache, capsys):
    runs = eval_docvqa_runs(MODELS, tmp_path, tiny_cache)
    capsys.readouterr()
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    comp = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert comp["n_shared"] == 3 and [r["config"]["family"] for r in comp["runs"]] == ["qwen2-vl", "paligemma"]
    counts = [[rec.n_image_tokens for rec in read_run(run)[1]] for run in runs]
    # Qwen2-VL: each page's own count, as its processor writes it. The pages are over the tiny
    # build's 28x28x64 px cap, so each keeps its aspect ratio on a grid of 28 px cells:
    # 850x1100 -> 196x252 = 7x9 = 63, 420x900 -> 140x308 = 5x11 = 55.
    task = DocVQA()
    rows = list(load_task_data(task, None, 3).rows)
    qwen = load_backend(ModelSpec(name="tiny-qwen2-vl", device="cpu"), cache_dir=tiny_cache)
    expected = [processor_image_tokens(qwen, task.build_requests(row, str(i))[0]) for i, row in enumerate(rows)]
    assert counts[0] == expected == [63, 55, 55]
    assert counts[1] == [16, 16, 16]  # PaliGemma: (56 / 14)^2 whatever the page
    for r, c in zip(comp["runs"], counts):
        assert r["image_tokens_per_sample"] == sum(c) / 3 and r["samples_per_s"] > 0
    assert "  tiny-paligemma: anls = " in printed and "16.0 image tokens/sample" in printed
    assert f"{sum(expected) / 3:.1f} image tokens/sample" in printed
