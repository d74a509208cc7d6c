"""Data-parallel evaluation over processes (one per GPU, or several CPU processes).

Started by a launcher, never by evalkit itself:

    torchrun --nproc_per_node 4 -m evalkit.cli eval --task docvqa --launcher torchrun ...
    accelerate launch --num_processes 4 -m evalkit.cli eval --task docvqa --launcher accelerate ...

The launcher tells each process who it is through RANK / WORLD_SIZE / LOCAL_RANK (and
MASTER_ADDR / MASTER_PORT for the rendezvous): that is the launcher's protocol, which
`torch.distributed`'s env:// initialisation reads; evalkit's own settings stay on the
command line. Every rank loads the data and builds the same request list, takes every k-th
request (rank r: r, r+k, r+2k, ...), runs it through its own Generator with its own cache
file (cache.rank{r}.jsonl), and sends its responses to rank 0. Rank 0 puts them back in
request order and scores, aggregates and writes the run exactly as a single process would;
the other ranks write nothing else. The generation stage (evalkit.pipeline.generation_stage) is the one user
of the sharding, gathering and merging here; the runner only joins the job (`setup`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import EvalkitError

LAUNCHERS = ("torchrun", "accelerate")
# A rank that finishes early waits in the gather for the slowest one; the default 30 min
# would abort long unbalanced runs.
GATHER_TIMEOUT = datetime.timedelta(hours=12)
HOW_TO_LAUNCH = ("run under a launcher, e.g. `torchrun --nproc_per_node N -m evalkit.cli eval ... "
                 "--launcher torchrun` or `accelerate launch --num_processes N -m evalkit.cli eval ... "
                 "--launcher accelerate`")


@dataclass(frozen=True)
class DistContext:
    """Who this process is in the job. world_size 1 = a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str | None = None
    # On nccl, a gloo side group for gathering Python objects (None: use the default group).
    object_group: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def cache_name(self) -> str:
        # A single process keeps the plain name so runs made without a launcher resume as before.
        return f"cache.rank{self.rank}.jsonl" if self.distributed else "cache.jsonl"

    def shard(self, n: int) -> list[int]:
        """Indices of the requests this rank runs: every world_size-th, starting at its rank."""
        return list(range(self.rank, n, self.world_size))


def context_from_env(launcher: str | None, env: Mapping[str, str]) -> DistContext:
    """Read the launcher's RANK / WORLD_SIZE / LOCAL_RANK; check they agree with --launcher."""
    if launcher is not None and launcher not in LAUNCHERS:
        raise EvalkitError(f"launcher {launcher!r} is not known; use one of {', '.join(LAUNCHERS)}")
    world = env.get("WORLD_SIZE")
    if launcher is None:
        if world not in (None, "", "1"):
            raise EvalkitError(f"this process was started by a launcher (WORLD_SIZE={world}) but --launcher "
                               f"was not given: add --launcher torchrun (or accelerate) so the ranks share the work "
                               f"instead of each running everything")
        return DistContext()
    missing = [k for k in ("RANK", "WORLD_SIZE") if not env.get(k)]
    if missing:
        raise EvalkitError(f"--launcher {launcher} but {', '.join(missing)} is not set: {HOW_TO_LAUNCH}")
    try:
        rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env.get("LOCAL_RANK") or 0)
    except ValueError:
        raise EvalkitError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers, got {env.get('RANK')!r} / "
                           f"{env.get('WORLD_SIZE')!r} / {env.get('LOCAL_RANK')!r}") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise EvalkitError(f"RANK={rank} is not within WORLD_SIZE={world_size}")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, launcher=launcher)


def rank_device(device: str, ctx: DistContext) -> str:
    """The device this rank's model goes on: its own GPU (LOCAL_RANK) when on CUDA."""
    if not ctx.distributed or device == "cpu":
        return device
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{ctx.local_rank}"
    return device


def setup(launcher: str | None, device: str = "auto") -> DistContext:
    """The context for this process; joins the process group when there is more than one rank.

    gloo on CPU, nccl on CUDA; a gloo side group carries the Python objects gathered to rank 0
    (pickled responses are host data, and gloo needs no device bookkeeping for them).
    """
    ctx = context_from_env(launcher, os.environ)
    if not ctx.distributed:
        return ctx
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        on_cuda = rank_device(device, ctx).startswith("cuda")
        if on_cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend="nccl" if on_cuda else "gloo", timeout=GATHER_TIMEOUT)
    if dist.get_backend() != "gloo":
        ctx = dataclasses.replace(ctx, object_group=dist.new_group(backend="gloo", timeout=GATHER_TIMEOUT))
    return ctx


@contextlib.contextmanager
def main_first(ctx: DistContext):
    """Run the block rank by rank in three waves: global rank 0, then the first rank of every
    other node, then the rest. A model built or downloaded on first use (the tiny model, a hub
    checkpoint) is then made once per cache folder, whether or not nodes share a filesystem,
    instead of by every rank at once."""
    if not ctx.distributed:
        yield
        return
    import torch.distributed as dist

    wave = 0 if ctx.is_main else 1 if ctx.local_rank == 0 else 2
    for _ in range(wave):
        dist.barrier(group=ctx.object_group)
    try:
        yield
    finally:
        # Also when the block failed: the other ranks then run it and meet the same error
        # themselves, instead of waiting at a barrier until the timeout.
        for _ in range(wave, 3):
            dist.barrier(group=ctx.object_group)


def teardown() -> None:
    # No process group without torch imported; importing it here would cost a served run
    # (which never needs torch) seconds on every exit, Ctrl-C included.
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_to_main(ctx: DistContext, obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0; None on the other ranks."""
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, out, dst=0, group=ctx.object_group)
    return out


def merge_shards(n: int, shards: Sequence[tuple[Sequence[int], Sequence[Any]]]) -> list[Any]:
    """Put each rank's (indices, items) back into one list of length n, in request order."""
    out: list[Any] = [None] * n
    filled = [False] * n
    for indices, items in shards:
        if len(indices) != len(items):
            raise RuntimeError(f"a rank returned {len(items)} responses for {len(indices)} requests")
        for i, item in zip(indices, items):
            if filled[i]:
                raise RuntimeError(f"request {i} was answered by two ranks")
            out[i], filled[i] = item, True
    if not all(filled):
        raise RuntimeError(f"{filled.count(False)} requests were answered by no rank")
    return out


def merge_stats(stats: Sequence[Any]) -> Any:
    """One GeneratorStats for the whole job: counts add up; ranks run side by side, so the
    job's model and wall time are the slowest rank's; the largest batch is any rank's largest."""
    first = stats[0]
    merged = dataclasses.replace(first)
    for f in dataclasses.fields(first):
        values = [getattr(s, f.name) for s in stats]
        if f.name in ("model_seconds", "wall_seconds", "largest_batch"):
            setattr(merged, f.name, max(values))
        elif f.name == "final_batch_size":
            known = [v for v in values if v is not None]
            setattr(merged, f.name, min(known) if known else None)
        else:
            setattr(merged, f.name, sum(values))
    return merged


def merge_memory(memories: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rank 0's memory record with the largest peak of any rank, and every rank's peak."""
    peaks = [m.get("peak_bytes") for m in memories]
    known = [p for p in peaks if p is not None]
    merged = dict(memories[0])
    merged["peak_bytes"] = max(known) if known else None
    merged["per_rank_peak_bytes"] = peaks
    merged["kind"] = f"{memories[0].get('kind', 'peak')} (largest of {len(memories)} ranks)"
    return merged
