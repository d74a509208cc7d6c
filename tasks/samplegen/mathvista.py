"""Draw the shipped MathVista sample: 30 synthetic problems in the AI4Math/MathVista schema.

Real MathVista images come from 31 source datasets with their own licences, so this script
draws look-alikes with matplotlib -- bar charts, line plots, pie charts, scatter plots,
function plots, tables and geometry figures -- each problem answerable from its figure. It
covers multi_choice (answer = the choice text) and free_form with integer, float (precision 1
and 2) and list answers, some with a unit. `query` is built as the benchmark builds it
(evaluation/build_query.py): the hint for the answer type, "Question: ..." (plus " (Unit: u)"),
then "Choices:" and "(A) ..." lines. Deterministic: fixed data, PNG written without a timestamp.

Run: python -m evalkit.tasks.samplegen.mathvista  (writes tasks/samples/mathvista/testmini-00000-of-00001.parquet)
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evalkit.tasks.samplegen import png, subplots, write_parquet

OUT_NAME = "testmini-00000-of-00001.parquet"

HINTS = {
    "multi_choice": ("Hint: Please answer the question and provide the correct option letter, "
                     "e.g., A, B, C, D, at the end."),
    "integer": ("Hint: Please answer the question requiring an integer answer and provide the final value, "
                "e.g., 1, 2, 3, at the end."),
    "float1": ("Hint: Please answer the question requiring a floating-point number with one decimal place and "
               "provide the final value, e.g., 1.2, 1.3, 1.4, at the end."),
    "float2": ("Hint: Please answer the question requiring a floating-point number with two decimal places and "
               "provide the final value, e.g., 1.23, 1.34, 1.45, at the end."),
    "list": ("Hint: Please answer the question requiring a Python list as an answer and provide the final list, "
             "e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end."),
}


def _fig(w: float = 4.4, h: float = 3.2):
    return subplots(w, h)


# ---------------------------------------------------------------- drawings
def bars(labels, values, title="", labelled=True, horizontal=False) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig()
        if horizontal:
            ax.barh(labels, values, color="#55a868")
        else:
            rects = ax.bar(labels, values, color="#4c72b0")
            if labelled:
                for r, v in zip(rects, values):
                    ax.text(r.get_x() + r.get_width() / 2, v, f"{v:g}", ha="center", va="bottom", fontsize=9)
            ax.set_ylim(0, max(values) * 1.2)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x" if horizontal else "y", alpha=0.3)
        return png(fig)
    return draw


def lines(xs, ys, title="", ylabel="") -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig()
        ax.plot(xs, ys, marker="o", color="#c44e52")
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:g}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=9)
        ax.set_xticks(list(xs))
        ax.set_ylim(min(0, min(ys)), max(ys) * 1.25)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        return png(fig)
    return draw


def pie(labels, values, title="") -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.6, 3.2)
        ax.pie(values, labels=labels, autopct="%d%%", startangle=90, counterclock=False,
               colors=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][:len(values)])
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def scatter(points, title="", hline=None, annotate=False) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig()
        ax.scatter([p[0] for p in points], [p[1] for p in points], color="#8172b3")
        if annotate:
            for x, y in points:
                ax.annotate(f"({x:g}, {y:g})", (x, y), textcoords="offset points", xytext=(0, 7), ha="center",
                            fontsize=8)
            ax.margins(0.2)
        if hline is not None:
            ax.axhline(hline, color="grey", ls="--", lw=1)
        ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def function(fn, x0, x1, title) -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.8, 3.2)
        xs = [x0 + (x1 - x0) * i / 200 for i in range(201)]
        ax.plot(xs, [fn(x) for x in xs], color="#55a868")
        ax.axhline(0, color="black", lw=0.8)
        ax.axvline(0, color="black", lw=0.8)
        ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def table(rows, title="") -> Callable[[], bytes]:
    def draw():
        fig, ax = _fig(3.6, 0.7 + 0.36 * len(rows))
        ax.axis("off")
        t = ax.table(cellText=rows[1:], colLabels=rows[0], loc="center", cellLoc="left")
        t.auto_set_font_size(False)
        t.set_fontsize(10)
        t.scale(1, 1.4)
        ax.set_title(title, fontsize=10)
        return png(fig)
    return draw


def figure(points, names, labels=(), circle=None, arcs=()) -> Callable[[], bytes]:
    """A polygon with named vertices, side/angle labels, and optionally a circle (cx, cy, r)."""
    def draw():
        from matplotlib.patches import Circle

        fig, ax = _fig(3.4, 3.0)
        if points:
            xs = [p[0] for p in points] + [points[0][0]]
            ys = [p[1] for p in points] + [points[0][1]]
            ax.plot(xs, ys, color="black")
        for (x, y), n in zip(points, names):
            ax.text(x, y, n, fontsize=11, ha="center", va="center", bbox=dict(boxstyle="circle", fc="white", ec="none"))
        if circle:
            cx, cy, r = circle
            ax.add_patch(Circle((cx, cy), r, fill=False, color="black"))
            ax.plot([cx, cx + r], [cy, cy], color="black")
            ax.plot([cx], [cy], "ko", ms=3)
        for (x, y), text in labels:
            ax.text(x, y, text, fontsize=11, color="#1f3f9f", ha="center", va="center")
        ax.set_aspect("equal")
        ax.margins(0.15)
        ax.axis("off")
        return png(fig)
    return draw


# ---------------------------------------------------------------- the problems
@dataclass
class Item:
    question: str
    answer: str
    draw: Callable[[], bytes]
    context: str
    skills: list[str]
    answer_type: str = "integer"  # text (multi_choice) | integer | float | list
    choices: list[str] | None = None
    precision: float | None = None
    unit: str | None = None
    task: str = "figure question answering"
    category: str = "math-targeted-vqa"
    grade: str = "high school"


STAT, ARITH, ALG, GEOM, LOGIC, SCI = ("statistical reasoning", "arithmetic reasoning", "algebraic reasoning",
                                      "geometry reasoning", "logical reasoning", "scientific reasoning")
YEARS = [2015, 2016, 2017, 2018, 2019, 2020]

ITEMS: list[Item] = [
    Item("What is the value of the largest bar?", "7", bars(["a", "b", "c", "d"], [3, 7, 5, 2]), "bar chart", [STAT],
         category="general-vqa", grade="not applicable"),
    Item("How many bars have a value larger than 4?", "2", bars(["red", "blue", "green", "gray"], [6, 3, 8, 4]),
         "bar chart", [STAT, ARITH], grade="elementary school"),
    Item("What is the difference between the largest and the smallest bar?", "9.3",
         bars(["P", "Q", "R"], [12.5, 3.2, 8.0]), "bar chart", [STAT, ARITH], "float", precision=1.0),
    Item("What is the mean of the three bars?", "3.2", bars(["x", "y", "z"], [2.0, 3.0, 4.5]), "bar chart",
         [STAT, ARITH], "float", precision=1.0),
    Item("Which bar has the second largest value?", "Tue", bars(["Mon", "Tue", "Wed", "Thu"], [14, 21, 25, 9]),
         "bar chart", [STAT], "text", choices=["Mon", "Tue", "Wed", "Thu"], category="general-vqa"),
    Item("How many bars are there in the chart?", "5", bars(["A", "B", "C", "D", "E"], [4, 6, 1, 3, 5],
         labelled=False, horizontal=True), "bar chart", [ARITH], grade="elementary school", category="general-vqa"),
    Item("In which year was the value highest?", "2018", lines(YEARS, [12, 15, 14, 22, 18, 16], "Sales", "units"),
         "line plot", [STAT], "text", choices=["2016", "2017", "2018", "2019"]),
    Item("What is the average of the values shown for 2015, 2016 and 2017?", "1.83",
         lines(YEARS[:3], [1.0, 2.0, 2.5], "Rainfall", "cm"), "line plot", [STAT, ARITH], "float", precision=2.0),
    Item("Between which two consecutive years did the line graph see its largest increase?", "[2017, 2018]",
         lines(YEARS, [12, 15, 14, 22, 18, 16], "Sales", "units"), "line plot", [STAT], "list"),
    Item("Which two years have the same value?", "[2016, 2019]", lines(YEARS, [30, 34, 31, 29, 34, 40], "Visitors",
         "thousands"), "line plot", [STAT], "list"),
    Item("What is the value in 2017?", "31", lines(YEARS, [30, 34, 31, 29, 34, 40], "Visitors", "thousands"),
         "line plot", [STAT], category="general-vqa", grade="not applicable"),
    Item("What percentage does the largest slice represent?", "45",
         pie(["Rent", "Food", "Travel", "Other"], [45, 25, 20, 10], "Budget"), "pie chart", [STAT]),
    Item("Which category is the smallest?", "Other", pie(["Rent", "Food", "Travel", "Other"], [45, 25, 20, 10],
         "Budget"), "pie chart", [STAT], "text", choices=["Rent", "Food", "Travel", "Other"], category="general-vqa"),
    Item("What is the ratio of the Cats slice to the Dogs slice?", "1.5",
         pie(["Cats", "Dogs", "Birds", "Fish"], [30, 20, 35, 15], "Pets"), "pie chart", [STAT, ARITH], "float",
         precision=1.0),
    Item("What is the y-intercept of the line?", "1", function(lambda x: 2 * x + 1, -3, 3, "y = 2x + 1"),
         "function plot", [ALG]),
    Item("How many times does the graph cross the x-axis?", "2", function(lambda x: x * x - 4, -3.5, 3.5, "f(x)"),
         "function plot", [ALG]),
    Item("Is the function increasing on the interval shown?", "yes", function(lambda x: 0.5 * x + 1, 0, 6, "g(x)"),
         "function plot", [ALG], "text", choices=["yes", "no"]),
    Item("What is the slope of the line?", "0.5", function(lambda x: 0.5 * x, -4, 4, "h(x)"), "function plot",
         [ALG], "float", precision=1.0),
    Item("Which of the following is the equation of the plotted curve?", "y = x^2",
         function(lambda x: x * x, -2, 2, "y = ?"), "function plot", [ALG], "text",
         choices=["y = x^2", "y = 2x", "y = x^3", "y = -x^2"], grade="college"),
    Item("The triangle has legs of 3 and 4. What is the length of the hypotenuse AB?", "5",
         figure([(0, 0), (4, 0), (0, 3)], ["C", "A", "B"], [((2, -0.4), "4"), ((-0.4, 1.5), "3")]),
         "geometry diagram", [GEOM, ALG], task="geometry problem solving"),
    Item("What is the area of the circle with center O?", "12.57",
         figure([], [], [((1, 0.3), "r = 2"), ((0, -0.35), "O")], circle=(0, 0, 2)), "geometry diagram",
         [GEOM, ARITH], "float", precision=2.0, task="geometry problem solving"),
    Item("In triangle ABC, angle A is 50° and angle B is 60°. What is the measure of angle C?", "70°",
         figure([(0, 0), (5, 0), (2.2, 3.4)], ["A", "B", "C"], [((0.8, 0.3), "50°"), ((4.3, 0.3), "60°")]),
         "geometry diagram", [GEOM], "text", choices=["60°", "70°", "80°", "90°"], task="geometry problem solving"),
    Item("What is the perimeter of the rectangle?", "16",
         figure([(0, 0), (5, 0), (5, 3), (0, 3)], ["A", "B", "C", "D"], [((2.5, -0.4), "5 cm"), ((5.7, 1.5), "3 cm")]),
         "geometry diagram", [GEOM, ARITH], unit="cm", task="geometry problem solving", grade="elementary school"),
    Item("What is the length of side AC?", "13",
         figure([(0, 0), (12, 0), (12, 5)], ["A", "B", "C"], [((6, -0.9), "12"), ((12.9, 2.5), "5")]),
         "geometry diagram", [GEOM, ALG], "text", choices=["10", "12", "13", "15"], task="geometry problem solving"),
    Item("How many points lie above the dashed line?", "3",
         scatter([(1, 2), (2, 6), (3, 4), (4, 7), (5, 3), (6, 8)], "Measurements", hline=5), "scatter plot",
         [STAT], category="general-vqa"),
    Item("What kind of correlation do x and y show?", "positive",
         scatter([(1, 1.2), (2, 2.1), (3, 2.8), (4, 4.3), (5, 4.9), (6, 6.2)], "x vs y"), "scatter plot",
         [STAT, SCI], "text", choices=["positive", "negative", "none"], grade="college"),
    Item("What is the x-coordinate of the rightmost point?", "7.25",
         scatter([(1.5, 3), (3.75, 1), (7.25, 2.5), (5, 4)], "Samples", annotate=True), "scatter plot", [STAT], "float",
         precision=2.0),
    Item("How much do a pen and a notebook cost together?", "4.65",
         table([["Item", "Price"], ["Pen", "$1.25"], ["Notebook", "$3.40"], ["Ruler", "$0.90"]], "Price list"),
         "table", [ARITH], "float", precision=2.0, unit="$", task="math word problem", grade="elementary school"),
    Item("What is the total number of students?", "36",
         table([["Class", "Students"], ["A", "12"], ["B", "15"], ["C", "9"]], "Enrollment"), "table", [ARITH],
         task="math word problem", grade="elementary school"),
    Item("Which item is the most expensive?", "Notebook",
         table([["Item", "Price"], ["Pen", "$1.25"], ["Notebook", "$3.40"], ["Ruler", "$0.90"]], "Price list"),
         "table", [ARITH], "text", choices=["Pen", "Notebook", "Ruler"], task="math word problem",
         category="general-vqa", grade="elementary school"),
]


def build_query(item: Item) -> str:
    if item.choices:
        hint = HINTS["multi_choice"]
    elif item.answer_type == "float":
        hint = HINTS[f"float{int(item.precision)}"]
    else:
        hint = HINTS[item.answer_type]
    question = f"Question: {item.question}" + (f" (Unit: {item.unit})" if item.unit else "")
    parts = [hint, question]
    if item.choices:
        parts.append("\n".join(["Choices:"] + [f"({chr(ord('A') + i)}) {c}" for i, c in enumerate(item.choices)]))
    return "\n".join(parts)


def rows() -> dict[str, list]:
    from PIL import Image

    cols = ["pid", "question", "image", "decoded_image", "choices", "unit", "precision", "answer",
            "question_type", "answer_type", "metadata", "query"]
    out: dict[str, list] = {c: [] for c in cols}
    for i, item in enumerate(ITEMS, 1):
        png = item.draw()
        w, h = Image.open(io.BytesIO(png)).size
        out["pid"].append(str(i))
        out["question"].append(item.question)
        out["image"].append(f"images/{i}.png")
        out["decoded_image"].append({"bytes": png, "path": None})
        out["choices"].append(item.choices)
        out["unit"].append(item.unit)
        out["precision"].append(item.precision)
        out["answer"].append(item.answer)
        out["question_type"].append("multi_choice" if item.choices else "free_form")
        out["answer_type"].append(item.answer_type)
        out["metadata"].append({
            "category": item.category, "context": item.context, "grade": item.grade, "img_height": h,
            "img_width": w, "language": "english", "skills": item.skills, "source": "evalkit-synthetic",
            "split": "testmini", "task": item.task})
        out["query"].append(build_query(item))
    return out


def features():
    import datasets

    s = datasets.Value("string")
    return datasets.Features({
        "pid": s, "question": s, "image": s, "decoded_image": datasets.Image(),
        "choices": datasets.Sequence(s), "unit": s, "precision": datasets.Value("float64"), "answer": s,
        "question_type": s, "answer_type": s,
        "metadata": {"category": s, "context": s, "grade": s, "img_height": datasets.Value("int64"),
                     "img_width": datasets.Value("int64"), "language": s, "skills": datasets.Sequence(s),
                     "source": s, "split": s, "task": s},
        "query": s,
    })


def build(out_dir: Path) -> Path:
    return write_parquet(rows(), features(), out_dir / OUT_NAME)


if __name__ == "__main__":
    out = build(Path(__file__).resolve().parent.parent / "samples" / "mathvista")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
