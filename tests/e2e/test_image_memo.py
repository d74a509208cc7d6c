"""Each distinct image is decoded and processed once per run; the tensors are exactly those of a
fresh processor call, and requests for one image are scheduled together."""
import threading

import torch

from evalkit.pipeline.generator import Generator
from evalkit.pipeline.images import decode_image, image_key
from evalkit.models.backends.image_memo import SharedMemo
from evalkit.tasks.docvqa import DocVQA


def _same_page_rows(rows):
    by_key = {}
    for row in rows:
        by_key.setdefault(image_key(row["image"]), []).append(row)
    return next(group for group in by_key.values() if len(group) >= 2)


def test_repeated_image_gives_the_processors_own_tensors(tiny_backend, docvqa_rows):
    task = DocVQA()
    r1, r2 = _same_page_rows(docvqa_rows)[:2]
    memo = tiny_backend.processor.image_processor.memo
    (q1,), (q2,) = task.build_requests(r1, "a"), task.build_requests(r2, "b")
    p1 = tiny_backend.prepare(q1)
    hits = memo.hits
    p2 = tiny_backend.prepare(q2)
    assert memo.hits == hits + 1  # the second question on the page reused the processed image
    fresh = tiny_backend.processor.image_processor._inner(images=[[decode_image(r2["image"])]], return_tensors="pt")
    assert torch.equal(p2.inputs["pixel_values"], fresh["pixel_values"])
    assert torch.equal(p2.inputs["pixel_attention_mask"], fresh["pixel_attention_mask"])
    assert torch.equal(p1.inputs["pixel_values"], p2.inputs["pixel_values"])
    assert not torch.equal(p1.inputs["input_ids"], p2.inputs["input_ids"])  # different questions


def test_requests_for_one_image_are_scheduled_together(tiny_backend, docvqa_rows):
    task = DocVQA()
    reqs = [r for i, row in enumerate(docvqa_rows) for r in task.build_requests(row, str(i))]
    digests = [[image_key(ref) for ref in r.images] for r in reqs]
    order = Generator(tiny_backend, progress=False)._order(list(range(len(reqs))), reqs, digests)
    keys = [image_key(reqs[i].images[0]) for i in order]
    runs = [k for j, k in enumerate(keys) if j == 0 or keys[j - 1] != k]
    assert len(runs) == len(set(keys))  # each image's requests form one contiguous run


def test_concurrent_callers_compute_once():
    memo, calls, gate = SharedMemo(4), [], threading.Event()

    def slow():
        calls.append(1)
        gate.wait(5)
        return "value"

    out = []
    threads = [threading.Thread(target=lambda: out.append(memo.get_or_compute("k", slow))) for _ in range(3)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert out == ["value"] * 3 and len(calls) == 1 and (memo.misses, memo.hits) == (1, 2)


def test_a_failed_computation_is_not_remembered():
    memo = SharedMemo(4)

    def boom():
        raise ValueError("corrupt")

    for _ in range(2):
        try:
            memo.get_or_compute("k", boom)
        except ValueError:
            pass
    assert memo.misses == 2 and memo.get_or_compute("k", lambda: 7) == 7
