"""Builds the shipped VQAv2 sample from easy-VQA, in the lmms-lab/VQAv2 schema.

Source: the `easy-vqa` PyPI package (version 1.0, MIT License, (c) 2019 Victor Zhou), which
ships easy-VQA's test split: 1,000 64x64 PNG images, each of one coloured shape on a plain
pale background, and 9,673 questions whose answers are a shape, a colour, or yes/no. We take
60 images (fixed seed), one question each, and keep the PNG bytes, easy-VQA's question text
(first letter upper-cased, as VQAv2 questions are written) and its answer.

Made by us, so that the sample has what VQAv2 rows have:
- 10 answers per question: the easy-VQA answer 7 to 10 times, the rest plausible crowd
  variants in VQA's normalised style ("round" for circle, "grey" for gray, the opposite for
  yes/no), so the leave-one-out average matters; multiple_choice_answer is the majority one.
- "How many shapes are in the image?" (answer "1") on some images: every easy-VQA image holds
  exactly one shape, so the answer is true; it gives the sample a "number" answer type.
- question_type: the longest of VQA's 65 question-type prefixes (mscoco_question_types.txt)
  that starts the question, else "none of the above"; answer_type: yes/no, number or other.
- image_id = easy-VQA's image id; question_id = image_id * 1000 + the question's index.

Run: .venv/bin/python -m evalkit.tasks.samplegen.vqav2
"""
from __future__ import annotations

import random
from pathlib import Path

from evalkit.tasks.samplegen import write_parquet

SEED = 20240501
# How many of the 60 questions of each kind.
PLAN = {"yes/no": 22, "shape": 13, "color": 17, "number": 8}

# VQA's 65 question types for real images (GT-Vision-Lab/VQA QuestionTypes).
VQA_QUESTION_TYPES = (
    "how many", "is the", "what", "what color is the", "what is the", "is this", "is this a",
    "what is", "are the", "what kind of", "is there a", "what type of", "is it",
    "what are the", "where is the", "is there", "does the", "what color are the",
    "are these", "are there", "which", "is", "what is the man", "is the man", "are", "how",
    "does this", "what is on the", "what does the", "how many people are", "what is in the",
    "what is this", "do", "what are", "are they", "what time", "what sport is",
    "are there any", "is he", "what color is", "why", "where are the", "what color",
    "who is", "what animal is", "is the woman", "is this an", "do you",
    "how many people are in", "what room is", "has", "is this person", "what is the woman",
    "can you", "why is the", "is the person", "what is the color of the",
    "what is the person", "could", "was", "is that a", "what number is",
    "what is the name", "what brand",
)

SHAPES = ("circle", "rectangle", "triangle")
VARIANTS = {
    "circle": ["round", "oval"],
    "rectangle": ["square", "box"],
    "triangle": ["pyramid"],
    "gray": ["grey", "silver"],
    "teal": ["blue", "green", "turquoise"],
    "brown": ["tan", "orange"],
    "blue": ["dark blue", "purple"],
    "red": ["orange", "pink"],
    "yellow": ["gold", "orange"],
    "black": ["dark gray", "gray"],
    "green": ["dark green", "teal"],
    "yes": ["no"],
    "no": ["yes"],
    "1": ["2", "0"],
}
NUMBER_QUESTION = "how many shapes are in the image?"


def question_type(question: str) -> str:
    q = question.lower()
    hits = [t for t in VQA_QUESTION_TYPES if q == t or q.startswith(t + " ")]
    return max(hits, key=len) if hits else "none of the above"


def kind_of(answer: str) -> str:
    if answer in ("yes", "no"):
        return "yes/no"
    return "shape" if answer in SHAPES else "color"


def ten_answers(true: str, rng: random.Random) -> list[dict]:
    n_true = rng.choice((7, 8, 9, 10))
    others = [rng.choice(VARIANTS[true]) for _ in range(10 - n_true)]
    answers = [true] * n_true + others
    rng.shuffle(answers)
    return [{"answer": a,
             "answer_confidence": ("yes" if a == true else rng.choice(("maybe", "maybe", "no"))),
             "answer_id": i + 1} for i, a in enumerate(answers)]


def rows(rng: random.Random) -> list[dict]:
    import easy_vqa

    texts, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    by_image: dict[int, list[int]] = {}
    for qi, img in enumerate(image_ids):
        by_image.setdefault(img, []).append(qi)
    order = sorted(by_image)
    rng.shuffle(order)
    kinds = [k for k, n in PLAN.items() for _ in range(n)]
    rng.shuffle(kinds)
    used: set[int] = set()
    out = []
    for kind in kinds:
        if kind == "number":
            img = next(i for i in order if i not in used)
            q_index, text, true = 999, NUMBER_QUESTION, "1"
        else:
            # Not every easy-VQA image has every kind of question: take the next that does.
            img = next(i for i in order if i not in used
                       and any(kind_of(answers[qi]) == kind for qi in by_image[i]))
            candidates = [qi for qi in by_image[img] if kind_of(answers[qi]) == kind]
            qi = rng.choice(candidates)
            q_index = by_image[img].index(qi)
            text, true = texts[qi], answers[qi]
        used.add(img)
        out.append({
            "question_type": question_type(text),
            "multiple_choice_answer": true,
            "answers": ten_answers(true, rng),
            "image_id": img,
            "answer_type": {"yes/no": "yes/no", "number": "number"}.get(kind, "other"),
            "question_id": img * 1000 + q_index,
            "question": text[:1].upper() + text[1:],
            "image": {"bytes": Path(paths[img]).read_bytes(), "path": None},
        })
    return out


def build(out_dir: Path) -> Path:
    import datasets

    data = rows(random.Random(SEED))
    features = datasets.Features({
        "question_type": datasets.Value("string"),
        "multiple_choice_answer": datasets.Value("string"),
        "answers": datasets.List({
            "answer": datasets.Value("string"),
            "answer_confidence": datasets.Value("string"),
            "answer_id": datasets.Value("int64"),
        }),
        "image_id": datasets.Value("int64"),
        "answer_type": datasets.Value("string"),
        "question_id": datasets.Value("int64"),
        "question": datasets.Value("string"),
        "image": datasets.Image(),
    })
    columns = {name: [r[name] for r in data] for name in features}
    return write_parquet(columns, features, out_dir / "validation-00000-of-00001.parquet")


if __name__ == "__main__":
    print(build(Path(__file__).resolve().parent.parent / "samples" / "vqav2"))
