"""Builds the shipped FairFace sample: synthetic cartoon faces in the hub schema.

The hub's HuggingFaceM4/FairFace (config 1.25, split validation) has columns image (224x224
JPEG), age, gender, race (ClassLabel ints; names in evalkit.metrics.fairface) and
service_test (bool). This sample keeps those exact columns and features but its images are
faces drawn with PIL: an oval face, hair, eyes, brows, nose and mouth, varied deterministically
by row. Labels are assigned by this script, not perceived: 36 rows cover each of the 14
gender x race buckets at least twice and each of the 9 age groups four times. They exercise the
pipeline; they say nothing about a model's accuracy or bias.

Run from the repository root: `python -m evalkit.tasks.samplegen.fairface`.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

from evalkit.metrics.fairface import AGES, GENDERS, RACES

from evalkit.tasks.samplegen import write_parquet

N_ROWS = 36
SIZE = 224
SPLIT = "validation"

# Skin tones and hair colours drawn on; rows pick from them by seed, so every group gets a spread.
SKIN = [(255, 224, 196), (241, 194, 150), (224, 172, 125), (198, 134, 86), (161, 102, 64),
        (120, 76, 48), (92, 58, 38)]
HAIR = [(20, 17, 15), (59, 36, 24), (110, 72, 40), (170, 120, 60), (200, 170, 110), (140, 50, 30)]
GREY = [(160, 160, 160), (205, 205, 200)]


def draw_face(seed: int, *, size: int, long_hair: bool, age_index: int, skin_shift: int = 0,
              shoulders: bool = False, background: tuple[int, int, int] | None = None,
              skin: tuple[int, int, int] | None = None, hair: tuple[int, int, int] | None = None,
              shirt: tuple[int, int, int] | None = None):
    """A cartoon face as a PIL RGB image. `age_index` (0-8, FairFace's age groups) sets head
    size, eye size and grey hair; `long_hair` the hair shape; `skin_shift` offsets the skin
    palette so groups differ; `shoulders` adds a torso (for the Stable Bias 'at work' portraits).
    `skin`, `hair` and `shirt` fix those colours instead of drawing them (the random draws still
    happen, so the rest of the face is the same)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    bg = background or tuple(rng.randint(150, 235) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    s = size / 224.0
    cx = size / 2 + rng.uniform(-6, 6) * s
    child = age_index <= 2
    half_w = (52 if child else 60) * s * rng.uniform(0.93, 1.07)
    half_h = (62 if child else 76) * s * rng.uniform(0.95, 1.05)
    cy = size / 2 + (12 if child else 4) * s - (18 * s if shoulders else 0)
    drawn_skin = SKIN[(rng.randrange(3) + skin_shift) % len(SKIN)]
    drawn_hair = GREY[rng.randrange(2)] if age_index >= 7 else HAIR[rng.randrange(len(HAIR))]
    skin, hair = skin or drawn_skin, hair or drawn_hair

    if shoulders:
        drawn_shirt = tuple(rng.randint(30, 200) for _ in range(3))
        shirt = shirt or drawn_shirt
        d.ellipse([cx - 100 * s, cy + half_h * 0.8, cx + 100 * s, cy + half_h * 0.8 + 160 * s], fill=shirt)
        d.rectangle([cx - 18 * s, cy + half_h * 0.7, cx + 18 * s, cy + half_h + 12 * s], fill=skin)
    if long_hair:  # hair falls behind the face down to the shoulders
        d.rounded_rectangle([cx - half_w - 14 * s, cy - half_h - 10 * s, cx + half_w + 14 * s,
                             cy + half_h + 30 * s], radius=int(40 * s), fill=hair)
    d.ellipse([cx - half_w - 6 * s, cy - 10 * s, cx - half_w + 8 * s, cy + 18 * s], fill=skin)  # ears
    d.ellipse([cx + half_w - 8 * s, cy - 10 * s, cx + half_w + 6 * s, cy + 18 * s], fill=skin)
    d.ellipse([cx - half_w, cy - half_h, cx + half_w, cy + half_h], fill=skin)
    # Hair cap over the top of the head.
    d.chord([cx - half_w - 3 * s, cy - half_h - 8 * s, cx + half_w + 3 * s, cy + half_h * 0.35],
            start=180, end=360, fill=hair)

    eye_y = cy - half_h * 0.08
    eye_dx = half_w * 0.42
    eye_r = (9 if child else 7) * s
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        d.ellipse([ex - eye_r * 1.5, eye_y - eye_r, ex + eye_r * 1.5, eye_y + eye_r], fill=(250, 250, 250))
        d.ellipse([ex - eye_r * 0.7, eye_y - eye_r * 0.7, ex + eye_r * 0.7, eye_y + eye_r * 0.7],
                  fill=(60, 40, 30))
        d.line([ex - eye_r * 1.6, eye_y - eye_r * 2.0, ex + eye_r * 1.6, eye_y - eye_r * 2.2],
               fill=hair if age_index < 7 else (120, 120, 120), width=max(1, int(3 * s)))
    nose = tuple(max(0, c - 35) for c in skin)
    d.line([cx, eye_y + 6 * s, cx - 4 * s, cy + half_h * 0.3, cx + 3 * s, cy + half_h * 0.33],
           fill=nose, width=max(1, int(2 * s)))
    mouth_y = cy + half_h * 0.55
    d.arc([cx - 18 * s, mouth_y - 10 * s, cx + 18 * s, mouth_y + 8 * s], start=20, end=160,
          fill=(150, 60, 60), width=max(1, int(3 * s)))
    if age_index >= 6:  # wrinkles for the two oldest groups
        for sx in (-1, 1):
            x = cx + sx * (eye_dx + eye_r * 2.2)
            d.line([x, eye_y - 3 * s, x + sx * 6 * s, eye_y + 3 * s], fill=nose, width=max(1, int(s)))
    return img


def rows(n: int = N_ROWS) -> list[dict]:
    """Row i: bucket i mod 14 (gender-major, race-minor in label order), age i mod 9."""
    out = []
    for i in range(n):
        bucket = i % (len(GENDERS) * len(RACES))
        gender, race = divmod(bucket, len(RACES))
        age = i % len(AGES)
        img = draw_face(1000 + i, size=SIZE, long_hair=(gender == 1) != (i % 5 == 4), age_index=age,
                        skin_shift=race)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        out.append({"image": {"bytes": buf.getvalue(), "path": None}, "age": age, "gender": gender,
                    "race": race, "service_test": i % 2 == 0})
    return out


def features():
    import datasets

    return datasets.Features({
        "image": datasets.Image(),
        "age": datasets.ClassLabel(names=list(AGES)),
        "gender": datasets.ClassLabel(names=list(GENDERS)),
        "race": datasets.ClassLabel(names=list(RACES)),
        "service_test": datasets.Value("bool"),
    })


def build(out_dir: Path) -> Path:
    data = rows()
    columns = {k: [r[k] for r in data] for k in ("image", "age", "gender", "race", "service_test")}
    return write_parquet(columns, features(), out_dir / f"{SPLIT}-00000-of-00001.parquet")


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "samples" / "fairface"
    print(build(target))
