"""Copies of real files with one byte made invalid UTF-8, for the readers' encoding errors."""
from __future__ import annotations

from pathlib import Path


def with_invalid_byte(src: Path, marker: bytes, folder: Path) -> tuple[Path, int]:
    """`src` copied into `folder` under its own name, the first byte of `marker` replaced by
    0xff; the copy and that byte's offset."""
    data = src.read_bytes()
    at = data.index(marker)
    path = folder / src.name
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])
    return path, at
