"""ANLS against hand-checked cases, following the official RRC DocVQA script (see anls.py)."""
import pytest

from evalkit.metrics.anls import anls, levenshtein, normalized_distance


def test_levenshtein_textbook_cases():
    # kitten -> sitten (sub) -> sittin (sub) -> sitting (insert): 3
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("sitting", "kitten") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "abc") == 0
    # flaw -> lawn: delete f, insert n
    assert levenshtein("flaw", "lawn") == 2


def test_exact_match_scores_one():
    assert anls("Denver Broncos", ["Denver Broncos"]) == 1.0


def test_case_and_outer_whitespace_are_ignored():
    # normalised both sides to "denver broncos": distance 0 -> NL 0 -> 1.0
    assert anls("  denver BRONCOS \n", ["Denver Broncos"]) == 1.0


def test_inner_whitespace_runs_are_collapsed():
    # the official script does " ".join(s.split()): "denver \t  broncos" == "denver broncos"
    assert anls("denver \t  broncos", ["Denver Broncos"]) == 1.0


def test_one_edit():
    # "12/15/89" vs "12/15/88": one substitution over 8 chars -> 1 - 1/8
    assert anls("12/15/89", ["12/15/88"]) == 0.875


def test_denominator_uses_raw_lengths_like_the_official_script():
    # distance on normalised strings: "total dve" vs "total due" = 1; denominator is the raw
    # gold length 10 ("total  due" has two spaces), not 9 -> NL 1/10 -> 0.9
    assert normalized_distance("total dve", "total  due") == pytest.approx(0.1)
    assert anls("total dve", ["total  due"]) == pytest.approx(0.9)


def test_nl_exactly_one_half_is_kept_as_in_the_official_script():
    # "abcd" vs "abxy": 2 substitutions / 4 -> NL 0.5 -> similarity 0.5; the script zeroes
    # only similarity < 0.5, so 0.5 survives (the paper's "NL >= tau -> 0" would give 0)
    assert normalized_distance("abcd", "abxy") == 0.5
    assert anls("abcd", ["abxy"]) == 0.5


def test_just_below_and_above_one_half():
    # 4 substitutions over 9 chars: NL 4/9 < 0.5 -> 5/9
    assert anls("abcdwxyzi", ["abcdefghi"]) == pytest.approx(5 / 9, abs=1e-12)
    # 5 substitutions over 9 chars: NL 5/9 -> similarity 4/9 < 0.5 -> 0
    assert anls("abcvwxyzi", ["abcdefghi"]) == 0.0


def test_threshold_is_a_parameter():
    # same pair as the 0.5 edge; a stricter threshold drops it
    assert anls("abcd", ["abxy"], threshold=0.6) == 0.0
    assert anls("abcd", ["abxy"], threshold=0.0) == 0.5


def test_multiple_golds_take_the_best():
    # vs "dr. lobo": one insertion ('.') over 8 -> 7/8
    # vs "dear dr. lobo": 6 insertions ("dear " and '.') over 13 -> 7/13 (kept, but lower)
    assert anls("Dr Lobo", ["Dear Dr. Lobo"]) == pytest.approx(7 / 13, abs=1e-12)
    assert anls("Dr Lobo", ["Dear Dr. Lobo", "Dr. Lobo"]) == 0.875
    assert anls("Dr Lobo", ["Dr. Lobo", "Dear Dr. Lobo"]) == 0.875


def test_empty_prediction_scores_zero():
    # "" vs "abc": 3 insertions / 3 -> NL 1 -> 0
    assert anls("", ["abc"]) == 0.0
    assert anls("   ", ["$12.50", "12.50"]) == 0.0


def test_both_empty_is_a_match():
    # the script defines NL = 0 when both lengths are 0
    assert anls("", [""]) == 1.0


def test_no_gold_raises():
    with pytest.raises(ValueError):
        anls("anything", [])
