"""The official scoring rules each task's headline follows, and the variant rules beside it,
on hand-checked cases (MMMU's seed-42 fallback order, MathVista's extraction field, the VQA
gold-normalisation edge, ANLS at the threshold)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evalkit.errors import EvalkitError
from evalkit.metrics import mathvista as mv
from evalkit.metrics import mmmu as mm
from evalkit.metrics.anls import anls, anls_paper
from evalkit.metrics.vqa import vqa_accuracy
from evalkit.results.schema import read_run
from evalkit.pipeline.score_predictions import ScoreConfig, score_predictions
from evalkit.reports.run_report import render_run_report
from evalkit.types import Count, SampleRecord
from evalkit.tasks.docvqa import DocVQA
from evalkit.tasks.mathvista import MathVista
from evalkit.tasks.mmmu import MMMU, official_order_key
from evalkit.tasks.textvqa import TextVQA
from evalkit.tasks.vqav2 import VQAv2


# ------------------------------------------------------------------ MMMU fallback
def test_official_fallback_letters_are_one_seed_42_stream():
    # random.seed(42) then random.choice over A.. per unparseable answer (Python's Mersenne
    # Twister; the letters below are what the official script draws for these option counts).
    assert mm.official_fallback_letters([4, 4, 4, 4]) == ["A", "A", "C", "B"]
    assert mm.official_fallback_letters([2, 5, 3]) == ["A", "A", "C"]
    rng = random.Random(42)
    assert mm.official_fallback_letters([4] * 50) == [rng.choice("ABCD") for _ in range(50)]


def test_official_order_is_subject_list_then_sample_number():
    ids = ["validation_Art_2", "validation_Agriculture_10", "validation_Accounting_5",
           "validation_Agriculture_9", "validation_Art_Theory_1", "validation_Architecture_and_Engineering_3"]
    assert sorted(ids, key=official_order_key) == [
        "validation_Accounting_5", "validation_Agriculture_9", "validation_Agriculture_10",
        "validation_Architecture_and_Engineering_3", "validation_Art_2", "validation_Art_Theory_1"]


def _mc_row(sample_id: str, answer: str) -> dict:
    return {"id": sample_id, "question": "Which one?", "options": "['w', 'x', 'y', 'z']", "answer": answer,
            "question_type": "multiple-choice", "image_1": b"x"}


def _records(task, rows_and_responses):
    out = []
    for i, (row, response) in enumerate(rows_and_responses):
        s = task.score_text(row, response)
        out.append(SampleRecord(str(i), row["id"], "", response, task.gold(row), s.value, extras=dict(s.extras)))
    return out


# Four unparseable answers (empty responses) and one parsed "(B)". Official order:
# Accounting_5, Agriculture_9, Agriculture_10, Art_2 draw A, A, C, B; golds B, A, C, B ->
# wrong, right, right, right; the parsed one is right: 4 of 5 = 80.0. Sorting ids as text
# (Agriculture_10 before _9) would give 10 -> A (gold C) and 9 -> C (gold A): 2 of 5 = 40.0.
_SET = [("validation_Art_2", "B", ""), ("validation_Agriculture_10", "C", ""), ("validation_Accounting_3", "B", "(B)"),
        ("validation_Accounting_5", "B", ""), ("validation_Agriculture_9", "A", "")]


@pytest.mark.parametrize("order", [list(range(5)), [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]])
def test_mmmu_headline_uses_the_official_draw_sequence_whatever_the_data_order(order):
    task = MMMU()
    items = [(_mc_row(i, g), resp) for i, g, resp in (_SET[k] for k in order)]
    records = _records(task, items)
    task.finalize(records)
    out = task.aggregate(records)
    assert out["mmmu_acc"].value == pytest.approx(80.0)
    assert out["mmmu_acc_strict"].value == pytest.approx(20.0)
    assert task.counts(records) == {"n_unparseable": Count(4, 5)}
    drawn = {r.sample_id: r.extras["parsed_pred"] for r in records}
    assert drawn == {"validation_Accounting_5": "A", "validation_Agriculture_9": "A", "validation_Agriculture_10": "C",
                     "validation_Art_2": "B", "validation_Accounting_3": "B"}


def test_mmmu_variants_per_sample_wrong_and_expected_value():
    task = MMMU()
    records = _records(task, [(_mc_row(i, g), resp) for i, g, resp in _SET])
    task.finalize(records)
    v = {r.sample_id: r.extras["variants"] for r in records}
    # counted wrong: only the parsed answer scores; expected value: 1 gold of 4 options
    assert [v[i]["fallback_wrong"] for i, _, _ in _SET] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert [v[i]["fallback_expected"] for i, _, _ in _SET] == [0.25, 0.25, 1.0, 0.25, 0.25]
    # per-sample: the letter from the sample's own RNG, whatever else the run holds
    alone = _records(MMMU(), [(_mc_row("validation_Art_2", "B"), "")])[0]
    assert v["validation_Art_2"]["fallback_per_sample"] == alone.extras["variants"]["fallback_per_sample"]


def test_mmmu_list_gold_expected_value_counts_every_gold_option():
    row = _mc_row("validation_Math_1", "['A', 'C']")
    s = MMMU().score_text(row, "")
    assert s.extras["variants"]["fallback_expected"] == 0.5


# ------------------------------------------------------------------ MathVista extraction
MC = mv.Problem("multi_choice", "text", ("Mon", "Tue", "Wed", "Thu"))
INT = mv.Problem("free_form", "integer")
FLT = mv.Problem("free_form", "float", precision=1.0)
LST = mv.Problem("free_form", "list")


@pytest.mark.parametrize("extraction,problem,normalised", [
    ("B", MC, "Tue"),                       # a letter -> that choice
    ("(c) Wed", MC, "Wed"),                 # a bracketed letter anywhere, upper-cased
    ("Tuesday", MC, "Tue"),                 # free text -> Levenshtein-closest choice (3 edits vs 5+)
    ("", MC, "Mon"),                        # empty -> closest to "": the shortest, first on a tie
    ("E", MC, "Mon"),                       # not a letter of these 4 choices: distance 3 to every one -> first
    ("3.7", INT, "3"),                      # int(float(x)) truncates
    ("2000 and 2005", INT, None),           # not a number -> None (never a re-extraction)
    (7, INT, "7"),                          # a JSON number reads as the official float(x)
    ("9.25", FLT, "9.2"),                   # round(9.25, 1): binary 9.25 is exact, ties to even
    ("abc", FLT, None),
    ([2017, 2018], LST, "[2017, 2018]"),    # a JSON list prints as Python's str(list)
    ("[2017,2018]", LST, "[2017,2018]"),    # a string is kept as it is: no match for "[2017, 2018]"
])
def test_official_normalisation_of_a_given_extraction(extraction, problem, normalised):
    assert mv.normalize_extracted_answer(extraction, problem) == normalised


def _preds(tmp_path, lines):
    p = tmp_path / "preds.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return p


def test_score_reads_extraction_beside_or_instead_of_prediction(tmp_path):
    # shipped sample: pid 1 integer 7, pid 2 integer 2, pid 5 Mon/Tue/Wed/Thu gold Tue, pid 7 gold 2018
    lines = [
        {"id": "1", "prediction": "The answer is 7.", "extraction": "seven"},  # official: None -> wrong; rules: 7
        {"id": "2", "extraction": "2.9"},                                     # int(float) -> "2": right
        {"id": "5", "prediction": "I think Monday", "extraction": "Tues"},    # closest choice Tue: right
        {"id": "7", "prediction": "(C) 2018"},                                # no extraction: rules -> C -> 2018
    ]
    run = score_predictions(ScoreConfig("mathvista", _preds(tmp_path, lines), runs_dir=tmp_path, run_name="r", allow_missing=True))
    res, recs = read_run(run)
    by = {r.sample_id: r for r in recs}
    assert [by[i].score for i in ("1", "2", "5", "7")] == [0.0, 1.0, 1.0, 1.0]
    assert [by[i].extras["extraction_source"] for i in ("1", "2", "5", "7")] == ["given", "given", "given", "rules"]
    assert by["1"].extras["variants"]["rule_extraction"] == 1.0
    assert "rule_extraction" not in by["2"].extras["variants"]  # no response to extract from
    assert by["5"].extras["variants"]["rule_extraction"] == 0.0  # rules find "Mon" in the response
    sens = {v["name"]: v for v in res.scoring_sensitivity["variants"]}
    assert sens["rule_extraction"]["n"] == 2 and sorted(sens["rule_extraction"]["disagree_ids"]) == ["1", "5"]
    assert res.scoring_sensitivity["headline"]["source"].startswith("lupantech/MathVista")


def test_extraction_that_is_an_object_is_a_sample_error_and_other_tasks_refuse_the_field(tmp_path):
    run = score_predictions(ScoreConfig("mathvista", _preds(tmp_path, [{"id": "1", "extraction": {"a": 1}},
                                                                          {"id": "2", "extraction": "2"}]),
                                        runs_dir=tmp_path, run_name="r", allow_missing=True))
    res, recs = read_run(run)
    bad = next(r for r in recs if r.sample_id == "1")
    assert bad.error.startswith("extraction is a JSON object")
    with pytest.raises(EvalkitError, match="task docvqa does not read"):
        score_predictions(ScoreConfig("docvqa", _preds(tmp_path, [{"id": 1, "prediction": "x", "extraction": "x"}]),
                                      runs_dir=tmp_path, run_name="d"))


def test_mathvista_judge_is_a_variant_when_an_extraction_is_given():
    row = {"pid": "1", "question_type": "free_form", "answer_type": "integer", "choices": None,
           "precision": None, "answer": "7", "query": "q"}
    s = MathVista().score_extraction(row, "some long response", "6", judge=lambda q, r: "7")
    assert s.value == 0.0 and s.extras["variants"]["judge_extraction"] == 1.0


# ------------------------------------------------------------------ VQA and ANLS rules
def test_vqa_gold_normalisation_edge_across_the_three_rules():
    golds = ["the dog"] * 3 + ["dogs"] * 4 + ["dog"] * 3
    # 2017 script: golds keep "the" -> "dog" matches 3 of 10 -> 0.9; 2021: golds normalised -> 6 -> 1.0
    assert vqa_accuracy("A dog", golds, scheme="vqav2") == pytest.approx(0.9)
    assert vqa_accuracy("A dog", golds, scheme="vqav2_2021") == 1.0
    assert vqa_accuracy("A dog", golds, scheme="lmms_eval") == 1.0
    # unanimous golds: the raw 2021 script compares "Yes." as it is; lmms-eval processes it first
    assert vqa_accuracy("Yes.", ["yes"] * 10, scheme="vqav2_2021") == 0.0
    assert vqa_accuracy("Yes.", ["yes"] * 10, scheme="lmms_eval") == 1.0


def test_vqav2_task_headline_and_variants_per_sample():
    row = {"question_id": 1, "question": "q", "answers": ["yes"] * 10}
    s = VQAv2().score_text(row, "Yes.")
    assert (s.value, s.extras["variants"]) == (1.0, {"vqa_2021_script": 0.0, "vqa_2017": 1.0})
    t = TextVQA().score_text({"question_id": 1, "question": "q", "answers": ["Coca-Cola"] * 10}, "coca cola")
    assert (t.value, t.extras["variants"]["vqa_2021_script"]) == (1.0, 0.0)


def test_anls_threshold_boundary_official_keeps_paper_drops():
    # "ab" vs "a": distance 1 over length 2 -> NL 0.5 exactly
    assert anls("a", ["ab"]) == 0.5
    assert anls_paper("a", ["ab"]) == 0.0
    assert anls_paper("ab", ["ab"]) == 1.0
    s = DocVQA().score_text({"questionId": 1, "question": "q", "answers": ["ab"]}, "a")
    assert (s.value, s.extras["variants"]["anls_paper"]) == (0.5, 0.0)


def test_evalkit_score_applies_the_official_fallback_over_the_run(tmp_path):
    # shipped sample, 4 of its multiple-choice rows. Official order Accounting_2, Math_1, Physics_1
    # draws A, A, C: golds B, B, C -> only Physics_1 right; Geography_1 "(A)" parses, gold A.
    # Drawn in data order (Math_1, Physics_1, Accounting_2) Physics_1 would get A and be wrong.
    lines = [{"id": "validation_Physics_1", "prediction": ""}, {"id": "validation_Accounting_2", "prediction": ""},
             {"id": "validation_Math_1", "prediction": "no idea"}, {"id": "validation_Geography_1", "prediction": "(A)"}]
    run = score_predictions(ScoreConfig("mmmu", _preds(tmp_path, lines), runs_dir=tmp_path, run_name="m", allow_missing=True))
    res, recs = read_run(run)
    assert res.metrics["mmmu_acc"]["value"] == pytest.approx(50.0) and res.metrics["mmmu_acc"]["n"] == 4
    assert res.counts.task_counts == {"n_unparseable": Count(3, 4)} and "n_unparseable" not in res.metrics
    drawn = {r.sample_id: r.extras["parsed_pred"] for r in recs if r.error is None}
    assert drawn == {"validation_Accounting_2": "A", "validation_Math_1": "A", "validation_Physics_1": "C",
                     "validation_Geography_1": "A"}
    assert res.task["metric_rule"]["source"].startswith("MMMU-Benchmark/MMMU")
    names = [v["name"] for v in res.scoring_sensitivity["variants"]]
    assert names == ["fallback_per_sample", "fallback_wrong", "fallback_expected"]
    wrong = res.scoring_sensitivity["variants"][1]
    assert (wrong["value"], wrong["diff"], wrong["disagree_ids"]) == (25.0, -25.0, ["validation_Physics_1"])
    assert "Scoring sensitivity" in render_run_report(run).read_text(encoding="utf-8")


def test_score_mode_ignores_missing_images_but_eval_refuses_them(tmp_path):
    # The benchmarks' published outputs come with data whose image columns may be empty (a scorer
    # needs only text and gold); eval cannot ask a model without the image, score mode can score.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalkit.errors import ImageMissing

    src = next((Path(__file__).resolve().parents[2] / "tasks/samples/mmmu").glob("*.parquet"))
    table = pq.read_table(src)
    for k in range(1, 8):
        i = table.schema.get_field_index(f"image_{k}")
        table = table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows, table.schema.field(i).type))
    data = tmp_path / "data.parquet"
    pq.write_table(table, data)
    rows = table.to_pylist()
    with pytest.raises(ImageMissing):
        MMMU().build_requests(rows[0], "u0")
    preds = [{"id": r["id"], "prediction": (r["answer"] if r["question_type"] == "multiple-choice"
                                            else str(eval(r["answer"])[0]) if r["answer"].startswith("[")
                                            else r["answer"])} for r in rows]
    run = score_predictions(ScoreConfig("mmmu", _preds(tmp_path, preds), data=data, runs_dir=tmp_path,
                                        run_name="noimg"))
    res, recs = read_run(run)
    assert [r.error for r in recs] == [None] * len(rows)
    assert res.metrics["mmmu_acc"]["value"] == 100.0 and res.metrics["mmmu_acc"]["n"] == len(rows)
