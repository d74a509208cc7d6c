"""The small helpers every page shares (reports/html.py), each defined once."""
from evalkit.reports.html import inline_image, shorten

from evalkit.models import ModelSpec


def test_shorten_keeps_short_labels_and_cuts_long_ones_to_the_limit():
    assert shorten("female / Black", 20) == "female / Black"
    cut = shorten("x" * 50, 20)
    assert len(cut) == 20 and cut == "x" * 19 + "…"
    assert shorten("x" * 20, 20) == "x" * 20


def test_only_inline_base64_images_are_kept():
    assert inline_image("data:image/jpeg;base64,/9j/4AAQ==") == "data:image/jpeg;base64,/9j/4AAQ=="
    for bad in ("https://example.com/a.png", "data:image/svg+xml;base64,PHN2Zz4=", "data:image/png;base64,<x>",
                "file:///etc/passwd", None, 3):
        assert inline_image(bad) is None


def test_model_label_is_the_last_part_of_the_id():
    assert ModelSpec("hf", model_id="HuggingFaceM4/idefics2-8b").label == "idefics2-8b"
    assert ModelSpec("hf", model_id="/models/idefics2/").label == "idefics2"
    assert ModelSpec().label == "tiny-idefics2"
