"""Resume after a crash vs the full run: same model, same data, same machine, one run.

A run killed halfway keeps every finished batch in its cache.jsonl; rerunning the same
command answers those from the cache and generates only the rest. Simulated here by keeping
the first half of a finished run's cache lines (what a kill -9 halfway leaves; the kill
itself is exercised by tests/test_hostile_inputs.py) and running again. Also timed: a rerun
of a complete run (everything cached). Data loading, scoring and thumbnails are included on
both sides, the HTML report on neither. Only the ratios are results.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from evalkit.results.schema import read_run
from evalkit.pipeline.runner import EvalConfig, run_eval


@dataclass
class ResumeBench:
    n_samples: int
    batch_size: int
    n_cached_on_resume: int
    full_s: float
    resume_half_s: float
    rerun_complete_s: float
    resume_half_over_full: float
    rerun_complete_over_full: float
    identical_results: bool


def _timed(cfg: EvalConfig, backend) -> float:
    t0 = time.perf_counter()
    run_eval(cfg, backend=backend)
    return time.perf_counter() - t0


def run(backend, task_name: str = "docvqa", batch_size: int = 8, limit: int | None = None) -> ResumeBench:
    with tempfile.TemporaryDirectory(prefix="evalkit-resume-bench-") as tmp:
        runs = Path(tmp)

        def cfg(name: str) -> EvalConfig:
            return EvalConfig(task=task_name, model=backend.spec, limit=limit, batch_size=batch_size,
                              run_name=name, runs_dir=runs, progress=False)

        warm = cfg("warm-up")  # first-call costs (kernels, the processor) go to neither side
        warm.limit = 2
        run_eval(warm, backend=backend)
        full_s = _timed(cfg("full"), backend)
        full, full_records = read_run(runs / "full")
        lines = (runs / "full" / "cache.jsonl").read_bytes().splitlines(keepends=True)
        (runs / "resumed").mkdir()
        (runs / "resumed" / "cache.jsonl").write_bytes(b"".join(lines[:len(lines) // 2]))
        resume_s = _timed(cfg("resumed"), backend)
        resumed, resumed_records = read_run(runs / "resumed")
        shutil.copytree(runs / "full", runs / "complete")
        rerun_s = _timed(cfg("complete"), backend)
    same = ([(r.sample_id, r.prediction, r.score) for r in resumed_records]
            == [(r.sample_id, r.prediction, r.score) for r in full_records] and resumed.metrics == full.metrics)
    return ResumeBench(n_samples=full.counts.n_samples, batch_size=batch_size,
                       n_cached_on_resume=resumed.timing.n_cached, full_s=round(full_s, 3),
                       resume_half_s=round(resume_s, 3), rerun_complete_s=round(rerun_s, 3),
                       resume_half_over_full=round(resume_s / full_s, 3),
                       rerun_complete_over_full=round(rerun_s / full_s, 3), identical_results=same)


if __name__ == "__main__":
    import json
    from dataclasses import asdict

    from evalkit.models import ModelSpec, load_backend

    print(json.dumps(asdict(run(load_backend(ModelSpec(name="tiny-idefics2", device="cpu")))), indent=2))
