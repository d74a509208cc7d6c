"""MMMU: the official parsing/matching rules, the plugin's prompt and images, and its sample."""
import random

import pytest

from evalkit.pipeline.data import load_task_data
from evalkit.errors import SampleError
from evalkit.metrics import mmmu as m
from evalkit.analyses.references import reference_table
from evalkit.registry import TASKS
from evalkit.types import IMAGE_PLACEHOLDER, Count, SampleRecord
from evalkit.tasks.mmmu import (DISCIPLINES, MC_PROMPT, MMMU, OPEN_PROMPT, SUBJECT_TO_DISCIPLINE, fallback_rng,
                        gold_answers, subject_of)

OPTS = ["London", "Paris", "Rome", "Berlin"]


def mc(response, options=OPTS, seed=0):
    return m.parse_multi_choice(response, options, random.Random(seed))


# ---------------------------------------------------------------- multiple choice parsing
@pytest.mark.parametrize("response", ["(B)", "B", "B.", "The answer is B", "B!", "(B) Paris"])
def test_letter_forms_parse_to_b(response):
    assert mc(response) == ("B", True)


def test_bracketed_letters_beat_bare_letters_and_the_last_bracket_wins():
    # both (A) and (B) are candidates; (A) occurs later in the text, so it is the answer,
    # and the bare " B " is never looked at because brackets were found
    assert mc("(B) is wrong, (A) is right") == ("A", True)
    assert mc("B or (C)") == ("C", True)


def test_several_bare_letters_take_the_last_one():
    # " A " (the article, capitalised) and " B " both match; B starts later
    assert mc("Answer: A cat is B") == ("B", True)


def test_official_strip_and_spacing_rules():
    # the period after B survives when not at the end, and "B." mid-text has no " B "
    letter, ok = mc("B. Paris")
    assert ok is False
    # lower-case letters are not letters to the official parser
    assert mc("b")[1] is False
    # trailing punctuation is stripped one kind after another: ',' then '.' -> "B"
    assert mc("B.,") == ("B", True)


def test_option_text_needs_more_than_five_tokens():
    assert mc("I am fairly sure the capital is Paris") == ("B", True)  # 8 tokens
    assert mc("Paris")[1] is False  # 1 token: the official rule does not try option text


def test_option_text_tie_goes_to_the_latest_occurrence():
    # Rome and Paris both occur; Paris starts later
    assert mc("It is not Rome, the right city is surely Paris") == ("B", True)


def test_unparseable_draws_from_the_given_rng():
    # random.Random(0).choice(["A", "B", "C", "D"]) is "D" (checked by hand in CPython 3.11)
    assert random.Random(0).choice(["A", "B", "C", "D"]) == "D"
    assert mc("", seed=0) == ("D", False)
    assert mc("no idea at all", seed=0) == ("D", False)


def test_no_options_is_an_error():
    with pytest.raises(ValueError):
        m.parse_multi_choice("A", [], random.Random(0))


def test_score_multi_choice_against_one_or_several_golds():
    assert m.score_multi_choice("B", "B") and not m.score_multi_choice("A", "B")
    assert m.score_multi_choice("C", ["B", "C"])


# ---------------------------------------------------------------- open questions
def test_numbers_compare_as_rounded_floats():
    assert m.parse_open("3.0") == [3.0]
    assert m.score_open(m.parse_open("3.0"), "3")
    assert m.score_open(m.parse_open("3.14159"), "3.14")  # both round to 3.14
    assert not m.score_open(m.parse_open("3.146"), "3.14")  # 3.15 != 3.14


def test_key_response_is_the_shortest_tail_after_an_indicator():
    # "so " leaves "x = 5"; "=" (last sentence only) leaves "5": the shorter wins
    assert m.parse_open("so x = 5") == [5.0]
    # "is " -> "1,000"; numbers: "1,000" by the comma rule and "000" by the simple rule
    # (the official simple pattern has no look-behind, so the tail after the comma matches)
    assert set(m.parse_open("The answer is 1,000.")) == {1000.0, 0.0}


def test_string_gold_matches_inside_the_prediction():
    preds = m.parse_open("The city is Tampa, Florida")  # key: "tampa, florida"
    assert preds == ["tampa, florida"]
    assert m.score_open(preds, ["Tampa", "Florida"])
    assert not m.score_open(preds, "Orlando")


def test_single_character_gold_needs_a_word_boundary():
    # "x" normalises to " x" and "x ": it matches a lone x but not the x inside "max"
    assert m.normalize_str("x") == [" x", "x "]
    assert m.score_open(m.parse_open("x"), "x")
    assert not m.score_open(m.parse_open("max"), "x")


def test_empty_open_prediction_is_wrong():
    assert m.parse_open("") == [""]
    assert not m.score_open(m.parse_open(""), "3")
    assert not m.score_open(m.parse_open(""), "nitrogen")


def test_extract_numbers_official_patterns():
    # comma numbers, then scientific, then simple ones; the simple pattern also picks the
    # exponent "-3" out of "1e-3" (it has no look-behind) -- the official output, kept
    assert m.extract_numbers("1e-3 and -2.5 and 12") == ["1e-3", "-3", "-2.5", "12"]
    assert m.check_is_number("1,234.5") and not m.check_is_number("12a")


# ---------------------------------------------------------------- the plugin
def mc_row(**kw):
    row = {"id": "validation_Math_7", "question": "Which is larger, <image 1> or <image 2>?",
           "options": "['<image 1>', '<image 2>']", "answer": "A", "question_type": "multiple-choice",
           "image_1": {"bytes": b"one", "path": None}, "image_2": {"bytes": b"two", "path": None}}
    row.update({f"image_{k}": None for k in range(3, 8)})
    row.update(kw)
    return row


def test_registered_with_its_spec():
    assert TASKS.get("mmmu") is MMMU
    assert (MMMU.hub_id, MMMU.hub_config, MMMU.split, MMMU.id_field) == ("lmms-lab/MMMU", None, "validation", "id")
    # the card's numbers moved from the task to the reference table
    assert {r.setting: r.value for r in reference_table().rows("idefics2-8b", "mmmu", "mmmu_acc")} == \
        {"no_split": 43.5, "split": 43.0}


def test_mc_prompt_and_images_follow_the_references():
    (req,) = MMMU().build_requests(mc_row(), "u1")
    # question, option lines, blank line, post-prompt; every <image k> became a placeholder
    assert req.text == (f"Which is larger, {IMAGE_PLACEHOLDER} or {IMAGE_PLACEHOLDER}?\n"
                        f"A. {IMAGE_PLACEHOLDER}\nB. {IMAGE_PLACEHOLDER}\n\n{MC_PROMPT}")
    assert [i["bytes"] for i in req.images] == [b"one", b"two", b"one", b"two"]
    assert req.gen.max_new_tokens == 32


def test_images_come_in_reference_order():
    row = mc_row(question="Compare <image 2> with <image 1>.", options="['same', 'different']")
    (req,) = MMMU().build_requests(row, "u")
    assert req.text.count(IMAGE_PLACEHOLDER) == 2
    assert [i["bytes"] for i in req.images] == [b"two", b"one"]


def test_open_prompt_and_unreferenced_images_go_first():
    row = mc_row(question="How many sides?", options="[]", question_type="open", answer="4")
    (req,) = MMMU().build_requests(row, "u")
    assert req.text == f"How many sides?\n\n{OPEN_PROMPT}"
    assert [i["bytes"] for i in req.images] == [b"one", b"two"]


def test_reference_to_an_empty_slot_names_it():
    with pytest.raises(SampleError, match="image_3"):
        MMMU().build_requests(mc_row(question="See <image 3>."), "u")


def test_bad_options_literal_is_a_sample_error():
    with pytest.raises(SampleError, match="options"):
        MMMU().build_requests(mc_row(options="['a', "), "u")


def test_per_sample_fallback_variant_is_seeded_by_the_id():
    # score_text's draw is the per-sample variant; MMMU.finalize replaces the headline draw with
    # the official seed-42 sequence (tests/test_scoring_rules.py)
    task = MMMU()
    row = mc_row(options="['p', 'q', 'r', 's']")
    first = task.score_text(row, "").extras["parsed_pred"]
    assert task.score_text(row, "").extras["variants"]["fallback_per_sample"] == float(first == "A")
    task.score_text(mc_row(id="validation_Math_8"), "")  # another sample in between
    assert task.score_text(row, "").extras["parsed_pred"] == first
    assert fallback_rng("validation_Math_7").random() == fallback_rng("validation_Math_7").random()
    letters = {fallback_rng(f"validation_Math_{i}").choice("ABCD") for i in range(40)}
    assert len(letters) > 1  # the seed does depend on the id


def test_score_extras_report_parsing_and_strict_value():
    task = MMMU()
    s = task.score_text(mc_row(), "(A)")
    assert (s.value, s.extras["parsed"], s.extras["strict"]) == (1.0, True, 1.0)
    s = task.score_text(mc_row(), "")
    assert s.extras["parsed"] is False and s.extras["strict"] == 0.0
    assert s.value == float(s.extras["parsed_pred"] == "A")


def test_list_literal_gold_gives_several_answers():
    row = mc_row(question_type="open", options="[]", answer="['0.5', '1/2']")
    assert gold_answers(row) == ["0.5", "1/2"]
    assert MMMU().score_text(row, "1/2").value == 1.0
    assert MMMU().score_text(row, "0.50").value == 1.0
    assert MMMU().score_text(row, "2").value == 0.0


def test_aggregate_reports_both_ways_and_the_unparseable_count():
    def rec(uid, score, qt, parsed, strict):
        return SampleRecord(uid, uid, "q", "p", ["A"], score,
                            extras={"question_type": qt, "parsed": parsed, "strict": strict})

    records = [rec("a", 1.0, "multiple-choice", True, 1.0),
               rec("b", 1.0, "multiple-choice", False, 0.0),  # a lucky random draw
               rec("c", 0.0, "open", True, 0.0)]
    out = MMMU().aggregate(records)
    assert out["mmmu_acc"].value == pytest.approx(200 / 3)
    assert out["mmmu_acc_strict"].value == pytest.approx(100 / 3)
    assert "n_unparseable" not in out  # a count, not a metric: Task.counts
    assert MMMU().counts(records) == {"n_unparseable": Count(1, 2)}  # of the 2 multiple-choice answers


def test_subjects_and_disciplines_are_the_official_ones():
    assert len(SUBJECT_TO_DISCIPLINE) == 30 and len(DISCIPLINES) == 6
    assert subject_of("validation_Art_Theory_12") == "Art_Theory"
    assert MMMU().groups({"id": "validation_Diagnostics_and_Laboratory_Medicine_3"}) == {
        "subject": ["Diagnostics_and_Laboratory_Medicine"], "discipline": ["Health and Medicine"]}


# ---------------------------------------------------------------- the shipped sample
HUB_COLUMNS = (["id", "question", "options", "explanation"] + [f"image_{k}" for k in range(1, 8)]
               + ["img_type", "answer", "topic_difficulty", "question_type", "subfield"])


@pytest.fixture(scope="module")
def rows():
    data = load_task_data(MMMU())
    assert data.rows.column_names == HUB_COLUMNS
    return list(data.rows)


def test_sample_covers_subjects_disciplines_and_types(rows):
    assert len(rows) >= 25
    subjects = {subject_of(r["id"]) for r in rows}
    assert subjects <= set(SUBJECT_TO_DISCIPLINE)
    assert len(subjects) >= 6 and len({SUBJECT_TO_DISCIPLINE[s] for s in subjects}) >= 4
    assert {r["question_type"] for r in rows} == {"multiple-choice", "open"}
    assert any(sum(r[f"image_{k}"] is not None for k in range(1, 8)) >= 3 for r in rows)
    assert all(isinstance(r["options"], str) for r in rows)


def test_every_sample_row_builds_with_matching_placeholders(rows):
    task = MMMU()
    for r in rows:
        (req,) = task.build_requests(r, r["id"])
        assert req.text.count(IMAGE_PLACEHOLDER) == len(req.images) >= 1, r["id"]


def test_perfect_prediction_scores_one_and_empty_scores_zero(rows):
    task = MMMU()
    for r in rows:
        good = task.score_text(r, task.gold(r)[0])
        assert (good.value, good.extras["strict"]) == (1.0, 1.0), r["id"]
        empty = task.score_text(r, "")
        assert empty.extras["strict"] == 0.0, r["id"]
        if r["question_type"] == "open":
            assert empty.value == 0.0, r["id"]
        else:  # official rule: a random letter, right or wrong by chance
            assert empty.extras["parsed"] is False
