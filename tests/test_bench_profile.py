"""The whole-process profile `make bench` runs (benchmarks/eval_profile.py) and the fairness of
the two speed benchmarks' naive sides."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from benchmarks import eval_profile


def test_rows_repeat_the_sample_with_their_own_ids(tmp_path):
    folder, n_images = eval_profile.make_rows(tmp_path / "d", n_rows=150)
    rows = pq.read_table(next(folder.glob("*.parquet"))).to_pylist()
    assert len(rows) == 150 and len({r["questionId"] for r in rows}) == 150
    sample = pq.read_table(next(eval_profile_sample())).to_pylist()
    # every page of the sample, each shown by several rows
    assert n_images == len({bytes(r["image"]["bytes"]) for r in sample}) < 150
    assert rows[len(sample)]["question"] == sample[0]["question"]
    assert rows[len(sample)]["questionId"] == f"{sample[0]['questionId']}-1"


def eval_profile_sample():
    from evalkit.tasks.docvqa import DocVQA
    return DocVQA.sample_path().glob("*.parquet")


def test_profile_partitions_the_process_wall_time(tmp_path, tiny_cache):
    prof = eval_profile.run(tiny_cache, batch_size=4, n_rows=6, workdir=tmp_path)
    assert list(prof.shares) == list(eval_profile.STAGES)
    assert sum(prof.shares.values()) == pytest.approx(1.0, abs=0.01)
    assert sum(prof.seconds.values()) == pytest.approx(prof.wall_s, rel=0.01)
    for stage in ("import", "data", "model", "generation", "scoring", "results", "report"):
        assert prof.seconds[stage] > 0, stage
    assert (tmp_path / "runs" / "profile" / "report.html").exists()
