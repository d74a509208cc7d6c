"""Scale-out: data-parallel ranks (a real 2-process gloo run on the tiny model against a
1-process run), the launcher protocol, and the vllm backend's import guard."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.pipeline.distributed import DistContext, context_from_env, merge_memory, merge_shards, merge_stats
from evalkit.errors import EvalkitError
from evalkit.pipeline.generator import GeneratorStats

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the launcher protocol
def test_context_from_launcher_env():
    assert context_from_env(None, {}) == DistContext()
    assert context_from_env(None, {"WORLD_SIZE": "1"}).world_size == 1
    ctx = context_from_env("torchrun", {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main) == (1, 2, 1, False)
    assert ctx.cache_name == "cache.rank1.jsonl"
    assert DistContext().cache_name == "cache.jsonl"  # a plain run keeps resuming from its old cache
    with pytest.raises(EvalkitError, match="WORLD_SIZE=2.*--launcher"):
        context_from_env(None, {"RANK": "0", "WORLD_SIZE": "2"})  # started by torchrun, flag forgotten
    with pytest.raises(EvalkitError, match="RANK, WORLD_SIZE is not set.*torchrun --nproc_per_node"):
        context_from_env("torchrun", {})
    with pytest.raises(EvalkitError, match="RANK=2 is not within WORLD_SIZE=2"):
        context_from_env("torchrun", {"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(EvalkitError, match="must be integers"):
        context_from_env("accelerate", {"RANK": "x", "WORLD_SIZE": "2"})


def test_sharding_and_merging():
    # 8 requests over 3 ranks: every 3rd request, starting at the rank.
    shards = [DistContext(rank=r, world_size=3).shard(8) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5]]
    answers = [(idx, [f"r{i}" for i in idx]) for idx in shards]
    assert merge_shards(8, answers) == [f"r{i}" for i in range(8)]
    with pytest.raises(RuntimeError, match="1 requests were answered by no rank"):
        merge_shards(8, answers[:2] + [([2], ["r2"])])
    with pytest.raises(RuntimeError, match="answered by two ranks"):
        merge_shards(8, answers + [([0], ["again"])])
    # Counts add up; the ranks ran side by side, so time is the slowest rank's.
    a = GeneratorStats(n_requests=4, n_batches=1, output_tokens=10, model_seconds=2.0, wall_seconds=3.0,
                       final_batch_size=8, padded_tokens=5, real_tokens=95)
    b = GeneratorStats(n_requests=4, n_batches=2, output_tokens=30, model_seconds=5.0, wall_seconds=4.0,
                       final_batch_size=4, padded_tokens=15, real_tokens=85)
    m = merge_stats([a, b])
    assert (m.n_requests, m.n_batches, m.output_tokens, m.model_seconds, m.wall_seconds, m.final_batch_size) == \
        (8, 3, 40, 5.0, 4.0, 4)
    assert m.padding_fraction == 20 / 200
    mem = merge_memory([{"device": "cpu", "peak_bytes": 5, "kind": "process peak RSS"},
                        {"device": "cpu", "peak_bytes": 7, "kind": "process peak RSS"}])
    assert mem["peak_bytes"] == 7 and mem["per_rank_peak_bytes"] == [5, 7]


# ------------------------------------------------------------------ 2 gloo processes vs 1
def test_two_process_run_equals_single_process(tmp_path, tiny_cache):
    from evalkit.cli.commands import main
    from evalkit.results.schema import read_run

    common = ["eval", "--task", "docvqa", "--limit", "8", "--runs-dir", str(tmp_path), "--cache-dir", str(tiny_cache),
              "--no-progress", "--device", "cpu", "--batch-size", "3"]
    assert main([*common, "--run-name", "single"]) == 0
    # torchrun's own module (the `torchrun` script runs the same), 2 CPU ranks on gloo.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "evalkit.cli", *common, "--run-name", "dist", "--launcher", "torchrun"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("docvqa: anls") == 1  # only rank 0 reports

    single, single_records = read_run(tmp_path / "single")
    dist, dist_records = read_run(tmp_path / "dist")
    assert [r.to_dict() for r in dist_records] == [r.to_dict() for r in single_records]
    assert dist.metrics == single.metrics and dist.breakdowns == single.breakdowns
    assert dist.counts == single.counts and dist.tokens == single.tokens
    assert (dist.timing.world_size, single.timing.world_size) == (2, 1)
    assert len(dist.memory.per_rank_peak_bytes) == 2
    # Each rank cached its own share: ranks take requests 0,2,4,6 and 1,3,5,7.
    lines = [len((tmp_path / "dist" / f"cache.rank{r}.jsonl").read_text().splitlines()) for r in (0, 1)]
    assert lines == [4, 4]
    assert not (tmp_path / "dist" / "cache.jsonl").exists()


# ------------------------------------------------------------------ vllm: registered, not imported
def test_vllm_backend_is_import_guarded(monkeypatch):
    from evalkit.models import ModelSpec, load_backend
    from evalkit.registry import MODELS

    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    assert "vllm" in MODELS.names()
    assert "vllm" not in sys.modules  # registering the name imported nothing
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, even where it is
    with pytest.raises(EvalkitError, match="install vllm"):
        load_backend(ModelSpec(name="vllm", model_id="HuggingFaceM4/idefics2-8b"))
