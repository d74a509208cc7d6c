"""The Idefics2 model card's efficiency grid: time for 20 generations and peak memory, for
image splitting on/off x dtype (fp32, bf16, fp16) x attention (eager, sdpa, flash_attention_2)
x 4-bit weights (bitsandbytes), written to grid.json + grid.html beside the card's H100 table.

    python -m benchmarks.grid                                             # tiny model (CPU or GPU)
    python -m benchmarks.grid --model hf --model-id HuggingFaceM4/idefics2-8b
    python -m benchmarks.grid --full-size-random                          # 8B shapes, random weights (GPU)

What one cell measures (the card's snippet: two images, a two-turn conversation):
- the prompt is processed once; one untimed generation warms up kernels and allocator;
- then `--generations` (20) generations, batch size 1, greedy, each forced to exactly
  `--new-tokens` new tokens (max_new_tokens = min_new_tokens, so EOS cannot end one early and
  every configuration does the same work); the time is wall clock around the 20 calls, with
  CUDA synchronised before and after;
- peak memory over those generations: on CUDA `torch.cuda.max_memory_allocated` after
  `reset_peak_memory_stats` (weights + activations + KV cache, what the card reports); on CPU
  the process's peak resident set (VmHWM) after resetting it through /proc/self/clear_refs:
  weights + Python runtime + activations, so not comparable to a CUDA allocator number.
Each cell runs in its own Python process (unless --in-process): memory from one cell cannot
leak into the next, and an out-of-memory cell is recorded as OOM while the grid goes on.

Cells a machine cannot run are listed with the reason, not silently dropped: flash-attention 2
needs CUDA, the flash_attn package and fp16/bf16; 4-bit needs CUDA and bitsandbytes and is
measured with half-precision compute (fp16/bf16, as the card pairs it with fp16). fp16 on CPU
is run: recent PyTorch executes it, slowly (it is emulated on most CPUs) - the numbers show it.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalkit.pipeline.memory import PeakMemory
from evalkit.models.backends.hf import ATTN, TORCH_DTYPES, is_oom
from evalkit.results.schema import atomic_write_text

DTYPES = tuple(TORCH_DTYPES)

ROOT = Path(__file__).resolve().parent.parent
GRID_SCHEMA_VERSION = 1
RESULT_MARK = "GRID-RESULT "

# The card's two-turn snippet: image + question, the model's answer, image + follow-up.
CARD_MESSAGES = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What do we see in this image?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "In this image, we can see the city of New York, "
                                                                "and more specifically the Statue of Liberty."}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "And how about this image?"}]},
]
# Landscape photo sizes; the processor resizes both to its longest edge (980 px for idefics2-8b).
IMAGE_SIZES = ((1600, 1067), (1280, 853))


# ------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    split: bool
    dtype: str
    attn: str
    quant4: bool = False

    @property
    def label(self) -> str:
        return " · ".join([("split" if self.split else "no split"), self.dtype, self.attn]
                          + (["4-bit"] if self.quant4 else []))


@dataclass(frozen=True)
class Capabilities:
    cuda: bool
    device_name: str
    flash_attn: bool
    bitsandbytes: bool


@dataclass(frozen=True)
class Source:
    """Which model every cell builds: a registered backend, or the 8B shapes with random weights."""

    model: str = "tiny-idefics2"
    model_id: str | None = None
    device: str = "auto"
    cache_dir: str | None = None
    full_size_random: bool = False

    @property
    def label(self) -> str:
        if self.full_size_random:
            return "Idefics2 8B shapes, random weights"
        return self.model_id or self.model


@dataclass
class CellResult:
    cell: Cell
    status: str  # ok | skipped | oom | error
    reason: str | None = None
    time_s: float | None = None  # the timed generations together
    per_generation_s: float | None = None
    new_tokens_per_s: float | None = None
    new_tokens: int | None = None  # per generation, as measured from the output
    n_generations: int | None = None
    peak_bytes: int | None = None
    memory_kind: str | None = None
    input_tokens: int | None = None
    image_tokens: int | None = None
    device: str | None = None
    load_s: float | None = None
    # The backend's random_weights: a small random model's cells test the benchmark, not a
    # model (the full-size random shapes cost what the real model costs, so they are not one).
    pipeline_check: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.cell.label
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellResult":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (Cell(**v) if k == "cell" else v) for k, v in d.items() if k in fields})


def capabilities() -> Capabilities:
    import torch

    cuda = torch.cuda.is_available()
    cpu = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return Capabilities(cuda=cuda, device_name=torch.cuda.get_device_name() if cuda else cpu,
                        flash_attn=importlib.util.find_spec("flash_attn") is not None,
                        bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None)


def skip_reason(cell: Cell, caps: Capabilities, source: Source) -> str | None:
    if cell.attn == "flash_attention_2":
        if not caps.cuda:
            return "flash-attention 2 needs a CUDA GPU"
        if not caps.flash_attn:
            return "flash_attn is not installed (pip install flash-attn)"
        if cell.dtype == "fp32":
            return "flash-attention 2 runs in fp16/bf16 only"
    if cell.quant4:
        if not caps.cuda:
            return "4-bit weights (bitsandbytes) need a CUDA GPU"
        if not caps.bitsandbytes:
            return "bitsandbytes is not installed (pip install bitsandbytes)"
        if cell.dtype == "fp32":
            return "4-bit weights are measured with half-precision compute (the card: fp16)"
    if source.full_size_random and not caps.cuda:
        return "the full-size random model is built on a GPU only"
    return None


def plan(splits, dtypes, attns, quants, caps: Capabilities, source: Source) -> list[tuple[Cell, str | None]]:
    cells = [Cell(s, d, a, q) for s in splits for q in quants for d in dtypes for a in attns]
    return [(c, skip_reason(c, caps, source)) for c in cells]


# ------------------------------------------------------------------------------- measuring
def card_images():
    """Two deterministic stand-ins for the card's photos (content does not change the cost)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for w, h in IMAGE_SIZES:
        base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
        noise = rng.normal(0, 40, (h, w, 3)).astype(np.float32)
        out.append(Image.fromarray(np.clip(base + noise, 0, 255).astype("uint8"), "RGB"))
    return out


def card_prompt(processor) -> str:
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(CARD_MESSAGES, add_generation_prompt=True)
    # Idefics2's format, for a base checkpoint without a chat template.
    return ("User:<image>What do we see in this image?<end_of_utterance>\nAssistant: "
            + CARD_MESSAGES[1]["content"][0]["text"]
            + "<end_of_utterance>\nUser:<image>And how about this image?<end_of_utterance>\nAssistant:")


def _load(cell: Cell, source: Source):
    """(model, processor, device, pipeline_check) for the cell."""
    if source.full_size_random:
        from .random_idefics2 import full_size_config, full_size_processor, quantize_4bit_, random_model

        device = "cuda" if source.device in ("auto", "cuda") else source.device
        processor = full_size_processor(Path(source.cache_dir) if source.cache_dir else None, cell.split)
        tok = processor.tokenizer
        config = full_size_config(tok.convert_tokens_to_ids("<image>"), tok.pad_token_id, tok.bos_token_id,
                                  tok.eos_token_id)
        model = random_model(config, dtype=TORCH_DTYPES[cell.dtype], attn_implementation=cell.attn, device=device)
        if cell.quant4:
            quantize_4bit_(model, compute_dtype=TORCH_DTYPES[cell.dtype])
        return model, processor, device, False

    from evalkit.models import ModelSpec, load_backend

    spec = ModelSpec(name=source.model, model_id=source.model_id, dtype=cell.dtype, attn_implementation=cell.attn,
                     do_image_splitting=cell.split, load_in_4bit=cell.quant4, device=source.device)
    backend = load_backend(spec, cache_dir=Path(source.cache_dir) if source.cache_dir else None)
    return backend.model, backend.processor, backend.device, backend.random_weights


def run_cell(cell: Cell, source: Source, *, n_generations: int = 20, new_tokens: int = 16) -> CellResult:
    """Build the cell's model and time `n_generations` fixed-length generations (in this process)."""
    import torch

    try:
        t0 = time.perf_counter()
        model, processor, device, pipeline_check = _load(cell, source)
        load_s = time.perf_counter() - t0
        inputs = processor(text=[card_prompt(processor)], images=[card_images()], return_tensors="pt")
        inputs = {k: v.to(device) for k, v in inputs.items() if hasattr(v, "to")}
        n_in = int(inputs["input_ids"].shape[1])
        image_token_id = getattr(model.config, "image_token_id", None)
        n_img = int((inputs["input_ids"] == image_token_id).sum()) if image_token_id is not None else None
        tok = processor.tokenizer
        kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                  pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        memory = PeakMemory(str(device))
        with torch.inference_mode():
            warm = model.generate(**inputs, **kw)
            produced = int(warm.shape[1]) - n_in
            memory.reset()
            if memory.cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(n_generations):
                model.generate(**inputs, **kw)
            if memory.cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        peak = memory.peak()
    except Exception as e:  # one cell's failure is its own result; the grid goes on
        if isinstance(e, MemoryError) or is_oom(e):  # host memory counts too, unlike in the backend
            return CellResult(cell, "oom", reason=str(e).splitlines()[0][:300] if str(e) else "out of memory")
        return CellResult(cell, "error", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    return CellResult(cell, "ok", time_s=elapsed, per_generation_s=elapsed / n_generations,
                      new_tokens_per_s=n_generations * produced / elapsed if elapsed > 0 else None,
                      new_tokens=produced, n_generations=n_generations, peak_bytes=peak, memory_kind=memory.kind,
                      input_tokens=n_in, image_tokens=n_img, device=str(device), load_s=load_s,
                      pipeline_check=pipeline_check)


def run_cell_isolated(cell: Cell, source: Source, *, n_generations: int, new_tokens: int,
                      timeout_s: float) -> CellResult:
    """run_cell in a fresh Python process; a crash or a kill becomes the cell's result."""
    payload = json.dumps({"cell": asdict(cell), "source": asdict(source), "n_generations": n_generations,
                          "new_tokens": new_tokens})
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path}
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.grid", "--run-cell", payload], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return CellResult(cell, "error", reason=f"timed out after {timeout_s:.0f} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return CellResult.from_dict(json.loads(line[len(RESULT_MARK):]))
    if proc.returncode in (-9, 137):
        return CellResult(cell, "oom", reason="process killed (SIGKILL): most likely out of host memory")
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return CellResult(cell, "error", reason=f"exit code {proc.returncode}: {tail[0][:300]}")


# ------------------------------------------------------------------------------- the grid
@dataclass
class Grid:
    source: Source
    settings: dict[str, Any]
    cells: list[CellResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from .card import CARD_SOURCE, card_rows

        return {"schema_version": GRID_SCHEMA_VERSION, "source": asdict(self.source), "settings": self.settings,
                "notes": self.notes, "cells": [c.to_dict() for c in self.cells],
                "card": {"source": CARD_SOURCE, "rows": [asdict(r) for r in card_rows()]}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Grid":
        return cls(source=Source(**d["source"]), settings=d["settings"],
                   cells=[CellResult.from_dict(c) for c in d["cells"]], notes=d.get("notes", []))


def write_grid(grid: Grid, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "grid.json"
    return atomic_write_text(path, json.dumps(grid.to_dict(), indent=2))


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "flash_attn", "bitsandbytes"):
        try:
            out[pkg] = version(pkg.replace("_", "-"))
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _csv(choices: tuple[str, ...]):
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{value!r}: use a comma-separated subset of {', '.join(choices)}")
        return items
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.grid", description=__doc__.split("\n\n")[0])
    from evalkit.cli.output_flags import add_deprecated_path, add_output_args

    add_output_args(p, "bench-grid")
    add_deprecated_path(p, "--out", "out", "the exact folder for grid.json and grid.html")
    g = p.add_argument_group("model (as `evalkit eval`)")
    g.add_argument("--model", default="tiny-idefics2", help="tiny-idefics2 or hf")
    g.add_argument("--model-id", help="hub id or local folder for --model hf")
    g.add_argument("--device", default="auto")
    g.add_argument("--cache-dir", type=Path, help="where the embedded tiny model is built")
    g.add_argument("--full-size-random", action="store_true",
                   help="the 8B shapes with random weights, built on the GPU (no download; untested: needs a "
                        "GPU check); on a machine without CUDA the grid runs on the tiny model instead")
    a = p.add_argument_group("grid")
    a.add_argument("--splits", type=_csv(("off", "on")), default=["off", "on"])
    a.add_argument("--dtypes", type=_csv(DTYPES), default=list(DTYPES))
    a.add_argument("--attn", type=_csv(ATTN), default=list(ATTN))
    a.add_argument("--quant", type=_csv(("none", "4bit")), default=["none", "4bit"])
    a.add_argument("--generations", type=int, default=20, help="timed generations per cell (the card: 20)")
    a.add_argument("--new-tokens", type=int, default=16,
                   help="new tokens per generation, forced (about the card snippet's one-sentence answer)")
    a.add_argument("--in-process", action="store_true", help="run cells in this process (faster, memory less isolated)")
    a.add_argument("--cell-timeout", type=float, default=1800.0, help="seconds before a cell is given up")
    p.add_argument("--run-cell", help=argparse.SUPPRESS)  # internal: one cell, in a child process
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.run_cell:
        d = json.loads(args.run_cell)
        result = run_cell(Cell(**d["cell"]), Source(**d["source"]), n_generations=d["n_generations"],
                          new_tokens=d["new_tokens"])
        print(RESULT_MARK + json.dumps(result.to_dict()), flush=True)
        return 0
    from evalkit.errors import EvalkitError
    from evalkit.cli.output_flags import output_dir

    try:
        out = output_dir(args.runs_dir, args.run_name, "bench-grid", exact=args.out)
    except EvalkitError as e:
        print(f"benchmarks.grid: error: {e}", file=sys.stderr)
        return 2
    if args.generations < 1 or args.new_tokens < 1:
        print("benchmarks.grid: error: --generations and --new-tokens must be positive", file=sys.stderr)
        return 2
    caps = capabilities()
    notes = []
    source = Source(model=args.model, model_id=args.model_id, device=args.device,
                    cache_dir=str(args.cache_dir) if args.cache_dir else None, full_size_random=args.full_size_random)
    if args.full_size_random and not caps.cuda:
        notes.append("--full-size-random needs a CUDA GPU, and this machine has none: the grid ran on the "
                     "embedded tiny model instead")
        source = dataclasses.replace(source, model="tiny-idefics2", model_id=None, full_size_random=False)
    cells = plan([s == "on" for s in args.splits], args.dtypes, args.attn, [q == "4bit" for q in args.quant],
                 caps, source)
    grid = Grid(source=source, notes=notes, settings={
        "n_generations": args.generations, "new_tokens": args.new_tokens, "batch_size": 1,
        "images": [list(s) for s in IMAGE_SIZES], "prompt": "the card's two-image, two-turn snippet",
        "device": caps.device_name, "cuda": caps.cuda, "isolated_processes": not args.in_process,
        "versions": _versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for i, (cell, skip) in enumerate(cells, 1):
        if skip:
            grid.cells.append(CellResult(cell, "skipped", reason=skip))
            continue
        print(f"[{i}/{len(cells)}] {cell.label} ...", end=" ", flush=True)
        if args.in_process:
            r = run_cell(cell, source, n_generations=args.generations, new_tokens=args.new_tokens)
        else:
            r = run_cell_isolated(cell, source, n_generations=args.generations, new_tokens=args.new_tokens,
                                  timeout_s=args.cell_timeout)
        grid.cells.append(r)
        print(f"{r.time_s:.2f} s, {r.peak_bytes / 1e9:.2f} GB" if r.status == "ok" else f"{r.status}: {r.reason}",
              flush=True)
        write_grid(grid, out)  # a crash later keeps the cells done so far
    from .grid_report import render_grid_report

    json_path = write_grid(grid, out)
    html_path = render_grid_report(grid, out)
    count = {s: sum(c.status == s for c in grid.cells) for s in ("ok", "skipped", "oom", "error")}
    print(f"grid: {count['ok']} measured, {count['skipped']} skipped, {count['oom']} out of memory, "
          f"{count['error']} failed\n  json:   {json_path}\n  report: {html_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
