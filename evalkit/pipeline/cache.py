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

from ..errors import EvalkitError, write_error
from .images import image_key
from ..types import Request, Response


def request_key(model_key: str, request: Request, image_digests: list[bytes] | None = None) -> str:
    """`image_digests`: the images' `image_key`s when the caller already has them."""
    h = hashlib.sha256()
    h.update(model_key.encode())
    h.update(json.dumps({"kind": request.kind, "text": request.text, "gen": request.gen.to_dict(),
                         "choices": request.choices}, sort_keys=True).encode())
    for digest in image_digests if image_digests is not None else map(image_key, request.images):
        h.update(digest)
    return h.hexdigest()


def _valid_response(d) -> bool:
    """A cached response as the generator writes it: the types every reader relies on. A
    damaged or hand-edited entry fails this and its request is run again."""
    if not isinstance(d, dict) or d.get("error") is not None:
        return False
    text, logprobs, n_tok = d.get("text"), d.get("logprobs"), d.get("choice_n_tokens")
    if text is not None and not isinstance(text, str):
        return False
    if logprobs is not None and not (isinstance(logprobs, list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in logprobs)):
        return False
    if n_tok is not None and not (isinstance(n_tok, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in n_tok)):
        return False
    for k in ("n_input_tokens", "n_image_tokens", "n_output_tokens"):
        v = d.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            return False
    return text is not None or logprobs is not None


def usable_for(d: dict, request: Request) -> bool:
    """An entry answers `request` only with the output its kind needs: generated text, or one
    log-probability per choice. An entry without it is regenerated, never scored as empty."""
    if request.kind == "loglikelihood":
        n = len(request.choices or [])
        return isinstance(d.get("logprobs"), list) and len(d["logprobs"]) == n
    return isinstance(d.get("text"), str)


class ResponseCache:
    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, dict] = {}
        self.n_corrupt_lines = 0  # lines that are not a valid entry: ignored, their requests rerun
        self._torn_tail = False
        if path is not None and path.exists():
            data = path.read_bytes()
            self._torn_tail = bool(data) and not data.endswith(b"\n")
            for raw in data.split(b"\n"):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw.decode("utf-8"))
                    ok = (isinstance(entry, dict) and isinstance(entry.get("key"), str)
                          and _valid_response(entry.get("response")))
                except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: JSON, long ints
                    ok = False
                if ok:
                    self._entries[entry["key"]] = entry["response"]
                else:
                    # A line cut short by a crash, a damaged byte, a hand edit: run it again.
                    self.n_corrupt_lines += 1

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, uid: str, request: Request | None = None) -> Response | None:
        d = self._entries.get(key)
        if d is None:
            return None
        if request is not None and not usable_for(d, request):
            self.n_corrupt_lines += 1
            del self._entries[key]
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
        # ASCII-escaped JSON: a model's odd output (a lone surrogate) cannot make the line unwritable.
        text = "".join(json.dumps({"key": k, "response": r.to_dict()}) + "\n" for k, r in items)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as f:
                if self._torn_tail and f.tell() > 0:
                    f.write(b"\n")  # end a line cut short by a crash, so this entry is not glued to it
                self._torn_tail = True  # until this write is complete
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
                self._torn_tail = False
        except OSError as e:
            # Earlier lines stay valid (appends only; a cut last line is skipped when read), so a
            # rerun after freeing space resumes from them.
            raise EvalkitError(f"cannot write the response cache {self.path}: {write_error(e)}; the "
                               f"answers cached before are kept: free space (or fix the folder) and rerun "
                               f"the same command to resume") from None
