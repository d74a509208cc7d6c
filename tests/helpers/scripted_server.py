"""A small local HTTP handler that answers from a script: a stub of a server's behaviour (status
codes, Retry-After, malformed replies), never of a model. Tests script it through the
`scripted` fixture in conftest.py."""
from __future__ import annotations

import json
import time
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer(ThreadingHTTPServer):
    """A client that hangs up mid-request or mid-reply (evalkit cancels the requests still in
    flight once one fails for good) breaks the handler's read or write; that is expected here, so
    the stub keeps such errors in `errors` instead of printing them into the test's stderr."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.errors: list[BaseException] = []

    def handle_error(self, request, client_address):
        self.errors.append(sys.exc_info()[1])


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers POSTs from `script` in turn (status, headers, body); GET /v1/models lists one model."""

    script: list = []
    seen: list = []

    def do_GET(self):
        self._send(200, {}, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

    respond = None  # set to staticmethod(fn): fn(request body) -> (status, headers, body), instead of `script`

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(n))
        self.seen.append({"auth": self.headers.get("authorization"), "body": request})
        status, headers, body = self.respond(request) if self.respond else self.script.pop(0)
        if callable(body):  # a reply that writes itself (a trickle): body(handler)
            body(self)
            return
        self._send(status, headers, body)

    def _send(self, status, headers, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()  # bytes: a body as it is
        self.send_response(status)
        for k, v in {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def trickle(seconds: float = 20.0, every: float = 0.3):
    """A reply body that sends one byte every `every` seconds for `seconds` (or until the client
    goes): no read ever waits long, and the reply never ends in time."""
    def write(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                h.wfile.write(b" ")
                time.sleep(every)
        except OSError:
            pass  # the client hung up, as it should
    return write

