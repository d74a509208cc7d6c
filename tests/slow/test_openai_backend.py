"""The openai backend against a real `transformers serve` on 127.0.0.1 (the `served_tiny` fixture),
and its retry policy against a small local HTTP handler that plays a server's 429s and 503s."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from evalkit.cli.commands import main
from evalkit.errors import EvalkitError
from evalkit.models.backends.http import HTTPFailure, JSONClient, RetryPolicy, parse_retry_after
from evalkit.models.backends.openai import OpenAIBackend
from evalkit.models.spec import ModelSpec
from evalkit.results.schema import read_run
from evalkit.pipeline.runner import EvalConfig, run_eval
from evalkit.types import GenConfig, Request

FAKE_KEY = "sk-evalkit-FAKE-7f3a9c-should-never-be-written"


def _spec(server, **kw) -> ModelSpec:
    return ModelSpec(name="openai", base_url=server.base_url, server_stop=False, **kw)


def _run(tmp_path, spec, name, limit, task="docvqa", **kw):
    return run_eval(EvalConfig(task=task, model=spec, limit=limit, run_name=name, runs_dir=tmp_path / "runs",
                               progress=False, **kw))


# ---------------------------------------------------------------- the real server
def test_docvqa_through_the_server_equals_the_hf_backend(tmp_path, served_tiny):
    """Same weights, same processor and chat template, greedy: the served answers are the local ones,
    token for token (the served copy stops at </s> and <end_of_utterance> as the hf backend does)."""
    served = _run(tmp_path, _spec(served_tiny), "served", 4)
    local = _run(tmp_path, ModelSpec(name="hf", model_id=str(served_tiny.model_dir), device="cpu"), "local", 4)
    res_s, rec_s = read_run(served)
    _, rec_l = read_run(local)
    assert res_s.counts.n_errors == 0
    assert [r.prediction for r in rec_s] == [r.prediction for r in rec_l]
    assert all(r.prediction for r in rec_s)  # not four empty strings agreeing by accident
    # the server's usage counts are the local token counts (image tokens included in the prompt)
    assert [r.n_output_tokens for r in rec_s] == [r.n_output_tokens for r in rec_l]
    assert [r.n_input_tokens for r in rec_s] == [r.n_input_tokens for r in rec_l]
    # each served sample records its request's latency; a local model's records have none
    assert all(r.latency_s > 0 for r in rec_s) and all(r.latency_s is None for r in rec_l)
    m = res_s.model.to_dict()
    assert m["name"] == "openai" and m["base_url"] == served_tiny.base_url
    assert m["model_id"] == str(served_tiny.model_dir) and m["image_tokens_per_image"] is None
    assert m["requests"]["n_requests"] == 4 and m["requests"]["n_failed"] == 0 and m["requests"]["n_retries"] == 0
    assert m["requests"]["completion_tokens"] == sum(r.n_output_tokens for r in rec_s)
    assert m["requests"]["latency_s"]["max"] > 0


def test_client_killed_mid_run_resumes_from_the_cache(tmp_path, served_tiny):
    """`evalkit eval` killed (SIGKILL) after its first batch: the rerun takes exactly the cached
    answers from cache.jsonl and asks the server only for the rest."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "evalkit.cli", "eval", "--task", "docvqa", "--model", "openai",
           "--base-url", served_tiny.base_url, "--no-server-stop", "--concurrency", "1", "--limit", "8",
           "--runs-dir", str(runs), "--run-name", "k", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = runs / "k" / "cache.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (cache.exists() and cache.read_bytes().count(b"\n") >= 1):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    n_cached = cache.read_bytes().count(b"\n")
    assert 4 <= n_cached < 8  # --concurrency 1: batches of 4, the first written, the second not finished
    assert not (runs / "k" / "results.json").exists()
    assert main(cmd[3:]) == 0
    res, records = read_run(runs / "k")
    assert res.timing.n_cached == n_cached and res.counts.n_errors == 0
    assert res.model.extra["requests"]["n_requests"] == 8 - n_cached
    assert cache.read_bytes().count(b"\n") == 8


def test_server_killed_mid_run_gives_sample_errors_then_resumes(tmp_path, served_tiny):
    """The server SIGKILLed after the first batch: the run ends normally, the unanswered samples are
    error records (connection refused, no retries asked), and after a restart on the same URL the
    rerun answers only those."""
    spec = _spec(served_tiny, concurrency=1, max_retries=0)
    cache = tmp_path / "runs" / "d" / "cache.jsonl"
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("dir", _run(tmp_path, spec, "d", 8)))
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (cache.exists() and cache.read_bytes().count(b"\n") >= 4):
            time.sleep(0.05)
        served_tiny.kill()
        worker.join(timeout=300)
        res, records = read_run(out["dir"])
        n_ok = cache.read_bytes().count(b"\n")
        assert n_ok >= 4 and res.counts.n_errors == 8 - n_ok > 0
        errors = [r.error for r in records if r.error]
        assert all(e.startswith("server request failed: POST /chat/completions:") for e in errors)
        assert all("(no retries)" in e for e in errors)
    finally:
        served_tiny.start()  # same port: the other tests and the rerun find it where it was
    res2, records2 = read_run(_run(tmp_path, spec, "d", 8))
    assert res2.timing.n_cached == n_ok and res2.counts.n_errors == 0
    answered = {r.uid: r.prediction for r in records if r.error is None}
    assert len(answered) == n_ok and {r.uid: r.prediction for r in records2 if r.uid in answered} == answered


def test_api_key_is_never_written(tmp_path, served_tiny, capfd):
    """The key travels in the Authorization header only: not in config.json, results, samples,
    cache, report, or anything printed."""
    env = {**os.environ, "EVALKIT_TEST_KEY": FAKE_KEY}
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "eval", "--task", "docvqa", "--model", "openai", "--base-url",
         served_tiny.base_url, "--api-key-env", "EVALKIT_TEST_KEY", "--no-server-stop", "--limit", "2",
         "--runs-dir", str(tmp_path / "runs"), "--run-name", "key"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert {"config.json", "results.json", "samples.jsonl", "cache.jsonl", "report.html"} <= {p.name for p in files}
    for p in files:
        assert FAKE_KEY.encode() not in p.read_bytes(), p
    assert FAKE_KEY not in proc.stdout + proc.stderr
    # what is recorded is the variable's name, so a reader knows a key was used
    assert json.loads((tmp_path / "runs" / "key" / "config.json").read_text())["model"]["api_key_env"] == "EVALKIT_TEST_KEY"


def test_loglikelihood_task_is_one_clear_error(tmp_path, served_tiny, capsys):
    code = main(["eval", "--task", "fairface", "--model", "openai", "--base-url", served_tiny.base_url,
                 "--limit", "2", "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    # transformers serve refuses vLLM's fields by name: the error says what is missing and where
    assert "log-likelihood tasks (fairface) need prompt log-probabilities (vLLM's prompt_logprobs)" in err
    assert f"the server at {served_tiny.base_url} does not give them" in err
    assert "HTTP 422" in err and "prompt_logprobs" in err


def test_server_problems_are_named_at_load(served_tiny, tmp_path):
    with pytest.raises(EvalkitError, match="is not served at"):
        OpenAIBackend(_spec(served_tiny, model_id="no-such-model"))
    with pytest.raises(EvalkitError, match="often ending in /v1"):
        OpenAIBackend(replace(_spec(served_tiny), base_url=served_tiny.base_url[:-3]))
    with pytest.raises(EvalkitError, match="EVALKIT_UNSET_KEY: that environment variable is not set"):
        OpenAIBackend(_spec(served_tiny, api_key_env="EVALKIT_UNSET_KEY"), env={})
    from tests.helpers.local_server import free_port

    with pytest.raises(EvalkitError, match=r"no usable answer from the server \(GET /models: ConnectError.* after 3 "
                                           r"attempts\); is it running\?"):
        OpenAIBackend(ModelSpec(name="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"))


def test_cache_key_names_the_server_and_model_not_the_key(served_tiny):
    a = OpenAIBackend(_spec(served_tiny, api_key_env="K"), env={"K": FAKE_KEY})
    b = OpenAIBackend(_spec(served_tiny, concurrency=3, timeout=5.0), env={})
    c = OpenAIBackend(_spec(served_tiny, longest_edge=56), env={})
    try:
        # concurrency, timeout and the key change no answer; the image size does
        assert a.cache_key() == b.cache_key() != c.cache_key()
        assert FAKE_KEY not in a.cache_key() + json.dumps(a.describe())
        assert a.batch_size == 8 * 4 and b.batch_size == 3 * 4
    finally:
        for x in (a, b, c):
            x.close()


def test_longest_edge_resizes_before_sending(served_tiny, docvqa_rows):
    from PIL import Image
    import base64
    import io

    backend = OpenAIBackend(_spec(served_tiny, longest_edge=56))
    try:
        req = Request("0", "q", images=[docvqa_rows[0]["image"]])
        url = backend.prepare(req).inputs["messages"][0]["content"][0]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert max(img.size) == 56
    finally:
        backend.close()


# ---------------------------------------------------------------- retries against a scripted handler (tests/scripted_server.py)


_OK = (200, {}, {"choices": [{"message": {"content": "Finance<end_of_utterance> tail"}}],
                 "usage": {"prompt_tokens": 7, "completion_tokens": 3}})


def test_429_then_200_honours_retry_after(scripted):
    handler, url = scripted
    handler.script += [(429, {"Retry-After": "2"}, {"error": {"message": "rate limited"}}), _OK]
    waits = []
    client = JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=3, base_s=0.01), sleep=waits.append, seed=0)
    assert client.post("/chat/completions", {"x": 1})["usage"]["completion_tokens"] == 3
    # the backoff alone would wait at most 0.01 s; the server asked for 2
    assert waits == [2.0] and len(handler.seen) == 2


def test_backoff_doubles_with_jitter_and_gives_up(scripted):
    handler, url = scripted
    handler.script += [(503, {}, {"detail": "overloaded"})] * 4
    waits = []
    client = JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=3, base_s=1.0), sleep=waits.append, seed=0)
    with pytest.raises(HTTPFailure) as e:
        client.post("/chat/completions", {})
    assert e.value.status == 503 and e.value.attempts == 4
    assert str(e.value) == "POST /chat/completions: HTTP 503: overloaded after 4 attempts"
    # full jitter: retry k waits a uniform draw from [0, 2^k]
    assert len(waits) == 3 and all(0 <= w <= 2 ** k for k, w in enumerate(waits))
    assert len(set(waits)) == 3


def test_a_blank_error_body_is_retried_like_any_other(scripted):
    handler, url = scripted
    handler.script += [(503, {}, b" \n"), _OK]
    client = JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=3, base_s=0.01), sleep=lambda s: None)
    assert client.post("/chat/completions", {})["usage"]["prompt_tokens"] == 7
    assert len(handler.seen) == 2
    handler.script += [(503, {}, b" \n")]
    with pytest.raises(HTTPFailure) as e:
        JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=0), sleep=lambda s: None).post("/chat/completions", {})
    assert str(e.value) == "POST /chat/completions: HTTP 503: Service Unavailable (no retries)"


def test_client_errors_are_not_retried(scripted):
    handler, url = scripted
    handler.script += [(400, {}, {"detail": "bad field"})]
    client = JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=3), sleep=lambda s: None)
    with pytest.raises(HTTPFailure, match="HTTP 400: bad field") as e:
        client.post("/chat/completions", {})
    assert e.value.attempts == 1 and len(handler.seen) == 1


def test_connection_refused_is_retried_then_fails():
    from tests.helpers.local_server import free_port

    waits = []
    client = JSONClient(f"http://127.0.0.1:{free_port()}/v1", timeout=2, policy=RetryPolicy(max_retries=2, base_s=0.01),
                        sleep=waits.append)
    with pytest.raises(HTTPFailure, match="ConnectError") as e:
        client.get("/models")
    assert e.value.status is None and e.value.attempts == 3 and len(waits) == 2


def test_retry_after_forms():
    assert parse_retry_after("3") == 3.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_rgb_jpeg_and_png_go_as_their_own_bytes_other_images_as_png(scripted):
    import base64
    import io

    from PIL import Image

    def encoded(mode, fmt):
        buf = io.BytesIO()
        Image.new(mode, (8, 6), "red" if mode != "L" else 128).save(buf, format=fmt)
        return buf.getvalue()

    _, url = scripted
    backend = OpenAIBackend(ModelSpec(name="openai", base_url=url, concurrency=1))
    try:
        for data, mime, same in ((encoded("RGB", "JPEG"), "image/jpeg", True), (encoded("RGB", "PNG"), "image/png", True),
                                 (encoded("RGBA", "PNG"), "image/png", False), (encoded("L", "JPEG"), "image/png", False),
                                 (encoded("RGB", "BMP"), "image/png", False)):
            url_ = backend.prepare(Request("a", "What?", images=[data])).inputs["messages"][0]["content"][0]["image_url"]["url"]
            head, b64 = url_.split(",", 1)
            assert head == f"data:{mime};base64"
            assert (base64.b64decode(b64) == data) is same
    finally:
        backend.close()


def test_backend_through_429_sends_the_key_and_cuts_stop_strings(scripted):
    handler, url = scripted
    handler.script += [(429, {"Retry-After": "0"}, {}), _OK, (500, {}, {}), (500, {}, {})]
    spec = ModelSpec(name="openai", base_url=url, api_key_env="K", max_retries=1, concurrency=1)
    backend = OpenAIBackend(spec, env={"K": FAKE_KEY}, policy=RetryPolicy(max_retries=1, base_s=0.0))
    try:
        req = Request("a", "What?", gen=GenConfig(max_new_tokens=5, stop=("<end_of_utterance>",)))
        ok = backend.generate([backend.prepare(req)])[0]
        assert (ok.text, ok.n_input_tokens, ok.n_output_tokens, ok.error) == ("Finance", 7, 3, None)
        assert ok.latency_s >= 0 and ok.to_dict()["latency_s"] == ok.latency_s  # cached with the answer
        assert handler.seen[0]["auth"] == f"Bearer {FAKE_KEY}"
        assert handler.seen[0]["body"] == {"model": "stub-model", "max_tokens": 5, "temperature": 0.0,
                                           "stop": ["<end_of_utterance>"],
                                           "messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}]}]}
        failed = backend.generate([backend.prepare(Request("b", "Again?"))])[0]
        assert failed.text is None
        assert failed.error == "server request failed: POST /chat/completions: HTTP 500: {} after 2 attempts"
        r = backend.describe()["requests"]
        assert (r["n_requests"], r["n_failed"], r["n_retries"]) == (2, 1, 2)
    finally:
        backend.close()


def _lp(token, logprob):
    return {"7": {"logprob": logprob, "rank": 1, "decoded_token": token}}


def test_loglikelihood_sums_the_choice_tokens_of_vllm_prompt_logprobs(scripted):
    """vLLM's reply format (prompt_logprobs: one {token_id: {logprob, rank, decoded_token}} per
    prompt position, None first): the choice is found from the end by its decoded tokens."""
    handler, url = scripted
    prompt = [None, _lp("User", -1.0), _lp(":", -0.5), _lp(" Assistant", -0.25), _lp(":", -0.125)]
    handler.script += [
        (200, {}, {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 7},
                   "prompt_logprobs": prompt + [_lp(" East", -2.0), _lp(" Asian", -3.0)]}),
        (200, {}, {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 6},
                   "prompt_logprobs": prompt + [_lp(" White", -1.5), _lp("\n", -9.0)]}),
    ]
    backend = OpenAIBackend(ModelSpec(name="openai", base_url=url, concurrency=1), policy=RetryPolicy(max_retries=0))
    try:
        req = Request("f", "Race?", kind="loglikelihood", choices=["East Asian", "White"])
        r = backend.loglikelihood([backend.prepare(req)])[0]
        # two tokens for "East Asian"; " White" alone (the trailing newline is the template's)
        assert (r.logprobs, r.choice_n_tokens, r.n_input_tokens, r.error) == ([-5.0, -1.5], [2, 1], 7, None)
        sent = handler.seen[0]["body"]
        assert sent["prompt_logprobs"] == 0 and sent["continue_final_message"] is True
        assert sent["add_generation_prompt"] is False and sent["max_tokens"] == 1
        assert sent["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "East Asian"}]}
        # a choice whose first token merged with the prompt cannot be aligned: that sample's error
        handler.script += [(200, {}, {"choices": [], "prompt_logprobs": prompt[:-1] + [_lp(":East", -1.0)]})]
        bad = backend.loglikelihood([backend.prepare(Request("g", "Race?", kind="loglikelihood", choices=["East"]))])[0]
        assert bad.logprobs is None and bad.error.startswith("cannot find the choice 'East' among the prompt's last")
    finally:
        backend.close()


def test_server_spec_settings_are_checked():
    for kw, msg in (({"concurrency": 0}, "concurrency 0 is not valid"),
                    ({"max_retries": -1}, "max retries -1 is not valid"),
                    ({"timeout": 0}, "timeout 0 is not valid"),
                    ({"api_key_env": "sk-123 secret"}, "is not an environment variable name")):
        with pytest.raises(EvalkitError, match=msg):
            ModelSpec(name="openai", base_url="http://x/v1", **kw)
    # a local model's cache key does not move when server settings are added to the spec
    assert ModelSpec().cache_key() == ModelSpec(concurrency=3, base_url="http://x/v1").cache_key()
    with pytest.raises(EvalkitError, match="needs --base-url"):
        OpenAIBackend(ModelSpec(name="openai"))
