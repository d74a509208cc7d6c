"""The VQAv2 and TextVQA plugins: shipped samples, requests, scoring and groups."""
from collections import Counter

import pytest

from evalkit.pipeline.data import load_task_data
from evalkit.errors import SampleError
from evalkit.analyses.references import reference_table
from evalkit.registry import TASKS
from evalkit.types import Response
from evalkit.task import SHORT_ANSWER_PROMPT
from evalkit.tasks.textvqa import TextVQA, answer_type
from evalkit.tasks.vqav2 import VQAv2

VQAV2_COLUMNS = ["question_type", "multiple_choice_answer", "answers", "image_id", "answer_type",
                 "question_id", "question", "image"]
TEXTVQA_COLUMNS = ["image_id", "question_id", "question", "question_tokens", "image", "image_width",
                   "image_height", "flickr_original_url", "flickr_300k_url", "answers",
                   "image_classes", "set_name", "ocr_tokens"]


@pytest.fixture(scope="module")
def vqav2():
    return load_task_data(VQAv2())


@pytest.fixture(scope="module")
def textvqa():
    return load_task_data(TextVQA())


@pytest.fixture(scope="module")
def vqav2_rows(vqav2):
    return list(vqav2.rows)


@pytest.fixture(scope="module")
def textvqa_rows(textvqa):
    return list(textvqa.rows)


def test_registered_under_their_names():
    assert TASKS.get("vqav2") is VQAv2
    assert TASKS.get("textvqa") is TextVQA


def test_specs_match_the_model_card_and_lmms_eval():
    assert (VQAv2.hub_id, VQAv2.split, VQAv2.id_field) == ("lmms-lab/VQAv2", "validation", "question_id")
    assert (TextVQA.hub_id, TextVQA.split, TextVQA.id_field) == ("lmms-lab/textvqa", "validation", "question_id")
    # the card's numbers moved from the tasks to the reference table
    card = {t: {r.setting: r.value for r in reference_table().rows("idefics2-8b", t, "vqa_accuracy")}
            for t in ("vqav2", "textvqa")}
    assert card["vqav2"] == {"no_split": 80.8, "split": 81.2}
    assert card["textvqa"] == {"no_split": 70.4, "split": 73.0}
    for t in (VQAv2, TextVQA):
        assert t.metric == "vqa_accuracy" and t.max_new_tokens == 16
    assert SHORT_ANSWER_PROMPT == SHORT_ANSWER_PROMPT == "\nAnswer the question using a single word or phrase."


# ------------------------------------------------------------------------------ VQAv2
def test_vqav2_sample_has_the_hub_schema(vqav2):
    import datasets

    ds = vqav2.rows
    assert vqav2.source == "shipped sample"
    assert ds.column_names == VQAV2_COLUMNS
    f = ds.features
    for col in ("question_type", "multiple_choice_answer", "answer_type", "question"):
        assert f[col].dtype == "string", col
    for col in ("image_id", "question_id"):
        assert f[col].dtype == "int64", col
    assert {k: v.dtype for k, v in f["answers"].feature.items()} == {
        "answer": "string", "answer_confidence": "string", "answer_id": "int64"}
    assert isinstance(f["image"], datasets.Image) and f["image"].decode is False


def test_vqav2_rows_are_well_formed(vqav2_rows):
    assert len(vqav2_rows) == 60
    assert len({r["question_id"] for r in vqav2_rows}) == 60
    for r in vqav2_rows:
        answers = r["answers"]
        assert len(answers) == 10
        assert sorted(a["answer_id"] for a in answers) == list(range(1, 11))
        assert {a["answer_confidence"] for a in answers} <= {"yes", "maybe", "no"}
        # multiple_choice_answer is the most common of the 10
        assert Counter(a["answer"] for a in answers).most_common(1)[0][0] == r["multiple_choice_answer"]
        assert r["image"]["bytes"][:8] == b"\x89PNG\r\n\x1a\n"  # easy-VQA's PNGs, kept as they are
    assert {r["answer_type"] for r in vqav2_rows} == {"yes/no", "number", "other"}


def test_vqav2_gold_reads_the_answer_dicts(vqav2_rows):
    task = VQAv2()
    row = vqav2_rows[0]
    assert task.gold(row) == [a["answer"] for a in row["answers"]]
    assert all(isinstance(g, str) for g in task.gold(row))
    # a flattened local copy with plain strings works the same way
    assert task.gold({"answers": ["yes", "no"]}) == ["yes", "no"]


def test_vqav2_majority_answer_scores_one_and_empty_scores_zero(vqav2_rows):
    task = VQAv2()
    for r in vqav2_rows:
        assert task.score_text(r, r["multiple_choice_answer"]).value == 1.0, r["question_id"]
        assert task.score_text(r, "").value == 0.0
    # as the model would answer: capitalised, with a period, through Task.score
    r = next(r for r in vqav2_rows if r["multiple_choice_answer"] == "yes")
    text, score = task.score(r, [Response(uid="u", text="Yes.")])
    assert text == "Yes." and score.value == 1.0


def test_vqav2_leave_one_out_on_a_sample_row(vqav2_rows):
    # a minority answer given by k of the 10 annotators scores min(1, 0.3 k) (k <= 3 here)
    task = VQAv2()
    r = next(r for r in vqav2_rows
             if len({a["answer"] for a in r["answers"]}) > 1)
    counts = Counter(a["answer"] for a in r["answers"])
    minority, k = counts.most_common()[-1]
    assert k <= 3
    assert task.score_text(r, minority).value == [0.0, 0.3, 0.6, 0.9][k]


def test_vqav2_groups(vqav2_rows):
    task = VQAv2()
    r = next(r for r in vqav2_rows if r["answer_type"] == "number")
    assert task.groups(r) == {"answer_type": ["number"], "question_type": ["how many"]}
    types = {task.groups(r)["question_type"][0] for r in vqav2_rows}
    assert {"what color is the", "is there a", "how many"} <= types


def test_vqav2_requests(vqav2_rows):
    r = vqav2_rows[0]
    (req,) = VQAv2().build_requests(r, "vqav2/0")
    assert req.uid == "vqav2/0" and req.kind == "generate"
    assert req.text == r["question"] + "\nAnswer the question using a single word or phrase."
    assert req.images == [r["image"]]
    assert req.gen.max_new_tokens == 16


# ------------------------------------------------------------------------------ TextVQA
def test_textvqa_sample_has_the_hub_schema(textvqa):
    import datasets

    ds = textvqa.rows
    assert textvqa.source == "shipped sample"
    assert ds.column_names == TEXTVQA_COLUMNS
    f = ds.features
    for col in ("image_id", "question", "flickr_original_url", "flickr_300k_url", "set_name"):
        assert f[col].dtype == "string", col
    for col in ("question_id", "image_width", "image_height"):
        assert f[col].dtype == "int32", col
    for col in ("question_tokens", "answers", "image_classes", "ocr_tokens"):
        assert f[col].feature.dtype == "string", col
    assert isinstance(f["image"], datasets.Image) and f["image"].decode is False


def test_textvqa_rows_are_well_formed(textvqa_rows):
    assert len(textvqa_rows) == 40
    assert len({r["question_id"] for r in textvqa_rows}) == 40
    assert len({r["image"]["bytes"] for r in textvqa_rows}) == 40
    for r in textvqa_rows:
        assert len(r["answers"]) == 10 and r["set_name"] == "val"
        assert r["question"] == r["question"].lower() and r["question"].endswith("?")
        top = Counter(r["answers"]).most_common(1)[0][0]
        if top not in ("yes", "no"):
            # the answer is text drawn in the image, so the OCR tokens hold its words
            ocr = {t.lower() for t in r["ocr_tokens"]}
            assert set(top.split()) <= ocr, (top, r["ocr_tokens"])


def test_textvqa_top_answer_scores_one_and_empty_scores_zero(textvqa_rows):
    task = TextVQA()
    for r in textvqa_rows:
        top = Counter(r["answers"]).most_common(1)[0][0]
        assert task.score_text(r, top).value == 1.0, r["question_id"]
        assert task.score_text(r, "").value == 0.0
    # crowd-case variants and the model's own casing normalise together
    r = next(r for r in textvqa_rows if r["question"] == "what street is this?")
    assert task.score_text(r, "Maple St.").value == 1.0


def test_textvqa_groups(textvqa_rows):
    task = TextVQA()
    kinds = Counter(task.groups(r)["answer_type"][0] for r in textvqa_rows)
    assert set(kinds) == {"yes/no", "number", "other"}
    assert answer_type(["10:30"] * 6 + ["10:30 am"] * 4) == "number"
    assert answer_type(["Yes"] * 6 + ["no"] * 4) == "yes/no"
    assert answer_type(["$1.99"] * 10) == "other"  # "$" makes it text, not a bare number


def test_textvqa_requests_capitalise_the_question(textvqa_rows):
    r = textvqa_rows[0]
    (req,) = TextVQA().build_requests(r, "textvqa/0")
    assert req.text == "What street is this?\nAnswer the question using a single word or phrase."
    assert req.images == [r["image"]] and req.gen.max_new_tokens == 16
    # OCR tokens are not put in the prompt (lmms-eval's default)
    assert "MAPLE" not in req.text


# ------------------------------------------------------------------------------ both
@pytest.mark.parametrize("task_cls", [VQAv2, TextVQA])
def test_row_without_answers_is_unscored(task_cls):
    score = task_cls().score_text({"question": "what?", "answers": []}, "yes")
    assert score.value is None and score.reason == "no gold answers"
    score = task_cls().score_text({"question": "what?", "answers": None}, "yes")
    assert score.value is None


@pytest.mark.parametrize("task_cls", [VQAv2, TextVQA])
@pytest.mark.parametrize("question", ["", "   ", None])
def test_empty_question_is_a_sample_error(task_cls, question):
    with pytest.raises(SampleError, match="empty question"):
        task_cls().build_requests({"question": question, "image": b"x", "answers": ["a"]}, "u")


def test_textvqa_sample_matches_its_generator(textvqa_rows):
    # the parquet is what the script makes today (image bytes aside: JPEG encoders may vary)
    import random

    from evalkit.tasks.samplegen import textvqa as gen

    made = gen.rows(random.Random(gen.SEED))
    for col in ("question_id", "question", "answers", "ocr_tokens", "image_id", "image_classes"):
        assert [m[col] for m in made] == [r[col] for r in textvqa_rows], col


def test_vqav2_sample_matches_its_generator(vqav2_rows):
    pytest.importorskip("easy_vqa")
    import random

    from evalkit.tasks.samplegen import vqav2 as gen

    made = gen.rows(random.Random(gen.SEED))
    for col in ("question_id", "question", "answers", "multiple_choice_answer", "question_type"):
        assert [m[col] for m in made] == [r[col] for r in vqav2_rows], col
    assert [m["image"]["bytes"] for m in made] == [r["image"]["bytes"] for r in vqav2_rows]
