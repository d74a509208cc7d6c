"""A real `transformers serve` process on 127.0.0.1 serving a local model folder: what the tests of
the openai backend and the judge talk to, and what the served-model benchmark
(benchmarks/serve_bench.py) measures."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
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
