"""A fingerprint of the model files behind a backend, for the response cache key.

The spec alone (backend name, model id, dtype, ...) does not say which weights answered:
saving a new checkpoint into the same folder keeps the spec, so the fingerprint adds what
the files hold. Reading every weight byte of a 16 GB checkpoint on each run would cost
minutes, so a weight file is summarised by its name, size, modification time, its
safetensors header (tensor names, shapes, dtypes, offsets) and a hash of 16 windows of
64 KiB spread over the file; a rewrite changes the modification time and a different
checkpoint changes the sampled bytes. Every other file (config.json,
generation_config.json, tokenizer, processor and chat-template files) is hashed whole.

A hub id is resolved offline to the snapshot folder of the local hub cache, whose folder
name is the commit revision; its files are fingerprinted as a local folder's are.
"""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx")
# Files that never change what the model answers; hashing them would only cost reruns.
IGNORED_SUFFIXES = (".md", ".lock")
IGNORED_NAMES = (".gitattributes",)
WINDOWS = 16
WINDOW_BYTES = 64 * 1024
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
SMALL_WEIGHT_BYTES = 4 * WINDOWS * WINDOW_BYTES  # below this, a weight file is hashed whole


def _hash_file(path: Path, h) -> None:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def _weight_summary(path: Path, h) -> None:
    st = path.stat()
    h.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    if st.st_size <= SMALL_WEIGHT_BYTES:
        _hash_file(path, h)
        return
    with path.open("rb") as f:
        if path.suffix == ".safetensors":
            head = f.read(8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if n <= min(MAX_HEADER_BYTES, st.st_size - 8):
                    h.update(f.read(n))
        step = st.st_size // WINDOWS
        for k in range(WINDOWS):
            f.seek(k * step)
            h.update(f.read(WINDOW_BYTES))


def folder_fingerprint(folder: Path) -> str:
    """Hex digest over the folder's top-level files (see the module docstring)."""
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
            continue
        try:
            if not path.is_file():
                continue
            if name.endswith(WEIGHT_SUFFIXES):
                _weight_summary(path, h)
            else:
                h.update(f"{name}\0".encode())
                _hash_file(path, h)
        except OSError as e:  # unreadable: the loader will say so; the key still differs
            h.update(f"{name}\0unreadable {e.errno}\0".encode())
    return h.hexdigest()[:16]


def _hub_snapshot(model_id: str) -> Path | None:
    """The local hub cache's snapshot folder for `model_id` (offline), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # not a valid repo id
        return None
    return Path(found).parent if isinstance(found, (str, os.PathLike)) else None


def model_fingerprint(model_path: str | os.PathLike | None) -> str:
    """'dir:<digest>' for a local folder, 'rev:<commit>:<digest>' for a cached hub id,
    'unresolved:<id>' when neither (the spec key alone then identifies the model)."""
    if not model_path:
        return "none"
    local = Path(model_path)
    if local.is_dir():
        return f"dir:{folder_fingerprint(local)}"
    snap = _hub_snapshot(str(model_path))
    if snap is not None and snap.is_dir():
        return f"rev:{snap.name}:{folder_fingerprint(snap)}"
    return f"unresolved:{model_path}"
