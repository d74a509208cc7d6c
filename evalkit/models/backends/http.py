"""JSON over HTTP to an inference server, with the retry policy every served request follows.

Client library: httpx2 (pydantic's maintained continuation of httpx). It is already installed
as a dependency of huggingface_hub, which transformers needs, so serving adds no package; its
sync `Client` is thread-safe and keeps a pool of keep-alive connections, which the backend's
request threads share. The `openai` SDK was the other candidate: it wraps the same client but
retries on its own terms and validates replies against OpenAI's schema, which servers such
as `transformers serve`, vLLM and TGI each extend differently; raw JSON keeps every field.

Bounds: `timeout` bounds each attempt as a whole, connect to last byte (evalkit.models.backends.bounded_io),
and a reply body is read up to MAX_BODY_BYTES; `cancel()` ends every attempt and wait within a
fraction of a second (Ctrl-C, a run stopped early). Only a 2xx is an answer: a 3xx is a failure
(redirects are not followed; --base-url should be the final API root).

Secrets: the API key and the password of a URL's userinfo live in the client alone; every text
from the server that goes into a message passes `redact` first (servers echo headers back).

Retries: a 429, a 5xx, a timeout or a connection error is retried up to `max_retries` times
after an exponential backoff with full jitter (a random wait in [0, base * 2^attempt], capped),
so many clients that hit a limit together do not come back together. A Retry-After header
(seconds or an HTTP date) is honoured: the wait is at least what the server asked for. Any
other status is not retried: a 400 will not change on a second try.
"""
from __future__ import annotations

import base64
import email.utils
import http
import json
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from ...errors import EvalkitError
from .bounded_io import Gate, bounded_transport

RETRY_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx; 409/425: servers' "try again"
MAX_WAIT_S = 60.0  # no single wait longer than this, whatever the server or the backoff asks
MAX_TIMEOUT_S = 86400.0  # a day: longer is a typo (and inf overflows the socket's timeout)
# A chat answer of a few hundred tokens is a few KB; vLLM's prompt_logprobs for a long
# multimodal prompt a few hundred KB. A larger reply is refused rather than held in memory.
MAX_BODY_BYTES = 16 * 1024 * 1024
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[^\s\"',;]+", re.IGNORECASE)
REDACTED = "[redacted]"
MIN_SECRET = 6


def check_timeout(seconds) -> float:
    """`seconds` as a float when it is a usable request timeout, else a one-line error."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or not 0 < seconds <= MAX_TIMEOUT_S:
        raise EvalkitError(f"timeout {seconds!r} is not valid; use a positive number of seconds up to "
                           f"{MAX_TIMEOUT_S:g} (a day)")
    return float(seconds)


@dataclass(frozen=True)
class ServerURL:
    """A --base-url split into what may be shown (`shown`: no user or password) and the
    credentials its userinfo held, which go to the connection only."""

    shown: str
    username: str | None = None
    password: str | None = None


def parse_base_url(url: str, flag: str = "--base-url") -> ServerURL:
    """Check an API root and take any userinfo out of it; a one-line error names what is wrong
    without repeating a password."""
    example = "use an http:// or https:// URL such as http://127.0.0.1:8000/v1"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
        host = parts.hostname
    except ValueError as e:
        raise EvalkitError(f"{flag} is not a valid URL ({e}); {example}") from None
    shown_netloc = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, shown_netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
    if parts.scheme not in ("http", "https") or not host:
        raise EvalkitError(f"{flag} {shown!r} is not valid; {example}")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ServerURL(shown, user, password)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without the given secrets or any Bearer/Basic credential in it."""
    for s in secrets:
        if s:
            text = text.replace(s, REDACTED)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


class HTTPFailure(Exception):
    """A request that failed for good: `status` is the last HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_s: float = 1.0  # the first backoff's upper bound; doubles per retry
    cap_s: float = MAX_WAIT_S

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        backoff = rng.uniform(0.0, min(self.cap_s, self.base_s * (2 ** attempt)))
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return min(backoff, self.cap_s)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class CallRecord:
    """What one logical request cost: attempts and the final latency."""

    attempts: int = 0
    latency_s: float = 0.0  # from the first attempt's start to the final answer, waits included


class JSONClient:
    """GET/POST JSON under one base URL with the retry policy. `headers` may hold the
    Authorization header and `base_url` a user and password: both are sent, never logged or
    raised in a message (`secrets` are cut from every server text as well)."""

    def __init__(self, base_url: str, *, timeout: float, policy: RetryPolicy, headers: dict[str, str] | None = None,
                 pool_size: int = 8, sleep: Callable[[float], None] | None = None, seed: int | None = None,
                 secrets: tuple[str, ...] = ()):
        import httpx2

        self._httpx = httpx2
        url = parse_base_url(base_url)
        self.base_url = url.shown
        auth = None
        found = [h.split(None, 1)[-1] for k, h in (headers or {}).items() if k.lower() == "authorization"]
        if (url.username is not None or url.password is not None) and not found:
            # the URL's user and password as HTTP basic auth, unless an API key takes that header
            auth = (url.username or "", url.password or "")
        if url.password:
            basic = f"{url.username or ''}:{url.password}".encode()
            found += [url.password, base64.b64encode(basic).decode()]
        # A secret shorter than MIN_SECRET would cut ordinary words and digits out of answers.
        self.secrets = tuple(s for s in (*secrets, *found) if len(s) >= MIN_SECRET)
        self.timeout = check_timeout(timeout)
        self.policy = policy
        self._gate = Gate()
        self._sleep = sleep or (lambda s: self._gate.cancelled.wait(s))
        self._rng = random.Random(seed)
        self._client = httpx2.Client(timeout=self.timeout, headers=headers or {}, auth=auth,
                                     transport=bounded_transport(self._gate, pool_size=pool_size))

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def cancel(self) -> None:
        """End every request and retry wait of this client now (they raise HTTPFailure)."""
        self._gate.cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._gate.cancelled.is_set()

    def close(self) -> None:
        self.cancel()
        self._client.close()

    def get(self, path: str, record: CallRecord | None = None, policy: RetryPolicy | None = None) -> Any:
        return self._call("GET", path, None, record, policy or self.policy)

    def post(self, path: str, body: dict, record: CallRecord | None = None) -> Any:
        return self._call("POST", path, body, record, self.policy)

    def _call(self, method: str, path: str, body: dict | None, record: CallRecord | None,
              policy: RetryPolicy) -> Any:
        record = record if record is not None else CallRecord()
        url = f"{self.base_url}{path}"
        start = time.perf_counter()
        attempt = 0
        while True:
            if self.cancelled:
                raise HTTPFailure(f"{method} {path}: cancelled (the run is stopping)", None, record.attempts)
            record.attempts += 1
            retry_after = None
            self._gate.begin(self.timeout)
            try:
                status, headers, data = self._exchange(method, url, body)
            except (self._httpx.TimeoutException, self._httpx.TransportError) as e:
                if self.cancelled:
                    raise HTTPFailure(f"{method} {path}: cancelled (the run is stopping)", None,
                                      record.attempts) from None
                status, problem = None, f"{type(e).__name__}: {self.redact(_first_line(e)) or 'no answer'}"
            except _TooLarge as e:
                record.latency_s = time.perf_counter() - start
                raise HTTPFailure(f"{method} {path}: {e}", e.status, record.attempts) from None
            else:
                if 200 <= status < 300:
                    record.latency_s = time.perf_counter() - start
                    try:
                        return json.loads(data)
                    except (ValueError, RecursionError):
                        raise HTTPFailure(f"{method} {path}: the server answered {status} with a body that is not "
                                          f"JSON (or is nested too deeply to read)", status, record.attempts) from None
                if 300 <= status < 400:  # whatever its body holds, a redirect is not the answer
                    problem = (f"HTTP {status}: {_status_phrase(status)} (a redirect to "
                               f"{self.redact(headers.get('location') or 'nowhere')[:200]}; redirects are not "
                               f"followed: give the final API root as --base-url)")
                else:
                    problem = f"HTTP {status}: {self.redact(_detail(data, status))}"
                retry_after = parse_retry_after(headers.get("retry-after"))
                if status not in RETRY_STATUS and not 500 <= status <= 599:
                    record.latency_s = time.perf_counter() - start
                    raise HTTPFailure(f"{method} {path}: {problem}", status, record.attempts)
            if attempt >= policy.max_retries:
                record.latency_s = time.perf_counter() - start
                tries = f"after {record.attempts} attempts" if record.attempts > 1 else "(no retries)"
                raise HTTPFailure(f"{method} {path}: {problem} {tries}", status, record.attempts)
            self._sleep(policy.delay(attempt, retry_after, self._rng))
            attempt += 1

    def _exchange(self, method: str, url: str, body: dict | None) -> tuple[int, Any, bytes]:
        """One attempt: (status, headers, body bytes), the body read up to MAX_BODY_BYTES."""
        with self._client.stream(method, url, json=body) as resp:
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _TooLarge(resp.status_code, f"it declares {int(declared):,} bytes")
            chunks, n = [], 0
            for chunk in resp.iter_bytes():
                n += len(chunk)
                if n > MAX_BODY_BYTES:
                    raise _TooLarge(resp.status_code, "its reading was stopped there")
                chunks.append(chunk)
            return resp.status_code, resp.headers, b"".join(chunks)


class _TooLarge(Exception):
    def __init__(self, status: int, how: str):
        super().__init__(f"the server's reply (HTTP {status}) is larger than {MAX_BODY_BYTES // 2 ** 20} MB "
                         f"({how}); refused")
        self.status = status


def _first_line(e: object) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""


def _detail(body: bytes, status: int) -> str:
    """The server's own error message, short: servers put it in {"detail"}, {"error": {"message"}} or {"message"}."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        text = body[:4096].decode("utf-8", "replace")
        return _first_line(text) or _status_phrase(status)  # a blank body: the status' phrase
    return error_message(data)


def error_message(data: Any) -> str:
    """The message of an error reply, one short line."""
    if isinstance(data, dict):
        err = data.get("error")
        msg = (err.get("message") if isinstance(err, dict) else err) or data.get("detail") or data.get("message")
        if msg is not None:
            return " ".join(str(msg).split())[:300]
    return " ".join(str(data)[:2000].split())[:300]


def _status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "no message"
