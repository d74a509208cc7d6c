"""Builds the shipped TextVQA sample: 40 scenes with text, rendered here, in the
lmms-lab/textvqa schema.

Each scene is drawn with PIL (street and traffic signs, shop fronts, bottles and cans, jerseys,
book covers, licence plates, price tags, digital displays, posters, buses, mugs) using the
DejaVu fonts that matplotlib bundles, and carries one question in TextVQA's style (lower case,
about the text), 10 crowd-style answers (the drawn text 6 to 10 times, sometimes in another
case, plus plausible variants so the leave-one-out average and the answer normalisation both
matter), and `ocr_tokens` = the words drawn, in drawing order. The Flickr URL columns are
empty (no Flickr source); image_id is a 16-hex-digit hash of the scene as in TextVQA;
question_id starts at 900000 so it cannot be mistaken for a real TextVQA id.

Run: .venv/bin/python -m evalkit.tasks.samplegen.textvqa
"""
from __future__ import annotations

import hashlib
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

from evalkit.tasks.samplegen import write_parquet

SEED = 7
W, H = 512, 384
FIRST_QUESTION_ID = 900000


@dataclass(frozen=True)
class Scene:
    kind: str
    lines: tuple[str, ...]  # text drawn, top to bottom
    question: str
    answer: str
    variants: tuple[str, ...]
    classes: tuple[str, ...]


S = Scene
SCENES: tuple[Scene, ...] = (
    S("street_sign", ("MAPLE ST",), "what street is this?",
      "maple st", ("maple street", "maple"), ("Street sign", "Tree")),
    S("street_sign", ("BROADWAY",), "what is the name of the street?",
      "broadway", ("broadway st",), ("Street sign",)),
    S("street_sign", ("ELM AVE", "400"), "what number is shown under the street name?",
      "400", ("400 block",), ("Street sign",)),
    S("stop_sign", ("STOP",), "what does the red sign say?",
      "stop", ("stop sign",), ("Stop sign", "Traffic sign")),
    S("stop_sign", ("STOP",), "is this a stop sign?",
      "yes", ("no",), ("Stop sign", "Traffic sign")),
    S("storefront", ("JOE'S BAKERY",), "what is the name of the bakery?",
      "joe's bakery", ("joe's", "joes bakery"), ("Building", "Bakery")),
    S("storefront", ("CITY PHARMACY",), "what kind of store is this?",
      "pharmacy", ("city pharmacy",), ("Building",)),
    S("storefront", ("GOLDEN DRAGON", "CHINESE FOOD"), "what is the name of the restaurant?",
      "golden dragon", ("dragon", "chinese food"), ("Building", "Restaurant")),
    S("storefront", ("BOOKS & CAFE", "OPEN"), "is the store open?", "yes", ("no",), ("Building",)),
    S("storefront", ("HAIR STUDIO 54",), "what number is on the salon sign?",
      "54", ("hair studio 54",), ("Building",)),
    S("bottle", ("AQUA PURA", "500 ml"), "what brand of water is this?",
      "aqua pura", ("aqua", "aquapura"), ("Bottle", "Drink")),
    S("bottle", ("OLIVE OIL", "EXTRA VIRGIN"), "what is in the bottle?",
      "olive oil", ("oil", "extra virgin olive oil"), ("Bottle",)),
    S("bottle", ("RED ROCK", "ALE", "5.2%"), "what is the alcohol percentage?",
      "5.2%", ("5.2",), ("Bottle", "Beer")),
    S("can", ("FIZZ", "COLA"), "what brand of soda is this?",
      "fizz", ("fizz cola", "cola"), ("Tin can", "Drink")),
    S("can", ("TOMATO", "SOUP"), "what kind of soup is this?",
      "tomato", ("tomato soup",), ("Tin can", "Food")),
    S("jersey", ("JORDAN", "23"), "what number is on the jersey?",
      "23", ("jordan",), ("Clothing", "Jersey")),
    S("jersey", ("SMITH", "7"), "what is the player's last name?",
      "smith", ("smith 7",), ("Clothing", "Jersey")),
    S("jersey", ("RIVERA", "10"), "what number does the player wear?",
      "10", ("ten", "rivera"), ("Clothing", "Jersey")),
    S("jersey", ("HAWKS", "88"), "what team name is on the shirt?",
      "hawks", ("the hawks", "88"), ("Clothing", "Jersey")),
    S("book", ("THE SILENT", "RIVER", "ANNA BERG"), "what is the title of the book?",
      "the silent river", ("silent river", "anna berg"), ("Book",)),
    S("book", ("DEEP SPACE", "M. OKAFOR"), "who wrote this book?",
      "m. okafor", ("okafor", "m okafor"), ("Book",)),
    S("book", ("COOKING", "FOR TWO", "VOLUME 3"), "what volume is this book?",
      "3", ("volume 3", "three"), ("Book",)),
    S("book", ("GARDEN BIRDS", "FIELD GUIDE"), "what is this book a guide to?",
      "garden birds", ("birds",), ("Book",)),
    S("plate", ("KRT 482",), "what is the license plate number?",
      "krt 482", ("krt482",), ("Vehicle registration plate", "Car")),
    S("plate", ("CALIFORNIA", "7ABC123"), "what state is the license plate from?",
      "california", ("ca",), ("Vehicle registration plate", "Car")),
    S("price_tag", ("APPLES", "$1.99"), "how much do the apples cost?",
      "$1.99", ("1.99", "$1.99 per lb"), ("Food", "Apple")),
    S("price_tag", ("SALE", "50% OFF"), "what percent off is the sale?",
      "50%", ("50", "50% off"), ("Poster",)),
    S("digital", ("10:30",), "what time is shown on the clock?",
      "10:30", ("10:30 am",), ("Clock", "Digital clock")),
    S("digital", ("HOME 3", "AWAY 1"), "how many points does the home team have?",
      "3", ("three", "1"), ("Scoreboard",)),
    S("digital", ("REGULAR", "3.49"), "what is the price of regular gas?",
      "3.49", ("$3.49", "349"), ("Sign",)),
    S("poster", ("JAZZ NIGHT", "FRIDAY 8 PM"), "what day is the jazz night?",
      "friday", ("friday 8 pm",), ("Poster",)),
    S("poster", ("SUMMER FAIR", "2019"), "what year is the fair?",
      "2019", ("summer fair 2019",), ("Poster",)),
    S("poster", ("LOST CAT", "CALL 555-0199"), "what phone number should you call?",
      "555-0199", ("5550199",), ("Poster", "Cat")),
    S("speed_sign", ("SPEED", "LIMIT", "35"), "what is the speed limit?",
      "35", ("35 mph",), ("Traffic sign",)),
    S("speed_sign", ("SPEED", "LIMIT", "60"), "what speed limit is posted?",
      "60", ("sixty", "60 mph"), ("Traffic sign",)),
    S("bus", ("42 DOWNTOWN",), "where is the bus going?",
      "downtown", ("42 downtown",), ("Bus", "Vehicle")),
    S("bus", ("15 AIRPORT",), "what is the bus route number?",
      "15", ("airport",), ("Bus", "Vehicle")),
    S("mug", ("COFFEE",), "what word is written on the mug?",
      "coffee", ("cofee",), ("Mug", "Coffee cup")),
    S("mug", ("WORLD'S", "BEST DAD"), "what does the mug say?",
      "world's best dad", ("worlds best dad", "best dad"), ("Mug",)),
    S("exit_sign", ("EXIT",), "what does the green sign say?", "exit", ("exit sign",), ("Sign",)),
)


# ----------------------------------------------------------------------------- drawing
def _font(size: int, style: str = "sans-bold"):
    from PIL import ImageFont
    import matplotlib

    name = {"sans-bold": "DejaVuSans-Bold.ttf", "serif-bold": "DejaVuSerif-Bold.ttf",
            "mono-bold": "DejaVuSansMono-Bold.ttf", "sans": "DejaVuSans.ttf"}[style]
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _text_block(draw, box, lines, fill, style="sans-bold", max_size=72):
    """Draw `lines` centred in `box`, with the largest font (<= max_size) that fits."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    size = max_size
    while size > 8:
        f = _font(size, style)
        widths = [draw.textbbox((0, 0), ln, font=f)[2] for ln in lines]
        line_h = size * 1.15
        if max(widths) <= bw * 0.9 and line_h * len(lines) <= bh * 0.9:
            break
        size -= 2
    f = _font(size, style)
    line_h = size * 1.15
    top = y0 + (bh - line_h * len(lines)) / 2
    for i, ln in enumerate(lines):
        l, t, r, b = draw.textbbox((0, 0), ln, font=f)
        draw.text((x0 + (bw - (r - l)) / 2 - l, top + i * line_h), ln, font=f, fill=fill)


def _sky(draw, rng):
    top = (rng.randint(90, 140), rng.randint(150, 190), rng.randint(220, 250))
    for y in range(H):
        k = y / H
        draw.line([(0, y), (W, y)], fill=tuple(int(c + (255 - c) * k * 0.6) for c in top))
    draw.rectangle([0, int(H * 0.78), W, H], fill=(110, 110, 105))
    for _ in range(3):  # distant buildings for clutter
        x = rng.randint(0, W - 80)
        h = rng.randint(60, 150)
        g = rng.randint(120, 170)
        draw.rectangle([x, int(H * 0.78) - h, x + rng.randint(50, 110), int(H * 0.78)], fill=(g, g, g + 10))


def _wall(draw, rng):
    c = (rng.randint(180, 235), rng.randint(170, 225), rng.randint(150, 210))
    draw.rectangle([0, 0, W, H], fill=c)
    draw.rectangle([0, int(H * 0.75), W, H], fill=(c[0] - 60, c[1] - 70, c[2] - 80))  # table


def _draw(scene: Scene, rng: random.Random):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    k, lines = scene.kind, scene.lines
    if k in ("street_sign", "stop_sign", "speed_sign", "exit_sign", "bus", "plate"):
        _sky(d, rng)
    else:
        _wall(d, rng)
    if k == "street_sign":
        d.rectangle([W // 2 - 6, 120, W // 2 + 6, H], fill=(90, 90, 90))
        board = (96, 60, 416, 60 + 70 * len(lines))
        d.rounded_rectangle(board, 10, fill=(0, 110, 60), outline="white", width=4)
        _text_block(d, board, lines, "white")
    elif k == "stop_sign":
        import math
        cx, cy, r = W // 2, 170, 120
        angles = [math.pi / 8 + i * math.pi / 4 for i in range(8)]
        pts = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]
        d.rectangle([cx - 6, cy, cx + 6, H], fill=(90, 90, 90))
        d.polygon(pts, fill=(200, 20, 30), outline="white", width=5)
        _text_block(d, (cx - 100, cy - 60, cx + 100, cy + 60), lines, "white")
    elif k == "speed_sign":
        d.rectangle([W // 2 - 6, 200, W // 2 + 6, H], fill=(90, 90, 90))
        d.rectangle([166, 30, 346, 270], fill="white", outline="black", width=6)
        _text_block(d, (176, 40, 336, 120), lines[:2], "black")
        _text_block(d, (176, 120, 336, 260), lines[2:], "black", max_size=110)
    elif k == "exit_sign":
        d.rectangle([136, 120, 376, 230], fill=(0, 140, 70), outline=(230, 230, 230), width=6)
        _text_block(d, (136, 120, 376, 230), lines, "white")
    elif k == "storefront":
        facade = (rng.randint(120, 170), rng.randint(60, 90), rng.randint(40, 70))
        d.rectangle([20, 30, W - 20, H], fill=facade)
        d.rectangle([40, 50, W - 40, 130], fill=(30, 30, 40))
        _text_block(d, (40, 50, W - 40, 130), lines[:1], (250, 220, 120))
        d.rectangle([60, 170, 230, 330], fill=(170, 200, 215), outline="black", width=3)
        d.rectangle([290, 170, 440, H], fill=(80, 50, 30), outline="black", width=3)
        if len(lines) > 1:
            d.rectangle([80, 200, 210, 250], fill=(255, 255, 255) if lines[1] != "OPEN" else (220, 30, 30))
            _text_block(d, (80, 200, 210, 250), lines[1:], "black" if lines[1] != "OPEN" else "white")
    elif k == "bottle":
        glass = (rng.randint(40, 90), rng.randint(90, 150), rng.randint(60, 120))
        d.rectangle([230, 20, 282, 90], fill=glass)
        d.rounded_rectangle([170, 80, 342, 350], 30, fill=glass)
        d.rectangle([175, 150, 337, 290], fill=(245, 240, 225))
        _text_block(d, (175, 150, 337, 290), lines, (40, 40, 40), style="serif-bold")
    elif k == "can":
        col = (rng.randint(170, 220), rng.randint(20, 60), rng.randint(20, 60))
        d.rectangle([176, 60, 336, 340], fill=col)
        d.ellipse([176, 45, 336, 75], fill=(200, 200, 205))
        _text_block(d, (180, 110, 332, 300), lines, "white")
    elif k == "jersey":
        col = (rng.randint(20, 200), rng.randint(20, 90), rng.randint(90, 200))
        d.polygon([(176, 40), (336, 40), (430, 110), (390, 160), (350, 130), (350, 370),
                   (162, 370), (162, 130), (122, 160), (82, 110)], fill=col)
        _text_block(d, (180, 70, 332, 120), lines[:1], "white")
        _text_block(d, (180, 120, 332, 330), lines[1:], "white", max_size=150)
    elif k == "book":
        col = (rng.randint(30, 120), rng.randint(30, 120), rng.randint(60, 160))
        d.rectangle([146, 20, 366, 360], fill=col, outline=(20, 20, 20), width=3)
        d.rectangle([146, 20, 166, 360], fill=tuple(max(0, c - 30) for c in col))
        _text_block(d, (170, 40, 360, 220), lines[:-1], (250, 235, 200), style="serif-bold")
        _text_block(d, (170, 260, 360, 340), lines[-1:], (230, 230, 230), style="sans", max_size=30)
    elif k == "plate":
        d.rounded_rectangle([60, 100, 452, 370], 40, fill=(rng.randint(30, 200), 40, 50))
        d.rectangle([136, 200, 376, 320], fill=(250, 250, 245), outline="black", width=4)
        if len(lines) > 1:
            _text_block(d, (140, 204, 372, 236), lines[:1], (180, 20, 30), style="serif-bold", max_size=28)
            _text_block(d, (140, 236, 372, 316), lines[1:], (20, 30, 120), style="mono-bold")
        else:
            _text_block(d, (140, 204, 372, 316), lines, (20, 30, 120), style="mono-bold")
    elif k == "price_tag":
        d.polygon([(120, 100), (360, 100), (420, 190), (360, 280), (120, 280)],
                  fill=(250, 215, 60), outline="black")
        d.ellipse([370, 180, 388, 198], fill=(80, 80, 80))
        _text_block(d, (130, 105, 350, 160), lines[:1], "black")
        _text_block(d, (130, 160, 350, 275), lines[1:], (180, 0, 0))
    elif k == "digital":
        d.rectangle([96, 90, 416, 290], fill=(15, 15, 15), outline=(120, 120, 120), width=8)
        _text_block(d, (106, 100, 406, 280), lines, (255, 80, 40), style="mono-bold")
    elif k == "poster":
        d.rectangle([136, 20, 376, 350], fill=(250, 250, 240), outline=(60, 60, 60), width=2)
        _text_block(d, (146, 40, 366, 200), lines[:1], (20, 20, 20))
        _text_block(d, (146, 210, 366, 330), lines[1:], (160, 20, 40))
    elif k == "bus":
        d.rounded_rectangle([96, 40, 416, 370], 20, fill=(230, 200, 30))
        d.rectangle([116, 60, 396, 110], fill=(10, 10, 10))
        _text_block(d, (116, 60, 396, 110), lines, (255, 170, 0), style="mono-bold")
        d.rectangle([116, 130, 396, 260], fill=(150, 190, 210))
    elif k == "mug":
        d.rounded_rectangle([150, 90, 330, 330], 20, fill="white", outline=(90, 90, 90), width=3)
        d.arc([300, 150, 390, 270], -90, 90, fill="white", width=18)
        _text_block(d, (160, 130, 320, 290), lines, (30, 60, 140), style="serif-bold")
    else:
        raise ValueError(f"unknown scene kind {k!r}")
    return img


# ----------------------------------------------------------------------------- rows
def ten_answers(scene: Scene, rng: random.Random) -> list[str]:
    n_true = rng.randint(6, 10)
    # Up to two of the true answers in another case, as crowd workers type them; at least
    # six stay verbatim, so the literal answer is the clear majority even before normalising.
    true = [scene.answer] * n_true
    for i in rng.sample(range(n_true), min(2, n_true - 6)):
        true[i] = scene.answer.title() if rng.random() < 0.5 else scene.answer.upper()
    answers = true + [rng.choice(scene.variants) for _ in range(10 - n_true)]
    rng.shuffle(answers)
    return answers


def rows(rng: random.Random) -> list[dict]:
    out = []
    for i, scene in enumerate(SCENES):
        img = _draw(scene, rng)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        key = f"{scene.kind}|{'/'.join(scene.lines)}|{scene.question}"
        out.append({
            "image_id": hashlib.sha1(key.encode()).hexdigest()[:16],
            "question_id": FIRST_QUESTION_ID + i,
            "question": scene.question,
            "question_tokens": re.findall(r"[a-z0-9']+", scene.question.lower()),
            "image": {"bytes": buf.getvalue(), "path": None},
            "image_width": W,
            "image_height": H,
            "flickr_original_url": "",
            "flickr_300k_url": "",
            "answers": ten_answers(scene, rng),
            "image_classes": list(scene.classes),
            "set_name": "val",
            "ocr_tokens": [w for ln in scene.lines for w in ln.split()],
        })
    return out


def build(out_dir: Path) -> Path:
    import datasets

    data = rows(random.Random(SEED))
    features = datasets.Features({
        "image_id": datasets.Value("string"),
        "question_id": datasets.Value("int32"),
        "question": datasets.Value("string"),
        "question_tokens": datasets.List(datasets.Value("string")),
        "image": datasets.Image(),
        "image_width": datasets.Value("int32"),
        "image_height": datasets.Value("int32"),
        "flickr_original_url": datasets.Value("string"),
        "flickr_300k_url": datasets.Value("string"),
        "answers": datasets.List(datasets.Value("string")),
        "image_classes": datasets.List(datasets.Value("string")),
        "set_name": datasets.Value("string"),
        "ocr_tokens": datasets.List(datasets.Value("string")),
    })
    columns = {name: [r[name] for r in data] for name in features}
    return write_parquet(columns, features, out_dir / "validation-00000-of-00001.parquet")


if __name__ == "__main__":
    print(build(Path(__file__).resolve().parent.parent / "samples" / "textvqa"))
