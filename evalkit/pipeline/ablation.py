"""Vision-dependence control: the same requests with every image taken away.

`--image-ablation blank` replaces each image with a white one of the same size (so the image
token budget, splitting into crops included, stays what it was); `--image-ablation shuffle`
gives each image slot another sample's image (a seeded derangement). Prompts, choices and
generation settings are left exactly as they were, so the only difference between the real
run and the control is the pixels, and the paired difference says how much of the score
needed the right image. A question answered as well without it is answerable from the text
alone (or by guessing: for multiple choice the chance rate is shown beside it).

Shuffle: a slot must not receive its own image, nor an image of its own sample, nor the same
picture stored in another row (DocVQA asks several questions about one page). Slots that
share a sample or an image's bytes form one group (union-find); groups are laid out in a
seeded random order, slots shuffled within, and slot i takes the image of slot i + g
(cyclically), g the size of the largest group. Since every group is a contiguous run of at
most g slots and g <= n / 2, no slot lands in its own group. When one group holds more than
half the slots no such assignment exists, and the control is refused with that reason.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass, replace

from ..errors import EvalkitError
from .images import LazyImage, image_bytes, image_key
from ..types import Request

MODES = ("blank", "shuffle")
DEFAULT_SEED = 0
BLANK_COLOR = (255, 255, 255)


@dataclass
class Ablated:
    requests: list[Request]
    n_images: int  # image slots in the requests
    n_replaced: int  # slots given a blank or another sample's image (unreadable ones keep theirs)


def ablate(requests: list[Request], owners: list[int], mode: str, seed: int = DEFAULT_SEED) -> Ablated:
    """New requests, equal to `requests` but for their images; owners[k] is request k's sample."""
    if mode == "blank":
        return blank_requests(requests)
    if mode == "shuffle":
        return shuffle_requests(requests, owners, seed)
    raise EvalkitError(f"--image-ablation {mode!r}: unknown; use one of {', '.join(MODES)}")


def image_size(ref) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None when it cannot be read (the request then
    keeps its image and fails to decode as it would in the real run)."""
    from PIL import Image

    if isinstance(ref, LazyImage):
        ref = ref.load()
    if isinstance(ref, Image.Image):
        return ref.size
    try:
        data = image_bytes(ref)
        if not data:
            return None
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


def blank_png(size: tuple[int, int], memo: dict) -> bytes:
    # one encoded blank per size: a split with thousands of same-sized pages holds a few
    from PIL import Image

    if size not in memo:
        buf = io.BytesIO()
        Image.new("RGB", size, BLANK_COLOR).save(buf, format="PNG")
        memo[size] = buf.getvalue()
    return memo[size]


def blank_requests(requests: list[Request]) -> Ablated:
    memo: dict = {}
    out, n_images, n_replaced = [], 0, 0
    for r in requests:
        images = []
        for ref in r.images:
            n_images += 1
            size = image_size(ref)
            if size is None:
                images.append(ref)
            else:
                images.append(blank_png(size, memo))
                n_replaced += 1
        out.append(replace(r, images=images))
    return Ablated(out, n_images, n_replaced)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def slot_groups(owners: list[int], keys: list[bytes]) -> list[int]:
    """A group id per slot: slots of one sample, or with the same image bytes, share a group."""
    parent = list(range(len(keys)))
    first: dict = {}
    for i, (owner, key) in enumerate(zip(owners, keys)):
        for tag in (("sample", owner), ("image", key)):
            j = first.setdefault(tag, i)
            a, b = _find(parent, i), _find(parent, j)
            if a != b:
                parent[a] = b
    return [_find(parent, i) for i in range(len(keys))]


def group_derangement(groups: list[int], seed: int) -> list[int]:
    """source[i]: the slot whose image slot i receives; never a slot of i's own group."""
    n = len(groups)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    largest = max((len(m) for m in members.values()), default=0)
    if n == 0:
        return []
    if 2 * largest > n:
        raise EvalkitError(
            f"--image-ablation shuffle: {largest} of the {n} images belong to one sample or are one picture, so "
            f"they cannot all receive another sample's image; use more samples (--limit) or --image-ablation blank")
    rng = random.Random(seed)
    order = list(members.values())
    rng.shuffle(order)
    for m in order:
        rng.shuffle(m)
    laid = [i for m in order for i in m]
    source = [0] * n
    for pos, slot in enumerate(laid):
        source[slot] = laid[(pos + largest) % n]
    return source


def shuffle_requests(requests: list[Request], owners: list[int], seed: int) -> Ablated:
    slots = [(k, j) for k, r in enumerate(requests) for j in range(len(r.images))]
    refs = [requests[k].images[j] for k, j in slots]
    groups = slot_groups([owners[k] for k, _ in slots], [image_key(ref) for ref in refs])
    source = group_derangement(groups, seed)
    new_images = [list(r.images) for r in requests]
    for i, (k, j) in enumerate(slots):
        new_images[k][j] = refs[source[i]]
    out = [replace(r, images=imgs) for r, imgs in zip(requests, new_images)]
    return Ablated(out, len(slots), len(slots))


def chance_summary(records) -> dict:
    """{"chance": {rate, n_questions}}: the 0-100 score a uniform guess gets on the scored
    multiple-choice samples (extras["chance"] = 1 / options), or {} when there are none."""
    rates = [r.extras["chance"] for r in records if r.error is None and r.score is not None and "chance" in r.extras]
    if not rates:
        return {}
    return {"chance": {"rate": 100.0 * sum(rates) / len(rates), "n_questions": len(rates)}}
