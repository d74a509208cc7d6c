"""Shared generator vs a naive one-sample-at-a-time `model.generate` loop, same model, same
machine, same run; plus how much padding length-sorting saves.

Two ratios: end to end (image decoding and processor included, as a user experiences it: the
engine batches, prepares images in worker threads while the model runs, and decodes and
processes a page shown by several questions once -- the sample has 60 questions on 36 pages)
and generation only (both sides start from the same prepared inputs). The image work is the same
in both loops, so where it dominates -- the tiny model on a CPU -- it bounds the end-to-end
ratio (Amdahl); `preprocess_share_naive` says how much of the naive time it takes, measured by
running the naive loop's own preprocessing (decode + processor per request, nothing memoised).
The engine's preparation is timed cold too (its decode and image memos emptied first), so
`prepare_dedup_speedup` is what decoding and processing a shared page once saves, not a warm memo.
Only ratios are results; absolute seconds are kept for context.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from evalkit.pipeline.data import load_task_data
from evalkit.pipeline.generator import Generator
from evalkit.pipeline.images import decode_image
from evalkit.registry import TASKS


@dataclass
class GeneratorBench:
    n_samples: int
    batch_size: int
    max_new_tokens: int
    naive_samples_per_s: float
    batched_samples_per_s: float
    speedup: float
    generation_only_speedup: float
    preprocess_share_naive: float
    prepare_dedup_speedup: float
    identical_outputs: bool
    padding_fraction_sorted: float
    padding_fraction_unsorted: float


def _padding_fraction(lengths: list[int], batch_size: int) -> float:
    pad = real = 0
    for i in range(0, len(lengths), batch_size):
        chunk = lengths[i:i + batch_size]
        pad += sum(max(chunk) - n for n in chunk)
        real += sum(chunk)
    return pad / (pad + real) if real else 0.0


def fresh_memos(backend) -> None:
    """Empty the backend's decode and image-processor memos, so preparation is timed cold."""
    from evalkit.models.backends.image_memo import MemoImageProcessor, SharedMemo

    memo = getattr(backend, "_decode_memo", None)
    if memo is not None:
        backend._decode_memo = SharedMemo(memo._max)
    ip = getattr(getattr(backend, "processor", None), "image_processor", None)
    if isinstance(ip, MemoImageProcessor):
        object.__setattr__(ip, "memo", SharedMemo(ip.memo._max))


def naive_prepare(backend, request):
    """The naive loop's preprocessing alone: decode and processor for this one request."""
    images = [decode_image(ref) for ref in request.images]
    prompt = backend.render_prompt(request)
    return backend.processor(text=[prompt], images=[images], return_tensors="pt").to(backend.device)


def naive_generate(backend, request) -> str:
    """What a hand-written notebook does: processor and generate for one sample at a time."""
    import torch

    inputs = naive_prepare(backend, request)
    with torch.inference_mode():
        out = backend.model.generate(**inputs, max_new_tokens=request.gen.max_new_tokens, do_sample=False,
                                     eos_token_id=backend.stop_ids, pad_token_id=backend.pad_id)
    ids = out[0, inputs["input_ids"].shape[1]:].tolist()
    n = next((i for i, t in enumerate(ids) if t in backend.stop_ids), len(ids))
    return backend.tokenizer.decode(ids[:n], skip_special_tokens=True).strip()


def run(backend, task_name: str = "docvqa", batch_size: int = 16, limit: int | None = None) -> GeneratorBench:
    task = TASKS.get(task_name)()
    rows = list(load_task_data(task, None, limit).rows)
    requests = [r for i, row in enumerate(rows) for r in task.build_requests(row, str(i))]

    naive_generate(backend, requests[0])  # warm-up, so neither side pays first-call costs
    t0 = time.perf_counter()
    naive = [naive_generate(backend, r) for r in requests]
    naive_s = time.perf_counter() - t0

    gen = Generator(backend, batch_size=batch_size, progress=False)
    fresh_memos(backend)
    t0 = time.perf_counter()
    batched = gen.run(requests)
    batched_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for r in requests:
        naive_prepare(backend, r)
    naive_prep_s = time.perf_counter() - t0
    fresh_memos(backend)
    t0 = time.perf_counter()
    prepared = [backend.prepare(r) for r in requests]
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in prepared:
        backend.generate([p])
    single_gen_s = time.perf_counter() - t0
    ordered = sorted(prepared, key=lambda p: -p.n_input_tokens)
    t0 = time.perf_counter()
    for i in range(0, len(ordered), batch_size):
        backend.generate(ordered[i:i + batch_size])
    batched_gen_s = time.perf_counter() - t0

    lengths = [p.n_input_tokens for p in prepared]
    return GeneratorBench(
        n_samples=len(requests), batch_size=batch_size, max_new_tokens=requests[0].gen.max_new_tokens,
        naive_samples_per_s=len(requests) / naive_s, batched_samples_per_s=len(requests) / batched_s,
        speedup=naive_s / batched_s, generation_only_speedup=single_gen_s / batched_gen_s,
        preprocess_share_naive=min(1.0, naive_prep_s / naive_s), prepare_dedup_speedup=naive_prep_s / prep_s,
        identical_outputs=[r.text for r in batched] == naive,
        # the engine's own batches (longest first, one image's requests together), as they ran
        padding_fraction_sorted=gen.stats.padding_fraction,
        padding_fraction_unsorted=_padding_fraction(lengths, batch_size))
