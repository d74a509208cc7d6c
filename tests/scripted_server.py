"""A small local HTTP handler that answers from a script: a stub of a server's behaviour (status
codes, Retry-After, malformed replies), never of a model. Tests script it through the
`scripted` fixture in conftest.py."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers POSTs from `script` in turn (status, headers, body); GET /v1/models lists one model."""

    script: list = []
    seen: list = []

    def do_GET(self):
        self._send(200, {}, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        self.seen.append({"auth": self.headers.get("authorization"), "body": json.loads(self.rfile.read(n))})
        status, headers, body = self.script.pop(0)
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
