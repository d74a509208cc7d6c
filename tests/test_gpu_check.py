"""benchmarks/gpu_check.sh: the short GPU lease's script, run here in its --dry-run form (CPU, tiny model)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from benchmarks import gpu_check
from benchmarks.card import card_rows

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_writes_one_json_with_every_step(tmp_path, tiny_cache):
    out = tmp_path / "check"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out),
                           "--cache-dir", str(tiny_cache), "--limit", "2", "--generations", "1", "--new-tokens", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    assert doc["dry_run"] is True and doc["schema_version"] == 1
    steps = {s["name"]: s for s in doc["steps"]}
    assert list(steps) == ["environment", "model", *gpu_check.DOCVQA_STEPS, "grid"]
    assert steps["environment"]["status"] == "ok" and steps["environment"]["data"]["cuda"] is False
    sdpa = steps["docvqa-hf-bf16-sdpa"]
    assert sdpa["status"] == "ok", sdpa["reason"]
    assert sdpa["data"]["n_samples"] == 2 and sdpa["data"]["model"]["dtype"] == "bf16"
    assert sdpa["data"]["final_batch_size"] == 64  # --batch-size auto starts at 64 and nothing ran out of memory
    # what a CPU cannot run is recorded with the reason, not dropped
    assert steps["docvqa-hf-bf16-flash2"] == {"name": "docvqa-hf-bf16-flash2", "status": "skipped",
                                              "reason": "flash-attention 2 needs a CUDA GPU", "seconds": None,
                                              "data": {}}
    assert steps["docvqa-hf-4bit"]["reason"] == "4-bit weights (bitsandbytes) need a CUDA GPU"
    assert steps["docvqa-vllm-bf16"]["status"] == "skipped" and "vllm" in steps["docvqa-vllm-bf16"]["reason"]
    rows = steps["grid"]["data"]["rows"]
    assert len(rows) == 12
    ran = [r for r in rows if r["status"] == "ok"]
    assert {(r["cell"]["split"], r["cell"]["dtype"]) for r in ran} == {(s, d) for s in (False, True)
                                                                       for d in ("fp32", "bf16", "fp16")}
    assert all(r["cell"]["attn"] == "sdpa" and r["n_generations"] == 1 and r["time_s"] > 0 for r in ran)
    assert all("CUDA" in r["reason"] for r in rows if r["status"] == "skipped")
    no_split_bf16 = next(r for r in rows if r["label"] == "no split · bf16 · sdpa")
    assert (no_split_bf16["card_peak_gb"], no_split_bf16["card_time_s_20_generations"]) == (22.2, 14.4)


def test_grid_rows_are_the_cards_measurable_rows():
    cells = gpu_check.grid_cells()
    measurable = [r for r in card_rows() if r.measurable]
    assert len(cells) == len(measurable) == 12
    assert {(c.split, c.dtype, c.attn == "flash_attention_2", c.quant4) for c in cells} == \
        {(r.split, r.dtype, r.flash_attention_2, r.quant4_bnb) for r in measurable}
    assert [c.dtype for c in cells][-2:] == ["fp32", "fp32"]  # the slowest rows last


def test_failures_are_classified():
    assert gpu_check.classify("RuntimeError: CUDA out of memory. Tried to allocate 2 GiB") == "oom"
    assert gpu_check.classify("ImportError: No module named 'vllm'") == "skipped"
    assert gpu_check.classify("evalkit: error: model needs a package that is not installed: flash_attn") == "skipped"
    assert gpu_check.classify("ValueError: shapes do not match") == "error"
    env = {"cuda": True, "versions": {"flash_attn": "2.7", "bitsandbytes": None, "vllm": None}}
    assert gpu_check.precheck("docvqa-hf-bf16-flash2", env) is None
    assert gpu_check.precheck("docvqa-hf-4bit", env).startswith("bitsandbytes is not installed")
    assert gpu_check.precheck("docvqa-hf-bf16-sdpa", env) is None
