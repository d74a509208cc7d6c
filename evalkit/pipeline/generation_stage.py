"""The generation stage of a run: requests in, responses out, with the stage's statistics.

This is the one stage that knows about data-parallel ranks (evalkit.pipeline.distributed): under a
launcher each rank loads its model on its own device, runs every k-th request through its
own Generator and cache file, and rank 0 receives every rank's share back in request order.
Without a launcher it is one Generator over all the requests.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import distributed
from .distributed import DistContext
from ..errors import EvalkitError
from .generator import Generator, GeneratorStats
from ..models import ModelSpec, load_backend
from ..models.base import Backend
from ..results.schema import Memory, ModelInfo
from ..types import Request, Response

FAILED = "rank failed"  # marker a rank sends to rank 0 in place of its responses


@dataclass
class GenerationSetup:
    """What the stage needs besides the requests: the model and how to batch and cache."""

    model: ModelSpec
    run_dir: Path  # holds the response cache: cache.jsonl, or cache.rank<r>.jsonl per rank
    batch_size: int | str = 8
    workers: int = 2
    progress: bool = True
    desc: str = "generating"
    cache_dir: Path | None = None  # where the tiny model is built


@dataclass
class Generated:
    """The stage's output on rank 0: one response per request, in request order."""

    responses: list[Response]
    stats: GeneratorStats  # summed over ranks; times are the slowest rank's
    memory: Memory  # peak over the generation; the largest of any rank
    model: ModelInfo
    seconds: float  # generation and gathering, not model loading
    world_size: int


def generate(requests: list[Request], setup: GenerationSetup, ranks: DistContext,
             backend: Backend | None = None) -> Generated | None:
    """Run `requests` (every rank passes the same list); None on ranks other than 0.

    `backend`: a model already loaded for setup.model (the audit passes the one it generated
    with), so it is not loaded twice."""
    if backend is None:
        with distributed.main_first(ranks):
            backend = load_backend(replace(setup.model, device=distributed.rank_device(setup.model.device, ranks)),
                                   cache_dir=setup.cache_dir)
    backend.reset_peak_memory()
    mine = ranks.shard(len(requests))
    gen = Generator(backend, batch_size=setup.batch_size, cache_path=setup.run_dir / ranks.cache_name,
                    workers=setup.workers, progress=setup.progress and ranks.is_main,
                    desc=setup.desc + (f" [rank 0 of {ranks.world_size}]" if ranks.distributed else ""))
    t0 = time.perf_counter()
    failure = None
    try:
        payload = (mine, gen.run([requests[i] for i in mine]), gen.stats, backend.peak_memory())
    except Exception as e:
        if not ranks.distributed:
            raise
        # Tell rank 0 instead of leaving it waiting at the gather for the other ranks.
        failure, payload = e, (FAILED, f"{type(e).__name__}: {e}")
    shards = distributed.gather_to_main(ranks, payload)
    seconds = time.perf_counter() - t0
    if failure is not None:
        raise failure
    if shards is None:
        return None
    failed = [f"rank {r}: {s[1]}" for r, s in enumerate(shards) if s[0] == FAILED]
    if failed:
        raise EvalkitError("the run failed on " + "; ".join(failed) + " (finished batches are cached: rerun to resume)")
    memory = distributed.merge_memory([s[3] for s in shards]) if ranks.distributed else shards[0][3]
    return Generated(responses=distributed.merge_shards(len(requests), [(s[0], s[1]) for s in shards]),
                     stats=distributed.merge_stats([s[2] for s in shards]), memory=Memory.from_dict(memory),
                     model=ModelInfo.from_dict(backend.describe()), seconds=seconds, world_size=ranks.world_size)
