"""`evalkit import --from lmms-eval` on lmms-eval's own logs (tests/data/lmms_eval, written by
lmms-eval 0.7.3 and 0.6.1 on 8 rows of the shipped samples; see its README), and every bad
input of issue 22 item 4 refused with one line and nothing written."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.cli.commands import main
from evalkit.results.schema import read_run
from tests.helpers.bad_bytes import with_invalid_byte

DATA = Path(__file__).resolve().parents[1] / "data" / "lmms_eval"
V07, V06 = DATA / "0.7.3", DATA / "0.6.1"
DOCVQA_07 = V07 / "20261203_205354_samples_docvqa_val_evalkit.jsonl"
TEXTVQA_07 = V07 / "20261203_205354_samples_textvqa_val_evalkit.jsonl"
MMMU_07 = V07 / "20261203_205354_samples_mmmu_val_evalkit.jsonl"
VQAV2_07 = V07 / "20261203_210450_samples_vqav2_val_evalkit.jsonl"
MATHVISTA_07 = V07 / "20261203_212127_samples_mathvista_testmini_evalkit.jsonl"
DOCVQA_06 = V06 / "20261203_205720_samples_docvqa_val_evalkit.jsonl"


def run_import(path: Path, task: str, runs: Path, name: str, *extra: str) -> int:
    return main(["import", "--from", "lmms-eval", str(path), "--task", task, "--runs-dir", str(runs),
                 "--run-name", name, *extra])


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The three real 0.7.3 logs and the 0.6.1 DocVQA log, imported once for the module."""
    runs = tmp_path_factory.mktemp("runs")
    for path, task, name in ((DOCVQA_07, "docvqa", "doc07"), (TEXTVQA_07, "textvqa", "text07"),
                             (MMMU_07, "mmmu", "mmmu07"), (DOCVQA_06, "docvqa", "doc06"), (VQAV2_07, "vqav2", "vqa07"),
                             (MATHVISTA_07, "mathvista", "mv07")):
        assert run_import(path, task, runs, name) == 0
    names = ("doc07", "text07", "mmmu07", "doc06", "vqa07", "mv07")
    return {name: read_run(runs / name) for name in names} | {"runs": runs}


def variant(results, name: str) -> dict:
    return next(v for v in results.scoring_sensitivity["variants"] if v["name"] == name)


def log_metric(path: Path, key: str) -> dict[int, float]:
    return {(d := json.loads(line))["doc_id"]: d[key] for line in path.read_text().splitlines()}


def test_docvqa_07_reproduces_lmms_evals_own_anls(imported):
    res, recs = imported["doc07"]
    # lmms-eval's results file: anls,none 0.5946428571428571 over the same 8 rows
    assert res.metrics["anls"]["value"] == pytest.approx(59.46428571428571)
    assert res.metrics["anls"]["n"] == 8
    v = variant(res, "lmms_eval_anls")
    assert v["value"] == pytest.approx(59.46428571428571) and v["n_disagree"] == 0 and v["n"] == 8
    # every sample's own value, not only the mean: "07/12/1993" vs "07/12/1994" is 0.9 in both
    logged = log_metric(DOCVQA_07, "anls")
    assert sorted(r.score for r in recs) == sorted(logged.values())
    assert {r.sample_id: r.extras["variants"]["lmms_eval_anls"] for r in recs}[recs[1].sample_id] == 0.9
    assert [r.prediction for r in recs][:2] == ["unknown", "07/12/1993"]


def test_docvqa_07_keeps_what_the_files_say(imported):
    res, _ = imported["doc07"]
    im = res.imported
    assert im["harness"] == "lmms-eval" and im["task"] == "docvqa_val_evalkit" and im["model"] == "idefics2"
    assert im["model_args"].startswith("pretrained=/tmp/ka-model,device=cpu")
    assert im["generation_kwargs"] == {"max_new_tokens": 32, "temperature": 0.0, "do_sample": False,
                                       "until": ["\n\n"]}
    # 0.7.3 installed from a wheel records lmms_eval_version "unknown@unknown": no version, the layout says 0.7
    assert im["version"] is None and im["log_format"] == "0.7"
    assert im["n_lines"] == 8 and im["n_unmatched"] == 0 and len(im["files"]) == 2
    assert res.model.model_id == "/tmp/ka-model" and res.data.n_rows == 8 and res.data.n_total == 60
    assert res.generation.source == "predictions file"


def test_textvqa_07_id_and_metric_agree(imported):
    res, recs = imported["text07"]
    assert res.metrics["vqa_accuracy"]["value"] == pytest.approx(87.5)  # lmms-eval: exact_match 0.875
    v = variant(res, "lmms_eval_exact_match")
    assert v["value"] == pytest.approx(87.5) and v["n_disagree"] == 0
    assert "its id against the logged id" in res.imported["matched_by"]
    assert [r.sample_id for r in recs][:2] == ["900000", "900001"]


def test_mmmu_07_parsed_answers_judged_as_lmms_eval_does(imported):
    res, recs = imported["mmmu07"]
    assert res.metrics["mmmu_acc"]["value"] == pytest.approx(37.5)  # lmms-eval: mmmu_acc 0.375
    v = variant(res, "lmms_eval_mmmu_acc")
    assert v["value"] == pytest.approx(37.5) and v["n"] == 8 and v["n_disagree"] == 0
    # its parsed answer beside evalkit's: the letter for multiple choice, the extracted list for open
    assert recs[0].extras["source_answer"] == "B" and recs[1].extras["source_answer"] == '["unknown"]'
    # the parsers agree on every parseable answer; Physics_1's "unknown" parses to nothing and
    # both fall back to a random option from their own RNGs (lmms-eval D, evalkit A), wrong either
    # way (gold C), so the scores still agree
    assert {r.sample_id: (r.extras["parsed_pred"], r.extras["source_answer"]) for r in recs
            if r.extras["question_type"] == "multiple-choice" and r.extras["parsed_pred"] != r.extras["source_answer"]
            } == {"validation_Physics_1": ("A", "D")}
    assert not recs[4].extras["parsed"] and recs[4].score == 0.0


def test_vqav2_07_exact_match_agrees(imported):
    res, recs = imported["vqa07"]
    assert res.metrics["vqa_accuracy"]["value"] == pytest.approx(50.0)  # lmms-eval: exact_match 0.5
    v = variant(res, "lmms_eval_exact_match")
    assert v["value"] == pytest.approx(50.0) and v["n_disagree"] == 0 and v["n"] == 8
    # vqav2_val logs no question_id: the prompt alone checks the mapping
    assert res.imported["matched_by"] == ("doc_id = row index of the split; the row's question checked against "
                                          "the logged prompt")


def test_mathvista_07_agrees_with_lmms_eval_except_its_float_rounding(imported):
    """lmms-eval 0.7.3's mathvista_process_results on 8 real rows, its extraction model a real
    `transformers serve` of the known-answer model (tests/data/lmms_eval/README.md). Its
    llm_as_judge_eval true_false gives 3/8 (pids 1, 5, 7); evalkit's official rule 4/8.
    Where the two agree, they agree sample by sample: 7 of 8, including pid 2, whose "3.2" to an
    integer question lmms-eval sent to its extraction model (which answered "3") and evalkit's
    rules read as int(float("3.2")) = 3: both normalise to "3", both wrong (gold 2).
    The one difference is pid 8, "1.83" to a float question of precision 2: lmms-eval's
    normalize_extracted_answer calls round(1.83, 2.0) with the hub's float precision, which raises
    TypeError, so its prediction is None and the sample wrong; MathVista's calculate_score.py rounds
    to int(precision) and evalkit scores it right. pids 3 and 4 fall into the same None but are
    wrong either way (45 vs 9.3, 5 vs 3.2)."""
    res, recs = imported["mv07"]
    logged = {json.loads(line)["llm_as_judge_eval"]["question_id"]: json.loads(line)["llm_as_judge_eval"]
              for line in MATHVISTA_07.read_text().splitlines()}
    assert res.metrics["mathvista_acc"]["value"] == pytest.approx(50.0) and res.metrics["mathvista_acc"]["n"] == 8
    v = variant(res, "lmms_eval_llm_as_judge_eval")
    # lmms-eval's results file: llm_as_judge_eval,none 37.5
    assert v["value"] == pytest.approx(37.5) and v["n"] == 8
    assert v["n_disagree"] == 1 and v["disagree_ids"] == ["8"] and v["diff"] == pytest.approx(-12.5)
    ours = {r.sample_id: r.score for r in recs}
    theirs = {pid: float(m["true_false"]) for pid, m in logged.items()}
    assert ours == {"1": 1.0, "2": 0.0, "3": 0.0, "4": 0.0, "5": 1.0, "6": 0.0, "7": 1.0, "8": 1.0}
    assert {pid for pid in ours if ours[pid] != theirs[pid]} == {"8"}
    assert {r.sample_id: r.extras["variants"]["lmms_eval_llm_as_judge_eval"] for r in recs} == theirs
    # the extractions side by side: where lmms-eval's normalisation gave an answer, evalkit's is the same
    norm = {r.sample_id: r.extras["normalized"] for r in recs}
    same = {pid for pid, m in logged.items() if m["prediction"] is not None}
    assert same == {"1", "2", "5", "6", "7"}
    assert {pid: norm[pid] for pid in same if norm[pid] != logged[pid]["prediction"]} == {"6": "9"}
    assert logged["6"]["extraction"] == "249"  # its extraction model's answer to "9.3"; wrong either way
    assert logged["8"]["prediction"] is None and norm["8"] == "1.83" and logged["8"]["precision"] == 2.0
    # lmms-eval's own extraction is kept beside evalkit's in samples.jsonl
    assert {r.sample_id: r.extras["source_answer"] for r in recs} == {
        "1": "7", "2": "3", "3": "45.0", "4": "5.0", "5": "Tue", "6": "249", "7": "2018", "8": "1.83"}
    assert res.imported["task"] == "mathvista_testmini_evalkit"
    assert res.imported["generation_kwargs"]["max_new_tokens"] == 64


def test_06_log_reads_the_same_responses(imported):
    res06, recs06 = imported["doc06"]
    res07, recs07 = imported["doc07"]
    assert res06.imported["log_format"] == "0.6"
    assert [r.prediction for r in recs06] == [r.prediction for r in recs07]
    assert res06.metrics["anls"]["value"] == pytest.approx(59.46428571428571)


def test_the_folder_lmms_eval_wrote_is_enough(tmp_path):
    assert run_import(V07, "textvqa", tmp_path, "t") == 0
    res, _ = read_run(tmp_path / "t")
    assert res.imported["task"] == "textvqa_val_evalkit"


def test_where_the_rules_differ_the_panel_shows_it(tmp_path):
    """The log's own metric disagrees with evalkit's where a response was scored by another rule:
    here the response of doc 1 is made right by hand while lmms-eval's 0.9 stays, as a harness
    whose rule differs would leave it; the variant names that sample and the difference."""
    lines = DOCVQA_07.read_text().splitlines()
    d = json.loads(lines[1])
    d["filtered_resps"] = "07/12/1994"
    lines[1] = json.dumps(d)
    log = tmp_path / "20261203_205354_samples_docvqa_val_evalkit.jsonl"
    log.write_text("\n".join(lines) + "\n")
    assert run_import(log, "docvqa", tmp_path / "runs", "x") == 0
    res, recs = read_run(tmp_path / "runs" / "x")
    v = variant(res, "lmms_eval_anls")
    assert v["n_disagree"] == 1 and v["disagree_ids"] == [recs[1].sample_id]
    assert v["diff"] == pytest.approx(-0.1 / 8 * 100)
    assert res.metrics["anls"]["value"] == pytest.approx(59.46428571428571 + 0.1 / 8 * 100)


def test_report_says_the_responses_are_not_evalkits(imported):
    from tests.helpers.htmldom import parse

    from evalkit.reports.run_report import render_run_report

    doc = parse(render_run_report(imported["runs"] / "doc07").read_text(encoding="utf-8"))
    banner = doc.one(id="banner-imported")
    assert "not generated by evalkit" in banner.text()
    assert doc.one(id="imported-harness").text() == "lmms-eval"
    settings = doc.one(id="imported-settings").text()
    assert "docvqa_val_evalkit" in settings and "max_new_tokens=32" in settings and "pretrained=/tmp/ka-model" in settings
    names = [tr.text() for tr in doc.find_all("tr")]
    assert any("lmms_eval_anls" in t for t in names)


def test_a_run_folder_written_before_imports_reads_and_renders(imported, tmp_path):
    """results.json without the `imported` section (every run before this change) reads with an
    empty one and its report has no imported banner."""
    from evalkit.reports.run_report import render_run_report

    old = tmp_path / "old"
    shutil.copytree(imported["runs"] / "doc07", old)
    d = json.loads((old / "results.json").read_text())
    del d["imported"]
    (old / "results.json").write_text(json.dumps(d))
    res, _ = read_run(old)
    assert res.imported == {}
    assert 'id="banner-imported"' not in render_run_report(old).read_text(encoding="utf-8")


# --- bad input: one line naming the file, the row and what would be valid; nothing written -----

def refused(capsys, path: Path, task: str, runs: Path, *extra: str) -> str:
    assert run_import(path, task, runs, "bad", *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert not runs.exists()
    return err.strip()


def copy_log(tmp_path: Path, lines: list[str], end: str = "\n") -> Path:
    path = tmp_path / DOCVQA_07.name
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def test_a_log_of_another_task(tmp_path, capsys):
    err = refused(capsys, TEXTVQA_07, "docvqa", tmp_path / "runs")
    assert err == (f"evalkit: error: {TEXTVQA_07}: is a log of lmms-eval task 'textvqa_val_evalkit', not of docvqa "
                   f"(docvqa_val); give --task textvqa")


def test_a_truncated_line(tmp_path, capsys):
    text = DOCVQA_07.read_text()
    log = tmp_path / DOCVQA_07.name
    log.write_text(text[:len(text) - 40])  # a run stopped while writing its last line
    err = refused(capsys, log, "docvqa", tmp_path / "runs")
    assert err.startswith(f"evalkit: error: {log}:8: the last line is cut off (")
    assert err.endswith("the log is truncated (a run stopped while writing?): give the complete log")


def test_a_line_that_is_not_json_in_the_middle(tmp_path, capsys):
    lines = DOCVQA_07.read_text().splitlines()
    lines[2] = lines[2][:30]
    err = refused(capsys, copy_log(tmp_path, lines), "docvqa", tmp_path / "runs")
    assert err.startswith(f"evalkit: error: {tmp_path / DOCVQA_07.name}:3: not valid JSON (")


def test_duplicated_doc_ids(tmp_path, capsys):
    lines = DOCVQA_07.read_text().splitlines()
    log = copy_log(tmp_path, lines + [lines[3]])
    err = refused(capsys, log, "docvqa", tmp_path / "runs")
    assert err == (f"evalkit: error: {log}:9: doc_id 3 appears again (first on line 4); one lmms-eval run logs "
                   f"each document once: give one run's log, not several joined")


def test_a_log_longer_than_the_data(tmp_path, capsys):
    import pyarrow.parquet as pq

    src = Path(__file__).resolve().parents[2] / "tasks" / "samples" / "docvqa" / "validation-00000-of-00001.parquet"
    small = tmp_path / "validation-00000-of-00001.parquet"
    pq.write_table(pq.read_table(src).slice(0, 5), small)
    err = refused(capsys, DOCVQA_07, "docvqa", tmp_path / "runs", "--data", str(small))
    assert err == (f"evalkit: error: {DOCVQA_07}:6: doc_id 5 is past the data's last row (5 rows, doc_id 0-4); "
                   f"the log was made on a larger split: give that split with --data")


def test_non_utf8(tmp_path, capsys):
    log, at = with_invalid_byte(DOCVQA_07, b"Paul Walker", tmp_path)
    err = refused(capsys, log, "docvqa", tmp_path / "runs")
    assert err == (f"evalkit: error: {log}:8: not UTF-8 text (byte {at}: invalid start byte); lmms-eval writes "
                   f"its logs in UTF-8: give the file as it wrote it")


def test_rows_that_do_not_line_up_name_the_first(tmp_path, capsys):
    lines = [json.loads(line) for line in DOCVQA_07.read_text().splitlines()]
    for d in lines[4:]:
        d["doc_id"] += 10  # a log of another order of the split from row 4 on
    log = copy_log(tmp_path, [json.dumps(d) for d in lines])
    err = refused(capsys, log, "docvqa", tmp_path / "runs")
    assert err.startswith(f"evalkit: error: {log}:5: doc_id 14 logged the prompt 'What is the value for East "
                          f"under 1997?\\nAnswer the question u', which does not hold the data's row 14 question ")
    assert err.endswith("the log was made on another split or order: give that data with --data")


def test_a_logged_id_that_is_not_the_rows(tmp_path, capsys):
    lines = [json.loads(line) for line in TEXTVQA_07.read_text().splitlines()]
    lines[2]["submission"]["question_id"] = 123
    log = tmp_path / TEXTVQA_07.name
    log.write_text("".join(json.dumps(d) + "\n" for d in lines))
    err = refused(capsys, log, "textvqa", tmp_path / "runs")
    assert err == (f"evalkit: error: {log}:3: doc_id 2 logged question_id 123, but the data's row 2 is '900002'; "
                   f"the log was made on another split or order: give that data with --data")


def test_a_file_that_is_not_a_log(tmp_path, capsys):
    log = copy_log(tmp_path, ['{"id": 1, "prediction": "x"}'])
    err = refused(capsys, log, "docvqa", tmp_path / "runs")
    assert err == (f"evalkit: error: {log}:1: not an lmms-eval sample line (needs doc_id and filtered_resps, has "
                   f"['id', 'prediction']); give the *_samples_<task>.jsonl that --log_samples writes")


def test_lmms_eval_needs_a_task(tmp_path, capsys):
    assert main(["import", "--from", "lmms-eval", str(DOCVQA_07), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.startswith("evalkit: error: --from lmms-eval needs --task")
    assert not (tmp_path / "runs").exists()
