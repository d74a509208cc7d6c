"""Bad input through the real CLI: every case ends as one `evalkit: error: ...` line (exit 2)
or as a per-sample record that the run counts, never a traceback or a silently wrong score.

Data is built in tmp_path from the first rows of each task's shipped sample, with the
sample's own features (image columns undecoded), then one cell is broken.
"""
from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from evalkit.cli.commands import main
from evalkit.registry import TASKS
from evalkit.results.schema import read_run

# ---------------------------------------------------------------- helpers


def _features(task_name: str) -> datasets.Features:
    task = TASKS.get(task_name)
    f = next(task.sample_path().glob("*.parquet"))
    feats = datasets.load_dataset("parquet", data_files=str(f), split="train").features
    return datasets.Features({k: (datasets.Image(decode=False) if isinstance(v, datasets.Image) else v)
                              for k, v in feats.items()})


def _rows(task_name: str, n: int) -> list[dict]:
    task = TASKS.get(task_name)
    f = next(task.sample_path().glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files=str(f), split="train").select(range(n))
    return [dict(r) for r in ds.cast(_features(task_name))]


def _parquet(tmp_path, name, rows, features) -> str:
    path = tmp_path / f"{name}.parquet"
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return str(path)


def _one_line_error(capsys, code) -> str:
    """The CLI's answer to bad input: exit 2 and exactly one stderr line, no traceback.
    Progress bars (tqdm lines, drawn with carriage returns by `datasets` while it reads a
    parquet file) are not messages and are left out."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.split("\n") if line.strip() and "\r" not in line]
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: "), err
    return lines[0]


def _eval(tmp_path, cache, task, data, name, *extra, limit=3):
    return main(["eval", "--task", task, "--data", data, "--run-name", name, "--limit", str(limit),
                 "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(cache), "--no-progress",
                 "--device", "cpu", *extra])


def _score(tmp_path, task, preds_path, name, *extra):
    # These cases score a few rows of a task's sample: the rest have no prediction on purpose.
    return main(["score", "--task", task, "--predictions", str(preds_path), "--run-name", name,
                 "--runs-dir", str(tmp_path / "runs"), "--allow-missing", *extra])


def _jsonl(path, items):
    path.write_text("".join(json.dumps(x) + "\n" for x in items), encoding="utf-8")
    return path


# ---------------------------------------------------------------- eval: per-sample problems

def test_mmmu_missing_referenced_image_bad_options_and_no_image(tmp_path, tiny_cache):
    rows = _rows("mmmu", 4)
    for r in rows:
        for k in range(2, 8):
            r[f"image_{k}"] = None
        r["question"] = "What does <image 1> show?"
    rows[0]["question"] = "Compare <image 1> with <image 2>."  # image_2 is empty
    rows[1]["question_type"], rows[1]["options"] = "multiple-choice", "A, B, C"  # not a list literal
    rows[2]["image_1"] = None  # no image at all, and no <image k> in the text
    rows[2]["question"] = "What is shown?"
    data = _parquet(tmp_path, "mmmu", rows, _features("mmmu"))
    assert _eval(tmp_path, tiny_cache, "mmmu", data, "mm", limit=4) == 0
    res, records = read_run(tmp_path / "runs" / "mm")
    errors = {e["sample_id"]: e["error"] for e in res.errors}
    assert errors == {
        rows[0]["id"]: "text references <image 2> but image_2 is empty",
        rows[1]["id"]: f"options of {rows[1]['id']!r} is not a Python list literal: 'A, B, C'",
        rows[2]["id"]: "no image: image_1..image_7 are all empty",
    }
    # the one good row is scored; the three bad ones are counted, never scored
    assert res.counts.n_samples == 4 and res.counts.n_errors == 3 and res.counts.n_scored == 1
    assert res.metrics["mmmu_acc"]["n"] == 1


def test_mathvista_choices_null_is_normal_for_free_form_and_unscored_for_multi_choice(tmp_path, tiny_cache,
                                                                                    monkeypatch):
    # What is checked here is scoring, not generation: 16 new tokens instead of MathVista's 512,
    # which the random model (32k vocabulary, so it seldom hits a stop token) would run in full.
    monkeypatch.setattr(TASKS.get("mathvista"), "max_new_tokens", 16)
    rows = _rows("mathvista", 5)  # pids 1-4 free_form (choices None), pid 5 multi_choice
    assert [r["question_type"] for r in rows] == ["free_form"] * 4 + ["multi_choice"]
    assert rows[0]["choices"] is None
    rows[4]["choices"] = None
    data = _parquet(tmp_path, "mv", rows, _features("mathvista"))
    assert _eval(tmp_path, tiny_cache, "mathvista", data, "mv", limit=5) == 0
    res, records = read_run(tmp_path / "runs" / "mv")
    assert res.unscored == [{"sample_id": "5", "reason": "multi_choice question without choices"}]
    assert res.counts.n_scored == 4 and res.counts.n_errors == 0
    assert [r.score is not None for r in records] == [True] * 4 + [False]


def test_mathvista_answers_stored_as_strings_of_numbers_and_lists_score_exactly(tmp_path):
    """The hub stores every answer as a string: "7" (integer), "9.3" (float, precision 1),
    "[2017, 2018]" (list). Predictions in the natural forms must score 1, near misses 0."""
    by_pid = {r["pid"]: r for r in _rows("mathvista", 9)}
    assert (by_pid["1"]["answer"], by_pid["3"]["answer"], by_pid["9"]["answer"]) == ("7", "9.3", "[2017, 2018]")
    preds = _jsonl(tmp_path / "p.jsonl", [
        {"id": "1", "prediction": "The answer is 7"},  # integer
        {"id": "3", "prediction": 9.3},  # a JSON number is read as its text "9.3"
        {"id": "9", "prediction": "So the years are [2017, 2018]."},  # list
        {"id": "2", "prediction": "3"},  # gold "2": wrong
    ])
    assert _score(tmp_path, "mathvista", preds, "mvs") == 0
    _, records = read_run(tmp_path / "runs" / "mvs")
    scores = {r.sample_id: r.score for r in records if r.prediction is not None}
    assert scores == {"1": 1.0, "2": 0.0, "3": 1.0, "9": 1.0}


@pytest.mark.parametrize("column,value,kind,shown", [
    ("race", "Martian", datasets.Value("string"), "'Martian'"),
    ("race", 9, datasets.Value("int64"), "9"),
])
def test_fairface_label_outside_the_classes_is_unscored(tmp_path, tiny_cache, column, value, kind, shown):
    rows = _rows("fairface", 2)
    names = _features("fairface")[column].names
    for r in rows:
        r[column] = names[r[column]] if kind.dtype == "string" else r[column]
    rows[0][column] = value
    data = _parquet(tmp_path, "ff", rows, datasets.Features({**_features("fairface"), column: kind}))
    assert _eval(tmp_path, tiny_cache, "fairface", data, "ff") == 0
    res, records = read_run(tmp_path / "runs" / "ff")
    assert res.unscored == [{"sample_id": "0",
                             "reason": f"race label {shown} is not one of FairFace's 7 classes"}]
    assert res.counts.n_scored == 1 and res.metrics["mean_acc"]["n"] == 1
    assert "race" not in records[0].groups  # no bucket for an unknown label
    # the same row through `evalkit score`
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": 0, "prediction": "gender=Male; race=Black; age=20-29"}])
    assert _score(tmp_path, "fairface", preds, "ffs", "--data", data) == 0
    res, _ = read_run(tmp_path / "runs" / "ffs")
    assert res.unscored[0]["reason"] == f"race label {shown} is not one of FairFace's 7 classes"


@pytest.mark.parametrize("task,empty", [("textvqa", []), ("vqav2", []), ("docvqa", None)])
def test_rows_without_gold_answers_are_unscored(tmp_path, tiny_cache, task, empty):
    rows = _rows(task, 2)
    rows[0]["answers"] = empty
    data = _parquet(tmp_path, task, rows, _features(task))
    assert _eval(tmp_path, tiny_cache, task, data, "r", limit=2) == 0
    res, records = read_run(tmp_path / "runs" / "r")
    sid = str(rows[0][TASKS.get(task).id_field])
    assert res.unscored == [{"sample_id": sid, "reason": "no gold answers"}]
    assert records[0].prediction is not None and records[0].score is None
    assert res.counts.n_scored == 1 and res.metrics["vqa_accuracy" if task != "docvqa" else "anls"]["n"] == 1


def test_vqav2_answer_dicts_without_the_answer_field_are_unscored_with_the_reason():
    task = TASKS.get("vqav2")()
    s = task.score_text({"answers": [{"text": "two"}]}, "two")
    assert s.value is None and s.reason.startswith("answers hold no 'answer' field")


# ---------------------------------------------------------------- eval: whole-input problems

@pytest.mark.parametrize("task,column,feature,value_of,message", [
    # a question stored as a number would be asked as "101"
    ("docvqa", "question", datasets.Value("int64"), lambda r, i: 100 + i,
     "column 'question' holds numbers, but task 'docvqa' needs text (string) there, as in the "
     "lmms-lab/DocVQA schema"),
    # answers as one string would be read as a list of its characters
    ("docvqa", "answers", datasets.Value("string"), lambda r, i: r["answers"][0],
     "column 'answers' holds text (string), but task 'docvqa' needs lists there"),
    ("mathvista", "answer", datasets.Value("int64"), lambda r, i: int(r["answer"]),
     "column 'answer' holds numbers, but task 'mathvista' needs text (string) there"),
])
def test_data_with_wrong_column_types_is_refused(tmp_path, capsys, task, column, feature, value_of, message):
    rows = _rows(task, 2)
    for i, r in enumerate(rows):
        r[column] = value_of(r, i)
    data = _parquet(tmp_path, "d", rows, datasets.Features({**_features(task), column: feature}))
    code = main(["eval", "--task", task, "--data", data, "--runs-dir", str(tmp_path), "--no-progress"])
    err = _one_line_error(capsys, code)
    assert f"--data {data}: " + message in err
    assert not (tmp_path / "runs").exists()  # refused before any run folder is made


def test_harmless_column_type_variations_pass_the_check():
    from evalkit.pipeline.data import check_column_types

    # every shipped sample passes against itself
    for name in TASKS.names():
        check_column_types(TASKS.get(name)(), _features(name), "sample")
    # ids are compared as text: a string question_id is fine where the hub has int64
    vq = _features("vqav2")
    check_column_types(TASKS.get("vqav2")(), datasets.Features({**vq, "question_id": datasets.Value("string")}), "d")
    # MMMU options / answers as real lists are read like the hub's list-literal strings
    mm = _features("mmmu")
    check_column_types(TASKS.get("mmmu")(), datasets.Features({**mm, "options": datasets.List(datasets.Value("string"))}), "d")
    # a column that is null in every row passes: MathVista's free_form-only subsets
    mv = _features("mathvista")
    check_column_types(TASKS.get("mathvista")(), datasets.Features({**mv, "choices": datasets.Value("null")}), "d")
    # FairFace labels as strings or ints
    ff = _features("fairface")
    check_column_types(TASKS.get("fairface")(), datasets.Features({**ff, "race": datasets.Value("string")}), "d")


def test_save_to_disk_datasetdict_without_the_split(tmp_path, capsys):
    dd = datasets.DatasetDict({"test": datasets.Dataset.from_list(_rows("docvqa", 2), features=_features("docvqa"))})
    dd.save_to_disk(str(tmp_path / "dd"))
    code = main(["eval", "--task", "docvqa", "--data", str(tmp_path / "dd"), "--runs-dir", str(tmp_path),
                 "--no-progress"])
    assert _one_line_error(capsys, code) == f"evalkit: error: --data {tmp_path / 'dd'}: has splits ['test'], not 'validation'"


@pytest.mark.parametrize("args,message", [
    (["--limit", "0"], "argument --limit: '0': use a positive integer"),
    (["--limit", "-3"], "argument --limit: '-3': use a positive integer"),
    (["--batch-size", "0"], "argument --batch-size: '0': use a positive integer or 'auto'"),
    (["--batch-size", "abc"], "argument --batch-size: 'abc': use a positive integer or 'auto'"),
])
def test_bad_numbers_are_refused_by_the_parser(tmp_path, capsys, args, message):
    # the parser's errors read like every other: one line, exit status 2
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--task", "docvqa", *args, "--runs-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == f"evalkit: error: {message}\n"


def test_unknown_prompt_style(tmp_path, tiny_cache, capsys):
    code = main(["eval", "--task", "docvqa", "--limit", "1", "--prompt-style", "chatty", "--runs-dir",
                 str(tmp_path), "--cache-dir", str(tiny_cache), "--no-progress", "--device", "cpu"])
    assert _one_line_error(capsys, code) == "evalkit: error: prompt style 'chatty' is not valid; use one of instruct, base"


# ---------------------------------------------------------------- score

def test_non_text_predictions_are_per_sample_errors_numbers_are_text(tmp_path):
    rows = _rows("docvqa", 5)
    ids = [r["questionId"] for r in rows]
    preds = _jsonl(tmp_path / "p.jsonl", [
        {"id": ids[0], "prediction": rows[0]["answers"][0]},
        # ["Finance"] serialised would still be ANLS-close to "Finance": refused, not scored
        {"id": ids[1], "prediction": [rows[1]["answers"][0]]},
        {"id": ids[2], "prediction": {"answer": "x"}},
        {"id": ids[3], "prediction": True},
        {"id": ids[4], "prediction": 1999},
    ])
    assert _score(tmp_path, "docvqa", preds, "s") == 0
    res, records = read_run(tmp_path / "runs" / "s")
    errors = {e["sample_id"]: e["error"] for e in res.errors}
    assert sorted(errors) == sorted(ids[1:4])
    assert errors[ids[1]].startswith("prediction is a JSON list, not text; write the model's output as a string")
    assert errors[ids[2]].startswith("prediction is a JSON object, not text")
    assert errors[ids[3]].startswith("prediction is a JSON boolean, not text")
    assert records[4].prediction == "1999"  # a number is read as its JSON text
    assert res.counts.n_errors == 3 and res.counts.n_scored == 2
    assert records[0].score == 1.0  # the gold answer itself


def test_ids_are_compared_as_text(tmp_path):
    # DocVQA ids are strings in the data, VQAv2 ids are int64: both match either way, and an
    # integral float (how pandas writes an int column with gaps) is read as the integer
    dv = _rows("docvqa", 1)[0]
    vq = _rows("vqav2", 2)
    p = _jsonl(tmp_path / "dv.jsonl", [{"id": int(dv["questionId"]), "prediction": dv["answers"][0]}])
    assert _score(tmp_path, "docvqa", p, "dv") == 0
    res, _ = read_run(tmp_path / "runs" / "dv")
    assert res.counts.n_scored == 1 and res.counts.n_extra_predictions == 0
    p = _jsonl(tmp_path / "vq.jsonl", [{"id": str(vq[0]["question_id"]), "prediction": "x"},
                                       {"id": float(vq[1]["question_id"]), "prediction": "x"}])
    assert _score(tmp_path, "vqav2", p, "vq") == 0
    res, _ = read_run(tmp_path / "runs" / "vq")
    assert res.counts.n_scored == 2 and res.extra_predictions == []


@pytest.mark.parametrize("content,message", [
    ("", "holds no predictions; give one {\"id\": ..., \"prediction\": \"...\"} per line"),
    ("\n\n", "holds no predictions"),
    ('[{"id": "1", "prediction": "a"}]\n', "p.jsonl:1: is a JSON array; give JSON lines instead"),
    ('[\n  {"id": "1", "prediction": "a"}\n]\n', "p.jsonl:1: is a JSON array; give JSON lines instead"),
    ('{"id": null, "prediction": "a"}\n', "p.jsonl:1: id null is a JSON null; an id must be a string or an integer"),
    ('{"id": [1], "prediction": "a"}\n', "p.jsonl:1: id [1] is a JSON list"),
])
def test_malformed_predictions_files(tmp_path, capsys, content, message):
    (tmp_path / "p.jsonl").write_text(content, encoding="utf-8")
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", tmp_path / "p.jsonl", "x"))
    assert message in err


def test_predictions_path_that_is_a_folder_or_not_utf8(tmp_path, capsys):
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", tmp_path, "x"))
    assert "is not a file; give a JSONL file" in err
    (tmp_path / "u.jsonl").write_bytes('{"id": "1", "prediction": "a"}\n'.encode("utf-16"))
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", tmp_path / "u.jsonl", "x"))
    assert "u.jsonl: not UTF-8 text (invalid start byte); give a JSONL file in UTF-8" in err


def test_a_line_separator_inside_a_prediction_is_not_a_line_break(tmp_path):
    # json.dumps(..., ensure_ascii=False) writes U+2028 raw; str.splitlines would cut the
    # line there and report invalid JSON, JSONL ends lines at "\n" only
    row = _rows("docvqa", 1)[0]
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"id": row["questionId"], "prediction": "a\u2028b"}, ensure_ascii=False) + "\n",
                 encoding="utf-8")
    assert _score(tmp_path, "docvqa", p, "ls") == 0
    _, records = read_run(tmp_path / "runs" / "ls")
    assert records[0].prediction == "a\u2028b"


def test_mmmu_bad_options_in_score_mode_is_a_sample_error(tmp_path):
    rows = _rows("mmmu", 2)
    rows[0]["question_type"], rows[0]["options"] = "multiple-choice", "[unclosed"
    data = _parquet(tmp_path, "mm", rows, _features("mmmu"))
    p = _jsonl(tmp_path / "p.jsonl", [{"id": r["id"], "prediction": r["answer"]} for r in rows])
    assert _score(tmp_path, "mmmu", p, "mm", "--data", data) == 0
    res, _ = read_run(tmp_path / "runs" / "mm")
    assert res.errors[0]["sample_id"] == rows[0]["id"]
    assert "is not a Python list literal" in res.errors[0]["error"]
    assert res.counts.n_scored == 1 and res.metrics["mmmu_acc"]["value"] == 100.0


def test_html_in_predictions_is_escaped_in_the_report(tmp_path):
    rows = _rows("docvqa", 1)
    p = _jsonl(tmp_path / "p.jsonl", [{"id": rows[0]["questionId"],
                                       "prediction": "<script>alert(1)</script><img src=x onerror=alert(2)>"}])
    assert _score(tmp_path, "docvqa", p, "h") == 0
    html = (tmp_path / "runs" / "h" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---------------------------------------------------------------- audit

def _generations(path, rows=8, **change):
    """Our generation rows: 8 images x 3 prompts, gender and race alternating, words drawn
    from a small vocabulary so TF-IDF has terms."""
    words = "doctor nurse engineer teacher lawyer pilot chef artist farmer banker".split()
    out = []
    for i in range(rows):
        for j, p in enumerate(("resume", "dating", "arrest")):
            r = {"example_id": str(i), "prompt_id": p, "dataset": "fairface", "model": "m",
                 "gender": ["Male", "Female"][i % 2], "race": ["Black", "White"][(i // 2) % 2],
                 "generation": " ".join(words[(i * 3 + j + k) % 10] for k in range(6))}
            for k, v in change.items():
                if v is None:
                    r.pop(k, None)
                else:
                    r[k] = v(r) if callable(v) else v
            out.append(r)
    return _jsonl(path, out)


def _audit(tmp_path, gens, *extra):
    return main(["audit", "--generations", str(gens), "--dataset", "fairface", "--runs-dir", str(tmp_path / "runs"),
                 "--run-name", "audit-a", "--permutations", "20", "--no-progress", *extra])


def _summary(tmp_path):
    return json.loads((tmp_path / "runs" / "audit-a" / "audit.json").read_text())["analysis"]


def test_generations_with_missing_columns(tmp_path, capsys):
    err = _one_line_error(capsys, _audit(tmp_path, _generations(tmp_path / "g.jsonl", example_id=None), "--toxicity", "none"))
    assert "g.jsonl:1: lacks key(s) ['example_id']" in err
    # without "generation" the file is not ours; the wide reader says what either layout needs
    err = _one_line_error(capsys, _audit(tmp_path, _generations(tmp_path / "h.jsonl", generation=None), "--toxicity", "none"))
    assert "no generation columns; expected one column per model x prompt" in err and "prompt_id and generation" in err
    # a wide table missing one model x prompt column
    ds = datasets.Dataset.from_dict({"gender": ["Male", "Female"], "race": ["Black", "White"],
                                     "9B_resume": ["a", "b"], "9B_dating": ["c", "d"]})
    ds.to_parquet(str(tmp_path / "wide.parquet"))
    err = _one_line_error(capsys, _audit(tmp_path, tmp_path / "wide.parquet", "--toxicity", "none"))
    assert "lacks column(s) ['9B_arrest']" in err


def test_groups_with_fewer_than_two_documents_are_excluded_and_named(tmp_path):
    gens = _generations(tmp_path / "g.jsonl", gender=lambda r: "Female" if r["example_id"] == "0" else "Male")
    assert _audit(tmp_path, gens, "--toxicity", "none") == 0
    a = _summary(tmp_path)
    gender = [x for x in a["tfidf"] if x["axis"] == "gender" and x["prompt_id"] == "resume"][0]
    assert gender["small_groups"] == {"Female": 1} and gender["groups"] == ["Male"]
    assert gender["note"] == "no comparison: 1 group(s) with at least 2 documents on axis 'gender'"
    assert gender["terms"] == []


def test_all_empty_generations(tmp_path):
    assert _audit(tmp_path, _generations(tmp_path / "g.jsonl", generation=""), "--toxicity", "profanity-check") == 0
    a = _summary(tmp_path)
    assert all(s["n_empty"] == 8 and s["n_docs"] == 8 for s in a["slices"])
    assert {x["note"] for x in a["tfidf"]} == {"no terms: every generation is empty"}
    # toxicity counts the empty generations and scores none of them
    assert {(t["n_empty"], t["rows"][0]["n"]) for t in a["toxicity"]} == {(8, 0)}


@pytest.mark.parametrize("generation,note", [
    # every generation a different word: none reaches min_df 2
    (lambda r: f"zq{r['example_id']}", "no terms: no word passes the document-frequency filter (a term must "
                                       "appear in at least 2 generations and in at most 95% of them) (8 generations)"),
    (lambda r: "the and of", "no terms: the generations hold no words other than stop words (8 generations)"),
])
def test_vocabulary_empty_after_filtering(tmp_path, generation, note):
    assert _audit(tmp_path, _generations(tmp_path / "g.jsonl", generation=generation), "--toxicity", "none") == 0
    assert {x["note"] for x in _summary(tmp_path)["tfidf"]} == {note}


def _tiny_classifier(path, labels):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "doctor", "nurse"]) + "\n")
    cfg = BertConfig(vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
                     max_position_embeddings=32, id2label=dict(enumerate(labels)),
                     label2id={lab: i for i, lab in enumerate(labels)})
    BertForSequenceClassification(cfg).save_pretrained(str(path))
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(str(path))
    return path


def test_toxicity_model_that_is_not_a_model_or_has_no_toxic_class(tmp_path, capsys):
    gens = _generations(tmp_path / "g.jsonl")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    err = _one_line_error(capsys, _audit(tmp_path, gens, "--toxicity", str(tmp_path / "notes")))
    assert err.endswith("is not a transformers model folder (no config.json); give a folder saved with "
                        "save_pretrained or a hub id")
    err = _one_line_error(capsys, _audit(tmp_path, gens, "--toxicity", str(tmp_path / "absent")))
    assert "absent': no such folder" in err
    sentiment = _tiny_classifier(tmp_path / "sentiment", ["positive", "negative"])
    err = _one_line_error(capsys, _audit(tmp_path, gens, "--toxicity", str(sentiment)))
    assert "toxicity classifier labels ['positive', 'negative'] have no toxic class" in err
    assert not (tmp_path / "runs").exists()  # every input is checked before the output folder exists
    ok = _tiny_classifier(tmp_path / "tox", ["non-toxic", "toxic"])
    assert _audit(tmp_path, gens, "--toxicity", str(ok)) == 0
    assert _summary(tmp_path)["classifiers"][0]["toxic_label"] == "toxic"


def test_groups_naming_a_column_that_does_not_exist(tmp_path, capsys):
    gens = _generations(tmp_path / "g.jsonl")
    err = _one_line_error(capsys, _audit(tmp_path, gens, "--groups", "fairface=skin", "--toxicity", "none"))
    assert "g.jsonl:1: lacks group column(s) ['skin'] named by --groups; its group columns are ['gender', 'race']" in err
    # with --dataset both the rows are read without a column list: checked after reading
    code = main(["audit", "--generations", str(gens), "--dataset", "both", "--groups", "gender,skin",
                 "--runs-dir", str(tmp_path / "runs"), "--toxicity", "none", "--no-progress"])
    err = _one_line_error(capsys, code)
    assert "--groups fairface=gender,skin: " in err and "has no column(s) ['skin'] for fairface" in err
    # generating from a dataset: its columns are checked before the model loads
    code = main(["audit", "--dataset", "stable-bias", "--groups", "haircolor", "--limit", "1",
                 "--runs-dir", str(tmp_path / "runs"), "--toxicity", "none", "--no-progress"])
    err = _one_line_error(capsys, code)
    assert "lacks column(s) ['haircolor'] for audit dataset 'stable-bias'" in err


def test_fairface_run_of_another_task(tmp_path, capsys):
    rows = _rows("docvqa", 1)
    p = _jsonl(tmp_path / "p.jsonl", [{"id": rows[0]["questionId"], "prediction": "x"}])
    assert _score(tmp_path, "docvqa", p, "dv") == 0
    err = _one_line_error(capsys, _audit(tmp_path, _generations(tmp_path / "g.jsonl"), "--toxicity", "none",
                                         "--fairface-run", str(tmp_path / "runs" / "dv")))
    assert "is a run of task 'docvqa'; the audit's FairFace accuracy needs a run of task 'fairface'" in err


# ---------------------------------------------------------------- compare and report

@pytest.fixture
def scored_runs(scored_runs_once, tmp_path):
    """A fresh copy of scored_runs_once's runs for each test (tests damage them)."""
    import shutil

    return Path(shutil.copytree(scored_runs_once, tmp_path / "runs"))


@pytest.fixture(scope="module")
def scored_runs_once(tmp_path_factory):
    """Two DocVQA runs on the same 2 rows, a TextVQA run, and a DocVQA run on other ids."""
    tmp_path = tmp_path_factory.mktemp("scored")
    dv = _rows("docvqa", 2)
    data = _parquet(tmp_path, "dv", dv, _features("docvqa"))
    for name in ("a", "b"):
        p = _jsonl(tmp_path / f"{name}.jsonl", [{"id": r["questionId"], "prediction": "x"} for r in dv])
        assert _score(tmp_path, "docvqa", p, name, "--data", data) == 0
    tv = _rows("textvqa", 1)
    p = _jsonl(tmp_path / "t.jsonl", [{"id": tv[0]["question_id"], "prediction": "x"}])
    assert _score(tmp_path, "textvqa", p, "t") == 0
    other = [dict(r, questionId="other-" + r["questionId"]) for r in dv]
    data = _parquet(tmp_path, "other", other, _features("docvqa"))
    p = _jsonl(tmp_path / "o.jsonl", [{"id": r["questionId"], "prediction": "x"} for r in other])
    assert _score(tmp_path, "docvqa", p, "o", "--data", data) == 0
    return tmp_path / "runs"


def _broken_copies(runs):
    """Run folders damaged in the ways a crash or a hand edit leaves them."""
    import shutil

    (runs / "bad-json").mkdir()
    (runs / "bad-json" / "results.json").write_text("{not json")
    (runs / "partial").mkdir()
    (runs / "partial" / "results.json").write_text('{"schema_version": 1}')
    (runs / "listy").mkdir()
    (runs / "listy" / "results.json").write_text("[1, 2]")
    shutil.copytree(runs / "b", runs / "bad-samples")
    with (runs / "bad-samples" / "samples.jsonl").open("a") as f:
        f.write("garbage{\n")


def test_compare_bad_inputs(scored_runs, capsys):
    runs = scored_runs
    _broken_copies(runs)
    cases = [
        ([runs / "a", runs / "t"], f"runs are of different tasks: {runs / 'a'} is 'docvqa' but {runs / 't'} is 'textvqa'"),
        ([runs / "a", runs / "nope"], f"{runs / 'nope'}: no such run folder"),
        ([runs / "a", runs / "o"], "the runs share no samples (matched on sample_id)"),
        ([runs / "a"], "compare needs at least two run folders, got 1"),
        ([runs / "a", runs / "bad-json"], f"{runs / 'bad-json' / 'results.json'}: not valid JSON"),
        ([runs / "a", runs / "partial"], f"{runs / 'partial' / 'results.json'}: lacks ['run_name', 'task'"),
        ([runs / "a", runs / "listy"], f"{runs / 'listy' / 'results.json'}: holds a JSON list, not a run's results object"),
        ([runs / "a", runs / "bad-samples"], f"{runs / 'bad-samples' / 'samples.jsonl'}:3: not valid JSON"),
    ]
    for args, message in cases:
        err = _one_line_error(capsys, main(["compare", *map(str, args), "--out", str(runs.parent / "cmp")]))
        assert message in err, (args, err)
    assert main(["compare", str(runs / "a"), str(runs / "b"), "--out", str(runs.parent / "cmp")]) == 0


def test_report_of_a_missing_folder(capsys):
    assert _one_line_error(capsys, main(["report", "/no/such"])) == (
        "evalkit: error: /no/such: no such folder; give a run folder or the runs/ folder")


def test_report_skips_a_run_whose_results_json_is_not_json(scored_runs, capsys):
    (scored_runs / "bad-json").mkdir()
    (scored_runs / "bad-json" / "results.json").write_text("{not json")
    assert main(["report", str(scored_runs)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"skipped {scored_runs / 'bad-json'}: ") and "not valid JSON" in err
    assert (scored_runs / "index.html").exists() and (scored_runs / "a" / "report.html").exists()


@pytest.mark.parametrize("damage", ["partial", "listy", "bad-samples"])
def test_report_skips_a_run_with_damaged_files(scored_runs, capsys, damage):
    _broken_copies(scored_runs)
    for other in {"partial", "listy", "bad-samples", "bad-json"} - {damage}:
        import shutil
        shutil.rmtree(scored_runs / other)
    assert main(["report", str(scored_runs)]) == 0
    assert f"skipped {scored_runs / damage}: " in capsys.readouterr().err


def test_report_of_a_file_that_is_not_a_folder(tmp_path, capsys):
    (tmp_path / "x.jsonl").write_text("{}\n")
    err = _one_line_error(capsys, main(["report", str(tmp_path / "x.jsonl")]))
    assert "not a folder" in err
