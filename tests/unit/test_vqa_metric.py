"""VQA accuracy (evalkit.metrics.vqa) against hand-checked cases of the official scorers' rules.

Each expected value is worked out by hand from the rules in the module docstring (the VQA
evaluation script's processPunctuation / processDigitArticle and the leave-one-out mean)."""
import pytest

from evalkit.metrics.vqa import (
    CONTRACTIONS, normalize_answer, normalize_answer_textvqa, process_punctuation, vqa_accuracy,
)


# ---------------------------------------------------------------- answer normalisation
@pytest.mark.parametrize("raw, expected", [
    # number words zero..ten become digits, "none" counts as zero; larger words stay
    ("two", "2"), ("Two dogs", "2 dogs"), ("ten", "10"), ("none", "0"), ("eleven", "eleven"),
    # articles a/an/the are dropped wherever they stand, after lower-casing
    ("a dog", "dog"), ("The Dog", "dog"), ("an apple", "apple"), ("in the box", "in box"),
    # a comma between digits switches every mark to deletion: the number stays one token
    ("1,000", "1000"),
    # periods go unless a digit follows: decimals survive, sentence ends do not
    ("3.5", "3.5"), (".5", ".5"), ("yes.", "yes"), ("5.", "5"), ("u.s.a.", "usa"),
    # missing apostrophes restored, on the lower-cased word
    ("dont", "don't"), ("isnt", "isn't"), ("Dont", "don't"), ("im", "im"),
    # apostrophe and colon are not punctuation here
    ("don't", "don't"), ("2:30", "2:30"),
    # marks with no space beside them become a space; with a space beside them, vanish
    ("black/white", "black white"), ("hot-dog", "hot dog"), ("black / white", "black white"),
    ("yes!", "yes"), ("(red)", "red"),
    # newline and tab become spaces, outer whitespace goes, inner runs collapse
    ("Yes\n", "yes"), ("\tno ", "no"), ("red\nand  blue", "red and blue"),
    ("", ""),
])
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_comma_between_digits_deletes_every_mark_in_the_answer():
    # "1,000/2": the digit comma anywhere makes "/" vanish too, giving one token "10002"
    # (without it, "/" would become a space, as in "1/2" -> "1 2").
    assert normalize_answer("1,000/2") == "10002"
    assert normalize_answer("1/2") == "1 2"


def test_the_deletion_test_reads_the_original_text():
    # "a, b-c": ", " makes "," vanish; "-" has no space beside it in the original, so it
    # becomes a space: "a b c" -> article "a" dropped -> "b c".
    assert process_punctuation("a, b-c") == "a b c"
    assert normalize_answer("a, b-c") == "b c"


def test_at_most_32_periods_are_removed():
    # The official call passes re.UNICODE (32) as sub's count: of 33 lone periods one stays.
    assert normalize_answer("." * 33) == "."
    assert normalize_answer("." * 32) == ""


def test_contraction_list_is_the_official_one():
    # 120 entries in the official map (counted from vqaEval.py on GT-Vision-Lab/VQA master)
    assert len(CONTRACTIONS) == 120
    assert CONTRACTIONS["dont"] == "don't" and CONTRACTIONS["yall'd've"] == "y'all'd've"
    assert CONTRACTIONS["somebody'd"] == "somebodyd"  # sic, as in the official map


@pytest.mark.parametrize("raw, expected", [
    ("What's", "what 's"),   # EvalAI splits "'s" off; the VQA script would keep "what's"
    ("x,y", "xy"),           # commas deleted first; the VQA script would give "x y"
    ("Really?", "really"),
    ("Coca-Cola", "coca cola"),
    ("The Silent River", "silent river"),
])
def test_normalize_answer_textvqa(raw, expected):
    assert normalize_answer_textvqa(raw) == expected


def test_vqa_and_textvqa_normalisers_differ_where_expected():
    assert normalize_answer("What's") == "what's"
    assert normalize_answer("x,y") == "x y"


# ---------------------------------------------------------------- leave-one-out accuracy
@pytest.mark.parametrize("k, expected", [
    # k of 10 answers match. Leaving out a matching one leaves k-1 matches (k such subsets),
    # leaving out another leaves k (10-k subsets); each subset scores min(1, matches/3).
    (0, 0.0),
    (1, 0.3),   # (1*0 + 9*1/3) / 10
    (2, 0.6),   # (2*1/3 + 8*2/3) / 10 = 6/10
    (3, 0.9),   # (3*2/3 + 7*1) / 10
    (4, 1.0),   # (4*1 + 6*1) / 10
    (10, 1.0),
])
def test_leave_one_out_average(k, expected):
    golds = ["cat"] * k + ["dog"] * (10 - k)
    assert vqa_accuracy("cat", golds) == expected
    assert vqa_accuracy("cat", golds, scheme="textvqa") == expected


def test_prediction_is_normalised_before_matching():
    golds = ["2"] * 10
    assert vqa_accuracy("Two", golds) == 1.0
    assert vqa_accuracy("two.", golds) == 1.0
    assert vqa_accuracy(" 2\n", golds) == 1.0
    assert vqa_accuracy("a dog", ["dog"] * 10) == 1.0
    assert vqa_accuracy("dont", ["don't"] * 10) == 1.0
    assert vqa_accuracy("1,000", ["1000"] * 3 + ["1"] * 7) == 0.9


def test_yes_no_forms():
    golds = ["yes"] * 8 + ["no"] * 2
    assert vqa_accuracy("Yes.", golds) == 1.0
    assert vqa_accuracy("YES!", golds) == 1.0
    assert vqa_accuracy("no", golds) == 0.6       # 2 of 10
    assert vqa_accuracy("yes it is", golds) == 0.0


def test_vqav2_gold_answers_get_no_digit_or_article_processing():
    # The official script never maps gold number words or drops gold articles: a gold "two"
    # cannot be matched (a prediction "two" becomes "2"); TextVQA's scheme normalises both.
    assert vqa_accuracy("2", ["two"] * 10) == 0.0
    assert vqa_accuracy("two", ["two"] * 10) == 0.0
    assert vqa_accuracy("2", ["two"] * 10, scheme="textvqa") == 1.0
    # gold "a dog" stays "a dog"; a prediction "dog" matches only the 2 bare "dog"s
    assert vqa_accuracy("dog", ["a dog"] * 8 + ["dog"] * 2) == 0.6
    assert vqa_accuracy("dog", ["a dog"] * 8 + ["dog"] * 2, scheme="textvqa") == 1.0


def test_vqav2_gold_punctuation_only_when_answers_disagree():
    # unanimous "yes." is compared as is, so "yes" (and "yes." -> "yes") miss it
    assert vqa_accuracy("yes", ["yes."] * 10) == 0.0
    # one dissenting answer switches gold punctuation processing on: 9 x "yes." -> "yes"
    assert vqa_accuracy("yes", ["yes."] * 9 + ["no"]) == 1.0
    # ...but that pass is punctuation only: case is not folded
    assert vqa_accuracy("yes", ["Yes."] * 9 + ["no"]) == 0.0


def test_vqav2_2021_scheme_processes_nothing_when_answers_agree():
    # master since 2021: unanimous golds -> prediction and golds only stripped
    assert vqa_accuracy("yes", ["yes"] * 10, scheme="vqav2_2021") == 1.0
    assert vqa_accuracy(" yes\n", ["yes"] * 10, scheme="vqav2_2021") == 1.0
    assert vqa_accuracy("Yes", ["yes"] * 10, scheme="vqav2_2021") == 0.0
    assert vqa_accuracy("Yes", ["yes"] * 10) == 1.0  # the 2017 script normalises it
    # disagreeing golds -> both sides fully processed, so gold "two" now matches "2"
    assert vqa_accuracy("2", ["two"] * 4 + ["3"] * 6, scheme="vqav2_2021") == 1.0
    assert vqa_accuracy("2", ["two"] * 4 + ["3"] * 6) == 0.0
    assert vqa_accuracy("dog", ["a dog"] * 8 + ["dog"] * 2, scheme="vqav2_2021") == 1.0


def test_textvqa_crowd_variants_merge_after_normalisation():
    golds = ["Coca-Cola"] * 3 + ["coca cola"] * 2 + ["the coca cola"] + ["pepsi"] * 4
    # TextVQA: all 6 first answers become "coca cola"
    assert vqa_accuracy("coca cola", golds, scheme="textvqa") == 1.0
    assert vqa_accuracy("Pepsi", golds, scheme="textvqa") == 1.0
    # VQAv2 rule: golds only punctuation-processed ("Coca-Cola" -> "Coca Cola", case kept),
    # so only the 2 literal "coca cola" match
    assert vqa_accuracy("coca cola", golds) == 0.6


def test_empty_prediction_scores_zero():
    assert vqa_accuracy("", ["yes"] * 10) == 0.0
    assert vqa_accuracy("", ["yes"] * 10, scheme="textvqa") == 0.0


def test_single_gold_answer_can_never_score():
    # leave-one-out over one answer leaves nothing to match
    assert vqa_accuracy("yes", ["yes"]) == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least one gold answer"):
        vqa_accuracy("yes", [])
    with pytest.raises(ValueError, match="unknown VQA scoring scheme"):
        vqa_accuracy("yes", ["yes"] * 10, scheme="okvqa")
