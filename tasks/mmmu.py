"""MMMU: college-level multi-discipline questions over images (Yue et al., 2023, arXiv:2311.16502).

Measures: expert-level perception and reasoning across 30 subjects in 6 disciplines; about
90% of validation questions are multiple choice, the rest open (a number or short phrase).
Reference numbers (the Idefics2-8B card's MMMU val, and other models' own): evalkit/references.toml.

Source: `lmms-lab/MMMU` (split "validation", 900 rows, all subjects in one split, no config)
is the default because one `load_dataset` call gets every subject. The official
`MMMU/MMMU` holds the same rows and columns under one config per subject; a local snapshot of
it (a folder of <Subject>/validation-*.parquet files) works as `--data PATH`.
Columns: id ("validation_<Subject>_<n>"), question, options (a *string* holding a Python list,
"['1', '2']"), explanation, image_1..image_7 (None where unused), img_type, answer (a letter;
for open questions the answer text, sometimes a list literal "['24/7', '3.429']"),
topic_difficulty, question_type ("multiple-choice" | "open"), subfield.

Prompt (lmms-eval's, which the design follows): the question, then for multiple choice one
"A. option" line per option, a blank line and "Answer with the option's letter from the
given choices directly."; for open questions a blank line and "Answer the question using a
single word or phrase.". Each `<image k>` in the text becomes an image placeholder and
image_k is passed at that point, in the order referenced (a slot referenced twice is passed
twice so placeholders and images pair one to one). With no reference at all, every filled
slot is passed before the text; a row with no image at all is a sample error (every MMMU
question has one, and a text-only answer would be scored as if the model had seen it).

Scoring: evalkit.metrics.mmmu (the official rules). An unparseable multiple-choice answer
gets a random letter as the official main_parse_and_eval.py gives it: `random.seed(42)` once,
then `random.choice(all_choices)` for each unparseable answer in the script's order (subjects
in its CAT_SHORT2LONG order, samples by their number within a subject, as the official
output.json files list them). `MMMU.finalize` applies that sequence over the whole run, so a
sample's draw depends on which other unparseable samples the run holds (a --limit run draws
differently from a full one), never on data order or batching. `mmmu_acc` is that official
number; `mmmu_acc_strict` counts unparseable answers wrong; `n_unparseable` (results counts.task_counts)
is their count, out of the multiple-choice samples.
Variants (results.json `scoring_sensitivity`): `fallback_per_sample` (a random letter from an
RNG seeded by the sample id, evalkit's rule before 2026-12), `fallback_wrong` (= strict) and
`fallback_expected` (an unparseable answer scores its expected value under a uniform guess,
the share of options that are gold).
Breakdowns: per subject (from the id, as the official script derives it) and per discipline.
"""
from __future__ import annotations

import ast
import hashlib
import random
import re

from evalkit.pipeline.circular import rotate_list
from evalkit.errors import ImageMissing, SampleError
from evalkit.metrics import mmmu as metric
from evalkit.registry import TASKS
from evalkit.types import Rule
from evalkit.task import MC_PROMPT, Judge, Task, TaskSpec, official_and_strict, unparseable_count
from evalkit.types import IMAGE_PLACEHOLDER, Count, GenConfig, MetricValue, Request, SampleRecord, Score

# The official subject -> discipline map (MMMU repo, mmmu/utils/data_utils.py).
DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine",
                            "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science",
                             "Electronics", "Energy_and_Power", "Materials", "Mechanical_Engineering"),
}
SUBJECT_TO_DISCIPLINE = {s: d for d, subjects in DISCIPLINES.items() for s in subjects}

OPEN_PROMPT = "Answer the question using a single word or phrase."
N_IMAGE_SLOTS = 7
_IMAGE_REF = re.compile(r"<image (\d+)>")
# The per-sample variant folds the official seed 42 into each sample's own seed.
FALLBACK_SEED = 42
# The official processing order of subjects (mmmu/utils/data_utils.py CAT_SHORT2LONG values).
OFFICIAL_SUBJECT_ORDER = (
    "Accounting", "Agriculture", "Architecture_and_Engineering", "Art", "Art_Theory",
    "Basic_Medical_Science", "Biology", "Chemistry", "Clinical_Medicine", "Computer_Science",
    "Design", "Diagnostics_and_Laboratory_Medicine", "Economics", "Electronics", "Energy_and_Power",
    "Finance", "Geography", "History", "Literature", "Manage", "Marketing", "Materials", "Math",
    "Mechanical_Engineering", "Music", "Pharmacy", "Physics", "Psychology", "Public_Health", "Sociology",
)
_OFFICIAL = "MMMU-Benchmark/MMMU mmmu/main_parse_and_eval.py + utils/eval_utils.py @ 9c1867d (2025-01-01)"
HEADLINE_RULE = Rule("official", "official response parsing; an unparseable multiple-choice answer gets "
                     "random.choice(all_choices) from random.seed(42) set once, drawn in the script's order "
                     "(subjects as CAT_SHORT2LONG, samples by number)", _OFFICIAL)
VARIANT_RULES = (
    Rule("fallback_per_sample", "unparseable answer: a random letter from an RNG seeded by the sample id "
         "(sha256 of '42:<id>'), independent of the other samples", "evalkit"),
    Rule("fallback_wrong", "unparseable answer counted wrong (mmmu_acc_strict)", "evalkit"),
    Rule("fallback_expected", "unparseable answer scores its expected value under a uniform guess: "
         "gold options / options", "evalkit"),
    Rule("judge_extraction", "multiple choice: the option letter the configured judge model reads in the "
         "response (nothing read counts wrong); open questions as the headline", "evalkit (judge backend)"),
)
# evalkit's judge prompt for multiple-choice answers: the judge names the letter, or nothing.
JUDGE_PROMPT_NAME = "evalkit-mmmu-letter-v1"
JUDGE_INSTRUCTIONS = """\
You read a model's answer to a multiple-choice question and write down only the letter of the
option it chose. If it chose none, or several, write nothing after "Chosen letter:".

Question: Which metal conducts electricity best?
A. iron
B. silver
C. lead
Answer: Silver has the highest conductivity of the three.
Chosen letter: B

Question: What does the chart show for 2020?
A. a rise
B. a fall
Answer: It is hard to tell from the image.
Chosen letter:
"""


def subject_of(sample_id: str) -> str:
    """'validation_Art_Theory_12' -> 'Art_Theory' (the official script's rule)."""
    return "_".join(str(sample_id).split("_")[1:-1])


def official_order_key(sample_id: str) -> tuple:
    """Where the official script meets this sample: subject order, then the sample's number."""
    subject = subject_of(sample_id)
    rank = OFFICIAL_SUBJECT_ORDER.index(subject) if subject in OFFICIAL_SUBJECT_ORDER else len(OFFICIAL_SUBJECT_ORDER)
    tail = str(sample_id).rsplit("_", 1)[-1]
    return (rank, subject, int(tail) if tail.isdigit() else 0, str(sample_id))


def apply_official_fallback(records: list[SampleRecord]) -> None:
    """Give every unparseable multiple-choice record the official script's draw (see the
    module docstring); its score becomes whether that letter is gold."""
    pending = sorted((r for r in records if r.error is None and r.score is not None
                      and r.extras.get("question_type") == "multiple-choice" and not r.extras.get("parsed", True)),
                     key=lambda r: official_order_key(r.sample_id))
    letters = metric.official_fallback_letters([int(r.extras["n_options"]) for r in pending])
    for r, letter in zip(pending, letters):
        r.extras["parsed_pred"] = letter
        r.score = float(metric.score_multi_choice(letter, r.gold))


def fallback_rng(sample_id: str) -> random.Random:
    digest = hashlib.sha256(f"{FALLBACK_SEED}:{sample_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def parse_options(row: dict) -> list[str]:
    raw = row.get("options")
    if raw is None or raw == "":
        return []
    if isinstance(raw, (list, tuple)):
        return [str(o) for o in raw]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise SampleError(f"options of {row.get('id')!r} is not a Python list literal: {raw[:80]!r}") from None
    if not isinstance(value, (list, tuple)):
        raise SampleError(f"options of {row.get('id')!r} is not a list: {raw[:80]!r}")
    return [str(o) for o in value]


def gold_answers(row: dict) -> list[str]:
    """The answer as a list; open answers stored as a list literal become several golds
    (the official answer file holds them as lists)."""
    answer = row.get("answer")
    if isinstance(answer, (list, tuple)):
        return [str(a) for a in answer]
    text = str(answer if answer is not None else "")
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
            if isinstance(value, (list, tuple)) and value:
                return [str(a) for a in value]
        except (ValueError, SyntaxError):
            pass
    return [text]


def is_multiple_choice(row: dict) -> bool:
    return row.get("question_type") == "multiple-choice"


def lettered(options: list[str]) -> str:
    """The options one per line after their letters: "A. ...", "B. ..."."""
    return "\n".join(f"{letter}. {opt}" for letter, opt in zip(metric.option_letters(len(options)), options))


def build_prompt(row: dict) -> str:
    question = str(row.get("question") or "")
    if is_multiple_choice(row):
        return f"{question}\n{lettered(parse_options(row))}\n\n{MC_PROMPT}"
    return f"{question}\n\n{OPEN_PROMPT}"


def judge_question(row: dict, options: list[str]) -> str:
    """What the judge is shown of a multiple-choice question: the text and its lettered options."""
    return f"{str(row.get('question') or '').strip()}\n{lettered(options)}"


def place_images(text: str, row: dict) -> tuple[str, list]:
    """Replace each <image k> with the placeholder; the images in the order referenced."""
    images = []

    def take(match: re.Match) -> str:
        k = int(match.group(1))
        slot = f"image_{k}"
        if not 1 <= k <= N_IMAGE_SLOTS:
            raise ImageMissing(f"text references <image {k}> but MMMU rows have image_1..image_{N_IMAGE_SLOTS}")
        if row.get(slot) is None:
            raise ImageMissing(f"text references <image {k}> but {slot} is empty")
        images.append(row[slot])
        return IMAGE_PLACEHOLDER

    out = _IMAGE_REF.sub(take, text)
    if not images:
        images = [row[f"image_{k}"] for k in range(1, N_IMAGE_SLOTS + 1) if row.get(f"image_{k}") is not None]
    if not images:
        # every MMMU question has at least one image; asking without it would score a blind guess
        raise ImageMissing(f"no image: image_1..image_{N_IMAGE_SLOTS} are all empty")
    return out, images


@TASKS.register
class MMMU(Task):
    spec = TaskSpec(
        name="mmmu", title="MMMU (validation)",
        hub_id="lmms-lab/MMMU", hub_config=None, split="validation", id_field="id",
        required_columns=("id", "question", "options", "answer", "question_type", "image_1"),
        image_columns=tuple(f"image_{k}" for k in range(1, N_IMAGE_SLOTS + 1)),
        # The hub stores options (and list answers) as Python-literal strings; a local copy that
        # holds real lists is read the same way (parse_options, gold_answers), so --data accepts both.
        accepted_column_kinds={"options": ("text", "list"), "answer": ("text", "list")},
        sample_note=("synthetic: 30 questions over drawn charts, diagrams and shapes in the hub schema, "
                     "not real MMMU items"),
        max_new_tokens=32,
        metric="mmmu_acc", headline_rule=HEADLINE_RULE, variant_rules=VARIANT_RULES,
        judge_prompt_name=JUDGE_PROMPT_NAME,
    )

    def build_requests(self, row: dict, uid: str) -> list[Request]:
        text, images = place_images(build_prompt(row), row)
        return [Request(uid=uid, text=text, images=images, gen=GenConfig(max_new_tokens=self.max_new_tokens))]

    def gold(self, row: dict) -> list[str]:
        return gold_answers(row)

    def groups(self, row: dict) -> dict[str, list[str]]:
        subject = subject_of(row["id"])
        return {"subject": [subject], "discipline": [SUBJECT_TO_DISCIPLINE.get(subject, "unknown")]}

    def judge_query(self, row: dict) -> str | None:
        return judge_question(row, parse_options(row)) if is_multiple_choice(row) else None

    def judge_prompt(self, query: str, response: str) -> str:
        return f"{JUDGE_INSTRUCTIONS}\nQuestion: {query}\nAnswer: {response.strip()}\nChosen letter:"

    def _judge_variant(self, row: dict, prediction: str, options: list[str], golds: list[str],
                       judge: Judge | None) -> dict[str, float]:
        """The judge's letter scored strictly: anything but one valid letter counts wrong."""
        if judge is None or not prediction:
            return {}
        said = judge(judge_question(row, options), prediction).strip().strip("().:").upper()
        letters = metric.option_letters(len(options))
        return {"judge_extraction": float(said in letters and metric.score_multi_choice(said, golds))}

    def score_text(self, row: dict, prediction: str, judge: Judge | None = None) -> Score:
        """`judge`: the judge model's reading of the response (evalkit.pipeline.judging), scored as the
        judge_extraction variant; None: no judge."""
        golds = gold_answers(row)
        prediction = prediction or ""
        if is_multiple_choice(row):
            options = parse_options(row)
            if not options:
                return Score(None, reason="multiple-choice question without options")
            letter, parsed = metric.parse_multi_choice(prediction, options, fallback_rng(str(row["id"])))
            correct = float(metric.score_multi_choice(letter, golds))
            if parsed:
                variants = dict.fromkeys(("fallback_per_sample", "fallback_wrong", "fallback_expected"), correct)
            else:
                letters = metric.option_letters(len(options))
                variants = {"fallback_per_sample": correct, "fallback_wrong": 0.0,
                            "fallback_expected": sum(l in golds for l in letters) / len(letters)}
            variants.update(self._judge_variant(row, prediction, options, golds, judge))
            # Unparseable: the per-sample draw stands until MMMU.finalize gives the official one.
            return Score(correct, extras={
                "question_type": "multiple-choice", "parsed": parsed, "n_options": len(options),
                "strict": correct if parsed else 0.0, "parsed_pred": letter, "variants": variants})
        preds = metric.parse_open(prediction)
        correct = float(metric.score_open(preds, golds))
        variants = dict.fromkeys(("fallback_per_sample", "fallback_wrong", "fallback_expected"), correct)
        if judge is not None:
            variants["judge_extraction"] = correct
        return Score(correct, extras={
            "question_type": "open", "parsed": True, "strict": correct, "parsed_pred": preds,
            "variants": variants})

    def option_count(self, row: dict) -> int | None:
        return len(parse_options(row)) if is_multiple_choice(row) else None

    def rotate_options(self, row: dict, shift: int) -> dict:
        options = parse_options(row)
        letters = metric.option_letters(len(options))
        golds = gold_answers(row)
        if not golds or any(g not in letters for g in golds):
            raise SampleError(f"answer {row.get('answer')!r} is not one of the option letters {''.join(letters)}")
        # gold option g moves to position (g - shift) mod n
        moved = [letters[(letters.index(g) - shift) % len(letters)] for g in golds]
        return {**row, "options": rotate_list(options, shift), "answer": moved[0] if len(moved) == 1 else moved}

    def chosen_option(self, row: dict, score: Score) -> int | None:
        letter = score.extras.get("parsed_pred")
        if not score.extras.get("parsed") or not isinstance(letter, str):
            return None
        letters = metric.option_letters(int(score.extras.get("n_options") or 0))
        return letters.index(letter) if letter in letters else None

    def finalize(self, records: list[SampleRecord]) -> None:
        apply_official_fallback(records)

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        return official_and_strict(self.metric, records)

    def counts(self, records: list[SampleRecord]) -> dict[str, Count]:
        # only multiple-choice answers can be unparseable: open answers are matched as extracted
        return unparseable_count(records, lambda r: r.extras.get("question_type") == "multiple-choice")

