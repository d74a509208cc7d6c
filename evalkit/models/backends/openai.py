"""`--model openai`: a model behind an OpenAI-compatible chat completions API.

vLLM (`vllm serve`), SGLang, TGI, `transformers serve` and API providers all speak it. The
server does the scaling (data and tensor parallelism, continuous batching); evalkit keeps
`--concurrency` requests in flight and caches every answer, so an interrupted run resumes.

- prepare (the generator's worker threads): the task's prompt as one user turn of chat
  messages (evalkit.models.prompt.chat_messages), each image decoded, resized down to
  `--longest-edge` when given, and sent as a base64 data URL. Without a resize an RGB JPEG
  or PNG goes as its own bytes; anything else as a lossless PNG of the decoded RGB image, so
  the server sees the pixels the local backends see.
- generate: the batch's requests sent concurrently, greedy (temperature 0), max_tokens and
  stop strings from the task; the stop strings are also cut from the text here, since
  servers differ in whether they include them. A request that still fails after the retries
  becomes that sample's error record; the run goes on and a rerun retries only those. So does
  a reply without an answer (null content or message, a completions-style reply, a 200 that
  carries {"error"}, a malformed content part, an answer far longer than max_tokens allows):
  an error record, never an empty prediction, never cached. Usage counts that are not sane
  token counts are taken as 0 and counted (`n_usage_ignored`); the answer is kept.
- a run whose first EARLY_STOP requests all fail the same way, before any answer, stops with
  that error (and, when the server answers without stop strings, names --no-server-stop).
- every text from the server is stored and shown without the API key, a URL password or any
  Bearer value (servers echo headers back); the base URL is shown without its userinfo.
- the generator's batch size is a multiple of the concurrency (`batch_size`), so a batch is
  what is in flight plus a queue behind it; the cache is written per batch.
- cache_key: the base URL, the served model's id and what the server reports about it
  (/models: root, revision, max_model_len), and the settings that change answers. Never
  the API key, which is read from the environment variable that `--api-key-env` names and
  lives only in the HTTP client's headers.
- log-likelihood (FairFace): OpenAI's chat completions give no log-probabilities of a given
  continuation; vLLM's extension does (`prompt_logprobs`). Each choice is sent as the start of
  the assistant's turn (`continue_final_message`, no generation prompt, one new token) and the
  log-probabilities of the prompt's last tokens, those that spell the choice, are summed. The
  choice's tokens are found from the server's own decoded tokens, read from the end; a choice
  whose first token merged with the text before it cannot be aligned and is that sample's
  error. A server that refuses these fields (transformers serve, API providers) stops the run
  with one error naming the limitation. Untested against vLLM itself (needs a GPU check); the
  arithmetic is tested against a scripted reply in vLLM's format.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import argparse
import os
import re
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

from ...errors import EvalkitError, SampleError
from ...pipeline.images import decode_image, image_bytes
from ...registry import MODELS
from ...types import Request, Response
from ..base import Backend, Prepared, cut_at_stops
from .http import CallRecord, HTTPFailure, JSONClient, RetryPolicy, check_timeout, parse_base_url
from ..options import LONGEST_EDGE, Option, non_negative_int, positive_int, with_options
from ..prompt import chat_messages
from .replies import error_text, failure_kind, max_text_chars, reply_text, trailing_logprob, usage_counts
from ..spec import ModelSpec

# What /models reports about a model that identifies its weights; other fields (created,
# load status, permissions) change between restarts of the same model.
IDENTITY_FIELDS = ("id", "root", "revision", "parent", "max_model_len")
# How many batches' worth of requests queue behind the ones in flight: a barrier per batch
# would leave the connections idle while the slowest request of each batch finishes.
QUEUE_FACTOR = 4
AUTH_STATUS = (401, 403)
# Encoded formats sent as their own bytes when the image is RGB (PIL's format names; a JPEG
# with a multi-picture extension opens as MPO).
RGB_AS_SENT = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png"}
# A run whose first requests all fail the same way, before any answer, stops after this many:
# the server is misconfigured (or refuses an option) and every other sample would fail alike.
EARLY_STOP = 4
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def timeout_arg(value: str) -> float:
    """--timeout: refused before any work when no socket could wait that long (inf, 1e10)."""
    try:
        return check_timeout(float(value))
    except (ValueError, EvalkitError):
        raise argparse.ArgumentTypeError(f"{value[:40]!r}: use a positive number of seconds up to 86400") from None


def base_url_arg(value: str) -> str:
    """--base-url / --judge-base-url: a URL that parses, checked here (its password never echoed)."""
    try:
        parse_base_url(value, "the value")
    except EvalkitError as e:
        raise argparse.ArgumentTypeError(str(e).strip()) from None
    return value


def _positive(what: str, minimum: int):
    def check(n) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
            raise EvalkitError(f"{what} {n!r} is not valid; use "
                               f"{'a positive integer' if minimum else '0 or a positive integer'}")
    return check


def _check_env_name(name) -> None:
    if name is not None and not (isinstance(name, str) and _ENV_NAME.fullmatch(name)):
        # not echoed: a user who passed the key itself must not see it printed or logged
        raise EvalkitError("--api-key-env is not an environment variable name (letters, digits and _); give "
                           "the variable's name (e.g. OPENAI_API_KEY), never the key itself")


# How a served model is reached and asked. Only what changes answers enters the cache key, beside
# the server and model reached (cache_key); the key to the server never does.
SERVED_OPTIONS = (
    Option("base_url", None, "the OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 (--model-id: the "
           "served model's name; default: the only one served)", parse=base_url_arg, in_cache_key=False),
    Option("api_key_env", None, "NAME of the environment variable holding the API key (the key itself is never "
           "written anywhere); default: no key", check=_check_env_name, in_cache_key=False),
    Option("concurrency", 8, "requests in flight at once (default 8)", parse=positive_int,
           check=_positive("concurrency", 1), in_cache_key=False),
    Option("timeout", 300.0, "seconds one HTTP request may take as a whole, connect to last byte (default 300)",
           parse=timeout_arg, check=check_timeout, in_cache_key=False),  # finite: inf overflows the socket's
    Option("max_retries", 5, "retries after a 429, 5xx or connection error, with exponential backoff and jitter, "
           "honouring Retry-After (default 5); a request that still fails is that sample's error",
           parse=non_negative_int, check=_positive("max retries", 0), in_cache_key=False),
    Option("server_stop", True, "do not send the task's stop strings to the server (transformers serve 5.x fails "
           "on stop strings with a multimodal processor); they are still cut from the answers",
           flag="--no-server-stop", switch=True),
)


class OpenAIBackend(Backend):
    name = "openai"
    options = (LONGEST_EDGE,) + SERVED_OPTIONS
    image_tokens_per_image = None  # the server expands images; their token count is its business

    def __init__(self, spec: ModelSpec, *, env: Mapping[str, str] | None = None,
                 policy: RetryPolicy | None = None):
        if not spec.base_url:
            raise EvalkitError("model 'openai' needs --base-url: the server's OpenAI-compatible API root, "
                               "e.g. http://127.0.0.1:8000/v1")
        shown_url = parse_base_url(spec.base_url).shown  # a password in it is never shown
        if spec.prompt_style != "instruct":
            raise EvalkitError("--prompt-style base is not possible with --model openai: a chat completions "
                               "server applies the model's own chat template; use --prompt-style instruct")
        if spec.do_image_splitting or spec.load_in_4bit or spec.attn_implementation:
            raise EvalkitError("--split-images, --load-in-4bit and --attn are set on the server (e.g. in its "
                               "processor config or launch flags), not by --model openai; drop them here")
        self.spec = spec
        self.base_url = shown_url
        env = os.environ if env is None else env
        headers = {}
        if spec.api_key_env:
            key = env.get(spec.api_key_env)
            if not key:
                raise EvalkitError(f"--api-key-env {spec.api_key_env}: that environment variable is not set "
                                   f"or empty; export it with the server's API key")
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self.policy = policy or RetryPolicy(max_retries=spec.max_retries)
        self.client = JSONClient(spec.base_url, timeout=spec.timeout, policy=self.policy,
                                 headers=headers, pool_size=spec.concurrency)
        self._pool = ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix="evalkit-http")
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self._n_attempts = 0
        self._n_failed = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._n_usage_ignored = 0  # answers kept whose usage counts were not sane token counts
        self._first_failures: list[str] = []  # failures before the first answer (see _stop_early)
        self._answered = False
        self._stopped: EvalkitError | None = None
        self._stopped_status: int | None = None
        self.batch_size = spec.concurrency * QUEUE_FACTOR
        model_entry = self._served_model(spec.model_id)
        self.model_id = str(model_entry["id"])
        # what identifies the served weights (IDENTITY_FIELDS), for the cache key and results;
        # a string the server sent is stored without any secret it echoed
        self.server_model = {k: self._clean(model_entry[k]) for k in IDENTITY_FIELDS
                             if model_entry.get(k) is not None}

    # ----- the server -----
    def _served_model(self, wanted: str | None) -> dict:
        try:
            # at most two quick retries: a server that is not running should be named in seconds
            listing = self.client.get("/models", policy=RetryPolicy(max_retries=min(2, self.policy.max_retries),
                                                                    base_s=0.5))
        except HTTPFailure as e:
            if e.status in AUTH_STATUS:
                raise self._refused_key(e) from None
            if e.status == 404:
                raise EvalkitError(f"{self.base_url}/models: not found; --base-url should be the API root "
                                   f"that holds /models and /chat/completions (often ending in /v1)") from None
            raise EvalkitError(f"{self.base_url}: no usable answer from the server ({e}); is it running?") from None
        data = listing.get("data") if isinstance(listing, dict) else None
        entries = [d for d in data if isinstance(d, dict) and d.get("id")] if isinstance(data, list) else []
        ids = [self._clean(str(d["id"])) for d in entries]
        if wanted is None:
            if len(entries) == 1:
                return entries[0]
            raise EvalkitError(f"{self.base_url} serves {len(ids)} models; choose one with --model-id "
                               f"({', '.join(ids[:20]) or 'none listed'})")
        for d in entries:
            if str(d["id"]) == wanted:
                return d
        if not entries:
            # Some API providers list nothing (or only part); the first request will tell.
            return {"id": wanted}
        raise EvalkitError(f"--model-id {wanted!r} is not served at {self.base_url}; it serves: {', '.join(ids[:20])}")

    # ----- requests -----
    def estimate_length(self, request: Request) -> int:
        return len(request.text) // 4 + 64 * len(request.images)

    def prepare(self, request: Request) -> Prepared:
        if request.kind == "loglikelihood" and not request.choices:
            raise SampleError("log-likelihood request without choices")
        messages = chat_messages(request)
        images = iter(request.images)
        for part in messages[0]["content"]:
            if part["type"] == "image":
                part.clear()
                part.update(type="image_url", image_url={"url": self._data_url(next(images))})
        return Prepared(request=request, inputs={"messages": messages}, n_input_tokens=0, n_image_tokens=None)

    def _data_url(self, ref) -> str:
        raw = image_bytes(ref)  # read once: decoded here, and sent as they are when they can be
        img = decode_image(ref if raw is None else raw)  # a corrupt image is this sample's error, before any request
        edge = self.spec.longest_edge
        data, mime = None, None
        if edge is not None and max(img.size) > edge:
            scale = edge / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample=3)
        elif raw is not None:
            # decode_image returns the opened image itself only when it is RGB already (its
            # format then survives): those JPEGs and PNGs the server decodes to the same pixels.
            mime = RGB_AS_SENT.get(img.format)
            data = raw if mime else None
        if data is None:
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            data, mime = buf.getvalue(), "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def generate(self, batch: list[Prepared]) -> list[Response]:
        gen = batch[0].request.gen
        body: dict[str, Any] = {"model": self.model_id, "max_tokens": gen.max_new_tokens, "temperature": 0.0}
        stop = [s for s in gen.stop if s]
        if stop and self.spec.server_stop:
            body["stop"] = stop[:4]  # the OpenAI API takes at most 4
        out = self._all(lambda p: self._one(p, body, stop), batch)
        if self._stopped is not None:
            raise self._stop_error(body)
        return out

    def _all(self, fn, items: list) -> list:
        """fn over items on the request threads, results in order. On Ctrl-C (or any error) the
        requests not yet sent are cancelled and those in flight end within a fraction of a
        second (the client's cancel), so the process ends with the finished batches cached."""
        futures = [self._pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            self.client.cancel()
            for f in futures:
                f.cancel()
            raise

    def _post(self, body: dict) -> tuple[Any, CallRecord]:
        """One chat completion with the retry policy. A request that still fails is counted and
        raised (HTTPFailure); a refused API key ends the run instead."""
        record = CallRecord()
        try:
            return self.client.post("/chat/completions", body, record), record
        except HTTPFailure as e:
            self._count(record, None)
            if e.status in AUTH_STATUS:
                raise self._refused_key(e) from None
            raise

    def _refused_key(self, e: HTTPFailure) -> EvalkitError:
        return EvalkitError(f"{self.base_url}: the server refused the API key ({e}); check --api-key-env")

    def _one(self, p: Prepared, body: dict, stop: list[str]) -> Response:
        try:
            reply, record = self._post({**body, "messages": p.inputs["messages"]})
        except HTTPFailure as e:
            return self._failed(p, f"server request failed: {e}", e.status)
        try:
            text = self._clean(reply_text(reply))
            if len(text) > max_text_chars(body["max_tokens"]):
                raise SampleError(f"the server's answer is {len(text):,} characters long for at most "
                                  f"{body['max_tokens']} tokens (more than {max_text_chars(body['max_tokens']):,}); "
                                  f"refused")
        except SampleError as e:
            self._count(record, None)
            return self._failed(p, self._clean(str(e)), None)
        usage = self._usage(reply)
        self._count(record, usage)
        with self._lock:
            self._answered = True
        return Response(uid=p.request.uid, text=cut_at_stops(text, stop).strip(), n_input_tokens=usage[0],
                        n_image_tokens=0, n_output_tokens=usage[1], latency_s=round(record.latency_s, 4))

    def _failed(self, p: Prepared, error: str, status: int | None) -> Response:
        """A request's error record; before any answer, the start of a run that fails the same way
        every time stops it (see _stop_early)."""
        self._stop_early(error, status)
        return Response(uid=p.request.uid, error=error)

    def _stop_early(self, error: str, status: int | None) -> None:
        """The first EARLY_STOP requests of a run all failed the same way and none was answered:
        the rest would fail alike (after their retries), so the run stops with that error."""
        with self._lock:
            if self._answered or self._stopped is not None or self.client.cancelled:
                return
            self._first_failures.append(failure_kind(error))
            if len(self._first_failures) < EARLY_STOP or len(set(self._first_failures)) > 1:
                return
            self._stopped = EvalkitError(
                f"the first {EARLY_STOP} requests all failed the same way and none was answered, so the run "
                f"stopped: {error}")
            self._stopped_status = status
        self.client.cancel()

    def _stop_error(self, body: dict) -> EvalkitError:
        """The early stop's error, with the fix when the server fails only while stop strings are sent
        (transformers serve with a multimodal processor answers 500 to every `stop`)."""
        if "stop" in body and self._stopped_status is not None:
            probe = JSONClient(self.spec.base_url, timeout=self.spec.timeout, policy=RetryPolicy(max_retries=0),
                               headers=self._headers, pool_size=1)
            try:
                probe.post("/chat/completions", {k: v for k, v in body.items() if k != "stop"}
                           | {"max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]})
            except HTTPFailure:
                pass
            else:
                return EvalkitError(f"{self._stopped}; the server answers without stop strings: pass "
                                    f"--no-server-stop (the stop strings are then cut from the answers here)")
            finally:
                probe.close()
        return self._stopped

    def _usage(self, reply: Any) -> tuple[int, int]:
        usage, sane = usage_counts(reply)
        if not sane:
            with self._lock:
                self._n_usage_ignored += 1
        return usage

    def _clean(self, value: Any) -> Any:
        """A server's string without any secret it echoed (the key, a URL password, a Bearer value)."""
        return self.client.redact(value) if isinstance(value, str) else value

    def _count(self, record: CallRecord, usage: tuple[int, int] | None) -> None:
        """Add one request to the run's totals: `usage` (prompt, completion tokens) when it was
        answered, None when it failed."""
        with self._lock:
            self._n_attempts += record.attempts
            if usage is None:
                self._n_failed += 1
            else:
                self._latencies.append(record.latency_s)
                self._prompt_tokens += usage[0]
                self._completion_tokens += usage[1]

    def loglikelihood(self, batch: list[Prepared]) -> list[Response]:
        jobs = [(i, c) for i, p in enumerate(batch) for c in p.request.choices]
        scored = self._all(lambda job: self._choice_logprob(batch[job[0]], job[1]), jobs)
        if self._stopped is not None:
            raise self._stopped
        out = []
        k = 0
        for p in batch:
            mine = scored[k:k + len(p.request.choices)]
            k += len(mine)
            problem = next((m for m in mine if isinstance(m, str)), None)
            if problem is not None:
                out.append(Response(uid=p.request.uid, error=problem))
                continue
            out.append(Response(uid=p.request.uid, logprobs=[m[0] for m in mine], choice_n_tokens=[m[1] for m in mine],
                                n_input_tokens=max(m[2] for m in mine), n_image_tokens=0,
                                latency_s=round(sum(m[3] for m in mine), 4)))
        return out

    def _choice_logprob(self, p: Prepared, choice: str) -> tuple[float, int, int, float] | str:
        """(summed log-probability of the choice's tokens, their count, prompt tokens, latency), or an error text."""
        body = {"model": self.model_id, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0,
                "add_generation_prompt": False, "continue_final_message": True,
                "messages": p.inputs["messages"] + [{"role": "assistant", "content": [{"type": "text", "text": choice}]}]}
        try:
            reply, record = self._post(body)
        except HTTPFailure as e:
            if e.status in (400, 404, 422):
                raise self._no_loglikelihood(str(e)) from None
            self._stop_early(f"server request failed: {e}", e.status)
            return f"server request failed: {e}"
        entries = reply.get("prompt_logprobs") if isinstance(reply, dict) else None
        if not isinstance(entries, list):
            self._count(record, None)
            if isinstance(reply, dict) and "error" in reply:
                return f"the server answered {error_text(reply, self.client.redact)}"
            raise self._no_loglikelihood("its reply has no prompt_logprobs")
        usage = self._usage(reply)
        self._count(record, usage)
        try:
            total, n = trailing_logprob(entries, choice)
        except SampleError as e:
            return str(e)
        with self._lock:
            self._answered = True
        return total, n, usage[0] or len(entries), record.latency_s

    def _no_loglikelihood(self, why: str) -> EvalkitError:
        return EvalkitError(
            f"log-likelihood tasks (fairface) need prompt log-probabilities (vLLM's prompt_logprobs), and the server "
            f"at {self.base_url} does not give them ({why}); run them against vLLM, or with --model hf")

    # ----- identity and reporting -----
    def cache_key(self) -> str:
        ident = {"backend": self.name, "base_url": self.base_url, "model": self.server_model,
                 "prompt_style": self.spec.prompt_style}
        ident.update((opt.name, getattr(self.spec, opt.name)) for opt in self.options if opt.in_cache_key)
        return "openai|" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]

    def describe(self) -> dict[str, Any]:
        with self._lock:
            lat = sorted(self._latencies)
            served = {
                "n_requests": len(lat) + self._n_failed, "n_failed": self._n_failed,
                "n_retries": self._n_attempts - len(lat) - self._n_failed,
                "latency_s": ({"mean": round(statistics.fmean(lat), 4), "p50": round(_quantile(lat, 0.5), 4),
                               "p95": round(_quantile(lat, 0.95), 4), "max": round(lat[-1], 4)} if lat else None),
                "prompt_tokens": self._prompt_tokens, "completion_tokens": self._completion_tokens,
                # answers kept whose usage was not a sane token count (negative, huge, not an integer):
                # those counts are taken as 0 above
                "n_usage_ignored": self._n_usage_ignored,
            }
        return {
            "name": self.name, "model_id": self._clean(self.model_id), "base_url": self.base_url,
            "server_model": self.server_model,
            "longest_edge": self.spec.longest_edge, "prompt_style": self.spec.prompt_style,
            "concurrency": self.spec.concurrency, "timeout_s": self.spec.timeout, "max_retries": self.spec.max_retries,
            "api_key_env": self.spec.api_key_env, "server_stop": self.spec.server_stop,
            "image_tokens_per_image": None, "pipeline_check": self.random_weights, "requests": served,
        }

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> dict[str, Any]:
        return {"device": "server", "peak_bytes": None, "kind": "not measured: the model's memory is the server's"}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _quantile(sorted_values: list[float], q: float) -> float:
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


@MODELS.register("openai")
@with_options(*OpenAIBackend.options)
def load_openai(spec: ModelSpec, cache_dir=None) -> OpenAIBackend:
    """A served model over an OpenAI-compatible API at --base-url (vLLM, SGLang, TGI, transformers serve, API providers)."""
    return OpenAIBackend(spec)
