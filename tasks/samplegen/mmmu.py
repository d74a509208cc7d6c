"""Draw the shipped MMMU sample: 30 synthetic questions in the MMMU / lmms-lab/MMMU schema.

Real MMMU items come from textbooks and exams and cannot be shipped, so this script draws
look-alikes with matplotlib: charts, geometry, timelines, circuits, graphs, colour swatches and
a music staff, each question answerable from its picture(s). 18 subjects in all 6 disciplines;
multiple-choice and open questions; some reference two or three images (in the question or as
options, "<image 1>" ... as MMMU writes them); one open answer is a list literal as MMMU stores
some. Columns and types follow the hub: `options` is a string holding a Python list, empty
image slots are None. Deterministic: fixed data, PNG written without a timestamp.

Run: python -m evalkit.tasks.samplegen.mmmu  (writes tasks/samples/mmmu/validation-00000-of-00001.parquet)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from evalkit.tasks.samplegen import png, subplots, write_parquet

OUT_NAME = "validation-00000-of-00001.parquet"
N_SLOTS = 7


def _fig(w: float = 4.2, h: float = 3.0):
    return subplots(w, h)


# ---------------------------------------------------------------- drawings
def bar_chart(labels, values, title, ylabel="", fmt="{:g}") -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig()
        bars = ax.bar(labels, values, color="#4c72b0")
        for b, v in zip(bars, values):
            ax.text(b.get_x() + b.get_width() / 2, v, fmt.format(v), ha="center", va="bottom", fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, max(values) * 1.2)
        return png(fig)
    return draw


def line_chart(xs, ys, title, xlabel, ylabel, annotate=True) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig()
        ax.plot(xs, ys, marker="o", color="#c44e52")
        if annotate:
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:g}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=9)
        ax.set_xticks(list(xs))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(min(0, min(ys)), max(ys) * 1.25)
        return png(fig)
    return draw


def pie_chart(labels, values, title) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.6, 3.0)
        ax.pie(values, labels=labels, autopct="%d%%", startangle=90, counterclock=False,
               colors=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][:len(values)])
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def polygon(points, labels, side_labels=(), title="") -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.4, 3.0)
        xs = [p[0] for p in points] + [points[0][0]]
        ys = [p[1] for p in points] + [points[0][1]]
        ax.plot(xs, ys, color="black")
        for (x, y), name in zip(points, labels):
            ax.text(x, y, name, fontsize=11, ha="center", va="center",
                    bbox=dict(boxstyle="circle", fc="white", ec="none"))
        for (x, y), text in side_labels:
            ax.text(x, y, text, fontsize=11, color="#1f3f9f", ha="center", va="center")
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def function_plot(fn, x0, x1, name) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.4, 2.8)
        xs = [x0 + (x1 - x0) * i / 100 for i in range(101)]
        ax.plot(xs, [fn(x) for x in xs], color="#55a868")
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.grid(True, alpha=0.3)
        ax.set_title(name, fontsize=10)
        return png(fig)
    return draw


def supply_demand(demand_shift=0.0, labels=True) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.6, 3.0)
        q = [0, 100]
        ax.plot(q, [80 + demand_shift, 0 + demand_shift], color="#c44e52", label="Demand")
        ax.plot(q, [0, 80], color="#4c72b0", label="Supply")
        if labels:
            ax.plot([50], [40], "ko")
            ax.annotate("E (50, 40)", (50, 40), xytext=(56, 30), fontsize=9)
        ax.set_xlabel("Quantity")
        ax.set_ylabel("Price ($)")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        return png(fig)
    return draw


def table_image(rows, title) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.8, 0.6 + 0.35 * len(rows))
        ax.axis("off")
        t = ax.table(cellText=rows[1:], colLabels=rows[0], loc="center", cellLoc="left")
        t.auto_set_font_size(False)
        t.set_fontsize(10)
        t.scale(1, 1.4)
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def swatches(colors, numbered=True) -> Callable[[], bytes]:
    def draw():
        from matplotlib.patches import Rectangle

        fig, ax = _fig(0.6 + 1.2 * len(colors), 1.6)
        for i, c in enumerate(colors):
            ax.add_patch(Rectangle((i * 1.2, 0), 1, 1, color=c))
            if numbered:
                ax.text(i * 1.2 + 0.5, -0.25, str(i + 1), ha="center", fontsize=11)
        ax.set_xlim(-0.1, 1.2 * len(colors))
        ax.set_ylim(-0.5, 1.1)
        ax.set_aspect("equal")
        ax.axis("off")
        return png(fig)
    return draw


def layout(symmetric: bool) -> Callable[[], bytes]:
    def draw():
        from matplotlib.patches import Rectangle

        fig, ax = _fig(2.4, 3.0)
        ax.add_patch(Rectangle((0, 0), 10, 13, fill=False, lw=2))
        boxes = ([(1, 9, 8, 3), (1, 5, 3.5, 3), (5.5, 5, 3.5, 3), (2, 1, 6, 3)] if symmetric else
                 [(1, 9, 5, 3), (6.5, 6, 2.5, 6), (1, 5, 4, 3), (3, 1, 6, 2)])
        for x, y, w, h in boxes:
            ax.add_patch(Rectangle((x, y), w, h, color="#8172b3"))
        ax.set_xlim(-0.5, 10.5)
        ax.set_ylim(-0.5, 13.5)
        ax.set_aspect("equal")
        ax.axis("off")
        return png(fig)
    return draw


def staff(n_notes: int) -> Callable[[], bytes]:
    def draw():
        from matplotlib.patches import Ellipse

        fig, ax = _fig(4.2, 1.6)
        for i in range(5):
            ax.plot([0, 10], [i, i], color="black", lw=1)
        pitches = [0, 1.5, 3, 2, 1, 3.5, 2.5]
        for k in range(n_notes):
            x, y = 1.2 + k * 1.8, pitches[k % len(pitches)]
            ax.add_patch(Ellipse((x, y), 0.9, 0.75, angle=20, color="black"))
            ax.plot([x + 0.42, x + 0.42], [y, y + 3.2], color="black", lw=1.2)
        ax.set_xlim(-0.2, 10.2)
        ax.set_ylim(-1, 7)
        ax.set_aspect("equal")
        ax.axis("off")
        return png(fig)
    return draw


def timeline(events) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(4.6, 2.0)
        years = [y for y, _ in events]
        ax.plot([min(years) - 10, max(years) + 10], [0, 0], color="black")
        for i, (y, name) in enumerate(events):
            ax.plot([y], [0], "o", color="#c44e52")
            dy = 0.6 if i % 2 == 0 else -0.8
            ax.text(y, dy, f"{y}\n{name}", ha="center", fontsize=8)
        ax.set_ylim(-1.3, 1.5)
        ax.axis("off")
        return png(fig)
    return draw


def graph(nodes, edges) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.0, 2.6)
        for a, b in edges:
            ax.plot([nodes[a][0], nodes[b][0]], [nodes[a][1], nodes[b][1]], color="black", zorder=1)
        for name, (x, y) in nodes.items():
            ax.scatter([x], [y], s=380, color="#dd8452", zorder=2)
            ax.text(x, y, name, ha="center", va="center", fontsize=10, zorder=3)
        ax.set_aspect("equal")
        ax.margins(0.2)
        ax.axis("off")
        return png(fig)
    return draw


def series_circuit(ohms) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(4.4, 2.2)
        n = len(ohms)
        ax.plot([0, 0], [0, 2], color="black")  # battery side
        ax.plot([-0.25, 0.25], [1.1, 1.1], color="black", lw=2)
        ax.plot([-0.12, 0.12], [0.9, 0.9], color="black", lw=2)
        ax.text(-0.5, 1.0, "12 V", ha="right", va="center", fontsize=9)
        ax.plot([0, 10], [0, 0], color="black")
        ax.plot([10, 10], [0, 2], color="black")
        x = 0.0
        step = 10 / n
        for r in ohms:
            zig_x = [x + step * 0.3 + step * 0.4 * i / 6 for i in range(7)]
            zig_y = [2 + (0.25 if i % 2 else -0.25) * (0 < i < 6) for i in range(7)]
            ax.plot([x, zig_x[0]], [2, 2], color="black")
            ax.plot(zig_x, zig_y, color="black")
            ax.plot([zig_x[-1], x + step], [2, 2], color="black")
            ax.text(x + step / 2, 2.55, f"{r} Ω", ha="center", fontsize=10)
            x += step
        ax.set_xlim(-1.5, 10.5)
        ax.set_ylim(-0.5, 3.0)
        ax.axis("off")
        return png(fig)
    return draw


def two_lines(xs, series: dict, title, xlabel, ylabel) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig()
        for name, ys in series.items():
            ax.plot(xs, ys, marker="o", label=name)
        ax.axhline(50, color="grey", ls="--", lw=0.8)
        ax.set_xticks(list(xs))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        return png(fig)
    return draw


# ---------------------------------------------------------------- the questions
@dataclass
class Item:
    subject: str
    question: str
    answer: str
    images: list[Callable[[], bytes]]
    options: list[str] = field(default_factory=list)  # empty: an open question
    subfield: str = ""
    img_type: str = "Plots and Charts"
    difficulty: str = "Easy"
    explanation: str = ""


TIMELINE = [(1789, "French Revolution"), (1815, "Battle of Waterloo"), (1848, "Revolutions of 1848")]
CYCLE = graph({"A": (0, 0), "B": (2, 0), "C": (1, 1.6)}, [("A", "B"), ("B", "C"), ("C", "A")])
TREE = graph({"A": (1, 1.6), "B": (0, 0), "C": (2, 0), "D": (2.8, -1.2)}, [("A", "B"), ("A", "C"), ("C", "D")])
FOREST = graph({"A": (0, 0), "B": (0, 1.6), "C": (2, 0), "D": (2, 1.6)}, [("A", "B"), ("C", "D")])

ITEMS: list[Item] = [
    Item("Math", "What is the perimeter of the triangle shown in <image 1>?", "B",
         [polygon([(0, 0), (4, 0), (0, 3)], ["A", "B", "C"],
                  [((2, -0.35), "4"), ((-0.35, 1.5), "3"), ((2.3, 1.75), "5")])],
         ["10", "12", "14", "15"], "Geometry", "Diagrams"),
    Item("Math", "What is the area of the rectangle in <image 1>?", "24",
         [polygon([(0, 0), (6, 0), (6, 4), (0, 4)], ["A", "B", "C", "D"], [((3, -0.4), "6"), ((6.4, 2), "4")])],
         subfield="Geometry", img_type="Diagrams"),
    Item("Math", "<image 1> shows y = f(x) and <image 2> shows y = g(x). "
                 "Which of them is increasing on the interval [0, 2]?",
         "A", [function_plot(lambda x: x * x, -2, 2, "y = f(x)"), function_plot(lambda x: 4 - x, -2, 2, "y = g(x)")],
         ["f only", "g only", "both f and g", "neither"], "Calculus", "Plots and Charts", "Medium"),
    Item("Math", "The line in <image 1> passes through (0, 1) and (2, 2). What is its slope?", "['0.5', '1/2']",
         [function_plot(lambda x: 0.5 * x + 1, -2, 4, "y = mx + c")], subfield="Algebra", difficulty="Medium"),
    Item("Physics", "<image 1> is a velocity-time graph. "
                    "During which interval is the magnitude of the acceleration greatest?",
         "C", [line_chart([0, 2, 5, 6], [0, 4, 4, 10], "velocity vs time", "t (s)", "v (m/s)")],
         ["0-2 s", "2-5 s", "5-6 s", "It is the same throughout"], "Classical Mechanics", difficulty="Medium"),
    Item("Physics", "The velocity-time graph in <image 1> is flat. "
                    "What distance, in metres, does the object cover between t = 0 s and t = 4 s?",
         "12", [line_chart([0, 1, 2, 3, 4], [3, 3, 3, 3, 3], "velocity vs time", "t (s)", "v (m/s)")],
         subfield="Classical Mechanics"),
    Item("Chemistry", "According to <image 1>, which liquid has the lowest boiling point?", "C",
         [bar_chart(["Water", "Ethanol", "Acetone", "Methanol"], [100, 78, 56, 65], "Boiling point", "°C")],
         ["Water", "Ethanol", "Acetone", "Methanol"], "Physical Chemistry"),
    Item("Chemistry", "<image 1> shows the composition of dry air. Which gas makes up the largest share?", "Nitrogen",
         [pie_chart(["Nitrogen", "Oxygen", "Other"], [78, 21, 1], "Dry air by volume")],
         subfield="Inorganic Chemistry"),
    Item("Geography", "Which land use covers the largest share of the region in <image 1>?", "A",
         [pie_chart(["Forest", "Farmland", "Urban", "Water"], [40, 30, 10, 20], "Land use")],
         ["Forest", "Farmland", "Urban", "Water"], "Human Geography"),
    Item("Economics", "What is the equilibrium price, in dollars, in the market shown in <image 1>?", "40",
         [supply_demand()], subfield="Microeconomics", img_type="Plots and Charts"),
    Item("Economics", "<image 1> shows a market before a change and <image 2> the same market after it. "
                      "What changed?", "A",
         [supply_demand(0, labels=False), supply_demand(20, labels=False)],
         ["Demand increased", "Demand decreased", "Supply increased", "Supply decreased"], "Microeconomics",
         difficulty="Medium"),
    Item("Finance", "In which year was the share price in <image 1> highest?", "C",
         [line_chart([2019, 2020, 2021, 2022, 2023], [20, 25, 22, 30, 28], "Share price", "year", "$")],
         ["2019", "2020", "2022", "2023"], "Investment"),
    Item("Finance", "What is the sum of the three cash flows shown in <image 1>, in dollars?", "600",
         [bar_chart(["Year 1", "Year 2", "Year 3"], [100, 200, 300], "Cash flows", "$")], subfield="Corporate Finance"),
    Item("Accounting", "What are the total assets, in dollars, listed in <image 1>?", "2000",
         [table_image([["Asset", "Amount ($)"], ["Cash", "500"], ["Inventory", "300"], ["Equipment", "1,200"]],
                      "Assets")],
         subfield="Financial Accounting", img_type="Tables"),
    Item("Accounting", "Based on the balance sheet in <image 1>, what is the owner's equity?", "B",
         [table_image([["Item", "Amount ($)"], ["Total assets", "2,000"], ["Total liabilities", "800"]],
                      "Balance sheet")],
         ["$800", "$1,200", "$2,000", "$2,800"], "Financial Accounting", "Tables", "Medium"),
    Item("Art_Theory", "The swatches in <image 1> are numbered 1 to 3. Which one shows a secondary colour?", "B",
         [swatches(["#d62728", "#2ca02c", "#1f77b4"])], ["Swatch 1", "Swatch 2", "Swatch 3"], "Color Theory",
         "Paintings"),
    Item("Art_Theory", "Which of the following palettes uses only cool colours?", "B",
         [swatches(["#d62728", "#ff7f0e"], False), swatches(["#1f77b4", "#17becf"], False),
          swatches(["#ffdd00", "#d62728"], False)],
         ["<image 1>", "<image 2>", "<image 3>"], "Color Theory", "Paintings", "Medium"),
    Item("Design", "Which page layout is mirror-symmetric about its vertical axis?", "A",
         [layout(True), layout(False)], ["<image 1>", "<image 2>"], "Graphic Design", "Diagrams"),
    Item("Music", "How many notes are written on the staff in <image 1>?", "5", [staff(5)],
         subfield="Music Theory", img_type="Sheet Music"),
    Item("Public_Health", "In which week did reported cases peak in <image 1>?", "B",
         [line_chart([1, 2, 3, 4, 5, 6], [5, 12, 30, 22, 15, 8], "Reported cases", "week", "cases")],
         ["Week 2", "Week 3", "Week 4", "Week 5"], "Epidemiology"),
    Item("Public_Health", "What is the vaccination rate, in percent, of Region B in <image 1>?", "72",
         [bar_chart(["Region A", "Region B", "Region C"], [64, 72, 58], "Vaccination rate", "%")],
         subfield="Epidemiology"),
    Item("Clinical_Medicine", "<image 1> shows a patient's heart rate over five hours. "
                              "What was the highest rate recorded?", "B",
         [line_chart([1, 2, 3, 4, 5], [72, 80, 95, 110, 90], "Heart rate", "hour", "bpm")],
         ["95 bpm", "110 bpm", "90 bpm", "80 bpm"], "Cardiology"),
    Item("Pharmacy", "In <image 1>, which drug reaches a 50% response at the lower dose?", "A",
         [two_lines([0, 2, 4, 6, 8, 10], {"Drug X": [0, 50, 75, 88, 95, 98], "Drug Y": [0, 10, 22, 36, 50, 62]},
                    "Dose-response", "dose (mg)", "response (%)")],
         ["Drug X", "Drug Y", "Both at the same dose", "Neither"], "Pharmacology", difficulty="Medium"),
    Item("History", "According to the timeline in <image 1>, which event came first?", "B", [timeline(TIMELINE)],
         ["Battle of Waterloo", "French Revolution", "Revolutions of 1848"], "European History", "Diagrams"),
    Item("History", "How many years separate the first and the last event on the timeline in <image 1>?", "59",
         [timeline(TIMELINE)], subfield="European History", img_type="Diagrams"),
    Item("Psychology", "In <image 1>, which group reports the highest mean stress score?", "B",
         [bar_chart(["Students", "Nurses", "Teachers"], [7.2, 8.1, 6.5], "Mean stress score (0-10)")],
         ["Students", "Nurses", "Teachers"], "Health Psychology"),
    Item("Sociology", "What percentage of respondents in <image 1> answered 'Agree'?", "45",
         [pie_chart(["Agree", "Neutral", "Disagree"], [45, 25, 30], "Survey responses")], subfield="Research Methods"),
    Item("Computer_Science", "How many edges does the graph in <image 1> have?", "6",
         [graph({"1": (0, 0), "2": (2, 0), "3": (2, 2), "4": (0, 2), "5": (1, 3.2)},
                [("1", "2"), ("2", "3"), ("3", "4"), ("4", "1"), ("3", "5"), ("4", "5")])],
         subfield="Data Structure and Algorithm", img_type="Diagrams"),
    Item("Computer_Science", "<image 1>, <image 2> and <image 3> show three graphs. "
                             "Which one is a tree (connected, without cycles)?",
         "B", [CYCLE, TREE, FOREST], ["<image 1>", "<image 2>", "<image 3>"], "Data Structure and Algorithm",
         "Diagrams", "Medium"),
    Item("Electronics", "What is the total resistance, in ohms, of the series circuit in <image 1>?", "60",
         [series_circuit([10, 20, 30])], subfield="Circuits", img_type="Diagrams"),
]


def rows() -> dict[str, list]:
    cols = ["id", "question", "options", "explanation"] + [f"image_{k}" for k in range(1, N_SLOTS + 1)] + [
        "img_type", "answer", "topic_difficulty", "question_type", "subfield"]
    out: dict[str, list] = {c: [] for c in cols}
    counters: dict[str, int] = {}
    for item in ITEMS:
        counters[item.subject] = counters.get(item.subject, 0) + 1
        pngs = [draw() for draw in item.images]
        out["id"].append(f"validation_{item.subject}_{counters[item.subject]}")
        out["question"].append(item.question)
        out["options"].append(repr(item.options))  # the hub stores the list as its repr
        out["explanation"].append(item.explanation)
        for k in range(1, N_SLOTS + 1):
            out[f"image_{k}"].append({"bytes": pngs[k - 1], "path": None} if k <= len(pngs) else None)
        out["img_type"].append(repr([item.img_type]))
        out["answer"].append(item.answer)
        out["topic_difficulty"].append(item.difficulty)
        out["question_type"].append("multiple-choice" if item.options else "open")
        out["subfield"].append(item.subfield)
    return out


def features():
    import datasets

    f = {"id": datasets.Value("string"), "question": datasets.Value("string"),
         "options": datasets.Value("string"), "explanation": datasets.Value("string")}
    f.update({f"image_{k}": datasets.Image() for k in range(1, N_SLOTS + 1)})
    f.update({c: datasets.Value("string") for c in
              ("img_type", "answer", "topic_difficulty", "question_type", "subfield")})
    return datasets.Features(f)


def build(out_dir: Path) -> Path:
    return write_parquet(rows(), features(), out_dir / OUT_NAME)


if __name__ == "__main__":
    out = build(Path(__file__).resolve().parent.parent / "samples" / "mmmu")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
