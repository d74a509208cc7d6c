"""Issue 24: a served model's server that hangs, leaks, lies or explodes, played by the scripted
handler on 127.0.0.1 (tests/helpers/scripted_server.py). Each test bounds its waits."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from evalkit.cli.commands import main
from evalkit.models.backends.http import HTTPFailure, JSONClient, RetryPolicy
from evalkit.models.backends.openai import OpenAIBackend
from evalkit.models.spec import ModelSpec
from evalkit.results.schema import read_run
from evalkit.types import GenConfig, Request
from tests.helpers.scripted_server import trickle

KEY = "sk-evalkit-FAKE-91be-echoed-back"


def _answer(text="Finance", usage=None):
    return (200, {}, {"choices": [{"message": {"content": text}}],
                      "usage": usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 2}})


def _eval(tmp_path, url, *extra, limit=3, name="r"):
    return main(["eval", "--task", "docvqa", "--model", "openai", "--base-url", url, "--limit", str(limit),
                 "--concurrency", "1", "--max-retries", "0", "--runs-dir", str(tmp_path / "runs"),
                 "--run-name", name, "--no-progress", *extra])


def _backend(url, **kw):
    return OpenAIBackend(ModelSpec(name="openai", base_url=url, concurrency=1, max_retries=0, **kw))


def _ask(backend, text="What?", max_new_tokens=32):
    req = Request("a", text, gen=GenConfig(max_new_tokens=max_new_tokens))
    return backend.generate([backend.prepare(req)])[0]


# ---------------------------------------------------------------- 1: a timeout bounds the whole request
def test_timeout_bounds_a_trickled_reply(scripted):
    """One byte every 0.3 s never trips a read timeout; --timeout 1 must still end the request in ~1 s."""
    handler, url = scripted
    handler.script += [(200, {}, trickle(seconds=15))]
    backend = _backend(url, timeout=1.0)
    try:
        t0 = time.monotonic()
        r = _ask(backend)
        took = time.monotonic() - t0
    finally:
        backend.close()
    assert took < 3.0
    assert r.error == ("server request failed: POST /chat/completions: ReadTimeout: no complete answer within 1 s "
                       "(--timeout bounds the whole request) (no retries)")


def test_eval_timeout_bounds_the_run_against_a_trickling_server(tmp_path, scripted, capsys):
    """The same through `evalkit eval --timeout 1`: the sample's error in about a second, exit 1."""
    handler, url = scripted
    handler.script += [(200, {}, trickle(seconds=15))]
    assert _eval(tmp_path, url, "--timeout", "1", "--no-server-stop", limit=1) == 1
    assert "ReadTimeout: no complete answer within 1 s" in capsys.readouterr().err
    res, _ = read_run(tmp_path / "runs" / "r")
    assert 1.0 <= res.timing.generation_s < 2.5  # the request's time, not the run's imports and report


def test_cancel_ends_a_retry_after_wait(scripted):
    """A 503 asking for 60 s: cancel() (what Ctrl-C does) ends the wait at once."""
    import threading

    handler, url = scripted
    handler.script += [(503, {"Retry-After": "60"}, {"detail": "busy"})]
    client = JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=1))
    threading.Timer(0.5, client.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(HTTPFailure, match="cancelled"):
        client.post("/chat/completions", {})
    assert time.monotonic() - t0 < 2.0
    client.close()


def test_ctrl_c_ends_the_process_in_seconds_keeping_finished_batches(tmp_path, scripted):
    """A real `evalkit eval` child: its first batch (8 requests at --concurrency 2) answered, then one
    request trickles and one waits out a 60 s Retry-After. SIGINT: exit 130 within a few seconds,
    the first batch in cache.jsonl."""
    handler, url = scripted
    handler.script += [_answer()] * 8 + [(200, {}, trickle(seconds=60)),
                                         (503, {"Retry-After": "60"}, {"detail": "busy"})]
    runs = tmp_path / "runs"
    cache = runs / "c" / "cache.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "eval", "--task", "docvqa", "--model", "openai",
                             "--base-url", url, "--no-server-stop", "--concurrency", "2", "--limit", "12",
                             "--max-retries", "3", "--runs-dir", str(runs), "--run-name", "c", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(handler.seen) < 10 and proc.poll() is None:
            time.sleep(0.05)
        assert len(handler.seen) == 10, "the child never sent its second batch"
        time.sleep(0.5)  # both requests of the second batch are now waiting on the server
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130 and took < 5.0, (code, took)
    assert "interrupted" in proc.stderr.read()
    assert cache.read_bytes().count(b"\n") == 8
    assert len(handler.seen) == 10  # nothing re-sent while stopping


def test_timeout_inf_and_bad_urls_are_refused_at_parse_time(capsys):
    for argv, says in ((["--timeout", "inf"], "argument --timeout: 'inf': use a positive number of seconds up to 86400"),
                       (["--timeout", "1e10"], "argument --timeout: '1e10': use a positive number of seconds"),
                       (["--base-url", "http://[::1"], "argument --base-url: the value is not a valid URL (Invalid "
                                                       "IPv6 URL); use an http:// or https:// URL"),
                       (["--judge-base-url", "http://u:hunter2@h:99999/v1"], "argument --judge-base-url: the value "
                                                                             "is not a valid URL (Port out of range")):
        with pytest.raises(SystemExit) as e:
            main(["eval", "--task", "docvqa", *argv])
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
        assert "hunter2" not in err
    with pytest.raises(Exception, match="timeout inf is not valid"):
        ModelSpec(name="openai", base_url="http://x/v1", timeout=float("inf"))


# ---------------------------------------------------------------- 2, 3: secrets never stored or printed
def test_echoed_key_and_url_password_are_written_nowhere(tmp_path, scripted, monkeypatch, capsys):
    """The server echoes the Authorization header into an answer and into a 500 body; the base URL
    carries user:password. None of the three secrets reaches a file or the console."""
    handler, url = scripted
    secret_url = url.replace("http://", "http://alice:pw-S3CRET-42@")
    echo = iter(range(3))

    def respond(body):
        auth = handler.seen[-1]["auth"]
        k = next(echo)
        if k == 0:
            return _answer(f"your header was {auth}; key {auth.split()[-1]}")
        if k == 1:
            return (500, {}, {"detail": f"cannot use {auth} for alice:pw-S3CRET-42"})
        return _answer("Total")

    handler.respond = staticmethod(respond)
    monkeypatch.setenv("EVALKIT_HOSTILE_KEY", KEY)
    code = _eval(tmp_path, secret_url, "--api-key-env", "EVALKIT_HOSTILE_KEY", "--no-server-stop")
    out = capsys.readouterr()
    assert code == 0
    assert handler.seen[0]["auth"] == f"Bearer {KEY}"  # the key went where it belongs
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert {"config.json", "results.json", "samples.jsonl", "cache.jsonl", "report.html"} <= {p.name for p in files}
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data and b"pw-S3CRET-42" not in data, p
    assert KEY not in out.out + out.err and "pw-S3CRET-42" not in out.out + out.err
    res, records = read_run(tmp_path / "runs" / "r")
    assert res.model.to_dict()["base_url"] == url  # the user and password taken out, the rest as given
    assert json.loads((tmp_path / "runs" / "r" / "config.json").read_text())["model"]["base_url"] == url
    preds = sorted(r.prediction for r in records if r.error is None)
    assert preds == ["Total", "your header was Bearer [redacted]; key [redacted]"]
    [err] = [r.error for r in records if r.error]
    assert err == ("server request failed: POST /chat/completions: HTTP 500: cannot use Bearer [redacted] for "
                   "alice:[redacted] (no retries)")


def test_a_refused_key_echoed_in_the_401_is_not_printed(tmp_path, scripted, monkeypatch, capsys):
    handler, url = scripted
    handler.respond = staticmethod(lambda body: (401, {}, {"error": {"message": f"bad key {handler.seen[-1]['auth']}"}}))
    monkeypatch.setenv("EVALKIT_HOSTILE_KEY", KEY)
    assert _eval(tmp_path, url, "--api-key-env", "EVALKIT_HOSTILE_KEY", "--no-server-stop") == 2
    err = capsys.readouterr().err
    assert KEY not in err
    assert err.strip() == (f"evalkit: error: {url}: the server refused the API key (POST /chat/completions: HTTP 401: "
                           f"bad key Bearer [redacted]); check --api-key-env")


def test_url_userinfo_is_sent_as_basic_auth_and_never_shown(scripted):
    handler, url = scripted
    secret_url = url.replace("http://", "http://bob:pa%40ss-w0rd@")
    client = JSONClient(secret_url, timeout=5, policy=RetryPolicy(max_retries=0))
    basic = base64.b64encode(b"bob:pa@ss-w0rd").decode()

    def respond(body):
        return (502, {}, {"detail": f"proxy saw {handler.seen[-1]['auth']} and pa@ss-w0rd"})

    handler.respond = staticmethod(respond)
    with pytest.raises(HTTPFailure) as e:
        client.post("/chat/completions", {})
    client.close()
    assert handler.seen[0]["auth"] == f"Basic {basic}"  # kept for the connection
    assert client.base_url == url
    assert str(e.value) == "POST /chat/completions: HTTP 502: proxy saw Basic [redacted] and [redacted] (no retries)"


# ---------------------------------------------------------------- 4, 7, 14: replies without an answer
_NO_ANSWER = [
    ((200, {}, {"choices": [{"message": {"content": None}}]}),
     "the server's reply has no answer text (message.content is null)"),
    ((200, {}, {"choices": [{"message": None}]}),
     "the server's reply has no message (choices[0].message is missing or null)"),
    ((200, {}, {"choices": [{"text": "Finance"}]}),
     "the server's reply is a text completion (choices[0].text), not a chat message; --base-url should be the "
     "API root whose /chat/completions answers chat messages"),
    ((200, {}, {"error": {"message": "model is loading", "type": "server_error"}}),
     "the server answered 200 with an error instead of an answer: model is loading"),
    ((200, {}, {"choices": [{"message": {"content": [{"type": "text", "text": None}]}}]}),
     "the server's reply has a malformed content part (a text part without a string)"),
    ((200, {}, b"[" * 100_000 + b"]" * 100_000),
     "server request failed: POST /chat/completions: the server answered 200 with a body that is not JSON (or is "
     "nested too deeply to read)"),
]


def test_replies_without_an_answer_are_errors_sent_once_not_cached(tmp_path, scripted, capsys):
    """Six ways to answer without an answer: six error records from exactly six requests (no batch
    re-sent), counted, none cached; the rerun against a healthy server scores all six. Nothing
    scored: the run exits 1 naming the error."""
    handler, url = scripted
    handler.script += [reply for reply, _ in _NO_ANSWER]
    assert _eval(tmp_path, url, "--no-server-stop", limit=6) == 1
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: docvqa: no sample was scored: 1 of 6 samples failed with: ")
    assert len(handler.seen) == 6
    res, records = read_run(tmp_path / "runs" / "r")
    assert sorted(r.error for r in records) == sorted(e for _, e in _NO_ANSWER)
    assert all(r.prediction is None and r.score is None for r in records)
    req = res.model.extra["requests"]
    assert (req["n_requests"], req["n_failed"], req["n_retries"]) == (6, 6, 0)
    assert not (tmp_path / "runs" / "r" / "cache.jsonl").exists()
    handler.script += [_answer("Finance")] * 6
    assert _eval(tmp_path, url, "--no-server-stop", limit=6) == 0
    res, records = read_run(tmp_path / "runs" / "r")
    assert res.counts.n_errors == 0 and res.counts.n_scored == 6 and res.timing.n_cached == 0
    assert {r.prediction for r in records} == {"Finance"}


def test_judge_null_content_is_an_error_not_an_empty_extraction(tmp_path, scripted):
    from evalkit.pipeline.judging import apply_judge
    from evalkit.pipeline.data import load_task_data
    from evalkit.errors import JudgeFailed
    from evalkit.tasks.mathvista import MathVista
    from evalkit.types import Response

    handler, url = scripted
    handler.script += [(200, {}, {"choices": [{"message": {"content": None}}]})]
    task = MathVista()
    row = next(r for r in load_task_data(task).rows if r["answer_type"] == "integer")
    backend = _backend(url)
    try:
        judged = apply_judge(task, backend, [row], [[Response("0", text="It is 7")]], tmp_path)
    finally:
        backend.close()
    assert judged.info["n_errors"] == 1
    with pytest.raises(JudgeFailed, match=r"judge: the server's reply has no answer text \(message.content is null\)"):
        task.score_text(row, "It is 7", judge=judged.extract)


def test_a_failed_judge_call_keeps_the_models_prediction(tmp_path, scripted, capsys):
    """The model answers, the judge's server fails: the record is an error that still shows the answer."""
    from evalkit.tasks.mathvista import JUDGE_INSTRUCTIONS

    handler, url = scripted

    def respond(body):
        text = body["messages"][0]["content"][-1]["text"]
        return (503, {}, {"detail": "judge down"}) if text.startswith(JUDGE_INSTRUCTIONS) else _answer("It is 7")

    handler.respond = staticmethod(respond)
    code = main(["eval", "--task", "mathvista", "--model", "openai", "--base-url", url, "--judge", "stub-model",
                 "--limit", "2", "--concurrency", "1", "--max-retries", "0", "--no-server-stop",
                 "--runs-dir", str(tmp_path / "runs"), "--run-name", "j", "--no-progress"])
    assert code == 1
    _, records = read_run(tmp_path / "runs" / "j")
    assert [r.prediction for r in records] == ["It is 7", "It is 7"]
    assert all(r.error == "judge: server request failed: POST /chat/completions: HTTP 503: judge down (no retries)"
               for r in records)
    assert "no sample was scored: 2 of 2 samples failed with: judge: server request failed" in capsys.readouterr().err


# ---------------------------------------------------------------- 6: usage counts that are not counts
def test_insane_usage_keeps_the_answer_and_is_counted(tmp_path, scripted):
    handler, url = scripted
    usages = [{"prompt_tokens": -5, "completion_tokens": 2}, {"prompt_tokens": 10 ** 30, "completion_tokens": 2},
              {"prompt_tokens": True, "completion_tokens": 2}, {"prompt_tokens": "abc", "completion_tokens": 2},
              {"prompt_tokens": float("nan"), "completion_tokens": 2}, {"prompt_tokens": {"n": 1}, "completion_tokens": 2},
              {"prompt_tokens": 7.0, "completion_tokens": 2}]
    handler.script += [_answer("Finance", u) for u in usages]
    assert _eval(tmp_path, url, "--no-server-stop", limit=7) == 0
    res, records = read_run(tmp_path / "runs" / "r")
    assert res.counts.n_errors == 0 and [r.prediction for r in records] == ["Finance"] * 7
    assert sorted(r.n_input_tokens for r in records) == [0, 0, 0, 0, 0, 0, 7]
    assert all(r.n_output_tokens == 2 for r in records)
    req = res.model.extra["requests"]
    assert (req["n_requests"], req["n_usage_ignored"], req["prompt_tokens"], req["completion_tokens"]) == (7, 6, 7, 14)
    # every answer was cached: the rerun sends (and buys) nothing
    assert _eval(tmp_path, url, "--no-server-stop", limit=7) == 0
    res2, _ = read_run(tmp_path / "runs" / "r")
    assert res2.timing.n_cached == 7 and res2.model.extra["requests"]["n_requests"] == 0 and len(handler.seen) == 7


# ---------------------------------------------------------------- 8: bounded replies
def test_oversized_replies_are_refused(scripted):
    handler, url = scripted
    huge = b'{"choices":[{"message":{"content":"' + b"a" * 100_000_000 + b'"}}]}'

    def undeclared(h):  # no Content-Length: the body runs until the server closes the connection
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        try:
            h.wfile.write(b'{"choices":[{"message":{"content":"')
            for _ in range(20):
                h.wfile.write(b"b" * 2 ** 20)
        except OSError:
            pass

    handler.script += [(200, {}, huge), (200, {}, undeclared), _answer("word " * 1000)]
    backend = _backend(url)
    try:
        big = _ask(backend)
        streamed = _ask(backend)
        long = _ask(backend, max_new_tokens=32)
        r = backend.describe()["requests"]
    finally:
        backend.close()
    assert big.error == ("server request failed: POST /chat/completions: the server's reply (HTTP 200) is larger "
                         "than 16 MB (it declares 100,000,040 bytes); refused")
    assert streamed.error == ("server request failed: POST /chat/completions: the server's reply (HTTP 200) is "
                              "larger than 16 MB (its reading was stopped there); refused")
    assert long.error == ("the server's answer is 5,000 characters long for at most 32 tokens (more than 4,096); "
                          "refused")
    assert (r["n_requests"], r["n_failed"]) == (3, 3)


# ---------------------------------------------------------------- 11: what is retried, what is an answer
@pytest.mark.parametrize("status", [507, 520])
def test_every_5xx_is_retried(scripted, status):
    handler, url = scripted
    handler.script += [(status, {}, {"detail": "odd"}), _answer()]
    client = JSONClient(url, timeout=5, policy=RetryPolicy(max_retries=1), sleep=lambda s: None)
    assert client.post("/chat/completions", {})["choices"][0]["message"]["content"] == "Finance"
    assert len(handler.seen) == 2


def test_a_redirect_with_a_json_body_is_not_an_answer(tmp_path, scripted):
    handler, url = scripted
    handler.script += [(302, {"Location": "http://elsewhere/v1/chat/completions"},
                        {"choices": [{"message": {"content": "Finance"}}]})]
    backend = _backend(url)
    try:
        r = _ask(backend)
    finally:
        backend.close()
    assert r.text is None and len(handler.seen) == 1
    assert r.error == ("server request failed: POST /chat/completions: HTTP 302: Found (a redirect to "
                       "http://elsewhere/v1/chat/completions; redirects are not followed: give the final API root "
                       "as --base-url)")


# ---------------------------------------------------------------- 12: runs that fail loudly
def test_a_run_without_a_score_exits_1_naming_the_error(tmp_path, scripted, capsys):
    handler, url = scripted
    handler.script += [(503, {}, {"detail": "overloaded"})] * 3
    assert _eval(tmp_path, url) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evalkit: error: docvqa: no sample was scored: 3 of 3 samples failed with: server request failed: "
                   "POST /chat/completions: HTTP 503: overloaded (no retries); if the server fails only when stop "
                   "strings are sent (transformers serve does with a multimodal processor), pass --no-server-stop"]
    assert (tmp_path / "runs" / "r" / "results.json").exists()


def test_a_server_failing_on_stop_strings_stops_the_run_early(tmp_path, scripted, capsys):
    """transformers serve's way: HTTP 500 to every request that carries `stop`. 16 samples: four
    requests and one probe without `stop`, not 16 x retries, and the error names the fix."""
    handler, url = scripted

    def respond(body):
        return (500, {}, {"detail": "Internal Server Error"}) if "stop" in body else _answer()

    handler.respond = staticmethod(respond)
    assert _eval(tmp_path, url, limit=16) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evalkit: error: the first 4 requests all failed the same way and none was answered, so the run "
                   "stopped: server request failed: POST /chat/completions: HTTP 500: Internal Server Error (no "
                   "retries); the server answers without stop strings: pass --no-server-stop (the stop strings are "
                   "then cut from the answers here)"]
    assert [("stop" in s["body"]) for s in handler.seen] == [True] * 4 + [False]


# ---------------------------------------------------------------- 14: vLLM log-probabilities that are not
@pytest.mark.parametrize("bad", [True, 0.5, float("nan")])
def test_logprobs_that_are_not_log_probabilities_are_refused(scripted, bad):
    handler, url = scripted
    entries = [None, {"7": {"logprob": -1.0, "decoded_token": "User"}}, {"8": {"logprob": bad, "decoded_token": " White"}}]
    handler.script += [(200, {}, {"choices": [{"message": {"content": "x"}}], "prompt_logprobs": entries})]
    backend = _backend(url)
    try:
        req = Request("f", "Race?", kind="loglikelihood", choices=["White"])
        r = backend.loglikelihood([backend.prepare(req)])[0]
    finally:
        backend.close()
    assert r.logprobs is None
    assert r.error == f"the server's prompt_logprobs hold {bad!r}, which is not a log-probability (<= 0)"
