"""The GPU check: what only a GPU can show, in one short lease, written to one JSON.

    bash benchmarks/gpu_check.sh                            # one H200: under 8 minutes
    bash benchmarks/gpu_check.sh --dry-run                  # CPU, tiny model, seconds

Steps, in order of what they settle (later steps get what is left of --budget-s):
  environment   GPU, torch / transformers / flash_attn / bitsandbytes / vllm versions
  model         a full-size random Idefics2 (8B shapes) saved as a local folder for `--model hf`
                (--dry-run: the embedded tiny model's folder)
  docvqa-*      `evalkit eval --task docvqa --model hf --batch-size auto` on that folder, bf16:
                sdpa, flash-attention 2, 4-bit (bitsandbytes); then `--model vllm`
  grid          the model card's efficiency rows that need no AWQ checkpoint (split on/off x
                fp32/bf16/fp16 sdpa, fp16 flash-attention 2, 4-bit with and without it) with the
                full-size random model: time for the generations and peak memory per row

Every step runs in its own process with a time limit; an out-of-memory, a missing package or a
missing GPU is that step's result ("oom" / "skipped", with the reason), never the end of the
check. The JSON is rewritten after each step, so a lease that ends early keeps what ran.
Random weights: DocVQA scores mean nothing here; the timings, batch sizes and memory do.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1
MARK = "GPU-CHECK-STEP "
PARTIAL = "GPU-CHECK-PARTIAL "  # a step's data so far, kept if the step is killed at its time limit
# Failures that say the machine lacks something, not that evalkit is wrong.
SKIP_MARKERS = ("not installed", "needs a package", "no module named", "needs a cuda", "has no cuda",
                "flash_attn", "flashattention", "bitsandbytes", "needs vllm", "pip install")


@dataclass
class Step:
    name: str
    status: str  # ok | skipped | oom | error
    reason: str | None = None
    seconds: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    dry_run: bool
    out: Path
    budget_s: float
    limit: int  # DocVQA rows per docvqa step
    generations: int  # timed generations per grid row (the card: 20)
    new_tokens: int
    cache_dir: Path

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"


def classify(message: str) -> str:
    low = message.lower()
    if "out of memory" in low:
        return "oom"
    return "skipped" if any(m in low for m in SKIP_MARKERS) else "error"


# ------------------------------------------------------------------ steps (each in a child process)
def step_environment(plan: Plan) -> dict[str, Any]:
    import torch

    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "flash_attn", "bitsandbytes", "vllm"):
        try:
            versions[pkg] = version(pkg.replace("_", "-"))
        except PackageNotFoundError:
            versions[pkg] = None
    cuda = torch.cuda.is_available()
    if not cuda and not plan.dry_run:
        raise RuntimeError("this torch has no CUDA (torch.cuda.is_available() is False): install a CUDA build "
                           "of torch, or run with --dry-run")
    gpu = None
    if cuda:
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_bytes": props.total_memory, "count": torch.cuda.device_count()}
    return {"versions": versions, "cuda": cuda, "gpu": gpu, "cpu_count": os.cpu_count(),
            "host": platform.node()}


def step_model(plan: Plan) -> dict[str, Any]:
    """The folder `--model hf` loads in the docvqa steps."""
    from evalkit.models.tiny.idefics2 import tiny_path

    if plan.dry_run:
        return {"folder": str(tiny_path(plan.cache_dir)), "model": "tiny-idefics2 (random weights)"}
    import torch

    from benchmarks.random_idefics2 import full_size_config, full_size_processor, random_model

    folder = plan.out / "idefics2-8b-random"
    processor = full_size_processor(plan.cache_dir, do_image_splitting=False)
    tok = processor.tokenizer
    config = full_size_config(tok.convert_tokens_to_ids("<image>"), tok.pad_token_id, tok.bos_token_id,
                              tok.eos_token_id)
    model = random_model(config, dtype="bfloat16", attn_implementation="sdpa", device="cuda")
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return {"folder": str(folder), "model": "Idefics2 8B shapes, random weights, bf16", "n_parameters": n_params}


def docvqa_argv(plan: Plan, folder: str, name: str, *extra: str) -> list[str]:
    return ["eval", "--task", "docvqa", "--model-id", folder, "--limit", str(plan.limit), "--batch-size", "auto",
            "--device", plan.device, "--runs-dir", str(plan.out / "runs"), "--run-name", name, "--no-progress",
            "--cache-dir", str(plan.cache_dir), *extra]


DOCVQA_STEPS = {
    "docvqa-hf-bf16-sdpa": ("--model", "hf", "--dtype", "bf16", "--attn", "sdpa"),
    "docvqa-hf-bf16-flash2": ("--model", "hf", "--dtype", "bf16", "--attn", "flash_attention_2"),
    "docvqa-hf-4bit": ("--model", "hf", "--dtype", "bf16", "--load-in-4bit"),
    "docvqa-vllm-bf16": ("--model", "vllm", "--dtype", "bf16"),
}


def precheck(name: str, env: dict[str, Any]) -> str | None:
    """Why a docvqa step cannot run on this machine (so no model is loaded to find out), or None."""
    versions, cuda = env.get("versions", {}), env.get("cuda", False)
    if name.endswith("flash2"):
        if not cuda:
            return "flash-attention 2 needs a CUDA GPU"
        if versions.get("flash_attn") is None:
            return "flash_attn is not installed (pip install flash-attn)"
    if name.endswith("4bit"):
        if not cuda:
            return "4-bit weights (bitsandbytes) need a CUDA GPU"
        if versions.get("bitsandbytes") is None:
            return "bitsandbytes is not installed (pip install bitsandbytes)"
    if "vllm" in name and versions.get("vllm") is None:
        return "vllm is not installed (it pins its own torch: install it in an environment of its own)"
    return None


def step_docvqa(plan: Plan, name: str, folder: str) -> dict[str, Any]:
    from evalkit.cli.commands import main
    from evalkit.results.schema import read_results

    # The CLI reports problems as one line on stderr and exit code 2; keep that line as the reason.
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(docvqa_argv(plan, folder, name, *DOCVQA_STEPS[name]))
    if code != 0:
        raise RuntimeError(err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {code}")
    res = read_results(plan.out / "runs" / name)
    t = res.timing
    return {"n_samples": res.counts.n_samples, "n_errors": res.counts.n_errors,
            "wall_s": t.wall_s, "generation_s": t.generation_s, "samples_per_s": t.samples_per_s,
            "tokens_per_s": t.tokens_per_s, "final_batch_size": res.generation.final_batch_size,
            "oom_halvings": t.oom_halvings, "padding_fraction": t.padding_fraction,
            "memory": res.memory.to_dict(), "image_tokens_per_image": res.tokens.image_tokens_per_image,
            "model": {k: getattr(res.model, k) for k in ("name", "dtype", "attn_implementation", "load_in_4bit")}}


def grid_cells():
    """The card's rows a random full-size model can measure (no AWQ checkpoint), as grid cells;
    rows without flash-attention run with sdpa (transformers' default attention)."""
    from benchmarks.card import card_rows
    from benchmarks.grid import Cell

    cells = [Cell(split=r.split, dtype=r.dtype, attn="flash_attention_2" if r.flash_attention_2 else "sdpa",
                  quant4=r.quant4_bnb) for r in card_rows() if r.measurable]
    # half precision first, fp32 (slowest, least asked about) last, so a short lease keeps what matters
    return sorted(dict.fromkeys(cells), key=lambda c: (c.dtype == "fp32", c.split))


def step_grid(plan: Plan, deadline: float, limit: float) -> dict[str, Any]:
    """The rows in this one process (each model is freed before the next is built; peaks are
    reset after each row's warm-up). A row starts only before `deadline` and when the slowest
    row so far would still end before `limit`, the time this process is killed at; each
    finished row is printed at once (PARTIAL), so a kill keeps the rows measured before it."""
    import torch

    from benchmarks.card import card_rows
    from benchmarks.grid import CellResult, Source, capabilities, run_cell, skip_reason

    caps = capabilities()
    source = (Source(model="tiny-idefics2", device="cpu", cache_dir=str(plan.cache_dir)) if plan.dry_run
              else Source(device="cuda", cache_dir=str(plan.cache_dir), full_size_random=True))
    card = {(r.split, r.dtype, r.flash_attention_2, r.quant4_bnb): r for r in card_rows() if r.measurable}
    head = {"source": asdict(source), "n_generations": plan.generations, "new_tokens": plan.new_tokens}
    rows: list[dict[str, Any]] = []
    slowest = 0.0
    for cell in grid_cells():
        ref = card[(cell.split, cell.dtype, cell.attn == "flash_attention_2", cell.quant4)]
        beside = {"card_peak_gb": ref.peak_gb, "card_time_s_20_generations": ref.time_s}
        skip = skip_reason(cell, caps, source)
        now = time.time()
        if skip is None and (now > deadline or now + slowest > limit):
            skip = "the check's time budget ran out before this row"
        if skip:
            rows.append({**CellResult(cell, "skipped", reason=skip).to_dict(), **beside})
        else:
            r = run_cell(cell, source, n_generations=plan.generations, new_tokens=plan.new_tokens)
            slowest = max(slowest, time.time() - now)
            rows.append({**r.to_dict(), **beside})
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        print(PARTIAL + json.dumps({**head, "rows": rows}), flush=True)
    return {**head, "rows": rows}


# ------------------------------------------------------------------ driver
def run_step_child(plan: Plan, name: str, arg: str | None, deadline: float, limit: float) -> dict[str, Any]:
    if name == "environment":
        return step_environment(plan)
    if name == "model":
        return step_model(plan)
    if name == "grid":
        return step_grid(plan, deadline, limit)
    return step_docvqa(plan, name, arg)


def run_step(plan: Plan, name: str, arg: str | None, timeout_s: float) -> Step:
    """One step in a fresh Python process: a CUDA error or a crash stays in that step."""
    if timeout_s < 5:
        return Step(name, "skipped", reason="the check's time budget ran out before this step")
    now = time.time()
    payload = json.dumps({"plan": _plan_dict(plan), "name": name, "arg": arg, "deadline": now + timeout_s * 0.8,
                          "limit": now + timeout_s - 5})
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--step", payload], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        return step_result(name, e.stdout, e.stderr, None, timeout_s, round(time.time() - t0, 1))
    return step_result(name, proc.stdout, proc.stderr, proc.returncode, timeout_s, round(time.time() - t0, 1))


def step_result(name: str, stdout: str | bytes | None, stderr: str | bytes | None, returncode: int | None,
                timeout_s: float, seconds: float) -> Step:
    """A step's Step from its process' output; returncode None: killed at its time limit. What
    the step printed as PARTIAL before dying is kept in `data`."""
    out, err = (x.decode("utf-8", "replace") if isinstance(x, bytes) else (x or "") for x in (stdout, stderr))
    partial: dict[str, Any] = {}
    for line in reversed(out.splitlines()):
        if line.startswith(MARK) and returncode is not None:
            step = Step(**json.loads(line[len(MARK):]))
            step.seconds = seconds
            return step
        if line.startswith(PARTIAL) and not partial:
            partial = json.loads(line[len(PARTIAL):])
    if returncode is None:
        kept = ", the rows finished before it kept" if partial else ""
        return Step(name, "error", reason=f"timed out after {timeout_s:.0f} s{kept}", seconds=seconds, data=partial)
    if returncode in (-9, 137):
        return Step(name, "oom", reason="process killed (SIGKILL): most likely out of host memory", seconds=seconds,
                    data=partial)
    tail = (err or out).strip().splitlines()[-1:] or ["no output"]
    return Step(name, classify(tail[0]), reason=f"exit code {returncode}: {tail[0][:300]}", seconds=seconds,
                data=partial)


def child_main(payload: str) -> int:
    d = json.loads(payload)
    p = d["plan"]
    plan = Plan(**{**p, "out": Path(p["out"]), "cache_dir": Path(p["cache_dir"])})
    try:
        data = run_step_child(plan, d["name"], d["arg"], d["deadline"], d["limit"])
        step = Step(d["name"], "ok", data=data)
    except Exception as e:  # the step's result, whatever it is
        msg = f"{type(e).__name__}: {' '.join(str(e).split())[:400]}"
        step = Step(d["name"], classify(msg), reason=msg)
    print(MARK + json.dumps(asdict(step)), flush=True)
    return 0


def _plan_dict(plan: Plan) -> dict[str, Any]:
    return {**asdict(plan), "out": str(plan.out), "cache_dir": str(plan.cache_dir)}


def write(out: Path, doc: dict[str, Any]) -> Path:
    path = out / "gpu_check.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="benchmarks/gpu_check.sh", description=__doc__.split("\n\n")[0])
    from evalkit.cli.output_flags import add_deprecated_path, add_output_args

    add_output_args(ap, "gpu-check")
    add_deprecated_path(ap, "--out", "out", "the exact output folder")
    ap.add_argument("--dry-run", action="store_true", help="CPU and the embedded tiny model: checks the script itself")
    ap.add_argument("--budget-s", type=float, help="wall-clock budget for all steps (default 450; dry run 300)")
    ap.add_argument("--limit", type=int, help="DocVQA rows per docvqa step (default 60, the shipped sample; dry run 4)")
    ap.add_argument("--generations", type=int, help="timed generations per grid row (default 20, the card's; dry run 2)")
    ap.add_argument("--new-tokens", type=int, help="new tokens per generation (default 16; dry run 4)")
    ap.add_argument("--cache-dir", type=Path, help="where the tiny model (and its tokenizer) is built")
    ap.add_argument("--step", help=argparse.SUPPRESS)  # internal: one step, in a child process
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.step:
        return child_main(args.step)
    from evalkit.errors import EvalkitError
    from evalkit.cli.output_flags import output_dir

    try:
        out = output_dir(args.runs_dir, args.run_name, "gpu-check", exact=args.out)
    except EvalkitError as e:
        ap.exit(2, f"gpu_check: error: {e}\n")
    dry = args.dry_run
    plan = Plan(dry_run=dry, out=out.resolve(), budget_s=args.budget_s or (300.0 if dry else 450.0),
                limit=args.limit or (4 if dry else 60), generations=args.generations or (2 if dry else 20),
                new_tokens=args.new_tokens or (4 if dry else 16),
                cache_dir=(args.cache_dir or out / "cache").resolve())
    plan.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "dry_run": dry, "plan": _plan_dict(plan),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": []}
    left = lambda: plan.budget_s - (time.time() - start)  # noqa: E731

    def record(step: Step) -> Step:
        doc["steps"].append(asdict(step))
        doc["elapsed_s"] = round(time.time() - start, 1)
        write(plan.out, doc)
        print(f"{step.name}: {step.status}" + (f" ({step.reason})" if step.reason else "")
              + (f" [{step.seconds:.0f} s]" if step.seconds is not None else ""), flush=True)
        return step

    env = record(run_step(plan, "environment", None, min(120.0, left())))
    if env.status != "ok":
        print(f"gpu check stopped: {env.reason}", file=sys.stderr)
        return 1
    model = record(run_step(plan, "model", None, min(180.0, left())))
    folder = model.data.get("folder")
    for name in DOCVQA_STEPS:
        if folder is None:
            record(Step(name, "skipped", reason=f"no model folder (model step: {model.status})"))
            continue
        why = precheck(name, env.data)
        if why:
            record(Step(name, "skipped", reason=why))
            continue
        record(run_step(plan, name, folder, min(150.0, left())))
    record(run_step(plan, "grid", None, left()))
    path = write(plan.out, {**doc, "elapsed_s": round(time.time() - start, 1)})
    counts = {s: sum(st["status"] == s for st in doc["steps"]) for s in ("ok", "skipped", "oom", "error")}
    print(f"gpu check: {counts['ok']} ok, {counts['skipped']} skipped, {counts['oom']} out of memory, "
          f"{counts['error']} failed in {time.time() - start:.0f} s\n  json: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
