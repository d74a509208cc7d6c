"""benchmarks/gpu_check.sh: the short GPU lease's script, run here in its --dry-run form (CPU, tiny model)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from benchmarks import gpu_check
from benchmarks.card import card_rows

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_writes_one_json_with_every_step(tmp_path, tiny_cache):
    out = tmp_path / "check"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run",
                           "--runs-dir", str(tmp_path), "--run-name", "check",
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


def test_a_step_killed_at_its_time_limit_keeps_what_it_printed_before():
    rows1 = {"n_generations": 20, "rows": [{"label": "no split · bf16 · sdpa", "status": "ok", "time_s": 14.0}]}
    rows2 = {**rows1, "rows": rows1["rows"] + [{"label": "split · bf16 · sdpa", "status": "ok", "time_s": 20.5}]}
    out = "\n".join(["loading ...", gpu_check.PARTIAL + json.dumps(rows1), "warm-up ...",
                     gpu_check.PARTIAL + json.dumps(rows2), "generating ..."])
    # subprocess.run hands the output read before a timeout over as bytes, even with text=True
    step = gpu_check.step_result("grid", out.encode(), None, None, 300.0, 301.2)
    assert (step.status, step.seconds, step.data) == ("error", 301.2, rows2)
    assert step.reason == "timed out after 300 s, the rows finished before it kept"
    # nothing printed yet: no data, and the reason says so by omission
    step = gpu_check.step_result("grid", b"loading ...", b"", None, 300.0, 300.5)
    assert (step.status, step.reason, step.data) == ("error", "timed out after 300 s", {})


def test_a_finished_step_is_its_result_line_and_a_crash_its_last_error_line():
    done = {"name": "grid", "status": "ok", "reason": None, "seconds": None, "data": {"rows": []}}
    out = gpu_check.PARTIAL + json.dumps({"rows": [{"status": "ok"}]}) + "\n" + gpu_check.MARK + json.dumps(done)
    step = gpu_check.step_result("grid", out, "", 0, 300.0, 12.3)
    assert (step.status, step.data, step.seconds) == ("ok", {"rows": []}, 12.3)
    err = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'bitsandbytes'"
    step = gpu_check.step_result("docvqa-hf-4bit", "", err, 1, 150.0, 3.0)
    assert step.status == "skipped"
    assert step.reason == "exit code 1: ModuleNotFoundError: No module named 'bitsandbytes'"
    step = gpu_check.step_result("grid", gpu_check.PARTIAL + json.dumps({"rows": [1]}), "", -9, 300.0, 40.0)
    assert (step.status, step.data) == ("oom", {"rows": [1]})
