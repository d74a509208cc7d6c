"""Hostile-user cases (issue 9): stale cache answers, null gold answers, unbounded image reads,
concurrent writers, mathtext in labels, damaged caches, bad UTF-8, partial predictions,
run names that escape the runs folder, decompression bombs. Each must give the right answer
or one clear `evalkit: error:` line, never a traceback or a silently wrong score.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import threading
import warnings
from pathlib import Path

import datasets
import pytest

from evalkit.cli.commands import main
from evalkit.errors import EvalkitError, SampleError
from evalkit.results.schema import read_run

from test_bad_inputs import _features, _jsonl, _one_line_error, _parquet, _rows


def _eval(tmp_path, cache, task, data, name, *extra, limit=3):
    args = ["eval", "--task", task, "--run-name", name, "--limit", str(limit),
            "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(cache), "--no-progress", "--device", "cpu"]
    if data is not None:
        args += ["--data", data]
    return main([*args, *extra])


def _score(tmp_path, task, preds, name, *extra, data=None):
    args = ["score", "--task", task, "--predictions", str(preds), "--run-name", name,
            "--runs-dir", str(tmp_path / "runs")]
    if data is not None:
        args += ["--data", data]
    return main([*args, *extra])


# ---------------------------------------------------------------- 1. cache key follows the weights

def test_model_fingerprint_sees_weights_config_and_tokenizer(tmp_path):
    from evalkit.models.backends.fingerprint import model_fingerprint

    folder = tmp_path / "m"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"A" * 1000)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text('{"a": 1}')
    (folder / "README.md").write_text("notes")
    base = model_fingerprint(folder)
    assert base.startswith("dir:") and model_fingerprint(folder) == base
    (folder / "README.md").write_text("other notes")  # does not change the answers
    assert model_fingerprint(folder) == base
    st = weights.stat()
    weights.write_bytes(b"B" * 1000)  # same size, same modification time: new content is still seen
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = model_fingerprint(folder)
    assert changed != base
    (folder / "tokenizer_config.json").write_text('{"a": 2}')
    assert model_fingerprint(folder) != changed
    assert model_fingerprint("no-such-org/no-such-model") == "unresolved:no-such-org/no-such-model"


def test_large_weight_file_is_summarised_by_header_and_sampled_windows(tmp_path):
    import struct

    from evalkit.models.backends import fingerprint as fp

    folder = tmp_path / "m"
    folder.mkdir()
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    body = bytearray(fp.SMALL_WEIGHT_BYTES + 4096)
    path = folder / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(body))
    st = path.stat()
    base = fp.model_fingerprint(folder)
    step = (st.st_size) // fp.WINDOWS
    body[step * 3 - len(header) - 8 + 5] = 7  # a byte inside the fourth sampled window
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(body))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fp.model_fingerprint(folder) != base


def test_new_weights_saved_into_the_same_folder_are_not_answered_from_the_old_cache(tmp_path, tiny_cache):
    import torch
    from transformers import AutoModelForImageTextToText

    from evalkit.models.tiny.idefics2 import tiny_path

    model_dir = tmp_path / "ckpt"
    shutil.copytree(tiny_path(tiny_cache), model_dir)
    args = ("--model", "hf", "--model-id", str(model_dir))
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "train", *args) == 0
    first, first_records = read_run(tmp_path / "runs" / "train")
    assert first.timing.n_cached == 0
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "train", *args) == 0  # same weights: all cached
    assert read_run(tmp_path / "runs" / "train")[0].timing.n_cached == 3

    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    with torch.no_grad():  # a "training step": new output layer, same shapes, same file names
        head = model.get_output_embeddings().weight
        head.copy_(torch.roll(head, shifts=1, dims=0))
    model.save_pretrained(model_dir)
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "train", *args) == 0
    second, second_records = read_run(tmp_path / "runs" / "train")
    assert second.timing.n_cached == 0  # every answer regenerated
    assert [r.prediction for r in second_records] != [r.prediction for r in first_records]

    # The processor config is part of the key too: a new chat template means new prompts.
    cfg_path = model_dir / "generation_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    cfg["_evalkit_test"] = 1
    cfg_path.write_text(json.dumps(cfg))
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "train", *args) == 0
    assert read_run(tmp_path / "runs" / "train")[0].timing.n_cached == 0


# ---------------------------------------------------------------- 2. null gold answers

@pytest.mark.parametrize("task_name", ["docvqa", "textvqa"])
def test_null_gold_answers_are_not_the_string_none(task_name):
    from evalkit.registry import TASKS

    task = TASKS.get(task_name)()
    all_null = {"answers": [None] * 10, "question": "q"}
    assert task.gold(all_null) == []
    s = task.score_text(all_null, "none")
    assert s.value is None and s.reason == "no gold answers"
    some_null = {"answers": [None] * 7 + ["Paris"] * 3, "question": "q"}
    assert task.gold(some_null) == ["Paris"] * 3
    assert task.score_text(some_null, "None").value == 0.0
    # DocVQA: exact match, ANLS 1. TextVQA: the 3 real answers give 3 leave-one-out subsets of
    # 2 answers, each min(1, 2/3): the nulls neither match nor count as answers.
    assert task.score_text(some_null, "Paris").value == pytest.approx(1.0 if task_name == "docvqa" else 2 / 3)


# ---------------------------------------------------------------- 3 & 11. image files and bombs

def test_image_paths_must_be_regular_files_under_the_cap(tmp_path):
    from evalkit.pipeline.images import _read, decode_image, image_key

    with pytest.raises(SampleError, match="/dev/zero is not a regular file"):
        decode_image({"bytes": None, "path": "/dev/zero"})
    assert len(image_key({"bytes": None, "path": "/dev/zero"})) == 32  # keyed by its description
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome = []

    def read_fifo():
        try:
            decode_image(str(fifo))
        except SampleError as e:
            outcome.append(str(e))

    t = threading.Thread(target=read_fifo, daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "reading a FIFO named by the data hung"
    assert outcome and "not a regular file" in outcome[0]
    big = tmp_path / "big.png"
    big.write_bytes(b"x" * 101)
    with pytest.raises(SampleError, match="101 bytes, over the 100-byte limit"):
        _read(big, limit=100)
    assert _read(big, limit=101) == b"x" * 101


def test_dev_zero_image_path_in_eval_and_score_is_a_sample_error(tmp_path, tiny_cache):
    rows = _rows("docvqa", 2)
    rows[0]["image"] = {"bytes": None, "path": "/dev/zero"}
    data = _parquet(tmp_path, "d", rows, _features("docvqa"))
    assert _eval(tmp_path, tiny_cache, "docvqa", data, "e", limit=2) == 0
    res, records = read_run(tmp_path / "runs" / "e")
    assert "not a regular file" in records[0].error and records[1].error is None
    assert records[0].thumb is None and records[1].thumb is not None
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": r["questionId"], "prediction": "x"} for r in rows])
    assert _score(tmp_path, "docvqa", preds, "s", data=data) == 0
    _, records = read_run(tmp_path / "runs" / "s")
    assert records[0].thumb is None and records[0].score is not None


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    from PIL import Image

    from evalkit.pipeline.images import MAX_PIXELS, decode_image

    buf = io.BytesIO()
    Image.new("1", (14000, 14000)).save(buf, format="PNG")  # 196 Mpx in a few KB
    data = buf.getvalue()
    assert len(data) < 100_000 and 14000 * 14000 > MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one clear per-sample error, not PIL's DecompressionBombWarning first
        with pytest.raises(SampleError, match=r"14000x14000 = 196000000 pixels, over the 100000000-pixel limit"):
            decode_image(data)
    assert decode_image(_png(20, 10)).size == (20, 10)


def _png(w, h) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- 9. score mode is loud about gaps

def test_score_mode_refuses_missing_predictions_unless_allowed(tmp_path, capsys):
    rows = _rows("docvqa", 6)
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": r["questionId"], "prediction": r["answers"][0]} for r in rows[:3]]
                   + [{"id": "nope", "prediction": "x"}])
    data = _parquet(tmp_path, "d", rows, _features("docvqa"))
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", preds, "s", data=data))
    assert "no prediction for 3 of 6 samples" in err and "--allow-missing" in err
    assert not (tmp_path / "runs" / "s").exists()
    assert _score(tmp_path, "docvqa", preds, "s", "--allow-missing", data=data) == 0
    out = capsys.readouterr().out
    assert "predictions: 3 matched, 3 samples without a prediction, 1 predictions for ids not in the data" in out
    res, _ = read_run(tmp_path / "runs" / "s")
    assert res.counts.n_scored == 3 and res.counts.n_missing_predictions == 3


def test_score_mode_with_no_matching_id_fails(tmp_path, capsys):
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": "x1", "prediction": "a"}, {"id": "x2", "prediction": "b"}])
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", preds, "s", "--allow-missing"))
    assert "none of its 2 ids matches the data's questionId values" in err


def test_score_mode_duplicate_data_ids_and_rows_eval_rejects(tmp_path, capsys):
    rows = _rows("docvqa", 3)
    rows[2]["questionId"] = rows[0]["questionId"]
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": r["questionId"], "prediction": "a"} for r in rows[:2]])
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", preds, "s",
                                         data=_parquet(tmp_path, "dup", rows, _features("docvqa"))))
    assert f"rows 0 and 2 have the same questionId {rows[0]['questionId']!r}" in err
    rows = _rows("docvqa", 2)
    rows[0]["question"] = "   "
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": r["questionId"], "prediction": r["answers"][0]} for r in rows])
    assert _score(tmp_path, "docvqa", preds, "q", data=_parquet(tmp_path, "q", rows, _features("docvqa"))) == 0
    res, records = read_run(tmp_path / "runs" / "q")
    assert records[0].error == "empty question" and records[0].score is None
    assert res.counts.n_errors == 1 and res.counts.n_scored == 1


# ---------------------------------------------------------------- 10. run names

@pytest.mark.parametrize("name,message", [
    ("../../x", "is a path"), ("/tmp/abs", "is a path"), (".", "names the runs folder"),
    ("..", "names the runs folder"), ("a" * 300, "is 300 characters long"), ("tab\there", "non-printable"),
    ("", "is empty"),
])
def test_bad_run_names_are_refused_and_nothing_is_written(tmp_path, capsys, name, message):
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": "1", "prediction": "a"}])
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", preds, name))
    assert message in err and "--run-name" in err
    err = _one_line_error(capsys, _eval(tmp_path, "unused", "docvqa", None, name))
    assert message in err
    err = _one_line_error(capsys, main(["audit", "--generations", str(preds), "--run-name", name,
                                        "--runs-dir", str(tmp_path / "runs")]))
    assert message in err and "--run-name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def test_run_name_with_task_all_is_the_prefix_of_each_run():
    from evalkit.cli.commands import _run_name_for

    assert _run_name_for("exp", "docvqa", ["docvqa", "textvqa"]) == "exp-docvqa"
    assert _run_name_for("exp", "docvqa", ["docvqa"]) == "exp"
    assert _run_name_for(None, "docvqa", ["docvqa", "textvqa"]) is None
    with pytest.raises(EvalkitError, match="is a path"):
        _run_name_for("../x", "docvqa", ["docvqa", "textvqa"])


# ---------------------------------------------------------------- 4. concurrent writers

def test_atomic_writes_from_two_threads_never_collide(tmp_path):
    from evalkit.results.schema import atomic_write_text

    target = tmp_path / "results.json"
    texts = ["A" * 200_000, "B" * 200_000]
    failures = []

    def writer(text):
        try:
            for _ in range(50):
                atomic_write_text(target, text)
        except Exception as e:  # pragma: no cover - the failure this test guards against
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_a_second_writer_of_a_run_folder_is_refused(tmp_path, tiny_cache, capsys):
    from evalkit.results.runfolder import locked_run_dir

    run_dir = tmp_path / "runs" / "busy"
    with locked_run_dir(run_dir):
        err = _one_line_error(capsys, _eval(tmp_path, tiny_cache, "docvqa", None, "busy"))
        assert f"run folder {run_dir} is being written by another evalkit process (pid {os.getpid()})" in err
        preds = _jsonl(tmp_path / "p.jsonl", [{"id": r["questionId"], "prediction": "a"} for r in _rows("docvqa", 60)])
        err = _one_line_error(capsys, _score(tmp_path, "docvqa", preds, "busy"))
        assert "being written by another evalkit process" in err
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "busy", limit=1) == 0  # lock released


def test_a_run_that_fails_before_generating_leaves_no_folder(tmp_path, tiny_cache, capsys):
    _one_line_error(capsys, _eval(tmp_path, tiny_cache, "docvqa", str(tmp_path / "missing.parquet"), "gone"))
    assert not (tmp_path / "runs" / "gone").exists()


# ---------------------------------------------------------------- 6. damaged cache.jsonl

def test_damaged_cache_lines_are_ignored_counted_and_not_glued_to(tmp_path):
    from evalkit.pipeline.cache import ResponseCache
    from evalkit.types import Request, Response

    good = json.dumps({"key": "k1", "response": {"uid": "0", "text": "ok"}})
    lines = [
        good.encode(),
        json.dumps({"key": "k2", "response": {"uid": "1", "text": "caf\u00e9"}}).encode().replace(b"caf", b"\xff\xfe"),
        json.dumps({"key": "k3", "response": {"uid": "2", "text": 5}}).encode(),  # wrong type
        json.dumps({"key": "k4", "response": {"uid": "3", "text": None}}).encode(),  # no text
        json.dumps({"key": ["k5"], "response": {"text": "x"}}).encode(),  # key not a string
        json.dumps({"key": "k6", "response": {"text": "x", "n_input_tokens": "many"}}).encode(),
        json.dumps({"key": "k7", "response": {"text": "x"}})[:-7].encode(),  # torn by a crash
    ]
    path = tmp_path / "cache.jsonl"
    path.write_bytes(b"\n".join(lines))  # no final newline: the last line is torn
    cache = ResponseCache(path)
    assert len(cache) == 1 and cache.n_corrupt_lines == 6
    req = Request("0", text="q")
    assert cache.get("k1", "0", req).text == "ok"
    assert cache.get("k4", "3", req) is None
    cache.put_many([("k8", Response(uid="8", text="new"))])
    again = ResponseCache(path)
    assert again.get("k8", "8", req).text == "new" and len(again) == 2
    # A log-likelihood entry answers only a request with as many choices.
    ll = Request("9", text="q", kind="loglikelihood", choices=["a", "b"])
    cache.put_many([("k9", Response(uid="9", logprobs=[-1.0], choice_n_tokens=[1]))])
    assert ResponseCache(path).get("k9", "9", ll) is None


def test_a_cache_entry_without_text_is_regenerated_in_a_run(tmp_path, tiny_cache):
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "c") == 0
    _, before = read_run(tmp_path / "runs" / "c")
    cache = tmp_path / "runs" / "c" / "cache.jsonl"
    lines = cache.read_bytes().splitlines()
    entry = json.loads(lines[0])
    entry["response"]["text"] = None
    lines[0] = json.dumps(entry).encode()
    lines[1] = lines[1][:10] + b"\xff" + lines[1][10:]
    cache.write_bytes(b"\n".join(lines) + b"\n")
    assert _eval(tmp_path, tiny_cache, "docvqa", None, "c") == 0
    res, after = read_run(tmp_path / "runs" / "c")
    assert res.timing.n_cached == 1 and res.timing.n_cache_ignored == 2
    assert [r.prediction for r in after] == [r.prediction for r in before]


# ---------------------------------------------------------------- 5. labels and mathtext

def test_labels_with_dollar_signs_are_drawn_as_text():
    from matplotlib.text import Text

    from evalkit.reports.figures import GroupStat, group_bars
    from evalkit.reports.html import fig_to_data_uri, new_figure

    bars = [GroupStat(r"$\frac{$", 50.0, 40.0, 60.0, 10), GroupStat("costs $5 or $6", 70.0, 60.0, 80.0, 10)]
    assert group_bars(bars, "anls").startswith("data:image/png;base64,")
    fig = new_figure(3, 2)
    ax = fig.add_subplot()
    ax.set_title("costs $5 or $6")
    fig_to_data_uri(fig)
    assert all(not t.get_parse_math() for t in fig.findobj(Text))


def test_mathtext_group_label_run_renders_and_report_all_survives_a_bad_run(tmp_path, capsys, monkeypatch):
    rows = _rows("docvqa", 4)
    for i, r in enumerate(rows):
        r["question_types"] = [r"$\frac{$" if i % 2 else "costs $5 or $6"]
    data = _parquet(tmp_path, "d", rows, _features("docvqa"))
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": r["questionId"], "prediction": r["answers"][0]} for r in rows])
    assert _score(tmp_path, "docvqa", preds, "math", data=data) == 0
    html = (tmp_path / "runs" / "math" / "report.html").read_text(encoding="utf-8")
    assert "costs $5 or $6" in html
    assert _score(tmp_path, "docvqa", preds, "other", data=data) == 0

    import evalkit.reports.run_report as rr

    real = rr.render_run_report

    def flaky(run_dir, **kw):
        if Path(run_dir).name == "math":
            raise RuntimeError("boom")
        return real(run_dir, **kw)

    monkeypatch.setattr(rr, "render_run_report", flaky)
    capsys.readouterr()
    assert main(["report", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "RuntimeError: boom" in captured.err
    assert (tmp_path / "runs" / "index.html").exists()


# ---------------------------------------------------------------- 7. invalid UTF-8 in parquet

def _bad_utf8_parquet(tmp_path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows("docvqa", 3)
    table = datasets.Dataset.from_list(rows, features=_features("docvqa")).data.table
    questions = [r["question"].encode() for r in rows]
    questions[1] = b"What is \xff\xfe?"
    col = pa.array(questions, type=pa.binary()).view(pa.string())
    table = table.set_column(table.column_names.index("question"), "question", col)
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    return str(path)


def test_invalid_utf8_in_a_parquet_text_column_is_one_clear_error(tmp_path, tiny_cache, capsys):
    data = _bad_utf8_parquet(tmp_path)
    err = _one_line_error(capsys, _eval(tmp_path, tiny_cache, "docvqa", data, "u"))
    assert "column 'question' holds text that is not valid UTF-8 (first at row 1)" in err
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": "1", "prediction": "a"}])
    err = _one_line_error(capsys, _score(tmp_path, "docvqa", preds, "u", data=data))
    assert "not valid UTF-8 (first at row 1)" in err


def test_a_parquet_with_no_rows_says_so(tmp_path, capsys):
    feats = _features("docvqa")
    data = str(tmp_path / "empty.parquet")
    datasets.Dataset.from_dict({k: [] for k in feats}, features=feats).to_parquet(data)
    err = _one_line_error(capsys, _eval(tmp_path, "unused", "docvqa", data, "z"))
    assert "holds 0 rows" in err


# ---------------------------------------------------------------- 8. audit --generations

def _gen_rows(**change):
    rows = []
    for i in range(4):
        for p in ("resume", "dating", "arrest"):
            r = {"example_id": str(i), "prompt_id": p, "dataset": "fairface", "model": "m",
                 "gender": ["Male", "Female"][i % 2], "generation": "a kind doctor"}
            r.update(change)
            rows.append(r)
    return rows


@pytest.mark.parametrize("change,message", [
    ({"generation": 5}, "generation is a JSON number, not text"),
    ({"generation": ["a", "b"]}, "generation is a JSON list, not text"),
    ({"gender": ["Male", "Female"]}, "group column 'gender' holds a JSON list"),
])
def test_audit_generations_with_wrong_types(tmp_path, capsys, change, message):
    gens = _jsonl(tmp_path / "g.jsonl", _gen_rows(**change))
    err = _one_line_error(capsys, main(["audit", "--generations", str(gens), "--dataset", "fairface",
                                        "--runs-dir", str(tmp_path / "runs"), "--toxicity", "none"]))
    assert "g.jsonl:1: " + message in err


def test_audit_generations_not_utf8_or_without_groups(tmp_path, capsys):
    gens = tmp_path / "g.jsonl"
    gens.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in _gen_rows())[:-30] + b"\xff\n")
    err = _one_line_error(capsys, main(["audit", "--generations", str(gens), "--dataset", "fairface",
                                        "--runs-dir", str(tmp_path / "runs"), "--toxicity", "none"]))
    assert "not UTF-8 text" in err
    rows = [{k: v for k, v in r.items() if k != "gender"} for r in _gen_rows()]
    gens = _jsonl(tmp_path / "g2.jsonl", rows)
    err = _one_line_error(capsys, main(["audit", "--generations", str(gens), "--dataset", "fairface",
                                        "--runs-dir", str(tmp_path / "runs"), "--toxicity", "none"]))
    assert "rows have no group column" in err


# ---------------------------------------------------------------- lower: links, huge predictions

def test_summary_links_are_url_quoted(tmp_path):
    from evalkit.reports.summary import summary_rows

    rows = _rows("docvqa", 1)
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": rows[0]["questionId"], "prediction": "x"}])
    data = _parquet(tmp_path, "d", rows, _features("docvqa"))
    assert _score(tmp_path, "docvqa", preds, "a#b 50%", data=data) == 0
    (row,) = summary_rows([tmp_path / "runs" / "a#b 50%"], tmp_path / "runs")
    assert row.href == "a%23b%2050%25/report.html"


def test_a_huge_prediction_is_clipped_in_the_report_but_kept_in_samples(tmp_path):
    from evalkit.reports.run_report import MAX_CELL_CHARS

    rows = _rows("docvqa", 1)
    huge = "word " * 400_000  # 2 MB
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": rows[0]["questionId"], "prediction": huge}])
    data = _parquet(tmp_path, "d", rows, _features("docvqa"))
    assert _score(tmp_path, "docvqa", preds, "big", data=data) == 0
    res, records = read_run(tmp_path / "runs" / "big")
    assert records[0].prediction == huge and records[0].score == 0.0
    html = (tmp_path / "runs" / "big" / "report.html").read_text(encoding="utf-8")
    assert f"[{len(huge) - MAX_CELL_CHARS:,} more characters in samples.jsonl]" in html
    assert len(html) < 500_000


def test_rapidfuzz_distance_equals_the_reference_levenshtein_on_a_random_sweep():
    import random

    from rapidfuzz.distance import Levenshtein

    from evalkit.metrics.anls import anls, levenshtein, normalized_distance

    rng = random.Random(9)
    alphabet = "abcAB  \t\n.,-1\u00df\u0130\u00e9\u00f1\u4e2d\u6587\U0001f600\u0301"
    for _ in range(5000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert Levenshtein.distance(a, b) == levenshtein(a, b), (a, b)
        length = max(len(a.upper()), len(b.upper()))
        expected = levenshtein(" ".join(b.strip().lower().split()), " ".join(a.strip().lower().split())) / length \
            if length else 0.0
        assert normalized_distance(a, b) == expected
    # by hand: "kitten" -> "sitting" is 3 edits over 7 characters
    assert anls("kitten", ["sitting"]) == pytest.approx(1 - 3 / 7)


# ---------------------------------------------------------------- kill -9 mid-run, then resume

def test_kill_9_mid_run_then_resume_regenerates_only_the_missing_and_matches(tmp_path, tiny_cache):
    import signal
    import subprocess
    import sys
    import time

    from evalkit.pipeline.cache import ResponseCache

    # 20 rows in batches of 2: the kill lands with at least 7 batches still to go, and each of the
    # three runs costs a third of the whole sample's
    n = 20
    args = ["--task", "docvqa", "--limit", str(n), "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tiny_cache),
            "--no-progress", "--device", "cpu", "--batch-size", "2", "--threads", "1"]
    assert main(["eval", *args, "--run-name", "whole"]) == 0
    whole, whole_records = read_run(tmp_path / "runs" / "whole")

    cache = tmp_path / "runs" / "killed" / "cache.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "eval", *args, "--run-name", "killed"],
                            cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if cache.exists() and cache.read_bytes().count(b"\n") >= 6:
                break
            time.sleep(0.02)  # a tighter poll only takes CPU from the run it waits for
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "runs" / "killed" / "results.json").exists()
    n_done = len(ResponseCache(cache))
    assert 6 <= n_done < n

    # The kernel dropped the killed writer's lock: the same command resumes.
    assert main(["eval", *args, "--run-name", "killed"]) == 0
    resumed, resumed_records = read_run(tmp_path / "runs" / "killed")
    assert resumed.timing.n_cached == n_done  # only the missing requests were generated
    assert len(ResponseCache(cache)) == n
    assert [(r.sample_id, r.prediction, r.score) for r in resumed_records] == \
        [(r.sample_id, r.prediction, r.score) for r in whole_records]
    assert resumed.metrics == whole.metrics and resumed.counts == whole.counts


def test_hub_id_is_fingerprinted_by_the_cached_snapshot_revision(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from evalkit.models.backends.fingerprint import model_fingerprint

    repo = tmp_path / "hub" / "models--org--vlm"
    for commit in ("a" * 40, "b" * 40):
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        (snap / "config.json").write_text("{}")
        (snap / "model.safetensors").write_bytes(commit.encode())
    (repo / "refs").mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    (repo / "refs" / "main").write_text("a" * 40)
    first = model_fingerprint("org/vlm")
    assert first.startswith("rev:" + "a" * 40 + ":")
    (repo / "refs" / "main").write_text("b" * 40)  # the hub moved on and the cache was updated
    assert model_fingerprint("org/vlm").startswith("rev:" + "b" * 40 + ":")


def test_a_second_writer_of_an_audit_folder_is_refused(tmp_path, capsys):
    from evalkit.results.runfolder import locked_run_dir

    gens = _jsonl(tmp_path / "g.jsonl", _gen_rows())
    with locked_run_dir(tmp_path / "runs" / "audit-a"):
        err = _one_line_error(capsys, main(["audit", "--generations", str(gens), "--dataset", "fairface",
                                            "--run-name", "audit-a", "--runs-dir", str(tmp_path / "runs"), "--toxicity", "none"]))
    assert "audit-a is being written by another evalkit process" in err
