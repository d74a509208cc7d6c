"""JSON over HTTP to an inference server, with the retry policy every served request follows.

Client library: httpx2 (pydantic's maintained continuation of httpx). It is already installed
as a dependency of huggingface_hub, which transformers needs, so serving adds no package; its
sync `Client` is thread-safe and keeps a pool of keep-alive connections, which the backend's
request threads share. The `openai` SDK was the other candidate: it wraps the same client but
retries on its own terms and validates replies against OpenAI's schema, which servers such
as `transformers serve`, vLLM and TGI each extend differently; raw JSON keeps every field.

Retries: a 429, a 5xx, a timeout or a connection error is retried up to `max_retries` times
after an exponential backoff with full jitter (a random wait in [0, base * 2^attempt], capped),
so many clients that hit a limit together do not come back together. A Retry-After header
(seconds or an HTTP date) is honoured: the wait is at least what the server asked for. Any
other status is not retried: a 400 will not change on a second try.
"""
from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})  # 409/425: servers' "try again"
MAX_WAIT_S = 60.0  # no single wait longer than this, whatever the server or the backoff asks


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
    Authorization header: it is sent, never logged or raised in a message."""

    def __init__(self, base_url: str, *, timeout: float, policy: RetryPolicy, headers: dict[str, str] | None = None,
                 pool_size: int = 8, sleep: Callable[[float], None] = time.sleep, seed: int | None = None):
        import httpx2

        self._httpx = httpx2
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._client = httpx2.Client(timeout=timeout, headers=headers or {},
                                     limits=httpx2.Limits(max_connections=pool_size,
                                                          max_keepalive_connections=pool_size))

    def close(self) -> None:
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
            record.attempts += 1
            retry_after = None
            try:
                resp = self._client.request(method, url, json=body)
            except (self._httpx.TimeoutException, self._httpx.TransportError) as e:
                status, problem = None, f"{type(e).__name__}: {_first_line(e) or 'no answer'}"
            else:
                if resp.status_code < 400:
                    record.latency_s = time.perf_counter() - start
                    try:
                        return resp.json()
                    except ValueError:
                        raise HTTPFailure(f"{method} {path}: the server answered {resp.status_code} with a body "
                                          f"that is not JSON", resp.status_code, record.attempts) from None
                status = resp.status_code
                problem = f"HTTP {status}: {_detail(resp)}"
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if status not in RETRY_STATUS:
                    record.latency_s = time.perf_counter() - start
                    raise HTTPFailure(f"{method} {path}: {problem}", status, record.attempts)
            if attempt >= policy.max_retries:
                record.latency_s = time.perf_counter() - start
                tries = f"after {record.attempts} attempts" if record.attempts > 1 else "(no retries)"
                raise HTTPFailure(f"{method} {path}: {problem} {tries}", status, record.attempts)
            self._sleep(policy.delay(attempt, retry_after, self._rng))
            attempt += 1


def _first_line(e: object) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""


def _detail(resp) -> str:
    """The server's own error message, short: servers put it in {"detail"}, {"error": {"message"}} or {"message"}."""
    try:
        data = resp.json()
    except ValueError:
        return _first_line(resp.text) or _first_line(resp.reason_phrase or "")  # a blank body: the status' phrase
    if isinstance(data, dict):
        err = data.get("error")
        msg = (err.get("message") if isinstance(err, dict) else err) or data.get("detail") or data.get("message")
        if msg is not None:
            return " ".join(str(msg).split())[:300]
    return " ".join(str(data).split())[:300]
