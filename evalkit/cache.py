"""Per-run response cache: one JSON line per answered request, appended as batches finish.

A rerun (or a run after a crash) skips every request already in the file; a kill loses at
most the batch in flight. Keys hash everything that decides the output: the model spec, the
generation settings, the request kind, prompt text, choices and the image bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .images import image_key
from .types import Request, Response


def request_key(model_key: str, request: Request, image_digests: list[bytes] | None = None) -> str:
    """`image_digests`: the images' `image_key`s when the caller already has them."""
    h = hashlib.sha256()
    h.update(model_key.encode())
    h.update(json.dumps({"kind": request.kind, "text": request.text, "gen": request.gen.to_dict(),
                         "choices": request.choices}, sort_keys=True).encode())
    for digest in image_digests if image_digests is not None else map(image_key, request.images):
        h.update(digest)
    return h.hexdigest()


class ResponseCache:
    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, dict] = {}
        self.n_corrupt_lines = 0
        if path is not None and path.exists():
            with path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                        self._entries[entry["key"]] = entry["response"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        # A line cut short by a crash; the request is simply run again.
                        self.n_corrupt_lines += 1

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, uid: str) -> Response | None:
        d = self._entries.get(key)
        if d is None:
            return None
        r = Response.from_dict({**d, "uid": uid})
        r.cached = True
        return r

    def put_many(self, items: list[tuple[str, Response]]) -> None:
        """Append successful responses; errors are not cached so a rerun retries them."""
        items = [(k, r) for k, r in items if r.error is None]
        if not items:
            return
        for k, r in items:
            self._entries[k] = r.to_dict()
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for k, r in items:
                f.write(json.dumps({"key": k, "response": r.to_dict()}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
