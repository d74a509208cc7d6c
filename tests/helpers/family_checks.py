"""Checks every model family's tiny build must pass (issue 14), shared by the per-family test
files: batched = one-at-a-time greedy text, image tokens as the processor writes them,
log-likelihood = a plain forward per choice, and a multi-image MMMU question."""
from __future__ import annotations

from PIL import Image

from evalkit.pipeline.data import load_task_data
from evalkit.pipeline.generator import Generator
from evalkit.pipeline.images import decode_image
from evalkit.models.backends.continuation import split_continuations
from evalkit.types import GenConfig, Request

# Requests of different prompt lengths and image shapes, so a batch needs left padding of the
# text and, for families whose pixel tensors vary per image, padding of those too.
SHAPES = [(200, 100), (100, 100), (64, 256), (300, 300)]
QUESTIONS = ["What is it?", "What is the title of the chart in this image?", "Is there a dog?",
             "How many people are in the picture? Answer with one of: 0-2, 3-9."]


def varied_requests(max_new_tokens: int = 8) -> list[Request]:
    colours = ["red", "blue", "green", "white"]
    return [Request(f"r{i}", text=q, images=[Image.new("RGB", s, c)], gen=GenConfig(max_new_tokens=max_new_tokens))
            for i, (q, s, c) in enumerate(zip(QUESTIONS, SHAPES, colours))]


def batched_and_single(backend, requests):
    """(texts from one batch of all requests, texts from one request at a time)."""
    batched = Generator(backend, batch_size=len(requests), progress=False).run(requests)
    single = [Generator(backend, batch_size=1, progress=False).run([r])[0] for r in requests]
    assert all(r.error is None for r in batched + single), [r.error for r in batched + single]
    return [r.text for r in batched], [r.text for r in single]


def processor_image_tokens(backend, request) -> int:
    """Image tokens in the processor's own output for the request, counted independently of the
    backend's bookkeeping."""
    images = [decode_image(ref) for ref in request.images]
    inputs = backend.processor(text=[backend.render_prompt(request)], images=[images], return_tensors="pt")
    return int((inputs["input_ids"] == backend.image_token_id).sum())


def per_choice_forward(backend, request) -> list[float]:
    """Each choice's summed log-prob from one full forward pass over prompt + choice, with every
    input the processor gave (pixels, image sizes, masks): no KV cache, no batching."""
    import torch
    import torch.nn.functional as F

    family = backend.family
    images = [decode_image(ref) for ref in request.images]
    prompt = backend.render_prompt(request)
    inputs = family.model_inputs(dict(backend.processor(text=[prompt], images=[images] if images else None,
                                                        return_tensors="pt")))
    split = split_continuations(lambda t: backend.tokenizer(t, add_special_tokens=False)["input_ids"],
                                family.continuation_context(prompt),
                                [family.choice_separator + c for c in request.choices])
    keep = inputs["input_ids"].shape[1] - split.n_dropped
    context = inputs["input_ids"][:, :keep]
    # Per-token inputs (Qwen2-VL's mm_token_type_ids, PaliGemma's token_type_ids) run to the end
    # of the sequence: the prompt's values, then the family's value for answer tokens.
    per_token = {k: inputs[k][:, :keep] for k in family.token_inputs if k in inputs}
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", *per_token)}
    out = []
    for cont in split.choice_ids:
        ids = torch.cat([context, torch.tensor([cont])], 1)
        tails = {k: torch.cat([v, torch.full((1, len(cont)), family.token_inputs[k], dtype=v.dtype)], 1)
                 for k, v in per_token.items()}
        with torch.inference_mode():
            logits = backend.model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra, **tails).logits
        logp = F.log_softmax(logits[0].float(), -1)
        first = context.shape[1]
        out.append(float(sum(logp[first - 1 + j, t] for j, t in enumerate(cont))))
    return out


def assert_loglikelihood_matches_forward(backend, requests: list[Request]) -> None:
    """The generator's log-likelihoods (prompt once, KV shared by the choices) equal a plain
    forward of prompt + choice, per choice."""
    import pytest

    responses = Generator(backend, batch_size=4, progress=False).run(requests)
    for req, resp in zip(requests, responses):
        assert resp.error is None and len(resp.logprobs) == len(req.choices)
        assert resp.logprobs == pytest.approx(per_choice_forward(backend, req), abs=1e-3)


def eval_docvqa_runs(models, runs_dir, cache_dir) -> list:
    """`evalkit eval` of each model on the same 3 DocVQA samples; the run folders, to compare."""
    from evalkit.cli.commands import main

    runs = []
    for model in models:
        assert main(["eval", "--task", "docvqa", "--model", model, "--limit", "3", "--runs-dir", str(runs_dir),
                     "--run-name", model, "--cache-dir", str(cache_dir), "--no-progress"]) == 0
        runs.append(runs_dir / model)
    return runs


def fairface_requests(n_rows: int = 2) -> list[Request]:
    from evalkit.tasks.fairface import FairFace

    task = FairFace()
    rows = list(load_task_data(task, None, n_rows).rows)
    return [r for i, row in enumerate(rows) for r in task.build_requests(row, str(i))]


def mmmu_request(sample_id: str) -> Request:
    from evalkit.tasks.mmmu import MMMU

    task = MMMU()
    rows = list(load_task_data(task).rows)
    i, row = next((i, r) for i, r in enumerate(rows) if r["id"] == sample_id)
    return task.build_requests(row, str(i))[0]


def same_answers_through_hf(tiny_backend, tiny_name: str, cache_dir) -> None:
    """The tiny build's folder loaded as a user's local checkpoint (`--model hf --model-id DIR`)
    picks the same family and gives the same greedy text; only the tiny name marks it random."""
    from evalkit.models import ModelSpec, load_backend
    from evalkit.models.tiny.build import tiny_build_of

    folder = tiny_build_of(tiny_name).path(cache_dir)
    hf = load_backend(ModelSpec(name="hf", model_id=str(folder), device="cpu"))
    assert (hf.family.name, hf.random_weights, tiny_backend.random_weights) == (tiny_backend.family.name, False, True)
    reqs = varied_requests(max_new_tokens=4)[:2]
    texts = [r.text for r in Generator(hf, batch_size=2, progress=False).run(reqs)]
    assert texts == [r.text for r in Generator(tiny_backend, batch_size=2, progress=False).run(reqs)]
