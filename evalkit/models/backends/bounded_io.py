"""Socket waits that end at the request's deadline or when the run is stopped.

A per-read timeout does not bound a request: a server that trickles one byte every 2 s never
trips a 5 s read timeout, so a reply can take forever (and a Ctrl-C then waits on it, since
Python joins the request threads at exit). The HTTP client's network backend is replaced by
this one: every read waits in short slices, and between slices checks the calling thread's
deadline (set by JSONClient before each attempt: connect to last byte) and the client's
cancel flag (set on Ctrl-C or when the run stops early). Past the deadline a read raises the
library's ReadTimeout; after a cancel, ReadError.
"""
from __future__ import annotations

import threading
import time
from typing import Any

SLICE_S = 0.2  # how often a blocked read looks at the deadline and the cancel flag


class Gate:
    """The deadline of the request running on each thread, and one cancel flag for all."""

    def __init__(self):
        self._local = threading.local()
        self.cancelled = threading.Event()

    def begin(self, seconds: float) -> None:
        self._local.deadline = time.monotonic() + seconds
        self._local.seconds = seconds

    def remaining(self, exc_type) -> float:
        """Seconds left to this thread's request; raises `exc_type` (the library's error) when
        none are left or the client was cancelled."""
        import httpcore2

        if self.cancelled.is_set():
            raise httpcore2.ReadError("cancelled: the run is stopping")
        deadline = getattr(self._local, "deadline", None)
        if deadline is None:
            return 3600.0
        left = deadline - time.monotonic()
        if left <= 0:
            raise exc_type(f"no complete answer within {self._local.seconds:g} s (--timeout bounds the whole request)")
        return left


def bounded_backend(gate: Gate):
    """A httpcore2 network backend whose streams obey `gate`."""
    import httpcore2
    from httpcore2._backends.sync import SyncBackend  # the library's default backend, wrapped

    class Stream(httpcore2.NetworkStream):
        def __init__(self, inner):
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            while True:
                wait = min(SLICE_S, gate.remaining(httpcore2.ReadTimeout))
                try:
                    return self._inner.read(max_bytes, wait)
                except httpcore2.ReadTimeout:
                    continue  # a quiet slice: look at the deadline and the flag again

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            # not sliced: a send cut by a timeout may have sent part of the buffer already
            self._inner.write(buffer, min(timeout or 3600.0, gate.remaining(httpcore2.WriteTimeout)))

        def close(self) -> None:
            self._inner.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            wait = min(timeout or 3600.0, gate.remaining(httpcore2.ConnectTimeout))
            return Stream(self._inner.start_tls(ssl_context, server_hostname, wait))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class Backend(SyncBackend):
        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            wait = min(timeout or 3600.0, gate.remaining(httpcore2.ConnectTimeout))
            return Stream(super().connect_tcp(host, port, wait, local_address, socket_options))

    return Backend()


def bounded_transport(gate: Gate, *, pool_size: int):
    """An httpx2 transport (keep-alive pool of `pool_size`) whose sockets obey `gate`."""
    import httpcore2
    import httpx2

    transport = httpx2.HTTPTransport(limits=httpx2.Limits(max_connections=pool_size,
                                                          max_keepalive_connections=pool_size))
    # The transport's constructor takes no network backend; its pool is rebuilt with ours,
    # everything else as the constructor set it.
    transport._pool = httpcore2.ConnectionPool(
        ssl_context=transport._pool._ssl_context, max_connections=pool_size,
        max_keepalive_connections=pool_size, keepalive_expiry=5.0, network_backend=bounded_backend(gate))
    return transport
