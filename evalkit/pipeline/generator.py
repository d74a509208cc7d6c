"""The shared batched generator: every task and the audit send their requests through here.

- cached responses are taken from the run's cache and never recomputed;
- the rest are sorted by estimated input length so a batch pads little, and the original
  order is restored at the end;
- image decoding and processor work run in a thread pool a few batches ahead of the model;
- `batch_size="auto"` starts large and halves on out-of-memory, retrying the same batch, so
  no sample is lost; a fixed batch size halves too rather than failing the run;
- a sample that cannot be prepared (corrupt image, prompt too long) becomes a Response with
  `error` set, and the run goes on.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .cache import ResponseCache, request_key
from ..errors import EvalkitError, OutOfMemory, SampleError
from .images import image_key
from ..models.base import Backend, Prepared
from ..types import Request, Response

AUTO_START = 64


@dataclass
class GeneratorStats:
    n_requests: int = 0
    n_cached: int = 0
    n_cache_ignored: int = 0  # damaged cache lines or unusable entries; their requests were run again
    n_errors: int = 0
    n_batches: int = 0
    oom_halvings: int = 0
    final_batch_size: int | None = None
    largest_batch: int = 0  # the largest batch the model ran
    padded_tokens: int = 0
    real_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def padding_fraction(self) -> float:
        total = self.padded_tokens + self.real_tokens
        return self.padded_tokens / total if total else 0.0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["padding_fraction"] = self.padding_fraction
        return d


@dataclass
class Generator:
    backend: Backend
    batch_size: int | str = 8
    cache_path: Path | None = None
    workers: int = 2
    progress: bool = True
    desc: str = "generating"
    stats: GeneratorStats = field(default_factory=GeneratorStats)

    def __post_init__(self):
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch size {self.batch_size!r}: use a positive integer or 'auto'")
        self.cache = ResponseCache(self.cache_path)
        self._bs = AUTO_START if self.batch_size == "auto" else int(self.batch_size)
        if self.backend.batch_size is not None:  # a served model's batch follows its concurrency
            self._bs = int(self.backend.batch_size)
        self._model_key: str | None = None

    def run(self, requests: list[Request]) -> list[Response]:
        start = time.perf_counter()
        if self._model_key is None:  # fingerprinting reads the model files: once per generator
            self._model_key = self.backend.cache_key()
        model_key = self._model_key
        digests = [[image_key(ref) for ref in r.images] for r in requests]
        keys = [request_key(model_key, r, d) for r, d in zip(requests, digests)]
        self._req_index = {id(r): i for i, r in enumerate(requests)}
        results: dict[int, Response] = {}
        todo: list[int] = []
        for i, (r, k) in enumerate(zip(requests, keys)):
            hit = self.cache.get(k, r.uid, r)
            if hit is not None:
                results[i] = hit
            else:
                todo.append(i)
        self.stats.n_requests += len(requests)
        self.stats.n_cache_ignored = self.cache.n_corrupt_lines
        self.stats.n_cached += len(requests) - len(todo)
        # One pass per (kind, generation settings): a batch runs with one max_new_tokens and stop list.
        passes: dict[tuple, list[int]] = {}
        for i in todo:
            passes.setdefault((requests[i].kind, requests[i].gen), []).append(i)
        for (kind, _), idx in passes.items():
            self._run_kind(kind, idx, requests, keys, digests, results, n_cached=len(requests) - len(todo))
        self.stats.wall_seconds += time.perf_counter() - start
        return [results[i] for i in range(len(requests))]

    # ------------------------------------------------------------------
    def _order(self, idx: list[int], requests: list[Request], digests: list[list[bytes]]) -> list[int]:
        """Longest first, so an out-of-memory shows up on the first batch, not after an hour;
        requests showing the same image are kept together (ordered by their longest member)
        so the backend can process that image once. Image tokens are the same for the same
        image, so grouping costs little padding."""
        lengths, groups = {}, {}
        for i in idx:
            try:
                lengths[i] = self.backend.estimate_length(requests[i])
            except Exception:
                lengths[i] = 0
            groups[i] = digests[i][0] if digests[i] else i
        group_len: dict = {}
        for i in idx:
            group_len[groups[i]] = max(group_len.get(groups[i], 0), lengths[i])
        return sorted(idx, key=lambda i: (-group_len[groups[i]], str(groups[i]), -lengths[i]))

    def _run_kind(self, kind, idx, requests, keys, digests, results, n_cached) -> None:
        from tqdm.auto import tqdm

        order = self._order(idx, requests, digests)
        bar = tqdm(total=len(requests), initial=n_cached, desc=self.desc, unit="request",
                   disable=not self.progress, dynamic_ncols=True)
        pool = ThreadPoolExecutor(max_workers=max(1, self.workers))
        futures: dict[int, Future] = {}
        # Prepare about one batch ahead, capped: prepared inputs of split images are ~60 MB each.
        lookahead = lambda: min(self._bs, 16)  # noqa: E731
        pos = 0
        submitted = 0

        def submit_upto(n: int) -> None:
            nonlocal submitted
            for j in order[submitted:min(len(order), n)]:
                futures[j] = pool.submit(self.backend.prepare, requests[j])
            submitted = max(submitted, min(len(order), n))

        try:
            while pos < len(order):
                submit_upto(pos + self._bs + lookahead())
                chunk = order[pos:pos + self._bs]
                prepared: list[Prepared] = []
                for j in chunk:
                    try:
                        prepared.append(futures.pop(j).result())
                    except SampleError as e:
                        results[j] = Response(uid=requests[j].uid, error=str(e))
                        self.stats.n_errors += 1
                    except EvalkitError:  # a problem with the whole run (a backend that cannot do this kind)
                        raise
                    except Exception as e:  # an unexpected per-sample failure must not end the run
                        results[j] = Response(uid=requests[j].uid, error=f"{type(e).__name__}: {e}")
                        self.stats.n_errors += 1
                self._run_batch(kind, prepared, results, keys)
                bar.update(len(chunk))
                pos += len(chunk)
        finally:
            bar.close()
            for f in futures.values():
                f.cancel()
            pool.shutdown(wait=True)
        self.stats.final_batch_size = self._bs

    def _run_batch(self, kind, prepared: list[Prepared], results, keys) -> None:
        """Run prepared requests into `results`, halving the batch on out-of-memory until it fits."""
        queue = list(prepared)
        while queue:
            batch, queue = queue[:self._bs], queue[self._bs:]
            t0 = time.perf_counter()
            try:
                responses = (self.backend.generate(batch) if kind == "generate"
                             else self.backend.loglikelihood(batch))
            except OutOfMemory:
                self._free_memory()
                if len(batch) == 1:
                    responses = [Response(uid=batch[0].request.uid, error="out of memory even at batch size 1")]
                else:
                    # Retry the same samples in halves; the smaller size stays for the rest of the run.
                    self.stats.oom_halvings += 1
                    self._bs = max(1, len(batch) // 2)
                    queue = batch + queue
                    continue
            except SampleError as e:
                responses = [Response(uid=p.request.uid, error=str(e)) for p in batch]
            except EvalkitError:  # the whole run's problem (a refused API key): one line, finished batches cached
                raise
            except Exception as e:
                # One sample can break a batch (an odd shape, a tokenizer edge case): run the halves
                # apart to find it, so it becomes one error record and the rest still run.
                if len(batch) > 1:
                    half = len(batch) // 2
                    self._run_batch(kind, batch[:half], results, keys)
                    self._run_batch(kind, batch[half:], results, keys)
                    continue
                responses = [Response(uid=batch[0].request.uid,
                                      error=f"the model failed on this sample: {type(e).__name__}: {e}")]
            self.stats.model_seconds += time.perf_counter() - t0
            self.stats.n_batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            if kind == "generate":  # log-likelihood requests run one prompt at a time: no padding
                longest = max(p.n_input_tokens for p in batch)
                self.stats.real_tokens += sum(p.n_input_tokens for p in batch)
                self.stats.padded_tokens += sum(longest - p.n_input_tokens for p in batch)
            self.stats.output_tokens += sum(r.n_output_tokens for r in responses)
            cache_items = []
            for p, r in zip(batch, responses):
                j = self._req_index[id(p.request)]
                results[j] = r
                if r.error is None:
                    cache_items.append((keys[j], r))
                else:
                    self.stats.n_errors += 1
            self.cache.put_many(cache_items)

    def _free_memory(self) -> None:
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
