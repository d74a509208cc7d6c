"""The whole-process profile `make bench` runs (benchmarks/eval_profile.py) and the fairness of
the two speed benchmarks' naive sides."""
from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest

from benchmarks import eval_profile, generator_bench
from benchmarks.loglik_bench import naive_choice_logprobs
from evalkit.pipeline.data import load_task_data
from evalkit.tasks.docvqa import DocVQA
from evalkit.tasks.fairface import FairFace


def test_rows_repeat_the_sample_with_their_own_ids(tmp_path):
    folder, n_images = eval_profile.make_rows(tmp_path / "d", n_rows=150)
    rows = pq.read_table(next(folder.glob("*.parquet"))).to_pylist()
    assert len(rows) == 150 and len({r["questionId"] for r in rows}) == 150
    sample = pq.read_table(next(eval_profile_sample())).to_pylist()
    # every page of the sample, each shown by several rows
    assert n_images == len({bytes(r["image"]["bytes"]) for r in sample}) == 36
    assert rows[len(sample)]["question"] == sample[0]["question"]
    assert rows[len(sample)]["questionId"] == f"{sample[0]['questionId']}-1"


def eval_profile_sample():
    return DocVQA.sample_path().glob("*.parquet")


def test_profile_partitions_the_process_wall_time(tmp_path, tiny_cache):
    prof = eval_profile.run(tiny_cache, batch_size=4, n_rows=6, workdir=tmp_path, threads=1)
    assert list(prof.shares) == list(prof.seconds) == list(prof.cpu_seconds) == list(eval_profile.STAGES)
    assert sum(prof.shares.values()) == pytest.approx(1.0, abs=0.01)
    assert sum(prof.seconds.values()) == pytest.approx(prof.wall_s, rel=0.01)
    assert sum(prof.cpu_seconds.values()) == pytest.approx(prof.cpu_s, rel=0.02)
    for stage in ("import", "data", "model", "generation", "results", "report"):
        assert prof.seconds[stage] > 0, stage
    # thumbnails are made during generation: the stage is only the wait for what is left
    assert 0 <= prof.seconds["thumbnails"] < prof.seconds["generation"]
    rows = pq.read_table(next((tmp_path / "data").glob("*.parquet"))).to_pylist()
    # one thumbnail per distinct page among the six rows, not one per row
    assert prof.n_thumbnails == len({bytes(r["image"]["bytes"]) for r in rows}) == prof.n_distinct_images == 4
    assert prof.threads == 1
    # torch is first imported where the model is loaded, the report's figures bring matplotlib
    assert set(prof.imports["torch"]["stages"]) == {"model"} and prof.imports["torch"]["seconds"] > 0
    assert set(prof.imports["matplotlib"]["stages"]) == {"report"}
    assert (tmp_path / "runs" / "profile" / "report.html").exists()
    # the floor is a cold import of torch and transformers' model code: seconds, not nothing
    assert prof.floor_s > 0.5
    gen = prof.seconds["generation"]
    assert prof.generation_share_ceiling == pytest.approx(gen / (gen + prof.floor_s), abs=1e-3)


def test_stage_clock_takes_an_inner_stage_out_of_the_outer_one():
    clock = eval_profile.StageClock()
    inner = clock.timed("generation", lambda: time.sleep(0.05))
    outer = clock.timed("model", lambda: inner())
    outer()
    clock._switch()
    assert clock.wall["generation"] >= 0.05
    assert clock.wall["model"] < 0.05  # the outer function itself does nothing but call the inner one
    assert clock.current == "other"


def test_wrap_everywhere_replaces_the_function_in_every_module_holding_it():
    import sys

    import evalkit.pipeline.images
    import evalkit.pipeline.runner  # noqa: F401  (imports the thumbnail helper by name)

    original = evalkit.pipeline.images.thumbnail_data_uri
    holders = [m for n, m in list(sys.modules.items()) if n.startswith("evalkit") and m is not None
               and original in vars(m).values()]

    def wrapper(*a, **kw):
        return original(*a, **kw)
    try:
        assert eval_profile.wrap_everywhere(original, wrapper) == len(holders) >= 2
        assert all(wrapper in vars(m).values() and original not in vars(m).values() for m in holders)
    finally:
        eval_profile.wrap_everywhere(wrapper, original)
    assert all(original in vars(m).values() for m in holders)


class CountingProcessor:
    """The backend's own processor, counting its calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *a, **kw):
        self.calls += 1
        return self.inner(*a, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_loglik_naive_side_runs_the_processor_once_and_the_model_once_per_choice(tiny_backend, monkeypatch):
    task = FairFace()
    row = list(load_task_data(task, None, 1).rows)[0]
    request = next(r for r in task.build_requests(row, "0") if r.uid.endswith("#age"))
    counting = CountingProcessor(tiny_backend.processor)
    monkeypatch.setattr(tiny_backend, "processor", counting)
    forwards = []
    hook = tiny_backend.model.register_forward_hook(lambda *a: forwards.append(1))
    try:
        logprobs = naive_choice_logprobs(tiny_backend, request)
    finally:
        hook.remove()
    assert len(request.choices) == len(logprobs) == 9
    assert counting.calls == 1 and len(forwards) == 9


def test_generator_bench_naive_preprocessing_never_meets_a_memo(tiny_backend, docvqa_rows):
    task = DocVQA()
    request = task.build_requests(docvqa_rows[0], "0")[0]
    generator_bench.fresh_memos(tiny_backend)
    memo = tiny_backend.processor.image_processor.memo
    for _ in range(2):
        generator_bench.naive_prepare(tiny_backend, request)
    assert (memo.hits, memo.misses) == (0, 0)  # decoded without a content key: processed afresh each time
    for _ in range(2):
        tiny_backend.prepare(request)
    assert (memo.hits, memo.misses) == (1, 1)  # the engine's side: processed once, then reused
    generator_bench.fresh_memos(tiny_backend)
    assert tiny_backend.processor.image_processor.memo.misses == 0  # and the bench empties it before timing
