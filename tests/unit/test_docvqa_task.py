"""The DocVQA plugin: its shipped sample, requests, scoring and groups."""
import hashlib
import io

import pytest
from PIL import Image

from evalkit.pipeline.data import load_task_data
from evalkit.errors import SampleError
from evalkit.analyses.references import reference_table
from evalkit.registry import TASKS
from evalkit.task import SHORT_ANSWER_PROMPT as POST_PROMPT
from evalkit.tasks.docvqa import DocVQA
from evalkit.tasks.samplegen import docvqa as samplegen

HUB_COLUMNS = ["questionId", "question", "question_types", "image", "docId", "ucsf_document_id",
               "ucsf_document_page_no", "answers", "data_split"]
QUESTION_TYPES = {"form", "table/list", "layout", "free_text", "Image/Photo", "handwritten", "Yes/No",
                  "others", "figure/diagram"}


@pytest.fixture(scope="module")
def sample():
    return load_task_data(DocVQA())


@pytest.fixture(scope="module")
def rows(sample):
    return list(sample.rows)


def test_registered_under_its_name():
    assert TASKS.get("docvqa") is DocVQA


def test_sample_has_the_hub_schema(sample):
    import datasets

    ds = sample.rows
    assert sample.source == "shipped sample"
    assert ds.column_names == HUB_COLUMNS
    assert all(c in ds.column_names for c in DocVQA.required_columns)
    f = ds.features
    for col in ("questionId", "question", "ucsf_document_id", "ucsf_document_page_no", "data_split"):
        assert f[col].dtype == "string", col
    assert f["docId"].dtype == "int64"
    for col in ("question_types", "answers"):
        assert f[col].feature.dtype == "string", col
    # load_task_data leaves images undecoded so a bad one fails per sample
    assert isinstance(f["image"], datasets.Image) and f["image"].decode is False


def test_sample_rows_are_well_formed(rows):
    assert len(rows) >= 50
    assert len({r["questionId"] for r in rows}) == len(rows)
    for r in rows:
        assert r["question"].strip() and r["answers"], r["questionId"]
        assert set(r["question_types"]) <= QUESTION_TYPES, r["question_types"]
        assert r["data_split"] == "val"


def test_sample_images_are_many_and_varied(rows):
    by_hash = {hashlib.sha1(r["image"]["bytes"]).hexdigest(): r["image"]["bytes"] for r in rows}
    assert len(by_hash) >= 30
    sizes = [Image.open(io.BytesIO(b)).size for b in by_hash.values()]  # header only, no decode
    assert sum(max(s) > 980 for s in sizes) >= 5  # beyond Idefics2's longest edge
    assert sum(max(s) < 980 for s in sizes) >= 5
    # one page per docId, so docId and the image agree
    assert len({r["docId"] for r in rows}) == len(by_hash)


def test_shipped_sample_matches_its_generator(rows):
    # the parquet is what the script makes today: same ids, questions and answers, in order
    made = samplegen.rows(samplegen.make_pages())
    for col in ("questionId", "question", "question_types", "answers", "docId", "ucsf_document_id"):
        assert made[col] == [r[col] for r in rows], col


def test_build_requests(rows):
    row = rows[0]
    reqs = DocVQA().build_requests(row, "docvqa/0")
    assert len(reqs) == 1
    req = reqs[0]
    assert req.uid == "docvqa/0"
    assert req.kind == "generate"
    assert req.text == row["question"] + "\nAnswer the question using a single word or phrase."
    assert req.text.endswith(POST_PROMPT)
    assert req.images == [row["image"]]
    assert req.gen.max_new_tokens == 32


@pytest.mark.parametrize("question", ["", "   \n", None])
def test_empty_question_is_a_sample_error(rows, question):
    row = dict(rows[0], question=question)
    with pytest.raises(SampleError, match="empty question"):
        DocVQA().build_requests(row, "u")


def test_every_gold_answer_scores_one_and_empty_scores_zero(rows):
    task = DocVQA()
    for r in rows:
        for gold in r["answers"]:
            assert task.score_text(r, gold).value == 1.0, (r["questionId"], gold)
        assert task.score_text(r, "").value == 0.0


def test_prediction_is_stripped_and_case_folded():
    row = {"question": "What is the total?", "answers": ["$12.50", "12.50"]}
    assert DocVQA().score_text(row, "  12.50\n").value == 1.0
    # "$12.5" vs "$12.50": one insertion over 6 chars -> 5/6
    assert DocVQA().score_text(row, "$12.5").value == pytest.approx(5 / 6)


@pytest.mark.parametrize("answers", [[], None])
def test_row_without_gold_is_unscored(answers):
    score = DocVQA().score_text({"question": "q", "answers": answers}, "anything")
    assert score.value is None
    assert score.reason == "no gold answers"


def test_groups_by_question_type():
    task = DocVQA()
    assert task.groups({"question_types": ["table/list", "layout"]}) == {"question_type": ["table/list", "layout"]}
    assert task.groups({"question_types": None}) == {"question_type": ["unknown"]}
    assert task.groups({}) == {"question_type": ["unknown"]}


def test_spec():
    t = DocVQA()
    assert (t.hub_id, t.hub_config, t.split, t.id_field) == ("lmms-lab/DocVQA", "DocVQA", "validation", "questionId")
    assert t.metric == "anls" and t.max_new_tokens == 32
    # the card's numbers moved from the task to the reference table
    assert {r.setting: r.value for r in reference_table().rows("idefics2-8b", "docvqa", "anls")} == \
        {"no_split": 67.3, "split": 74.0}
    assert t.sample_id({"questionId": "49153"}, 0) == "49153"
