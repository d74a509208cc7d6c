"""Render the shipped DocVQA sample: synthetic document pages in the lmms-lab/DocVQA schema.

Real DocVQA pages are UCSF Industry Documents scans and cannot be shipped, so this script
draws look-alikes with PIL: forms (some filled in by "hand"), receipts, letters, tables (some
with a bar chart), memos and invoices, at letter-scan sizes from small (620 px wide) to
200-dpi scans (1700x2200, beyond Idefics2's 980 px longest edge). Every question is answered
by text drawn on its page, and gold lists carry the variants annotators give ("$12.50",
"12.50"). Columns and types follow lmms-lab/DocVQA, config DocVQA, split validation
(data_split "val" as in the original DocVQA annotation files). Deterministic: fixed seed.

Run: python -m evalkit.tasks.samplegen.docvqa  (writes tasks/samples/docvqa/validation-00000-of-00001.parquet)
"""
from __future__ import annotations

import io
import random
import string
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from evalkit.tasks.samplegen import write_parquet

SEED = 17  # DocVQA is RRC challenge 17
OUT_NAME = "validation-00000-of-00001.parquet"
KINDS = ("form", "receipt", "letter", "table", "memo", "invoice")
PER_KIND = 6
# Questions per page, cycled: averages 10/6, so 36 pages give 60 rows.
QUESTIONS_PER_PAGE = (1, 2, 1, 2, 3, 1)
# (width, height, layout unit width) per kind; the unit width sets the text scale, so a
# 1700 px page is drawn like an 850 px page at twice the size (a 200-dpi scan).
SIZES = {
    "form": [(850, 1100), (1700, 2200), (620, 802), (850, 1100), (1275, 1650), (850, 1100)],
    "receipt": [(420, 900), (384, 820), (840, 1800), (420, 900), (336, 720), (420, 900)],
    "letter": [(850, 1100), (1700, 2200), (850, 1100), (640, 828), (850, 1100), (1275, 1650)],
    "table": [(850, 1100), (1100, 850), (1700, 2200), (850, 1100), (2200, 1700), (700, 906)],
    "memo": [(850, 1100), (850, 1100), (1700, 2200), (620, 802), (850, 1100), (850, 1100)],
    "invoice": [(850, 1100), (1700, 2200), (850, 1100), (680, 880), (850, 1100), (1275, 1650)],
}

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Linda", "Michael", "Barbara", "William",
         "Elizabeth", "David", "Susan", "Richard", "Karen", "Thomas", "Nancy", "Charles", "Ruth",
         "Daniel", "Margaret", "Paul", "Sandra", "George", "Carol", "Kenneth", "Sharon"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Miller", "Davis", "Garcia", "Wilson", "Anderson",
        "Taylor", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis",
        "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Nelson", "Carter",
        "Mitchell", "Turner", "Phillips", "Campbell", "Parker", "Evans", "Collins", "Stewart"]
COMPANIES = ["Harmon Research Institute", "Northfield Laboratories", "Carver & Stone Associates",
             "Blue Ridge Tobacco Company", "Westbrook Analytical Services", "Pinecrest Medical Center",
             "Lakeside Foundation", "Meridian Consulting Group", "Atlas Printing Co.", "Granite State Supply"]
CITIES = [("Richmond", "VA", "23219"), ("Winston-Salem", "NC", "27101"), ("Louisville", "KY", "40202"),
          ("Chicago", "IL", "60601"), ("Boston", "MA", "02108"), ("Denver", "CO", "80202"),
          ("Atlanta", "GA", "30303"), ("San Francisco", "CA", "94103")]
STREETS = ["Main Street", "Park Avenue", "Commerce Drive", "Elm Street", "Industrial Parkway",
           "Broad Street", "Oak Lane", "Market Street"]
DEPARTMENTS = ["Research & Development", "Quality Assurance", "Marketing", "Public Affairs",
               "Finance", "Product Testing", "Legal", "Purchasing"]
VENUES = ["the Hyatt Regency", "the Marriott Hotel", "the Conference Center", "the Faculty Club",
          "the Board Room", "the Omni Hotel"]
COMMITTEES = ["Scientific Advisory Board", "Research Committee", "Budget Committee",
              "Board of Directors", "Steering Committee"]
FORM_TITLES = ["TRAVEL EXPENSE REQUEST", "RESEARCH PROJECT AUTHORIZATION", "PURCHASE REQUISITION",
               "SAMPLE SHIPMENT FORM", "PERSONNEL ACTION FORM", "CHECK REQUEST"]
STORES = ["CORNER MARKET", "GREEN LEAF GROCERY", "CITY OFFICE SUPPLY", "MAPLE DELI", "QUICK STOP",
          "RIVERSIDE PHARMACY"]
SHOP_ITEMS = ["Coffee", "Bagel", "Orange juice", "Notebook", "Pens (box)", "Batteries", "Milk",
              "Bread", "Apples", "Sandwich", "Stamps", "Envelopes", "Aspirin", "Tape"]
INVOICE_ITEMS = ["Laboratory analysis", "Printing of brochures", "Consulting services",
                 "Sample collection kits", "Data entry", "Freight and handling", "Statistical review",
                 "Paper stock (cases)"]
MEMO_SUBJECTS = ["Quarterly budget review", "Revised testing schedule", "Annual sales meeting",
                 "New filter specifications", "Office relocation", "Consumer survey results"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
# (title, row header, rows, columns, value kind)
TABLES = [
    ("Sales by Region (in thousands)", "Region", ["North", "South", "East", "West", "Central"],
     ["1994", "1995", "1996", "1997"], "int"),
    ("Nutrient Composition per 100 g", "Food", ["Rice", "Wheat flour", "Oats", "Corn meal", "Barley"],
     ["Protein (g)", "Fat (g)", "Fiber (g)"], "float"),
    ("Participants by Age Group", "Age group", ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"],
     ["Male", "Female"], "int"),
    ("Laboratory Test Results", "Sample", ["A-101", "A-102", "B-201", "B-202", "C-301"],
     ["Tar (mg)", "Nicotine (mg)", "CO (mg)"], "float"),
    ("Budget Summary (dollars)", "Category", ["Personnel", "Equipment", "Supplies", "Travel", "Other"],
     ["FY 1996", "FY 1997"], "int"),
]


@dataclass
class QA:
    question: str
    answers: list[str]
    types: list[str]


@dataclass
class Page:
    kind: str
    image: Image.Image
    qas: list[QA] = field(default_factory=list)


# ---------------------------------------------------------------- small value helpers
def money(x: float) -> list[str]:
    """The printed amount first, then the variants annotators write."""
    shown = f"${x:,.2f}"
    out = [shown, f"{x:,.2f}"]
    if x >= 1000:
        out.append(f"{x:.2f}")
    return out


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(1985, 2001), rng.randint(1, 12), rng.randint(1, 28)


def later(d, rng: random.Random) -> tuple[int, int, int]:
    """A date one to three months after d (meetings and deadlines follow the letter)."""
    m = d[1] + rng.randint(1, 3)
    return d[0] + (m - 1) // 12, (m - 1) % 12 + 1, rng.randint(1, 28)


def long_date(d) -> str:
    return f"{MONTHS[d[1] - 1]} {d[2]}, {d[0]}"


def num_date(d) -> str:
    return f"{d[1]}/{d[2]}/{d[0] % 100:02d}"


def date_golds(d, shown: str) -> list[str]:
    return list(dict.fromkeys([shown, long_date(d), num_date(d)]))


def phone(rng: random.Random) -> tuple[str, list[str]]:
    a, b, c = rng.randint(201, 989), rng.randint(201, 989), rng.randint(1000, 9999)
    return f"({a}) {b}-{c}", [f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a} {b} {c}"]


# ---------------------------------------------------------------- drawing
class Canvas:
    """A page with a text cursor; sizes are given in layout units (1 unit = 1 px at unit width)."""

    def __init__(self, w: int, h: int, unit_width: int):
        self.img = Image.new("L", (w, h), 255)
        self.draw = ImageDraw.Draw(self.img)
        self.u = w / unit_width
        self.w, self.h = w, h
        self.left = self.px(60)
        self.right = w - self.px(60)
        self.y = self.px(55)
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

    def px(self, units: float) -> int:
        return round(units * self.u)

    def font(self, size: float) -> ImageFont.FreeTypeFont:
        s = max(10, self.px(size))
        if s not in self._fonts:
            self._fonts[s] = ImageFont.load_default(size=s)
        return self._fonts[s]

    def width_of(self, s: str, size: float) -> int:
        return int(self.draw.textlength(s, font=self.font(size)))

    def text(self, x: int, y: int, s: str, size: float = 14, bold: bool = False, fill: int = 0) -> None:
        f = self.font(size)
        self.draw.text((x, y), s, font=f, fill=fill)
        if bold:  # Pillow's built-in font has no bold face: overprint, shifted a little
            for dx in range(1, max(2, round(f.size / 18))):
                self.draw.text((x + dx, y), s, font=f, fill=fill)

    def line(self, s: str, size: float = 14, bold: bool = False, align: str = "left",
             x: int | None = None, gap: float = 0.55) -> None:
        w = self.width_of(s, size)
        if x is None:
            x = {"left": self.left, "center": (self.w - w) // 2, "right": self.right - w}[align]
        self.text(x, self.y, s, size, bold)
        self.y += self.px(size * (1 + gap))

    def skip(self, units: float) -> None:
        self.y += self.px(units)

    def rule(self, width: float = 1.5) -> None:
        self.draw.line([(self.left, self.y), (self.right, self.y)], fill=0, width=max(1, self.px(width)))
        self.y += self.px(12)

    def paragraph(self, s: str, size: float = 13.5, indent: int = 0) -> None:
        words, cur, limit = s.split(), "", self.right - self.left - indent
        for word in words:
            trial = f"{cur} {word}".strip()
            if self.width_of(trial, size) > limit and cur:
                self.line(cur, size, x=self.left + indent, gap=0.45)
                cur = word
            else:
                cur = trial
        if cur:
            self.line(cur, size, x=self.left + indent, gap=0.45)
        self.skip(size * 0.7)

    def handwriting(self, x: int, y: int, s: str, rng: random.Random, size: float = 17) -> None:
        """Ink that wobbles: each letter slightly raised or lowered, the word slightly tilted."""
        f = self.font(size)
        w, h = int(self.draw.textlength(s, font=f)) + self.px(20), self.px(size * 1.8)
        mask = Image.new("L", (w, h), 0)
        md = ImageDraw.Draw(mask)
        cx = self.px(6)
        for ch in s:
            md.text((cx, self.px(size * 0.35) + rng.randint(-self.px(1.5), self.px(1.5))), ch, font=f, fill=255)
            cx += int(md.textlength(ch, font=f)) + rng.randint(0, self.px(0.8))
        mask = mask.rotate(rng.uniform(-3, 3), resample=Image.BICUBIC, expand=True)
        self.img.paste(Image.new("L", mask.size, 40), (x, y - self.px(size * 0.3)), mask)

    def table(self, header: list[str], rows: list[list[str]], widths: list[float], size: float = 13) -> None:
        """A ruled grid; `widths` are fractions of the text width."""
        total = self.right - self.left
        xs = [self.left]
        for frac in widths:
            xs.append(xs[-1] + int(frac * total))
        row_h = self.px(size * 2.0)
        top = self.y
        for r, cells in enumerate([header] + rows):
            for c, cell in enumerate(cells):
                tx = xs[c] + self.px(6) if c == 0 else xs[c + 1] - self.px(6) - self.width_of(cell, size)
                self.text(tx, self.y + self.px(size * 0.45), cell, size, bold=(r == 0))
            self.y += row_h
            lw = max(1, self.px(1.5 if r == 0 else 0.8))
            self.draw.line([(xs[0], self.y), (xs[-1], self.y)], fill=0, width=lw)
        for x in xs:
            self.draw.line([(x, top), (x, self.y)], fill=0, width=max(1, self.px(0.8)))
        self.draw.line([(xs[0], top), (xs[-1], top)], fill=0, width=max(1, self.px(1.5)))
        self.skip(18)

    def bar_chart(self, title: str, labels: list[str], values: list[float], shown: list[str],
                  height: float = 230) -> None:
        self.line(title, 13, bold=True, align="center")
        x0, x1 = self.left + self.px(60), self.right - self.px(30)
        y_base = self.y + self.px(height)
        self.draw.line([(x0, self.y), (x0, y_base), (x1, y_base)], fill=0, width=max(1, self.px(1.5)))
        slot = (x1 - x0) // len(labels)
        top_value = max(values) * 1.15
        for i, (lab, v, vs) in enumerate(zip(labels, values, shown)):
            bx = x0 + i * slot + slot // 4
            by = y_base - int((v / top_value) * self.px(height))
            self.draw.rectangle([bx, by, bx + slot // 2, y_base], fill=110 + 25 * (i % 3), outline=0)
            self.text(bx + (slot // 2 - self.width_of(vs, 11)) // 2, by - self.px(17), vs, 11)
            self.text(bx + (slot // 2 - self.width_of(lab, 11)) // 2, y_base + self.px(6), lab, 11)
        self.y = y_base + self.px(40)

    def finish(self, rng: random.Random) -> Image.Image:
        if self.y > self.h:
            raise AssertionError(f"layout overflows its {self.w}x{self.h} page (cursor at {self.y})")
        img = self.img
        if self.w >= 1200:  # large pages are "scans": slightly skewed on the glass
            img = img.rotate(rng.uniform(-0.6, 0.6), resample=Image.BICUBIC, fillcolor=255)
        return img


# ---------------------------------------------------------------- the six kinds of page
def letterhead(c: Canvas, rng: random.Random) -> tuple[str, tuple[str, str, str]]:
    company, city = rng.choice(COMPANIES), rng.choice(CITIES)
    c.line(company.upper(), 20, bold=True, align="center", gap=0.35)
    c.line(f"{rng.randint(100, 9800)} {rng.choice(STREETS)}  -  {city[0]}, {city[1]} {city[2]}", 11,
           align="center")
    c.rule()
    return company, city


def render_form(c: Canvas, rng: random.Random, i: int) -> list[QA]:
    handwritten = i % 2 == 0
    title = FORM_TITLES[i % len(FORM_TITLES)]
    company, _ = letterhead(c, rng)
    c.skip(10)
    c.line(title, 19, bold=True, align="center")
    c.skip(20)
    name, dept, d = person(rng), rng.choice(DEPARTMENTS), date(rng)
    tel, tel_golds = phone(rng)
    amount = rng.randint(120, 9800) + rng.choice([0, 0.5, 0.25, 0.75])
    account = f"{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    approved = rng.random() < 0.5
    fields = [("Name", name), ("Department", dept), ("Date", num_date(d)), ("Telephone", tel),
              ("Account No.", account), ("Amount", money(amount)[0])]
    for label, value in fields:
        c.text(c.left, c.y, f"{label}:", 14, bold=True)
        vx = c.left + c.px(170)
        c.draw.line([(vx, c.y + c.px(22)), (c.right, c.y + c.px(22))], fill=0, width=max(1, c.px(0.8)))
        if handwritten:
            c.handwriting(vx + c.px(10), c.y, value, rng)
        else:
            c.text(vx + c.px(10), c.y, value, 14)
        c.skip(44)
    c.skip(10)
    c.text(c.left, c.y, "Approved:", 14, bold=True)
    box = c.px(16)
    for k, label in enumerate(["Yes", "No"]):
        bx = c.left + c.px(170 + 120 * k)
        c.draw.rectangle([bx, c.y + c.px(2), bx + box, c.y + c.px(2) + box], outline=0, width=max(1, c.px(1.2)))
        if approved == (label == "Yes"):
            c.draw.line([(bx, c.y + c.px(2)), (bx + box, c.y + c.px(2) + box)], fill=0, width=c.px(2.5))
            c.draw.line([(bx + box, c.y + c.px(2)), (bx, c.y + c.px(2) + box)], fill=0, width=c.px(2.5))
        c.text(bx + box + c.px(10), c.y, label, 14)
    c.skip(60)
    c.line(f"Form {rng.randint(100, 990)}-{rng.choice('ABCR')}   {company}", 10)
    kind = ["handwritten", "form"] if handwritten else ["form"]
    return [
        QA("What is the name of the person in the form?", [name], kind),
        QA("What is the amount mentioned in the form?", money(amount), kind),
        QA("What is the telephone number given?", tel_golds, kind),
        QA("What is the account number?", [account], kind),
        QA("What is the title of the form?", [title, title.title()], ["layout"]),
        QA("Is the request approved?", ["yes" if approved else "no"], ["Yes/No", "form"]),
        QA("Which department is mentioned in the form?", [dept], kind),
    ]


def render_receipt(c: Canvas, rng: random.Random, i: int) -> list[QA]:
    store, city = STORES[i % len(STORES)], rng.choice(CITIES)
    c.line(store, 20, bold=True, align="center", gap=0.35)
    c.line(f"{city[0]}, {city[1]}", 12, align="center")
    d = date(rng)
    shown_date = f"{d[1]:02d}/{d[2]:02d}/{d[0]}"
    c.line(f"{shown_date}   {rng.randint(7, 20):02d}:{rng.randint(0, 59):02d}", 12, align="center")
    c.line("-" * 40, 12, align="center")
    items = rng.sample(SHOP_ITEMS, rng.randint(3, 6))
    prices = [round(rng.randint(79, 1899) / 100, 2) for _ in items]
    for item, p in zip(items, prices):
        c.text(c.left, c.y, item, 13)
        s = f"{p:.2f}"
        c.text(c.right - c.width_of(s, 13), c.y, s, 13)
        c.skip(24)
    subtotal = round(sum(prices), 2)
    tax = round(subtotal * 0.06, 2)
    total = round(subtotal + tax, 2)
    c.line("-" * 40, 12, align="center")
    for label, v, bold in [("SUBTOTAL", subtotal, False), ("TAX 6%", tax, False), ("TOTAL", total, True)]:
        c.text(c.left, c.y, label, 14, bold)
        s = f"${v:.2f}"
        c.text(c.right - c.width_of(s, 14), c.y, s, 14, bold)
        c.skip(26)
    pay = rng.choice(["CASH", "VISA", "MASTERCARD", "CHECK"])
    c.skip(10)
    c.line(f"PAID BY {pay}", 12, align="center")
    c.line("THANK YOU!", 13, bold=True, align="center")
    k = rng.randrange(len(items))
    return [
        QA("What is the total amount?", money(total), ["table/list"]),
        QA("What is the name of the store?", [store, store.title()], ["layout"]),
        QA(f"What is the price of the {items[k].lower()}?", money(prices[k]), ["table/list"]),
        QA("What is the date on the receipt?", date_golds(d, shown_date), ["others"]),
        QA("How was the bill paid?", [pay, pay.lower()], ["others"]),
        QA("What is the tax amount?", money(tax), ["table/list"]),
    ]


def render_letter(c: Canvas, rng: random.Random, i: int) -> list[QA]:
    company, _ = letterhead(c, rng)
    d = date(rng)
    meet = later(d, rng)
    c.skip(20)
    c.line(long_date(d), 13.5)
    c.skip(20)
    to_name, from_name = person(rng), person(rng)
    to_city = rng.choice(CITIES)
    for s in [f"Dr. {to_name}", rng.choice(COMPANIES), f"{rng.randint(10, 990)} {rng.choice(STREETS)}",
              f"{to_city[0]}, {to_city[1]} {to_city[2]}"]:
        c.line(s, 13.5, gap=0.3)
    c.skip(20)
    c.line(f"Dear Dr. {to_name.split()[1]}:", 13.5)
    c.skip(6)
    venue, city, committee = rng.choice(VENUES), rng.choice(CITIES)[0], rng.choice(COMMITTEES)
    fee = rng.choice([500, 750, 1000, 1500, 2000])
    c.paragraph(f"Thank you for agreeing to serve on the {committee}. I am pleased to confirm that "
                f"the next meeting will be held at {venue} in {city} on {long_date(meet)}. An agenda "
                f"and the background papers will be sent to you two weeks before the meeting.")
    c.paragraph(f"As discussed, you will receive an honorarium of ${fee:,} in addition to travel "
                f"expenses. Please let my office know if you have any questions.")
    c.skip(10)
    c.line("Sincerely,", 13.5)
    c.skip(40)
    c.line(from_name, 13.5, gap=0.3)
    c.line(rng.choice(["Director", "Vice President", "Program Manager", "Executive Secretary"]), 13.5)
    return [
        QA("To whom is this letter addressed?", [f"Dr. {to_name}", to_name], ["layout"]),
        QA("Who wrote this letter?", [from_name], ["layout"]),
        QA("What is the date of the letter?", date_golds(d, long_date(d)), ["layout"]),
        QA("Where will the meeting be held?", [venue.removeprefix("the "), venue, f"{venue}, {city}"],
           ["free_text"]),
        QA("What is the honorarium amount?", [f"${fee:,}", f"{fee:,}", f"${fee:,}.00"], ["free_text"]),
        QA("What is the name of the company in the letterhead?", [company, company.upper()], ["layout"]),
        QA("In which city will the meeting take place?", [city], ["free_text"]),
    ]


def render_table(c: Canvas, rng: random.Random, i: int) -> list[QA]:
    title, row_head, rows, cols, kind = TABLES[i % len(TABLES)]
    company, _ = letterhead(c, rng)
    n = rng.randint(1, 9)
    c.skip(10)
    c.line(f"Table {n}. {title}", 16, bold=True, align="center")
    c.skip(10)
    if kind == "int":
        values = [[rng.randint(40, 980) for _ in cols] for _ in rows]
        fmt = str
    else:
        values = [[round(rng.randint(5, 150) / 10, 1) for _ in cols] for _ in rows]
        fmt = "{:.1f}".format
    cells = [[r] + [fmt(v) for v in vals] for r, vals in zip(rows, values)]
    totals = [sum(v[j] for v in values) for j in range(len(cols))]
    if kind == "int":
        cells.append(["Total"] + [str(t) for t in totals])
    first = 0.34
    c.table([row_head] + cols, cells, [first] + [(1 - first) / len(cols)] * len(cols))
    c.line(f"Source: {company}, {rng.choice(['internal report', 'annual survey', 'laboratory records'])}.", 10)
    qas = []
    r, j = rng.randrange(len(rows)), rng.randrange(len(cols))
    qas.append(QA(f"What is the value for {rows[r]} under {cols[j]}?", [fmt(values[r][j])], ["table/list"]))
    col = rng.randrange(len(cols))
    best = max(range(len(rows)), key=lambda k: (values[k][col], -k))
    qas.append(QA(f"Which {row_head.lower()} has the highest value in the {cols[col]} column?", [rows[best]], ["table/list"]))
    qas.append(QA("What is the title of the table?", [title, f"Table {n}. {title}"], ["layout", "table/list"]))
    if kind == "int":
        qas.append(QA(f"What is the total for {cols[j]}?", [str(totals[j]), f"{totals[j]:,}"], ["table/list"]))
    if i % 3 == 1:  # some pages also plot the first row
        c.skip(20)
        c.bar_chart(f"Figure {n}. Values for {rows[0]}", cols, values[0], [fmt(v) for v in values[0]])
        peak = max(range(len(cols)), key=lambda k: (values[0][k], -k))
        qas.append(QA(f"In the figure, which bar is the highest for {rows[0]}?", [cols[peak]],
                      ["figure/diagram"]))
    return qas


def render_memo(c: Canvas, rng: random.Random, i: int) -> list[QA]:
    company = rng.choice(COMPANIES)
    c.line(company, 13, align="left", gap=0.2)
    c.line("MEMORANDUM", 24, bold=True, align="left")
    c.rule(2)
    to_name, from_name, d = person(rng), person(rng), date(rng)
    subject = MEMO_SUBJECTS[i % len(MEMO_SUBJECTS)]
    for label, value in [("TO:", to_name), ("FROM:", from_name), ("DATE:", long_date(d)), ("SUBJECT:", subject)]:
        c.text(c.left, c.y, label, 14, bold=True)
        c.text(c.left + c.px(120), c.y, value, 14)
        c.skip(30)
    c.rule()
    deadline = later(d, rng)
    budget = rng.randint(5, 95) * 1000
    c.paragraph(f"This is to inform you that the {subject.lower()} has been scheduled by the "
                f"{rng.choice(DEPARTMENTS)} department. The approved budget for this work is "
                f"${budget:,}.")
    c.paragraph(f"Please send your comments and any changes to me no later than {long_date(deadline)}. "
                f"Copies of the relevant documents are attached.")
    qas = [
        QA("Who is the memo from?", [from_name], ["form"]),
        QA("To whom is the memo addressed?", [to_name], ["form"]),
        QA("What is the subject of the memo?", [subject], ["form"]),
        QA("By what date should comments be sent?", date_golds(deadline, long_date(deadline)), ["free_text"]),
        QA("What is the approved budget?", [f"${budget:,}", f"{budget:,}", f"${budget:,}.00"], ["free_text"]),
    ]
    if i % 2 == 1:
        years = [str(y) for y in range(1992, 1997)]
        vals = [rng.randint(20, 95) for _ in years]
        c.skip(10)
        c.bar_chart("Units shipped (thousands)", years, vals, [str(v) for v in vals])
        top = max(range(len(years)), key=lambda k: (vals[k], -k))
        qas.append(QA("According to the chart, in which year were the most units shipped?", [years[top]],
                      ["figure/diagram"]))
    c.line(f"cc: {person(rng)}", 12)
    return qas


def render_invoice(c: Canvas, rng: random.Random, i: int) -> list[QA]:
    company, _ = letterhead(c, rng)
    c.line("INVOICE", 24, bold=True, align="right")
    number = f"{rng.randint(1000, 99999)}"
    d = date(rng)
    due = later(d, rng)
    client = rng.choice([x for x in COMPANIES if x != company])
    for label, value in [("Invoice No.:", number), ("Date:", long_date(d)), ("Bill to:", client)]:
        c.text(c.left, c.y, label, 14, bold=True)
        c.text(c.left + c.px(140), c.y, value, 14)
        c.skip(28)
    c.skip(14)
    items = rng.sample(INVOICE_ITEMS, rng.randint(3, 5))
    qty = [rng.randint(1, 40) for _ in items]
    unit = [rng.randint(5, 400) + rng.choice([0, 0.5]) for _ in items]
    amounts = [q * u for q, u in zip(qty, unit)]
    rows = [[it, str(q), f"{u:,.2f}", f"{a:,.2f}"] for it, q, u, a in zip(items, qty, unit, amounts)]
    c.table(["Description", "Qty", "Unit price", "Amount"], rows, [0.46, 0.12, 0.2, 0.22])
    total = sum(amounts)
    s = f"TOTAL DUE: ${total:,.2f}"
    c.line(s, 16, bold=True, align="right")
    c.skip(10)
    c.line(f"Payment due by {long_date(due)}. Please quote the invoice number with your payment.", 12)
    k = rng.randrange(len(items))
    return [
        QA("What is the invoice number?", [number], ["form"]),
        QA("What is the total amount due?", money(total), ["form", "table/list"]),
        QA(f"What quantity is billed for {items[k].lower()}?", [str(qty[k])], ["table/list"]),
        QA("When is the payment due?", date_golds(due, long_date(due)), ["free_text"]),
        QA("Who is the invoice billed to?", [client], ["form"]),
    ]


RENDER = {"form": render_form, "receipt": render_receipt, "letter": render_letter,
          "table": render_table, "memo": render_memo, "invoice": render_invoice}
UNIT_WIDTH = {"receipt": 420}


def make_pages(seed: int = SEED) -> list[Page]:
    rng = random.Random(seed)
    pages: list[Page] = []
    seen: set[str] = set()
    for i in range(PER_KIND):
        for kind in KINDS:
            w, h = SIZES[kind][i]
            unit = UNIT_WIDTH.get(kind, 850 if h >= w else 1100)
            c = Canvas(w, h, unit)
            qas = RENDER[kind](c, rng, i)
            image = c.finish(rng)
            # Shifted by the round so that every kind gets 1, 2 and 3 questions somewhere.
            n = QUESTIONS_PER_PAGE[(len(pages) + i) % len(QUESTIONS_PER_PAGE)]
            pages.append(Page(kind, image, pick(qas, n, seen, rng)))
            seen.update(t for qa in pages[-1].qas for t in qa.types)
    return pages


def pick(qas: list[QA], n: int, seen: set[str], rng: random.Random) -> list[QA]:
    """n questions, led by one of a question type the sample lacks so far, so every type a
    page kind can ask about ends up in the sample."""
    fresh = [qa for qa in qas if not set(qa.types) <= seen]
    first = [rng.choice(fresh)] if fresh else []
    rest = [qa for qa in qas if qa not in first]
    return first + rng.sample(rest, n - len(first))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def rows(pages: list[Page], seed: int = SEED) -> dict[str, list]:
    rng = random.Random(seed + 1)
    n_q = sum(len(p.qas) for p in pages)
    qids = rng.sample(range(20000, 65000), n_q)
    doc_ids = sorted(rng.sample(range(1000, 14000), len(pages)))
    cols: dict[str, list] = {k: [] for k in ("questionId", "question", "question_types", "image", "docId",
                                             "ucsf_document_id", "ucsf_document_page_no", "answers",
                                             "data_split")}
    for page, doc_id in zip(pages, doc_ids):
        ucsf = "".join(rng.choices(string.ascii_lowercase, k=4)) + f"{rng.randint(0, 9999):04d}"
        page_no = str(rng.randint(1, 4))
        png = _png(page.image)
        for qa in page.qas:
            cols["questionId"].append(str(qids.pop()))
            cols["question"].append(qa.question)
            cols["question_types"].append(list(qa.types))
            cols["image"].append({"bytes": png, "path": None})
            cols["docId"].append(doc_id)
            cols["ucsf_document_id"].append(ucsf)
            cols["ucsf_document_page_no"].append(page_no)
            cols["answers"].append(list(qa.answers))
            cols["data_split"].append("val")
    return cols


def features():
    import datasets

    return datasets.Features({
        "questionId": datasets.Value("string"),
        "question": datasets.Value("string"),
        "question_types": datasets.Sequence(datasets.Value("string")),
        "image": datasets.Image(),
        "docId": datasets.Value("int64"),
        "ucsf_document_id": datasets.Value("string"),
        "ucsf_document_page_no": datasets.Value("string"),
        "answers": datasets.Sequence(datasets.Value("string")),
        "data_split": datasets.Value("string"),
    })


def build(out_dir: Path) -> Path:
    return write_parquet(rows(make_pages()), features(), out_dir / OUT_NAME)


if __name__ == "__main__":
    out = build(Path(__file__).resolve().parent.parent / "samples" / "docvqa")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
