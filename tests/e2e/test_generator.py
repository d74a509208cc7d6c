"""The shared generator: batching must not change greedy outputs, a killed run resumes from its
cache, out-of-memory halves the batch without losing samples, broken samples become records."""
from __future__ import annotations

import pytest

from evalkit.pipeline.generator import Generator
from evalkit.errors import OutOfMemory
from evalkit.models.base import Backend
from evalkit.types import GenConfig, Request
from evalkit.tasks.docvqa import DocVQA


def _requests(rows, n=10, max_new_tokens=12):
    task = DocVQA()
    reqs = []
    for i, row in enumerate(rows[:n]):
        (r,) = task.build_requests(row, str(i))
        r.gen = GenConfig(max_new_tokens=max_new_tokens)
        reqs.append(r)
    return reqs


def test_batched_equals_one_at_a_time(tiny_backend, docvqa_rows):
    reqs = _requests(docvqa_rows)
    batched = Generator(tiny_backend, batch_size=4, progress=False).run(reqs)
    single = [tiny_backend.generate([tiny_backend.prepare(r)])[0] for r in reqs]
    assert [r.uid for r in batched] == [r.uid for r in reqs]  # original order restored
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.error is None for r in batched)
    # the prompts differ in length, so the batches really were padded
    assert len({r.n_input_tokens for r in batched}) > 1


class CountingBackend(Backend):
    """Wraps a backend, counting the requests that reach the model; can fail after N batches."""

    def __init__(self, inner, fail_after_batches=None, oom_above=None):
        self.inner, self.name = inner, inner.name
        self.generated: list[str] = []
        self.batches = 0
        self.fail_after_batches = fail_after_batches
        self.oom_above = oom_above

    def estimate_length(self, r):
        return self.inner.estimate_length(r)

    def prepare(self, r):
        return self.inner.prepare(r)

    def cache_key(self):
        return self.inner.cache_key()  # same model, same cache: a resumed run reuses the killed one's

    def loglikelihood(self, batch):
        return self.inner.loglikelihood(batch)

    def describe(self):
        return self.inner.describe()

    def reset_peak_memory(self):
        self.inner.reset_peak_memory()

    def peak_memory(self):
        return self.inner.peak_memory()

    def generate(self, batch):
        if self.oom_above is not None and len(batch) > self.oom_above:
            raise OutOfMemory("CUDA out of memory (simulated)")
        if self.fail_after_batches is not None and self.batches >= self.fail_after_batches:
            raise KeyboardInterrupt  # the user pressed ctrl-C mid-run
        self.batches += 1
        self.generated += [p.request.uid for p in batch]
        return self.inner.generate(batch)


def test_killed_run_resumes_from_cache(tiny_backend, docvqa_rows, tmp_path):
    reqs = _requests(docvqa_rows, n=10)
    full = Generator(tiny_backend, batch_size=3, progress=False).run(reqs)

    cache = tmp_path / "cache.jsonl"
    killed = CountingBackend(tiny_backend, fail_after_batches=2)
    with pytest.raises(KeyboardInterrupt):
        Generator(killed, batch_size=3, cache_path=cache, progress=False).run(reqs)
    assert len(killed.generated) == 6  # two batches of 3 made it to the cache

    resumed = CountingBackend(tiny_backend)
    gen = Generator(resumed, batch_size=3, cache_path=cache, progress=False)
    out = gen.run(reqs)
    assert sorted(resumed.generated) == sorted(set(r.uid for r in reqs) - set(killed.generated))
    assert gen.stats.n_cached == 6
    assert [r.text for r in out] == [r.text for r in full]
    assert [r.n_input_tokens for r in out] == [r.n_input_tokens for r in full]


def test_cache_survives_a_torn_last_line(tiny_backend, docvqa_rows, tmp_path):
    reqs = _requests(docvqa_rows, n=4)
    cache = tmp_path / "cache.jsonl"
    Generator(tiny_backend, batch_size=2, cache_path=cache, progress=False).run(reqs)
    with cache.open("a") as f:
        f.write('{"key": "abc", "respo')  # a crash in the middle of a write
    again = CountingBackend(tiny_backend)
    gen = Generator(again, batch_size=2, cache_path=cache, progress=False)
    gen.run(reqs)
    assert again.generated == [] and gen.cache.n_corrupt_lines == 1


def test_out_of_memory_halves_batch_and_keeps_every_sample(tiny_backend, docvqa_rows):
    reqs = _requests(docvqa_rows, n=9)
    backend = CountingBackend(tiny_backend, oom_above=2)
    gen = Generator(backend, batch_size="auto", progress=False)
    out = gen.run(reqs)
    assert all(r.error is None and r.text is not None for r in out)
    assert sorted(backend.generated) == sorted(r.uid for r in reqs)
    assert gen.stats.final_batch_size == 2 and gen.stats.oom_halvings >= 1


def test_broken_samples_become_error_records(tiny_backend, docvqa_rows):
    reqs = _requests(docvqa_rows, n=3)
    reqs[1].images = [{"bytes": b"", "path": None}]
    reqs.append(Request(uid="long", text="word " * 5000, images=[docvqa_rows[0]["image"]]))
    out = Generator(tiny_backend, batch_size=2, progress=False).run(reqs)
    assert out[1].error == "image file is empty (0 bytes)"
    assert out[3].error.startswith("prompt too long")
    assert out[0].error is None and out[2].error is None


@pytest.mark.parametrize("split", [False, True])
def test_unusual_images_run_or_become_records(tiny_cache, split):
    """CMYK, RGBA, palette and extreme aspect ratios run through the real processor; an image the
    processor cannot split (1x1) becomes an error record that names the image size."""
    import io

    from PIL import Image

    from evalkit.models import ModelSpec, load_backend

    def enc(img, fmt="PNG"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        return {"bytes": buf.getvalue(), "path": None}

    backend = load_backend(ModelSpec(device="cpu", do_image_splitting=split), cache_dir=tiny_cache)
    images = [enc(Image.new("CMYK", (50, 40)), "JPEG"), enc(Image.new("RGBA", (50, 40))),
              enc(Image.new("P", (50, 40))), enc(Image.new("RGB", (5000, 200))), enc(Image.new("RGB", (200, 5000))),
              enc(Image.new("RGB", (1, 1)))]
    reqs = [Request(uid=str(i), text="What is shown?", images=[im], gen=GenConfig(max_new_tokens=4))
            for i, im in enumerate(images)]
    out = Generator(backend, batch_size=3, progress=False).run(reqs)
    assert all(r.error is None and r.n_image_tokens == (40 if split else 8) for r in out[:5])
    if split:
        assert out[5].error.startswith("the processor could not prepare this sample (image 1x1)")
    else:
        assert out[5].error is None


def test_a_sample_that_breaks_its_batch_is_isolated(tiny_backend, docvqa_rows):
    """An unexpected failure inside the model call is narrowed down by running halves apart:
    the one bad sample gets an error record, every other sample its output."""
    reqs = _requests(docvqa_rows, n=7)

    class Fragile(CountingBackend):
        def generate(self, batch):
            if any(p.request.uid == "3" for p in batch):
                raise RuntimeError("shape mismatch")
            return super().generate(batch)

    backend = Fragile(tiny_backend)
    out = Generator(backend, batch_size=4, progress=False).run(reqs)
    assert out[3].error == "the model failed on this sample: RuntimeError: shape mismatch"
    assert all(r.error is None for i, r in enumerate(out) if i != 3)
    assert sorted(backend.generated) == sorted(r.uid for r in reqs if r.uid != "3")


def test_requests_with_different_settings_never_share_a_batch(tiny_backend, docvqa_rows):
    """A batch runs with one max_new_tokens: requests asking for other settings go in their own pass
    and get exactly what they asked for (and are cached under their own settings)."""
    reqs = _requests(docvqa_rows, n=6, max_new_tokens=3)
    for r in reqs[::2]:
        r.gen = GenConfig(max_new_tokens=7)
    seen = []

    class Recording(CountingBackend):
        def generate(self, batch):
            seen.append({p.request.gen.max_new_tokens for p in batch})
            return super().generate(batch)

    out = Generator(Recording(tiny_backend), batch_size=6, progress=False).run(reqs)
    assert all(len(s) == 1 for s in seen)
    assert [r.n_output_tokens <= q.gen.max_new_tokens for r, q in zip(out, reqs)] == [True] * 6
    assert any(r.n_output_tokens == 7 for r in out[::2])


def test_a_bad_choice_list_is_one_record_in_a_loglikelihood_batch(tiny_backend, docvqa_rows):
    image = docvqa_rows[0]["image"]
    reqs = [Request(uid=str(i), text="Which?", images=[image], kind="loglikelihood", choices=["yes", "no"])
            for i in range(3)]
    reqs[1].choices = []
    out = Generator(tiny_backend, batch_size=3, progress=False).run(reqs)
    assert out[1].error.startswith("log-likelihood request without choices")
    assert out[0].error is None and out[2].error is None and len(out[2].logprobs) == 2


@pytest.mark.parametrize("device,message", [
    ("cuda:0", "this machine has no CUDA GPU"), ("tpu", "is not valid"), ("meta", "is not supported")])
def test_bad_device_is_one_clear_error(device, message):
    import torch

    from evalkit.errors import EvalkitError
    from evalkit.models.backends.hf import resolve_device

    if torch.cuda.is_available() and device.startswith("cuda"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(EvalkitError, match=message):
        resolve_device(device)
    assert resolve_device("cpu") == "cpu"
