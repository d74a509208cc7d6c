"""Turning whatever a dataset holds for an image into an RGB PIL image, or a SampleError."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SampleError

# Decompression-bomb guard: checked from the header, before any pixel is decoded. Real
# documents can be large scans (an A4 page at 600 dpi is 35 megapixels).
MAX_PIXELS = 100_000_000
# An image file named by a path in the data is read only when it is a regular file of at
# most this size: a path to /dev/zero or a FIFO must not exhaust memory or hang the run.
MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class LazyImage:
    """An image cell of a dataset, read only when needed: a run over a large split holds row
    numbers, not every image's bytes, in memory (the table itself is memory-mapped)."""

    table: Any  # a datasets.Dataset holding the image column
    index: int
    column: str

    def load(self):
        return self.table[self.index][self.column]


def image_bytes(ref) -> bytes | None:
    """The encoded bytes behind an image reference, for cache keys; None for decoded images."""
    if isinstance(ref, LazyImage):
        ref = ref.load()
    if isinstance(ref, (bytes, bytearray)):
        return bytes(ref)
    if isinstance(ref, dict):
        if ref.get("bytes") is not None:
            return ref["bytes"]
        if ref.get("path"):
            return _read(ref["path"])
        return None
    if isinstance(ref, (str, Path)):
        return _read(ref)
    return None


def image_key(ref) -> bytes:
    """A digest of the image's content: its encoded bytes, or for a decoded image its pixels.
    Unreadable references get a digest of their description (decoding reports the problem)."""
    import hashlib

    try:
        data = image_bytes(ref)
    except Exception:
        data = None
    if data is None:
        try:
            data = ref.tobytes() + repr((ref.mode, ref.size)).encode()
        except Exception:
            data = repr(ref).encode()
    return hashlib.sha256(data).digest()


def _read(path, limit: int = MAX_IMAGE_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Opened non-blocking and checked
    on the open descriptor, so a FIFO or device named by the data is refused, not waited on."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError, TypeError) as e:
        raise SampleError(f"image file {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SampleError(f"image path {path} is not a regular file; give an image file or the image's bytes")
        if st.st_size > limit:
            raise SampleError(f"image file {path} is {st.st_size} bytes, over the {limit}-byte limit")
        chunks, total = [], 0
        while True:  # read with a bound: the file may grow after the size check
            block = os.read(fd, min(1 << 20, limit + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:
                raise SampleError(f"image file {path} is over the {limit}-byte limit")
        return b"".join(chunks)
    except OSError as e:
        raise SampleError(f"image file {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def check_pixels(img, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an image whose header declares more than `max_pixels` pixels, before decoding."""
    if img.width * img.height > max_pixels:
        raise SampleError(f"image is {img.width}x{img.height} = {img.width * img.height} pixels, over the "
                          f"{max_pixels}-pixel limit (a decompression bomb or an oversized scan)")


def decode_image(ref):
    """Decode to RGB. Palette/RGBA/LA images are composited on white (transparent pixels in
    documents are background), CMYK and 16-bit modes converted; empty or truncated files raise
    SampleError naming the problem."""
    from PIL import Image, UnidentifiedImageError

    # check_pixels refuses an oversized image per sample, from its header; PIL's own check would
    # print a DecompressionBombWarning above its limit before that (and raise at twice it).
    Image.MAX_IMAGE_PIXELS = None
    if isinstance(ref, LazyImage):
        ref = ref.load()
    if isinstance(ref, Image.Image):
        img = ref
    else:
        data = image_bytes(ref)
        if data is None:
            raise SampleError("image is missing (no bytes and no path)")
        if len(data) == 0:
            raise SampleError("image file is empty (0 bytes)")
        try:
            img = Image.open(io.BytesIO(data))
            check_pixels(img)
            img.load()
        except UnidentifiedImageError:
            raise SampleError(f"image is not a readable picture ({len(data)} bytes, unknown format)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise SampleError(f"image is corrupt or truncated: {e}") from None
    if img.width < 1 or img.height < 1:
        raise SampleError(f"image has no pixels ({img.width}x{img.height})")
    return to_rgb(img)


def to_rgb(img):
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clip.
        import numpy as np
        a = np.asarray(img, dtype=np.float64)
        hi = a.max() or 1.0
        return Image.fromarray((a * (255.0 / hi)).astype("uint8")).convert("RGB")
    return img.convert("RGB")


def thumbnail_data_uri(img, size: int = 160) -> str:
    """A small JPEG of the image as a data URI, for reports (self-contained HTML)."""
    import base64

    t = img.copy()
    t.thumbnail((size, size))
    buf = io.BytesIO()
    t.save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
