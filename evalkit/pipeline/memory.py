"""Peak memory over a stretch of work: the CUDA allocator's peak on that device, or on CPU the
process's peak resident set size, reset at the start where the OS allows it."""
from __future__ import annotations

import platform
from pathlib import Path


class PeakMemory:
    def __init__(self, device: str):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.kind = "cuda max_memory_allocated" if self.cuda else "process peak RSS (VmHWM, reset at start)"

    def reset(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            # "5" resets the peak resident set size (Linux 4.0+), so VmHWM covers only what follows.
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.kind = "process peak RSS since start (could not reset)"

    def peak(self) -> int | None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_allocated(self.device))
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if platform.system() == "Darwin" else rss * 1024)

    def describe(self) -> dict:
        import torch

        name = torch.cuda.get_device_name(self.device) if self.cuda else "cpu"
        return {"device": name, "peak_bytes": self.peak(), "kind": self.kind}
