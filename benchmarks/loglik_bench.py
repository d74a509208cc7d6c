"""FairFace age classification (9 choices): the engine's log-likelihood path, which runs the
prompt and image once and shares its KV cache across choices, vs a naive loop that runs a full
forward pass (image included) for every choice. Same model, same machine, same run.

Both sides decode the image and run the processor once per sample, so the ratio credits only
what the engine does differently in the model: one prefix forward shared by the choices."""
from __future__ import annotations

import time
from dataclasses import dataclass

from evalkit.pipeline.data import load_task_data
from evalkit.pipeline.generator import Generator
from evalkit.pipeline.images import decode_image
from evalkit.registry import TASKS


@dataclass
class LoglikBench:
    n_samples: int
    n_choices: int
    naive_samples_per_s: float
    engine_samples_per_s: float
    speedup: float
    same_predictions: bool
    max_abs_logprob_diff: float


def naive_choice_logprobs(backend, request) -> list[float]:
    """One full forward per choice over prompt + choice, summing the choice tokens' log-probs. The
    processor runs once per sample, as in the engine, so the ratio credits only the shared prompt
    pass; choices are tokenized jointly with the prompt by the same rule as the engine
    (evalkit.models.backends.continuation), which a test checks against the processor's own encoding."""
    import torch
    import torch.nn.functional as F

    from evalkit.models.backends.continuation import split_continuations

    images = [decode_image(ref) for ref in request.images]
    prompt = backend.render_prompt(request)
    inputs = backend.processor(text=[prompt], images=[images], return_tensors="pt").to(backend.device)
    split = split_continuations(lambda t: backend.tokenizer(t, add_special_tokens=False)["input_ids"],
                                prompt, [" " + c for c in request.choices])
    context = inputs["input_ids"][:, :inputs["input_ids"].shape[1] - split.n_dropped]
    out = []
    for cont in split.choice_ids:
        ids = torch.cat([context, torch.tensor([cont], device=backend.device)], 1)
        with torch.inference_mode():
            logits = backend.model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inputs["pixel_values"],
                                   pixel_attention_mask=inputs.get("pixel_attention_mask")).logits
        logp = F.log_softmax(logits[0].float(), -1)
        first = context.shape[1]
        out.append(float(sum(logp[first - 1 + j, t] for j, t in enumerate(cont))))
    return out


def run(backend, limit: int | None = None) -> LoglikBench:
    task = TASKS.get("fairface")()
    rows = list(load_task_data(task, None, limit).rows)
    requests = [r for i, row in enumerate(rows) for r in task.build_requests(row, str(i)) if r.uid.endswith("#age")]

    naive_choice_logprobs(backend, requests[0])  # warm-up
    t0 = time.perf_counter()
    naive = [naive_choice_logprobs(backend, r) for r in requests]
    naive_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    engine = Generator(backend, batch_size=8, progress=False).run(requests)
    engine_s = time.perf_counter() - t0

    argmax = lambda xs: max(range(len(xs)), key=xs.__getitem__)  # noqa: E731
    diffs = [abs(a - b) for n, e in zip(naive, engine) for a, b in zip(n, e.logprobs)]
    return LoglikBench(n_samples=len(requests), n_choices=len(requests[0].choices),
                       naive_samples_per_s=len(requests) / naive_s, engine_samples_per_s=len(requests) / engine_s,
                       speedup=naive_s / engine_s,
                       same_predictions=[argmax(n) for n in naive] == [argmax(e.logprobs) for e in engine],
                       max_abs_logprob_diff=max(diffs))
