"""`evalkit import --from vlmevalkit` on prediction files in VLMEvalKit's documented layout
(tests/data/vlmevalkit: index, question, answer as its list literal, category, prediction; the
dataset TSV's columns without `image`, as vlmeval/inference.py writes them), and an imported run
compared with an lmms-eval one on the samples they share, and listed on the index page."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest

from evalkit.cli.commands import main
from evalkit.results.schema import read_run
from tests.helpers.bad_bytes import with_invalid_byte

DATA = Path(__file__).resolve().parents[1] / "data"
TSV = DATA / "vlmevalkit" / "idefics2_DocVQA_VAL.tsv"
XLSX = DATA / "vlmevalkit" / "idefics2_DocVQA_VAL.xlsx"
LMMS_DOCVQA = DATA / "lmms_eval" / "0.7.3" / "20261203_205354_samples_docvqa_val_evalkit.jsonl"


def run_import(path: Path, runs: Path, name: str, *extra: str) -> int:
    return main(["import", "--from", "vlmevalkit", str(path), "--runs-dir", str(runs), "--run-name", name, *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert run_import(TSV, runs, "tsv") == 0
    assert main(["import", "--from", "lmms-eval", str(LMMS_DOCVQA), "--task", "docvqa", "--runs-dir", str(runs),
                 "--run-name", "lmms"]) == 0
    return runs


def test_tsv_matched_by_question_and_answer(runs):
    res, recs = read_run(runs / "tsv")
    im = res.imported
    assert im["harness"] == "VLMEvalKit" and im["task"] == "DocVQA_VAL" and im["model"] == "idefics2"
    assert im["matched_by"] == "question text and gold answers (the file keeps no id)"
    # "How was the bill paid?" with answers VISA/visa is asked of two receipts in the sample: not guessed
    assert im["n_unmatched"] == 2 and im["unmatched"] == [
        "line 4 (index 2): its question and answer match 2 data rows",
        "line 10 (index 8): its question and answer match no data row"]
    assert [r.prediction for r in recs] == ["unknown", "07/12/1993", "unknown", "478", "2071", "$78,000",
                                            "Paul Walker"]
    # ANLS of the 7: 0 + 0.9 + 0 + 1 + 1 + 0.857142... + 1
    assert res.metrics["anls"]["value"] == pytest.approx((0.9 + 3 + 6 / 7) / 7 * 100)
    assert res.data.n_rows == 7


def test_xlsx_reads_as_the_tsv(runs, tmp_path):
    import openpyxl  # noqa: F401  (a dev dependency: this test runs in CI, never skips)
    assert run_import(XLSX, tmp_path, "x") == 0
    a, ra = read_run(runs / "tsv")
    b, rb = read_run(tmp_path / "x")
    assert [(r.sample_id, r.prediction, r.score) for r in ra] == [(r.sample_id, r.prediction, r.score) for r in rb]
    assert b.imported["unmatched"] == a.imported["unmatched"]


def test_the_tasks_id_column_matches_every_row(tmp_path):
    """With the dataset's own id in the file, the twice-asked question is matched too."""
    import pyarrow.parquet as pq

    ids = pq.read_table(Path(__file__).resolve().parents[2] / "tasks" / "samples" / "docvqa" /
                        "validation-00000-of-00001.parquet", columns=["questionId"]).column(0).to_pylist()
    rows = list(csv.DictReader(io.StringIO(TSV.read_text()), delimiter="\t"))[:8]
    for i, r in enumerate(rows):
        r["questionId"] = ids[i]
    path = tmp_path / TSV.name
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
    assert run_import(path, tmp_path / "runs", "ids") == 0
    res, recs = read_run(tmp_path / "runs" / "ids")
    assert res.imported["matched_by"] == "the file's questionId column" and res.imported["n_unmatched"] == 0
    assert len(recs) == 8 and res.metrics["anls"]["value"] == pytest.approx(59.46428571428571)


def test_compare_an_imported_run_with_another_harness_on_shared_samples(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs / "lmms"), str(runs / "tsv"), "--runs-dir", str(runs), "--run-name", "cmp"]) == 0
    out = capsys.readouterr().out
    assert "docvqa: 7 shared samples (7 scored in every run)" in out
    assert "tsv - lmms: +0.0 (95% CI +0.0 to +0.0), p = 1, n = 7 in" in out


def test_index_lists_imported_runs(runs):
    from tests.helpers.htmldom import parse

    assert main(["report", str(runs)]) == 0
    doc = parse((runs / "index.html").read_text(encoding="utf-8"))
    rows = {tr.attrs.get("data-run"): tr for tr in doc.find_all("tr", cls="run")}
    assert {"tsv", "lmms"} <= set(rows)
    assert rows["tsv"].one(cls="imported").text() == "imported from VLMEvalKit"
    assert rows["lmms"].one(cls="imported").attrs["data-imported"] == "lmms-eval"


# --- bad input --------------------------------------------------------------------------------

def refused(capsys, path: Path, runs: Path, *extra: str) -> str:
    capsys.readouterr()
    assert run_import(path, runs, "bad", *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert not runs.exists()
    return err.strip()


def test_xlsx_without_a_prediction_column(tmp_path, capsys):
    import openpyxl
    wb = openpyxl.load_workbook(XLSX)
    ws = wb.active
    ws.delete_cols(5)  # the prediction column
    path = tmp_path / XLSX.name
    wb.save(path)
    err = refused(capsys, path, tmp_path / "runs")
    assert err == (f"evalkit: error: {path}: has no 'prediction' column (its columns: index, question, answer, "
                   f"category); VLMEvalKit's prediction file has index, question, answer and prediction: give that "
                   f"file, not the dataset's tsv")


def test_xlsx_without_openpyxl_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    err = refused(capsys, XLSX, tmp_path / "runs")
    assert err == (f"evalkit: error: {XLSX}: reading .xlsx needs openpyxl: pip install 'evalkit[xlsx]' (or give "
                   f"VLMEvalKit's .tsv)")


def test_a_file_of_another_dataset(tmp_path, capsys):
    err = refused(capsys, TSV, tmp_path / "runs", "--task", "textvqa")
    assert err == (f"evalkit: error: {TSV}: is VLMEvalKit's DocVQA_VAL file (evalkit task docvqa), not textvqa; "
                   f"give --task docvqa or the textvqa file")


def test_non_utf8_tsv(tmp_path, capsys):
    path, at = with_invalid_byte(TSV, b"Paul", tmp_path)
    err = refused(capsys, path, tmp_path / "runs")
    assert err == (f"evalkit: error: {path}:9: not UTF-8 text (byte {at}: invalid start byte); VLMEvalKit writes "
                   f"tsv in UTF-8: give the file as it wrote it")


def test_a_truncated_tsv_row(tmp_path, capsys):
    text = TSV.read_text()
    path = tmp_path / TSV.name
    path.write_text(text[:text.index("Paul Walker") - 1])  # the last rows cut off mid-row
    err = refused(capsys, path, tmp_path / "runs")
    assert err == (f"evalkit: error: {path}:9: has 3 fields, the header 5; give the file as VLMEvalKit wrote it "
                   f"(tab-separated, quoted where a field holds a tab or newline)")


def test_no_row_matches(tmp_path, capsys):
    path = tmp_path / "m_DocVQA_VAL.tsv"
    path.write_text("index\tquestion\tanswer\tprediction\n0\tWhat is this?\t['x']\tx\n")
    err = refused(capsys, path, tmp_path / "runs")
    assert err == (f"evalkit: error: {path}: none of its 1 rows matches a row of the docvqa data (line 2 (index 0): "
                   f"its question and answer match no data row); give the data VLMEvalKit ran on with --data")


def test_mathvista_rows_match_by_the_raw_question(tmp_path):
    """VLMEvalKit's MathVista_MINI holds the dataset's `question` (evalkit prompts with `query`)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(Path(__file__).resolve().parents[2] / "tasks" / "samples" / "mathvista" /
                         "testmini-00000-of-00001.parquet", columns=["question", "answer"]).to_pylist()[:3]
    path = tmp_path / "m_MathVista_MINI.tsv"
    path.write_text("index\tquestion\tanswer\tprediction\n" + "".join(
        f"{i}\t{r['question']}\t{r['answer']}\tThe answer is {r['answer'] if i != 2 else '0'}.\n"
        for i, r in enumerate(rows)))
    assert run_import(path, tmp_path / "runs", "mv") == 0
    res, recs = read_run(tmp_path / "runs" / "mv")
    assert [r.sample_id for r in recs] == ["1", "2", "3"] and res.imported["n_unmatched"] == 0
    assert [r.score for r in recs] == [1.0, 1.0, 0.0]


# VLMEvalKit's MMMU_DEV_VAL (vlmeval/dataset/image_mcq.py MMMUDataset, an ImageMCQDataset): one row
# per question with the options in columns A..I (blank past the last), `answer` the letter (the
# text for open questions), `category`/`l2-category` and `split` dev or validation; the prediction
# file is that row without `image`, plus `prediction`. Ten validation rows are the shipped sample's
# first ten; the five dev rows are written in the same layout (MMMU's dev split is not shipped).
MMMU_PREDICTIONS = ["B", "24", "C", "0.5", "C. 5-6 s", "10", "(A)", "nitrogen", "A", "40"]
MMMU_DEV = [("What is 2 + 3?", ["4", "5", "6"], "B"), ("Which shape has three sides?", ["Square", "Triangle"], "B"),
            ("What is the capital of France?", ["Paris", "Rome", "Madrid"], "A"),
            ("How many legs does a spider have?", [], "8"), ("Which planet is largest?", ["Mars", "Jupiter"], "B")]


def mmmu_dev_val(path: Path, with_id: bool) -> Path:
    import ast

    import pyarrow.parquet as pq

    rows = pq.read_table(Path(__file__).resolve().parents[2] / "tasks" / "samples" / "mmmu" /
                         "validation-00000-of-00001.parquet",
                         columns=["id", "question", "options", "answer", "subfield"]).to_pylist()[:10]
    letters = "ABCDEFGHI"
    header = ["index", "question", "hint", *letters, "answer", "category", "l2-category", "split",
              *(["id"] if with_id else []), "prediction"]
    table = []
    for i, (q, opts, answer) in enumerate(MMMU_DEV):  # VLMEvalKit's file holds dev before validation
        table.append([str(i), q, "", *(opts + [""] * (9 - len(opts))), answer, "Basic", "Basic", "dev",
                      *([f"dev_Basic_{i + 1}"] if with_id else []), "A"])
    for j, (r, pred) in enumerate(zip(rows, MMMU_PREDICTIONS)):
        opts = ast.literal_eval(r["options"])
        subject = "_".join(r["id"].split("_")[1:-1])
        table.append([str(len(MMMU_DEV) + j), r["question"], "", *(opts + [""] * (9 - len(opts))), r["answer"],
                      subject, r["subfield"], "validation", *([r["id"]] if with_id else []), pred])
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t", lineterminator="\n").writerows([header, *table])
    path.write_text(buf.getvalue())
    return path


@pytest.mark.parametrize("with_id", [False, True], ids=["by-question", "by-id"])
def test_mmmu_dev_val_matches_validation_and_lists_dev(tmp_path, with_id):
    """Against evalkit's MMMU (the validation split) the ten validation rows match and the five
    dev rows are unmatched, each named with its split. Score on the ten, by MMMU's official rule:
    Math_1 "B" right; Math_2 "24" right; Math_3 "C" for A wrong; Math_4 "0.5" in ['0.5', '1/2']
    right; Physics_1 "C. 5-6 s" (gold C) is unparseable by the official parser (it takes "(C)" or
    " C " with spaces, and option text only in answers of more than 5 words), so it gets the
    fixed-seed random option, A: wrong; Physics_2 "10" for 12 wrong; Chemistry_1 "(A)" for C wrong;
    Chemistry_2 "nitrogen" for Nitrogen right (open answers compare lower-cased); Geography_1 "A"
    right; Economics_1 "40" right: 6/10."""
    path = mmmu_dev_val(tmp_path / "idefics2_MMMU_DEV_VAL.tsv", with_id)
    assert run_import(path, tmp_path / "runs", "mmmu") == 0
    res, recs = read_run(tmp_path / "runs" / "mmmu")
    im = res.imported
    assert im["task"] == "MMMU_DEV_VAL" and res.task["name"] == "mmmu"
    assert im["n_lines"] == 15 and im["n_unmatched"] == 5
    why = "id 'dev_Basic_{}' is not in the data" if with_id else "its question and answer match no data row"
    assert im["unmatched"] == [f"line {i + 2} (index {i}, split dev): {why.format(i + 1)}" for i in range(5)]
    assert im["matched_by"] == ("the file's id column" if with_id else
                                "question text and gold answers (the file keeps no id)")
    assert [r.sample_id for r in recs] == [f"validation_{s}" for s in (
        "Math_1", "Math_2", "Math_3", "Math_4", "Physics_1", "Physics_2", "Chemistry_1", "Chemistry_2",
        "Geography_1", "Economics_1")]
    assert [r.score for r in recs] == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert [r.extras["parsed"] for r in recs].count(False) == 1 and recs[4].extras["parsed_pred"] == "A"
    assert res.metrics["mmmu_acc"]["value"] == pytest.approx(60.0) and res.metrics["mmmu_acc"]["n"] == 10
    assert res.data.n_rows == 10
