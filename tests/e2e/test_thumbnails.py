"""The report's thumbnails are made once per distinct image, not once per question."""
from __future__ import annotations

import threading

from evalkit.pipeline import records as shared
from evalkit.models import ModelSpec
from evalkit.results.schema import read_run
from evalkit.pipeline.runner import EvalConfig, run_eval
from evalkit.tasks.docvqa import DocVQA


def test_one_thumbnail_per_distinct_image(tmp_path, tiny_backend, docvqa_rows, monkeypatch):
    made, threads = [], set()
    real = shared.thumbnail_data_uri

    def counting(img):
        made.append(img.size)
        threads.add(threading.current_thread().name)
        return real(img)
    monkeypatch.setattr(shared, "thumbnail_data_uri", counting)
    n = 20
    pages = [bytes(r["image"]["bytes"]) for r in docvqa_rows[:n]]
    assert len(set(pages)) < n  # the sample asks several questions per page
    run_dir = run_eval(EvalConfig(task="docvqa", model=ModelSpec(name="tiny-idefics2", device="cpu"), limit=n,
                                  runs_dir=tmp_path, run_name="t", progress=False,
                                  thumbnails=15), backend=tiny_backend)
    _, records = read_run(run_dir)
    assert len(made) == len(set(pages[:15]))
    # made beside generation, on a thread of their own, and the same as made in line
    assert threads == {"evalkit-thumbnails_0"}
    assert [r.thumb for r in records[:15]] == shared.thumbnails(DocVQA(), docvqa_rows[:n], 15)
    for i, rec in enumerate(records):
        if i >= 15:
            assert rec.thumb is None
        else:  # same page, same thumbnail; different page, different thumbnail
            first = pages.index(pages[i])
            assert rec.thumb == records[first].thumb and rec.thumb.startswith("data:image/jpeg;base64,")
            assert all(records[j].thumb != rec.thumb for j in range(15) if pages[j] != pages[i])
