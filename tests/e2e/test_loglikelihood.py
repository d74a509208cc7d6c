"""The log-likelihood path (prompt and image run once, KV cache shared by the choices) must give
the same numbers as a plain forward pass over prompt + choice, one choice at a time."""
import pytest

from benchmarks.loglik_bench import naive_choice_logprobs
from evalkit.pipeline.data import load_task_data
from evalkit.pipeline.generator import Generator
from evalkit.tasks.fairface import FairFace


def test_loglikelihood_matches_per_choice_forward(tiny_backend):
    task = FairFace()
    rows = list(load_task_data(task, None, 3).rows)
    requests = [r for i, row in enumerate(rows) for r in task.build_requests(row, str(i))]
    engine = Generator(tiny_backend, batch_size=4, progress=False).run(requests)
    for req, resp in zip(requests, engine):
        direct = naive_choice_logprobs(tiny_backend, req)
        assert resp.error is None and len(resp.logprobs) == len(req.choices) == len(resp.choice_n_tokens)
        assert resp.logprobs == pytest.approx(direct, abs=1e-3)
        assert max(range(len(direct)), key=direct.__getitem__) == \
            max(range(len(direct)), key=resp.logprobs.__getitem__)
    assert [len(r.choices) for r in requests[:3]] == [2, 7, 9]
