"""Where the wall time of a whole `evalkit eval` process goes, on a run big enough to matter:
384 DocVQA rows (the shipped sample's rows repeated, each copy its own question id) with the
tiny model already built on disk.

The run is a child process, so interpreter start and imports are counted as a user pays them.
The child times the run's stages by wrapping the functions the runner calls (the runner itself
is not instrumented); the shares partition the child's wall time:

  startup   interpreter start until the CLI module is imported
  import    evalkit.cli, the modules the runner pulls in before its first stage, and the
            libraries whose logging the CLI quiets (transformers, datasets)
  data      reading the rows
  model     loading the model (with the imports only the model needs: transformers)
  requests  building the requests
  generation the generator's run
  scoring   per-sample scoring and thumbnails
  results   aggregation and writing results.json / samples.jsonl
  report    rendering report.html
  exit      interpreter shutdown after the CLI returned
  other     the rest (argument parsing, the response cache, merging, printing the summary)

Not a test; `make bench` runs it. Shares, not seconds, are the result.
"""
from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

N_ROWS = 384
STAGES = ("startup", "import", "data", "model", "requests", "generation", "scoring", "results", "report", "exit",
          "other")


@dataclass
class EvalProfile:
    n_rows: int
    n_distinct_images: int
    batch_size: int
    wall_s: float
    shares: dict[str, float] = field(default_factory=dict)  # stage -> share of wall_s
    seconds: dict[str, float] = field(default_factory=dict)  # for context only


def make_rows(folder: Path, n_rows: int = N_ROWS) -> tuple[Path, int]:
    """A parquet file of n_rows DocVQA rows in the hub schema: the shipped sample repeated."""
    import pyarrow.parquet as pq

    from evalkit.tasks.docvqa import DocVQA

    table = pq.read_table(next(DocVQA.sample_path().glob("*.parquet")))
    rows = table.to_pylist()
    out = []
    for i in range(n_rows):
        row = dict(rows[i % len(rows)])
        row["questionId"] = f"{row['questionId']}-{i // len(rows)}"
        out.append(row)
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "validation-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(out, schema=table.schema), path)
    n_images = len({bytes(r["image"]["bytes"]) for r in out})
    return path.parent, n_images


def child(argv: list[str], spans_out: Path, t_spawn: float) -> int:
    """Run the CLI in this process with the stages timed; write the spans as JSON."""
    spans: dict[str, float] = {s: 0.0 for s in STAGES}
    spans["startup"] = time.time() - t_spawn
    t = time.perf_counter()
    import evalkit.cli as cli
    import evalkit.runner as runner  # what cmd_eval imports first
    import evalkit.generation as generation
    import evalkit.records as records
    spans["import"] = time.perf_counter() - t
    t = time.perf_counter()
    import evalkit.reports.run_report as run_report  # imported here only to wrap it: the run pays this at its report
    spans["report"] = time.perf_counter() - t

    def timed(stage, fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spans[stage] += time.perf_counter() - t
        return wrapper


    cli.quiet_libraries = timed("import", cli.quiet_libraries)  # imports transformers' and datasets' loggers
    runner.load_task_data = timed("data", runner.load_task_data)
    generation.load_backend = timed("model", generation.load_backend)
    generation.Generator.run = timed("generation", generation.Generator.run)
    runner.apply_score = timed("scoring", runner.apply_score)
    runner.thumbnail = timed("scoring", runner.thumbnail)
    run_report.render_run_report = timed("report", run_report.render_run_report)
    runner.write_results = timed("results", records.write_results)

    from evalkit.registry import TASKS
    task_cls = TASKS.get("docvqa")
    task_cls.build_requests = timed("requests", task_cls.build_requests)

    rc = cli.main(argv)
    spans["end"] = time.time()  # the parent counts from here to the process' exit as "exit"
    spans_out.write_text(json.dumps(spans))
    return rc


def run(cache_dir: Path | None = None, batch_size: int = 8, n_rows: int = N_ROWS,
        workdir: Path | None = None) -> EvalProfile:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        data, n_images = make_rows(work / "data", n_rows)
        cache = cache_dir or work / "cache"
        from evalkit.models.tiny import tiny_path
        tiny_path(cache)  # the model is saved before the run: loading it is what gets timed
        spans_path = work / "spans.json"
        argv = ["eval", "--task", "docvqa", "--data", str(data), "--runs-dir", str(work / "runs"),
                "--run-name", "profile", "--cache-dir", str(cache), "--batch-size", str(batch_size),
                "--device", "cpu", "--no-progress"]
        code = ("import sys, time; t = time.time(); sys.argv = ['evalkit']; "
                "from benchmarks.eval_profile import child; "
                f"raise SystemExit(child({argv!r}, __import__('pathlib').Path({str(spans_path)!r}), {{T}}))")
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", code.replace("{T}", repr(t0))], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
        t_exit = time.time()
        wall = t_exit - t0
        if proc.returncode != 0:
            raise RuntimeError(f"profiled eval failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        spans = json.loads(spans_path.read_text())
    spans["exit"] = max(0.0, t_exit - spans.pop("end"))
    spans["other"] = max(0.0, wall - sum(spans.values()))
    return EvalProfile(n_rows=n_rows, n_distinct_images=n_images, batch_size=batch_size, wall_s=round(wall, 3),
                       shares={k: round(v / wall, 4) for k, v in spans.items()},
                       seconds={k: round(v, 3) for k, v in spans.items()})


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--batch-size", type=int, default=8)  # evalkit eval's default
    ap.add_argument("--rows", type=int, default=N_ROWS)
    a = ap.parse_args()
    print(json.dumps(run(a.cache_dir, a.batch_size, a.rows).__dict__, indent=2))
