"""Unusual and broken images: decoded to RGB, or a SampleError that names the problem."""
import io

import pytest
from PIL import Image

from evalkit.errors import SampleError
from evalkit.pipeline.images import decode_image


def _encode(img, fmt="PNG"):
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode,fmt", [("CMYK", "JPEG"), ("RGBA", "PNG"), ("P", "PNG"), ("L", "PNG"),
                                      ("LA", "PNG"), ("1", "PNG"), ("I;16", "PNG")])
def test_modes_become_rgb(mode, fmt):
    img = Image.new(mode, (20, 10))
    out = decode_image({"bytes": _encode(img, fmt), "path": None})
    assert out.mode == "RGB" and out.size == (20, 10)


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert decode_image(_encode(img)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("size", [(1, 1), (5000, 200)])
def test_extreme_sizes(size):
    assert decode_image(_encode(Image.new("RGB", size))).size == size


def test_zero_byte_image():
    with pytest.raises(SampleError, match="empty"):
        decode_image({"bytes": b"", "path": None})


def test_truncated_image():
    data = _encode(Image.effect_noise((64, 64), 50).convert("RGB"))
    with pytest.raises(SampleError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])


def test_not_an_image():
    with pytest.raises(SampleError, match="not a readable picture"):
        decode_image(b"<html>not an image</html>")


def test_missing_file(tmp_path):
    with pytest.raises(SampleError, match="no-such.png"):
        decode_image({"bytes": None, "path": str(tmp_path / "no-such.png")})


def test_lazy_rows_read_images_only_when_asked():
    """Rows handed to tasks carry image cells as LazyImage (row number + column), None for an empty
    cell, and give exactly the stored bytes when read."""
    from evalkit.pipeline.data import load_task_data
    from evalkit.pipeline.images import LazyImage, image_bytes
    from evalkit.tasks.mmmu import MMMU

    data = load_task_data(MMMU())
    lazy, plain = list(data.iter_rows()), list(data.rows)
    cols = [c for c in data.image_columns if c in plain[0]]
    assert len(cols) == 7
    for lz, pl in zip(lazy, plain):
        for c in cols:
            if pl[c] is None:
                assert lz[c] is None
            else:
                assert isinstance(lz[c], LazyImage) and image_bytes(lz[c]) == pl[c]["bytes"]
    assert sum(lz["image_2"] is not None for lz in lazy) >= 2  # the sample has multi-image questions
