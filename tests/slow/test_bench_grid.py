"""The efficiency-grid benchmark (benchmarks/grid.py): which cells a machine can run, one cell
measured on the tiny model with the card's prompt, the full-size shapes, and the report."""
from __future__ import annotations

import json
import re

from benchmarks.card import card_rows
from benchmarks.grid import Capabilities, Cell, CellResult, Grid, Source, main, plan, run_cell_isolated
from benchmarks.grid_report import render_grid_report

CPU = Capabilities(cuda=False, device_name="CPU", flash_attn=False, bitsandbytes=False)
GPU = Capabilities(cuda=True, device_name="NVIDIA H100 80GB HBM3", flash_attn=True, bitsandbytes=True)


def test_plan_skips_what_the_machine_cannot_run():
    cells = plan([False, True], ["fp32", "bf16", "fp16"], ["eager", "sdpa", "flash_attention_2"], [False, True],
                 CPU, Source())
    assert len(cells) == 36
    runnable = [c for c, skip in cells if skip is None]
    # On CPU: no flash-attention, no 4-bit -> 2 splits x 3 dtypes x (eager, sdpa).
    assert len(runnable) == 12 and all(not c.quant4 and c.attn != "flash_attention_2" for c in runnable)
    reasons = {skip for _, skip in cells if skip}
    assert reasons == {"flash-attention 2 needs a CUDA GPU", "4-bit weights (bitsandbytes) need a CUDA GPU"}
    # On a GPU with both packages, only the fp32 + flash-attention / fp32 + 4-bit cells are left out.
    gpu = dict(plan([False], ["fp32", "fp16"], ["sdpa", "flash_attention_2"], [False, True], GPU, Source()))
    assert gpu[Cell(False, "fp32", "flash_attention_2")] == "flash-attention 2 runs in fp16/bf16 only"
    assert gpu[Cell(False, "fp32", "sdpa", True)].startswith("4-bit weights are measured with half-precision")
    assert gpu[Cell(False, "fp16", "flash_attention_2", True)] is None
    assert sum(skip is None for skip in gpu.values()) == 5


def test_grid_end_to_end_on_the_tiny_model(tmp_path, tiny_cache, capsys):
    out = tmp_path / "grid"
    assert main(["--runs-dir", str(tmp_path), "--run-name", "grid", "--cache-dir", str(tiny_cache), "--device", "cpu",
                 "--in-process",
                 "--splits", "off,on", "--dtypes", "fp32", "--attn", "sdpa", "--quant", "none,4bit",
                 "--generations", "2", "--new-tokens", "5", "--full-size-random"]) == 0
    data = json.loads((out / "grid.json").read_text())
    ok = [c for c in data["cells"] if c["status"] == "ok"]
    assert [c["label"] for c in ok] == ["no split · fp32 · sdpa", "split · fp32 · sdpa"]
    for c in ok:
        # Fixed length: EOS is held off until exactly --new-tokens tokens were made.
        assert c["new_tokens"] == 5 and c["n_generations"] == 2
        assert c["time_s"] > 0 and c["peak_bytes"] > 0
    # The tiny model has 8 tokens per image; splitting makes 4 crops + the image: 2 images x 8, 2 x 40.
    assert [c["image_tokens"] for c in ok] == [16, 80]
    assert sum(c["status"] == "skipped" for c in data["cells"]) == 2  # the 4-bit cells
    if not data["settings"]["cuda"]:
        assert data["source"]["full_size_random"] is False and "needs a CUDA GPU" in data["notes"][0]
    assert len(data["card"]["rows"]) == 18
    html = (out / "grid.html").read_text()
    assert 'id="banner-pipeline-check"' in html and 'data-figure="grid-bars"' in html


def test_a_cell_in_its_own_process(tiny_cache):
    r = run_cell_isolated(Cell(False, "fp32", "sdpa"), Source(device="cpu", cache_dir=str(tiny_cache)),
                          n_generations=1, new_tokens=3, timeout_s=300)
    assert (r.status, r.new_tokens, r.image_tokens) == ("ok", 3, 16), r.reason
    assert r.pipeline_check is True  # the tiny backend's random_weights, carried out of the cell's process
    bad = run_cell_isolated(Cell(False, "fp32", "sdpa"), Source(model="hf", model_id="/nonexistent/model",
                                                                device="cpu"),
                            n_generations=1, new_tokens=3, timeout_s=300)
    assert bad.status == "error" and "could not load model" in bad.reason


def test_full_size_shapes_are_idefics2_8b(tiny_cache):
    import torch
    from transformers import Idefics2ForConditionalGeneration

    from benchmarks.random_idefics2 import N_PARAMETERS_8B, full_size_config

    # Built on the meta device: shapes only, no memory. 8,402,768,112 = the hub page's 8.4B:
    # vision 417.8M + connector (perceiver + projection) 743.2M + Mistral 7.11B + lm_head 131.1M.
    with torch.device("meta"):
        model = Idefics2ForConditionalGeneration._from_config(full_size_config(image_token_id=32001))
    assert sum(p.numel() for p in model.parameters()) == N_PARAMETERS_8B == 8_402_768_112
    assert sum(p.numel() for p in model.model.vision_model.parameters()) == 417_792_240
    # Its processor gives the card's image-token budget for the two-image prompt: 64 per image
    # without splitting, 320 (4 crops + the image, 64 each) with it.
    from benchmarks.grid import card_images, card_prompt
    from benchmarks.random_idefics2 import full_size_processor

    for split, expected in ((False, 2 * 64), (True, 2 * 320)):
        proc = full_size_processor(tiny_cache, split)
        ids = proc(text=[card_prompt(proc)], images=[card_images()], return_tensors="pt")["input_ids"]
        assert int((ids == proc.tokenizer.convert_tokens_to_ids("<image>")).sum()) == expected


def _grid_with_every_status() -> Grid:
    cells = [
        CellResult(Cell(False, "fp16", "sdpa"), "ok", time_s=13.0, per_generation_s=0.65, new_tokens=16,
                   n_generations=20, peak_bytes=21_300_000_000, image_tokens=128),
        CellResult(Cell(True, "fp32", "eager"), "oom", reason="CUDA out of memory. Tried to allocate 2.00 GiB"),
        CellResult(Cell(True, "fp16", "eager"), "error", reason="RuntimeError: <script>alert(1)</script>"),
        CellResult(Cell(True, "fp16", "flash_attention_2"), "skipped", reason="flash_attn is not installed"),
    ]
    return Grid(source=Source(full_size_random=True), cells=cells,
                settings={"n_generations": 20, "new_tokens": 16, "images": [[1600, 1067]], "device": "NVIDIA H100",
                          "cuda": True, "isolated_processes": True, "versions": {"torch": "2.x"}, "started": "now"})


def test_report_sets_cells_beside_the_card(tmp_path):
    html = render_grid_report(_grid_with_every_status(), tmp_path).read_text()
    rows = re.findall(r'<tr class="card-row"', html)
    assert len(rows) == len(card_rows()) == 18
    # The card's "no split, fp16, no FA2, no 4-bit" row (21.3 GB / 13.9 s) gets our sdpa cell beside it.
    row = re.search(r'data-fa2="no" data-split="off"\s+data-dtype="fp16" data-quant="none">(.*?)</tr>', html, re.S)[1]
    assert "21.3" in row and "13.9" in row and "sdpa:" in row and "13.00 s / 21.30 GB" in row
    assert re.search(r'data-status="oom".*?OOM', html, re.S)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert 'id="skipped"' in html and "flash_attn is not installed" in html
    assert 'id="banner-comparability"' not in html  # 8B shapes on an H100: the card's setting


def test_grid_report_in_chromium(tmp_path):
    from tests.helpers.browser import chromium_or_skip, dump_dom

    chromium = chromium_or_skip()
    dom = dump_dom(render_grid_report(_grid_with_every_status(), tmp_path), chromium)
    assert "<title>Efficiency grid</title>" in dom
    assert dom.count('class="card-row"') == 18
