"""MathVista: extraction, the official normalisation and match, the plugin and its sample."""
import pytest

from evalkit.pipeline.data import load_task_data
from evalkit.metrics import mathvista as m
from evalkit.registry import TASKS
from evalkit.types import Count, SampleRecord
from evalkit.tasks.mathvista import MathVista

ANGLES = ("135°", "140°", "145°", "150°")
MC = m.Problem("multi_choice", "text", ANGLES)
INT = m.Problem("free_form", "integer")
F1 = m.Problem("free_form", "float", precision=1.0)
F2 = m.Problem("free_form", "float", precision=2.0)
LIST = m.Problem("free_form", "list")


# ---------------------------------------------------------------- normalisation (official)
@pytest.mark.parametrize("value, p, expected", [
    # Python's round works on the binary value: 1.25 is exact, a tie, rounded to even;
    # 1.35 is stored as 1.3500000000000000888 and 1.15 as 1.149999999999999911
    ("1.25", F1, "1.2"), ("1.35", F1, "1.4"), ("1.15", F1, "1.1"),
    ("2.675", F2, "2.67"),  # stored as 2.67499999...
    ("3", F1, "3.0"), ("0.5", F2, "0.5"),  # str(float): no trailing zeros are added
])
def test_float_rounding_follows_python_round(value, p, expected):
    assert m.normalize_extracted_answer(value, p) == expected


def test_integer_is_int_of_float():
    assert m.normalize_extracted_answer("3.0", INT) == "3"
    assert m.normalize_extracted_answer("3.7", INT) == "3"  # truncation, not rounding
    assert m.normalize_extracted_answer("-2.9", INT) == "-2"
    assert m.normalize_extracted_answer("three", INT) is None
    assert m.normalize_extracted_answer("", INT) is None


def test_multi_choice_letters_and_choice_text():
    assert m.normalize_extracted_answer("B", MC) == "140°"
    assert m.normalize_extracted_answer("(C) 145°", MC) == "145°"  # bracketed letter first
    assert m.normalize_extracted_answer("(c)", MC) == "145°"  # upper-cased
    # "145" is one edit from "145°" and two from "135°"/"140°"/"150°"
    assert m.normalize_extracted_answer("145", MC) == "145°"
    # a bare lower-case letter is not a letter here: all four choices are 4 edits away,
    # so the first one wins
    assert m.normalize_extracted_answer("c", MC) == "135°"


def test_empty_multi_choice_extraction_picks_the_shortest_choice():
    p = m.Problem("multi_choice", "text", ("half", "quarter", "o'clock"))
    assert m.normalize_extracted_answer("", p) == "half"  # distance = length


def test_list_is_compared_as_text():
    assert m.normalize_extracted_answer("[2014, 2016]", LIST) == "[2014, 2016]"
    assert not m.safe_equal(m.normalize_extracted_answer("[2014,2016]", LIST), "[2014, 2016]")


def test_safe_equal_is_plain_equality():
    assert m.safe_equal("3", "3") and not m.safe_equal(3, "3") and not m.safe_equal(None, "3")


def test_levenshtein():
    assert m.levenshtein("kitten", "sitting") == 3
    assert m.levenshtein("", "abc") == 3 and m.levenshtein("abc", "abc") == 0


# ---------------------------------------------------------------- extraction
def test_official_cheap_rules():
    assert m.extract_answer("", MC) == ""
    assert m.extract_answer("145°", MC) == "145°"
    assert m.extract_answer("7", INT) == "7"
    assert m.extract_answer("1.25", F1) == "1.25"
    assert m.extract_answer('The answer is "[1, 2]".', LIST) == "[1, 2]"


@pytest.mark.parametrize("response, letter", [
    ("B", "B"), ("(B) 140°", "B"), ("B.", "B"), ("b", "B"), ("The answer is D.", "D"),
    ("Answer: (c)", "C"), ("I pick option A", "A"), ("It is 145° so the answer is\nC", "C"),
])
def test_rule_extraction_of_letters(response, letter):
    assert m.extract_answer(response, MC) == letter


def test_rule_extraction_without_a_letter():
    # an article is not an option letter; no choice text either -> nothing
    assert m.extract_answer("A triangle has three angles", MC) == ""
    assert m.extract_answer("It measures 145° here", MC) == "145°"
    p = m.Problem("multi_choice", "text", ("half", "quarter", "quarter to"))
    assert m.extract_answer("It is quarter to eight", p) == "quarter to"  # longer on a tie


def test_rule_extraction_of_numbers_and_lists():
    assert m.extract_answer("The answer is 12 and not 13", INT) == "12"
    assert m.extract_answer("The total is 1,000 g", INT) == "1000"
    assert m.extract_answer("x = 2.675", F2) == "2.675"
    assert m.extract_answer("no number here", INT) == ""
    assert m.extract_answer("The peak is between [2014,2016].", LIST) == "[2014, 2016]"


def test_score_end_to_end():
    assert m.score("3.0", INT, "3").correct  # integer given as a float
    v = m.score("1.25", F1, "1.3")
    assert (v.extraction, v.prediction, v.correct) == ("1.25", "1.2", False)
    assert m.score("(C) 145°", MC, "145°").correct
    v = m.score("", MC, "135°")  # empty: the official rule still lands on the shortest/first choice
    assert v.correct and not v.parsed


def test_judge_hook_replaces_our_rules_only():
    calls = []

    def judge(query, response):
        calls.append((query, response))
        return "D"

    p = m.Problem("multi_choice", "text", ANGLES, query="Q?")
    assert m.extract_answer("145°", p, judge) == "145°" and calls == []  # official rule first
    assert m.extract_answer("my guess is the last one", p, judge) == "D"
    assert calls == [("Q?", "my guess is the last one")]


# ---------------------------------------------------------------- the plugin
def row(**kw):
    r = {"pid": "9", "query": "Hint: ...\nQuestion: q\nChoices:\n(A) yes\n(B) no", "question": "q",
         "decoded_image": {"bytes": b"png", "path": None}, "choices": ["yes", "no"], "precision": None,
         "unit": None, "answer": "no", "question_type": "multi_choice", "answer_type": "text",
         "metadata": {"skills": ["logical reasoning", "algebraic reasoning"]}}
    r.update(kw)
    return r


def test_registered_and_request_uses_the_query():
    assert TASKS.get("mathvista") is MathVista
    (req,) = MathVista().build_requests(row(), "u")
    assert req.text == row()["query"] and req.images == [row()["decoded_image"]]
    assert req.gen.max_new_tokens == 512


def test_strict_score_counts_an_empty_multi_choice_answer_wrong():
    s = MathVista().score_text(row(), "")
    # official: "" is 2 edits from "no", 3 from "yes" -> "no", the gold
    assert (s.value, s.extras["strict"], s.extras["parsed"]) == (1.0, 0.0, False)


def test_unscorable_rows_give_a_reason():
    assert MathVista().score_text(row(choices=None), "A").reason == "multi_choice question without choices"
    s = MathVista().score_text(row(question_type="free_form", answer_type="float", choices=None), "1.2")
    assert s.value is None and "precision" in s.reason


def test_gold_is_the_answer_or_nothing():
    # The gold answer as stored; a row without one has no gold (not the text "None") and is
    # unscored with the reason.
    assert MathVista().gold(row(answer="no")) == ["no"]
    assert MathVista().gold(row(answer=None)) == []
    assert MathVista().score_text(row(answer=None), "A").reason == "no gold answer"


def test_groups_and_judge_argument():
    assert MathVista().groups(row()) == {"question_type": ["multi_choice"], "answer_type": ["text"],
                                         "skill": ["logical reasoning", "algebraic reasoning"]}
    # the judge reaches scoring as an argument, not as state on the task
    assert MathVista().score_text(row(answer="yes"), "whatever you like", judge=lambda q, r: "A").value == 1.0


def test_aggregate_both_ways():
    def rec(uid, score, parsed):
        return SampleRecord(uid, uid, "q", "p", ["x"], score,
                            extras={"parsed": parsed, "strict": float(score and parsed)})

    records = [rec("a", 1.0, True), rec("b", 1.0, False), rec("c", 0.0, False), rec("d", 0.0, True)]
    out = MathVista().aggregate(records)
    assert out["mathvista_acc"].value == pytest.approx(50.0)
    assert out["mathvista_acc_strict"].value == pytest.approx(25.0)
    assert "n_unparseable" not in out  # a count, not a metric: Task.counts
    assert MathVista().counts(records) == {"n_unparseable": Count(2, 4)}


# ---------------------------------------------------------------- the shipped sample
HUB_COLUMNS = ["pid", "question", "image", "decoded_image", "choices", "unit", "precision", "answer",
               "question_type", "answer_type", "metadata", "query"]


@pytest.fixture(scope="module")
def rows():
    data = load_task_data(MathVista())
    assert data.rows.column_names == HUB_COLUMNS
    return list(data.rows)


def test_sample_covers_every_answer_kind(rows):
    kinds = {(r["question_type"], r["answer_type"], r["precision"]) for r in rows}
    assert {("multi_choice", "text", None), ("free_form", "integer", None), ("free_form", "float", 1.0),
            ("free_form", "float", 2.0), ("free_form", "list", None)} <= kinds
    assert any(r["unit"] for r in rows)
    contexts = {r["metadata"]["context"] for r in rows}
    assert {"bar chart", "line plot", "pie chart", "function plot", "geometry diagram"} <= contexts
    for r in rows:
        assert r["query"].startswith("Hint: ") and "\nQuestion: " + r["question"] in r["query"]
        assert ("\nChoices:\n(A) " in r["query"]) == (r["question_type"] == "multi_choice")
        assert (r["choices"] is None) == (r["question_type"] == "free_form")


def test_perfect_prediction_scores_one_and_empty_scores_zero(rows):
    task = MathVista()
    for r in rows:
        assert task.score_text(r, r["answer"]).value == 1.0, r["pid"]
        empty = task.score_text(r, "")
        assert (empty.value, empty.extras["strict"]) == (0.0, 0.0), r["pid"]
        (req,) = task.build_requests(r, r["pid"])
        assert req.images[0]["bytes"]
