"""`evalkit import` at the scale of a real split (DocVQA val has 5,349 questions, VQAv2 val
214k): a 10,000-line lmms-eval log and a 10,000-row VLMEvalKit file, grown from the real 8-line
DocVQA log (tests/data/lmms_eval) against a generated 10,000-row data file in the hub schema.
Every line is matched and scored; matching is by dict lookups, so this takes seconds."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from evalkit.cli.commands import main
from evalkit.results.schema import read_run

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "tests" / "data" / "lmms_eval" / "0.7.3" / "20261203_205354_samples_docvqa_val_evalkit.jsonl"
N = 10_000
ANLS_8 = 59.46428571428571  # lmms-eval's own ANLS on the 8 real lines (its results file: 0.5946...)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Row i of the data is the sample's row i % 8 with a question made unique by its number
    (so question-text matching has 10,000 distinct keys), a new questionId and a 4-question page;
    line i of the log is real line i % 8 with doc_id i and that question in its prompt; the
    VLMEvalKit file holds the same responses, without ids, in its columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    work = tmp_path_factory.mktemp("big")
    sample = pq.read_table(ROOT / "tasks" / "samples" / "docvqa" / "validation-00000-of-00001.parquet").slice(0, 8)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG")
    png = buf.getvalue()
    base = sample.drop(["image"]).to_pylist()
    lines = [json.loads(line) for line in LOG.read_text().splitlines()]
    rows, log, tsv = [], [], [["index", "question", "answer", "category", "prediction"]]
    for i in range(N):
        r = dict(base[i % 8])
        question = f"{r['question']} (no. {i})"
        rows.append(r | {"questionId": str(100000 + i), "docId": 10000 + i // 4, "question": question,
                         "image": {"bytes": png, "path": None}})
        line = dict(lines[i % 8])
        line["doc_id"] = i
        line["input"] = line["input"].replace(r["question"], question)
        log.append(json.dumps(line))
        tsv.append([str(i), question, repr(list(r["answers"])), "", line["filtered_resps"]])
    data = work / "docvqa-big.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=sample.schema), data)
    (work / LOG.name).write_text("\n".join(log) + "\n")
    out = io.StringIO()
    csv.writer(out, delimiter="\t", lineterminator="\n").writerows(tsv)
    (work / "idefics2_DocVQA_VAL.tsv").write_text(out.getvalue())
    return work, data


def test_a_10000_line_lmms_eval_log(big):
    work, data = big
    assert main(["import", "--from", "lmms-eval", str(work / LOG.name), "--task", "docvqa", "--data", str(data),
                 "--runs-dir", str(work / "runs"), "--run-name", "lmms"]) == 0
    res, recs = read_run(work / "runs" / "lmms")
    assert len(recs) == N and res.data.n_rows == N and res.imported["n_lines"] == N
    assert [r.sample_id for r in recs[:3]] + [recs[-1].sample_id] == ["100000", "100001", "100002", "109999"]
    # the 8 real lines 1,250 times each: the same mean, and lmms-eval's own anls agrees on every line
    assert res.metrics["anls"]["value"] == pytest.approx(ANLS_8) and res.metrics["anls"]["n"] == N
    v = next(v for v in res.scoring_sensitivity["variants"] if v["name"] == "lmms_eval_anls")
    assert v["n"] == N and v["n_disagree"] == 0
    assert res.statistics["cluster_key"] == "docId" and res.statistics["headline"]["n_clusters"] == N // 4


def test_a_10000_row_vlmevalkit_file_matched_by_question(big):
    work, data = big
    assert main(["import", "--from", "vlmevalkit", str(work / "idefics2_DocVQA_VAL.tsv"), "--data", str(data),
                 "--runs-dir", str(work / "runs"), "--run-name", "vlm"]) == 0
    res, recs = read_run(work / "runs" / "vlm")
    assert res.imported["matched_by"] == "question text and gold answers (the file keeps no id)"
    assert res.imported["n_unmatched"] == 0 and len(recs) == N
    assert [r.sample_id for r in recs[-2:]] == ["109998", "109999"]
    assert res.metrics["anls"]["value"] == pytest.approx(ANLS_8)
