"""Where the wall time of a whole `evalkit eval` process goes, on a run big enough to matter:
384 DocVQA rows (the shipped sample's 60 rows repeated, each copy its own question id; 36
distinct pages) with the tiny model already saved on disk.

The run is a child process started as the `evalkit` command starts (`evalkit.cli.console_main`),
so interpreter start, cold imports, the model load and interpreter exit are counted as a user
pays them. The child times the run's stages by wrapping the functions the engine calls, found
by identity in whichever evalkit module holds them (the engine itself is not instrumented).
Stages are timed exclusively (a stage called inside another is taken out of the outer one), on
the main thread, so the shares partition the child's wall time:

  startup     interpreter start until this module's child code runs
  import      evalkit.cli.commands, the runner, and the libraries whose logging the CLI quiets
              (transformers, datasets)
  data        reading the rows
  model       loading the model, with the imports only the model needs (torch, transformers)
  requests    building the requests
  generation  the generator's run (image decoding and the processor included: the generator
              prepares images in worker threads while the model runs)
  scoring     the task's per-sample scoring and its aggregates (metrics, intervals, breakdowns)
  thumbnails  the report's thumbnails (one per distinct image): made on a thread of their own
              while the model generates, so this is the wait for what is left after generation
              (their CPU seconds fall in generation's)
  results     writing results.json / samples.jsonl, less the scoring inside it
  report      rendering report.html (every render_* function of evalkit.reports.run_report)
  exit        interpreter shutdown after the command returned
  other       the rest (argument parsing, the run folder, the response cache, the summary)

Beside the shares: CPU seconds per stage (the process' CPU time, worker threads included),
which a busy shared machine distorts less than wall seconds; the seconds spent importing each
heavy library (its submodules included, other listed libraries it imports taken out), per
stage; and how many thumbnails were made. Torch runs with `threads`
intra-op threads, set through OMP_NUM_THREADS (read when torch is imported), so torch's
import stays in the stage that needs it instead of moving to argument parsing (`--threads`).

Beside the run, the floor: a fresh interpreter that only imports the libraries any transformers
model needs (FLOOR_IMPORTS) and exits. Generation's share can be no higher than
generation / (generation + floor), the ceiling the profile reports; on a machine where the tiny
model generates fast, that ceiling is below a target such as 60% whatever evalkit does.

Not a test; `make bench` runs it. Shares, not seconds, are the result.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

N_ROWS = 384
STAGES = ("startup", "import", "data", "model", "requests", "generation", "scoring", "thumbnails", "results",
          "report", "exit", "other")
# Libraries whose import cost the profile reports on its own (the heavy ones evalkit uses, and
# what transformers brings in when it is installed).
HEAVY = ("torch", "transformers", "datasets", "pyarrow", "pandas", "numpy", "scipy", "sklearn", "matplotlib",
         "jinja2", "evaluate", "PIL", "tokenizers", "safetensors", "mistral_common", "huggingface_hub")


@dataclass
class EvalProfile:
    n_rows: int
    n_distinct_images: int
    n_thumbnails: int  # thumbnails the run made
    batch_size: int
    threads: int | None  # torch intra-op threads (None: torch's choice)
    load_average: list[float]  # the machine's 1-minute load average before and after the run
    wall_s: float
    cpu_s: float
    shares: dict[str, float] = field(default_factory=dict)  # stage -> share of wall_s
    seconds: dict[str, float] = field(default_factory=dict)  # for context only
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    imports: dict[str, dict] = field(default_factory=dict)  # library -> {"seconds", "cpu_seconds", "stages"}
    # What no change to evalkit can remove, measured beside the run (see library_floor), and the
    # share generation would have if everything else in the run took no time at all.
    floor_s: float = 0.0
    generation_share_ceiling: float = 0.0


def make_rows(folder: Path, n_rows: int = N_ROWS) -> tuple[Path, int]:
    """A parquet file of n_rows DocVQA rows in the hub schema: the shipped sample repeated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalkit.tasks.docvqa import DocVQA

    table = pq.read_table(next(DocVQA.sample_path().glob("*.parquet")))
    rows = table.to_pylist()
    out = []
    for i in range(n_rows):
        row = dict(rows[i % len(rows)])
        row["questionId"] = f"{row['questionId']}-{i // len(rows)}"
        out.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "validation-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(out, schema=table.schema), path)
    n_images = len({bytes(r["image"]["bytes"]) for r in out})
    return path.parent, n_images


class StageClock:
    """Exclusive wall and CPU seconds per stage on one thread: entering a stage pauses the one
    it was called from. Calls on other threads (the generator's image workers) pass through."""

    def __init__(self):
        self.wall = {s: 0.0 for s in STAGES}
        self.cpu = {s: 0.0 for s in STAGES}
        self.thread = threading.get_ident()
        self._stack: list[str] = []
        self._mark = (time.perf_counter(), time.process_time())

    @property
    def current(self) -> str:
        return self._stack[-1] if self._stack else "other"

    def _switch(self) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall[self.current] += now[0] - self._mark[0]
        self.cpu[self.current] += now[1] - self._mark[1]
        self._mark = now

    def enter(self, stage: str) -> None:
        self._switch()
        self._stack.append(stage)

    def leave(self) -> None:
        self._switch()
        self._stack.pop()

    def timed(self, stage: str, fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            if threading.get_ident() != self.thread:
                return fn(*a, **kw)
            self.enter(stage)
            try:
                return fn(*a, **kw)
            finally:
                self.leave()
        return wrapper


class ImportClock:
    """Seconds spent importing each HEAVY library (its submodules included, other HEAVY
    libraries it imports taken out), per stage: a meta-path finder that wraps the real loader's
    exec_module of every module of those libraries, timing each module exclusively."""

    def __init__(self, clock: StageClock):
        self.clock = clock
        self.seconds: dict[str, dict[str, float]] = {}  # library -> stage -> seconds
        self.cpu: dict[str, float] = {}  # library -> CPU seconds of the importing thread
        self._local = threading.local()

    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        if top not in HEAVY or name in sys.modules:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        real = loader.exec_module

        def exec_module(module):
            stage = self.clock.current
            nested = self._local.__dict__.setdefault("nested", [])
            nested.append((0.0, 0.0))
            t, c = time.perf_counter(), time.thread_time()
            try:
                real(module)
            finally:
                total, total_cpu = time.perf_counter() - t, time.thread_time() - c
                inner, inner_cpu = nested.pop()
                per_stage = self.seconds.setdefault(top, {})
                per_stage[stage] = per_stage.get(stage, 0.0) + total - inner
                self.cpu[top] = self.cpu.get(top, 0.0) + total_cpu - inner_cpu
                if nested:
                    nested[-1] = (nested[-1][0] + total, nested[-1][1] + total_cpu)
        loader.exec_module = exec_module
        return spec

    def table(self) -> dict[str, dict]:
        """library -> {"seconds", "cpu_seconds", "stages": {stage: seconds}}, the most expensive first."""
        rows = {lib: {"seconds": round(sum(st.values()), 3), "cpu_seconds": round(self.cpu[lib], 3),
                      "stages": {k: round(v, 3) for k, v in st.items()}} for lib, st in self.seconds.items()}
        return dict(sorted(rows.items(), key=lambda kv: -kv[1]["seconds"]))


def wrap_everywhere(original, wrapper) -> int:
    """Replace `original` by `wrapper` in every loaded evalkit module that holds it by name, so
    the wrapper is what the engine calls wherever it imported the function from."""
    n = 0
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "evalkit" or name.startswith("evalkit.")):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, wrapper)
                n += 1
    return n


def child(argv: list[str], spans_out: Path, t_spawn: float) -> int:
    """Run the `evalkit` command in this process with the stages timed; write the spans as JSON."""
    t_start = time.time()
    cpu_start = time.process_time()
    clock = StageClock()
    imports = ImportClock(clock)
    sys.meta_path.insert(0, imports)
    clock.enter("import")
    import evalkit.cli.commands as cli
    import evalkit.pipeline.generator
    import evalkit.pipeline.images
    import evalkit.models
    import evalkit.pipeline.runner  # noqa: F401  (what `evalkit eval` imports first)
    clock.leave()
    clock.enter("report")  # imported here only to wrap it: the run pays this at its report
    import evalkit.reports.run_report as run_report
    clock.leave()

    n_thumbs = [0]

    def count_thumb(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            n_thumbs[0] += 1
            return fn(*a, **kw)
        return wrapper

    import evalkit.pipeline.data
    import evalkit.pipeline.records

    for stage, fn in (("import", cli.quiet_libraries), ("data", evalkit.pipeline.data.load_task_data),
                      ("model", evalkit.models.load_backend),
                      ("results", evalkit.pipeline.records.write_results),
                      *[("report", fn) for name, fn in vars(run_report).items()
                        if name.startswith("render_") and callable(fn)]):
        if wrap_everywhere(fn, clock.timed(stage, fn)) == 0:
            raise RuntimeError(f"the profile could not wrap {fn.__qualname__} ({stage})")
    thumb = evalkit.pipeline.images.thumbnail_data_uri
    wrap_everywhere(thumb, count_thumb(thumb))
    gen_cls = evalkit.pipeline.generator.Generator
    gen_cls.run = clock.timed("generation", gen_cls.run)
    # eval makes thumbnails on a thread of its own during generation (not counted: the clock
    # times the main thread); what it still waits for at scoring is the thumbnails stage
    bg = evalkit.pipeline.records.BackgroundThumbnails
    bg.result = clock.timed("thumbnails", bg.result)

    from evalkit.registry import TASKS
    task_cls = TASKS.get("docvqa")
    task_cls.build_requests = clock.timed("requests", task_cls.build_requests)
    for method in ("score", "finalize", "aggregate", "breakdowns"):
        setattr(task_cls, method, clock.timed("scoring", getattr(task_cls, method)))

    rc = cli.console_main(argv)
    clock._switch()
    spans = {"wall": clock.wall, "cpu": clock.cpu, "imports": imports.table(), "n_thumbnails": n_thumbs[0]}
    spans["wall"]["startup"] = t_start - t_spawn
    spans["cpu"]["startup"] = cpu_start
    spans["end"] = time.time()  # the parent counts from here to the process' exit as "exit"
    spans["cpu_end"] = time.process_time()
    spans_out.write_text(json.dumps(spans))
    return rc


# What any process that runs a transformers model imports: torch, and transformers' model and
# processor code, which import (at module level, whatever the model) torch.distributed.tensor
# with sympy, torch._dynamo, flex attention, scipy.optimize and, when installed, mistral-common.
FLOOR_IMPORTS = "import torch, transformers.modeling_utils, transformers.processing_utils"


def library_floor(tries: int = 2) -> float:
    """Wall seconds of a fresh interpreter that imports FLOOR_IMPORTS and exits, the lower of
    `tries`: the least any `evalkit eval` with the hf backend can take besides generation."""
    best = float("inf")
    for _ in range(tries):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR_IMPORTS], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def run(cache_dir: Path | None = None, batch_size: int = 8, n_rows: int = N_ROWS,
        workdir: Path | None = None, threads: int | None = None) -> EvalProfile:
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        data, n_images = make_rows(work / "data", n_rows)
        cache = cache_dir or work / "cache"
        from evalkit.models.tiny.idefics2 import tiny_path
        tiny_path(cache)  # the model is saved before the run: loading it is what gets timed
        spans_path = work / "spans.json"
        argv = ["eval", "--task", "docvqa", "--data", str(data), "--runs-dir", str(work / "runs"),
                "--run-name", "profile", "--cache-dir", str(cache), "--batch-size", str(batch_size),
                "--device", "cpu", "--no-progress"]
        code = ("import sys, time; t = time.time(); sys.argv = ['evalkit']; "
                "from benchmarks.eval_profile import child; "
                f"raise SystemExit(child({argv!r}, __import__('pathlib').Path({str(spans_path)!r}), {{T}}))")
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        load_before = os.getloadavg()[0]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", code.replace("{T}", repr(t0))], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent, env=env)
        t_exit = time.time()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = t_exit - t0
        if proc.returncode != 0:
            raise RuntimeError(f"profiled eval failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        spans = json.loads(spans_path.read_text())
        floor = library_floor()
    cpu_total = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    seconds, cpu = spans["wall"], spans["cpu"]
    seconds["exit"] = max(0.0, t_exit - spans["end"])
    cpu["exit"] = max(0.0, cpu_total - spans["cpu_end"])
    # what no wrapper saw: the other stages are exact, so the remainder is "other"
    seconds["other"] += max(0.0, wall - sum(seconds.values()))
    return EvalProfile(n_rows=n_rows, n_distinct_images=n_images, n_thumbnails=spans["n_thumbnails"],
                       batch_size=batch_size, threads=threads,
                       load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],
                       wall_s=round(wall, 3), cpu_s=round(cpu_total, 3),
                       shares={k: round(seconds[k] / wall, 4) for k in STAGES},
                       seconds={k: round(seconds[k], 3) for k in STAGES},
                       cpu_seconds={k: round(cpu[k], 3) for k in STAGES},
                       imports=spans["imports"], floor_s=round(floor, 3),
                       generation_share_ceiling=round(seconds["generation"] / (seconds["generation"] + floor), 4))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--batch-size", type=int, default=8)  # evalkit eval's default
    ap.add_argument("--rows", type=int, default=N_ROWS)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (0: torch's choice); one leaves a core of a 2-core CPU "
                         "for the generator's image workers")
    a = ap.parse_args()
    print(json.dumps(run(a.cache_dir, a.batch_size, a.rows, threads=a.threads or None).__dict__, indent=2))
