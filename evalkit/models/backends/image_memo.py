"""Decode and process each distinct image once per run, however many requests show it.

DocVQA asks about 4 questions per page, VQAv2 about 5 per photo, the bias audit 3 prompts per
portrait: without this, each request decodes the same file and the processor resizes (and,
with image splitting, crops) the same image again. The generator keeps requests for the same
image together, so a small memo is enough.

`MemoImageProcessor` stands in for the processor's image processor and returns the image
processor's own output for an image it has already seen with the same settings, so the tensors
are exactly those of a fresh call. It keys on a digest of the image's content, carried in the
decoded PIL image's `info`; images without one are processed as usual.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

KEY = "evalkit_image_key"


class SharedMemo:
    """A small LRU memo safe across worker threads: while one thread computes a key, the
    others asking for it wait for that result instead of computing it again."""

    def __init__(self, max_entries: int):
        self._max = max_entries
        self._entries: OrderedDict[Hashable, _Pending] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            pending = self._entries.get(key)
            owner = pending is None
            if owner:
                pending = self._entries[key] = _Pending()
                self.misses += 1
            else:
                self._entries.move_to_end(key)
                self.hits += 1
        if not owner:
            value = pending.wait()
            # The first attempt failed: compute here, so this caller gets its own error.
            return compute() if value is _FAILED else value
        try:
            value = compute()
        except BaseException:
            with self._lock:
                if self._entries.get(key) is pending:  # not a newer entry another thread made since
                    del self._entries[key]
            pending.set(_FAILED)
            raise
        pending.set(value)
        with self._lock:
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value


class MemoImageProcessor:
    def __init__(self, inner: Any, max_entries: int = 16):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "memo", SharedMemo(max_entries))

    # Everything but the call goes to the real image processor (settings, save_pretrained, ...).
    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)
        # Outputs made under the old settings are no longer the processor's outputs.
        object.__setattr__(self, "memo", SharedMemo(self.memo._max))

    def __call__(self, images, *args, **kwargs):
        key = self._key(images, args, kwargs)
        if key is None:
            return self._inner(images, *args, **kwargs)
        out = self.memo.get_or_compute(key, lambda: self._inner(images, *args, **kwargs))
        return copy.copy(out)  # a copy: some processors pop entries from this output

    @staticmethod
    def _key(images, args, kwargs):
        flat, stack = [], [images]
        while stack:
            item = stack.pop()
            if isinstance(item, (list, tuple)):
                stack.extend(reversed(item))
            else:
                flat.append(item)
        keys = [getattr(im, "info", {}).get(KEY) for im in flat]
        if not keys or any(k is None for k in keys):
            return None
        # Settings can be passed per call; an output is reused only for the same ones.
        return tuple(keys), repr(args), repr(sorted(kwargs.items()))


_FAILED = object()


class _Pending:
    """A value being computed by one thread, waited for by others."""

    def __init__(self):
        self._done = threading.Event()
        self._value = None

    def set(self, value) -> None:
        self._value = value
        self._done.set()

    def wait(self):
        self._done.wait()
        return self._value
