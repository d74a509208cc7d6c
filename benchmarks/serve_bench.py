"""Served-model throughput: requests/s through `--model openai` at concurrency 1 vs 8, against
`transformers serve` on the tiny model with and without `--continuous-batching`, measured in
one run as ratios. Also home of `LocalServer`, the real `transformers serve` process the tests
of the openai backend start on 127.0.0.1.

Not a test: nothing here fails a build. On a small shared CPU the absolute numbers move with
the machine's load; the ratios (same machine, same minute) are the claim.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The tiny model's saved generation config names only </s> as end of sequence; the hf backend
# also stops at Idefics2's <end_of_utterance> (id 32002), as idefics2-8b's own generation config
# does. The served copy says so too, so both backends stop at the same tokens.
EOS_IDS = [2, 32002]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_copy(model_dir: Path, dest: Path) -> Path:
    """`model_dir`'s files linked into `dest`, with a generation config that stops at both end tokens."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.name != "generation_config.json" and not (dest / f.name).exists():
            os.symlink(f.resolve(), dest / f.name)
    cfg = json.loads((model_dir / "generation_config.json").read_text())
    cfg["eos_token_id"] = EOS_IDS
    (dest / "generation_config.json").write_text(json.dumps(cfg, indent=2))
    return dest


@dataclass
class LocalServer:
    """`transformers serve MODEL` on 127.0.0.1:`port` (a free port by default)."""

    model_dir: Path
    port: int = 0
    continuous_batching: bool = False
    log_path: Path | None = None
    startup_timeout_s: float = 180.0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LocalServer":
        import httpx2

        if not self.port:
            self.port = free_port()
        exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
        cmd = [exe, "serve", str(self.model_dir), "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu",
               "--continuous-batching" if self.continuous_batching else "--no-continuous-batching"]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                if httpx2.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"transformers serve did not answer within {self.startup_timeout_s:.0f} s")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would end it: no graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


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
