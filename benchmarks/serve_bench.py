"""Served-model throughput: requests/s through `--model openai` at concurrency 1 vs 8, against
`transformers serve` on the tiny model with and without `--continuous-batching`, measured in
one run as ratios. The server launcher is the tests' own (tests/helpers/local_server.py), so the
benchmark and the tests start `transformers serve` the same way.

Not a test: nothing here fails a build. On a small shared CPU the absolute numbers move with
the machine's load; the ratios (same machine, same minute) are the claim.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.helpers.local_server import LocalServer, served_copy


@dataclass
class ServeBench:
    n_requests: int
    max_new_tokens: int
    rps: dict[str, float]  # "<server>/c<concurrency>" -> requests per second
    speedup_c8_over_c1: dict[str, float]  # per server mode
    continuous_over_plain_at_c8: float
    note: str = ""


def _rate(base_url: str, requests, concurrency: int) -> float:
    from evalkit.pipeline.generator import Generator
    from evalkit.models.backends.openai import OpenAIBackend
    from evalkit.models.spec import ModelSpec

    backend = OpenAIBackend(ModelSpec(name="openai", base_url=base_url, concurrency=concurrency, server_stop=False))
    try:
        backend.generate([backend.prepare(requests[0])])  # the first request pays lazy set-up (CB workers)
        gen = Generator(backend, progress=False)  # no cache: every request goes to the server
        t0 = time.perf_counter()
        responses = gen.run(requests)
        dt = time.perf_counter() - t0
    finally:
        backend.close()
    errors = [r.error for r in responses if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {errors[0]}")
    return len(requests) / dt


def run(cache_dir: Path | None = None, n_requests: int = 32, max_new_tokens: int = 16,
        work_dir: Path | None = None) -> ServeBench:
    import tempfile

    from evalkit.pipeline.data import load_task_data
    from evalkit.models.tiny.idefics2 import tiny_path
    from evalkit.tasks.docvqa import DocVQA
    from evalkit.types import GenConfig

    task = DocVQA()
    rows = list(load_task_data(task).rows)
    requests = []
    for i in range(n_requests):
        r = task.build_requests(rows[i % len(rows)], str(i))[0]
        # distinct texts so no server-side prefix cache turns repeats into free answers
        r.text = f"{r.text} ({i})"
        r.gen = GenConfig(max_new_tokens=max_new_tokens)
        requests.append(r)
    rps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = served_copy(tiny_path(cache_dir), Path(work_dir or tmp) / "tiny-served")
        for mode, cb in (("plain", False), ("continuous", True)):
            with LocalServer(model, continuous_batching=cb) as server:
                for c in (1, 8):
                    rps[f"{mode}/c{c}"] = round(_rate(server.base_url, requests, c), 3)
    return ServeBench(
        n_requests=n_requests, max_new_tokens=max_new_tokens, rps=rps,
        speedup_c8_over_c1={m: round(rps[f"{m}/c8"] / rps[f"{m}/c1"], 2) for m in ("plain", "continuous")},
        continuous_over_plain_at_c8=round(rps["continuous/c8"] / rps["plain/c8"], 2),
        note="tiny-idefics2 (random weights) served on CPU by transformers serve; DocVQA sample prompts with "
             f"{max_new_tokens} new tokens; the client is evalkit's openai backend")


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--requests", type=int, default=32)
    args = ap.parse_args(argv)
    print(json.dumps(asdict(run(args.cache_dir, args.requests)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
