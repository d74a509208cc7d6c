"""End to end through the CLI on the tiny model, and every bad input the foundation issue names."""
from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from evalkit.cli.commands import main
from evalkit.results.schema import Counts, RequestSettings, read_run
from evalkit.tasks.docvqa import DocVQA


def _eval(tmp_path, tiny_cache, *extra):
    return main(["eval", "--task", "docvqa", "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tiny_cache),
                 "--no-progress", "--device", "cpu", *extra])


def _docvqa_copy(tmp_path, rows, name="data"):
    """A local copy of DocVQA-schema rows, saved the way a user would (save_to_disk)."""
    features = datasets.Features({**DocVQA_features(), "image": datasets.Image(decode=False)})
    ds = datasets.Dataset.from_list(rows, features=features)
    path = tmp_path / name
    ds.save_to_disk(str(path))
    return path


def DocVQA_features():
    return dict(datasets.load_dataset("parquet", data_files=str(next(DocVQA.sample_path().glob("*.parquet"))),
                                      split="train").features)


def test_eval_end_to_end_and_resume(tmp_path, tiny_cache, capsys):
    assert _eval(tmp_path, tiny_cache, "--limit", "6", "--run-name", "r") == 0
    out = capsys.readouterr().out
    assert "pipeline check" in out
    run = tmp_path / "runs" / "r"
    results, records = read_run(run)
    assert results.counts.n_samples == 6 and len(records) == 6
    assert results.model.pipeline_check is True and results.model.name == "tiny-idefics2"
    # the headline is the mean of the per-sample scores on the 0-100 scale
    scores = [r.score for r in records if r.score is not None]
    assert results.metrics["anls"]["value"] == pytest.approx(100 * sum(scores) / len(scores))
    assert results.tokens.image_tokens_per_sample == 8  # tiny model: 8 latents, no splitting
    # the settings of the 6 requests actually sent (DocVQA: 32 new tokens, greedy), in one batch of 6
    assert results.generation.requests == [RequestSettings("generate", 6, 32, False, ["<end_of_utterance>"])]
    assert (results.generation.batch_size, results.generation.largest_batch) == (8, 6)
    assert (run / "report.html").exists() and (run / "cache.jsonl").exists()
    # a second run of the same command answers everything from the cache, with identical records
    assert _eval(tmp_path, tiny_cache, "--limit", "6", "--run-name", "r") == 0
    results2, records2 = read_run(run)
    assert results2.timing.n_cached == 6
    assert results2.generation.largest_batch == 0  # every response came from the cache
    assert results.timing.samples_per_s > 0 and results2.timing.samples_per_s is None  # no model work
    assert [r.prediction for r in records2] == [r.prediction for r in records]


def test_image_splitting_gives_five_times_the_image_tokens(tmp_path, tiny_cache):
    assert _eval(tmp_path, tiny_cache, "--limit", "2", "--run-name", "s", "--split-images") == 0
    results, _ = read_run(tmp_path / "runs" / "s")
    assert results.tokens.image_tokens_per_sample == 40  # 4 crops + the full image, 8 tokens each
    assert results.model.do_image_splitting is True


def test_bad_samples_are_records_not_crashes(tmp_path, tiny_cache, docvqa_rows):
    rows = [dict(r) for r in docvqa_rows[:5]]
    rows[0]["image"] = {"bytes": b"", "path": None}  # zero-byte image
    rows[1]["question"] = "   "  # empty question
    rows[2]["answers"] = []  # no gold answers: prediction kept, no score
    rows[3]["question"] = "word " * 4000  # longer than the tiny model's 2048-token context
    path = _docvqa_copy(tmp_path, rows)
    assert _eval(tmp_path, tiny_cache, "--data", str(path), "--run-name", "bad") == 0
    results, records = read_run(tmp_path / "runs" / "bad")
    errors = {e["sample_id"]: e["error"] for e in results.errors}
    assert errors[rows[0]["questionId"]] == "image file is empty (0 bytes)"
    assert errors[rows[1]["questionId"]] == "empty question"
    assert errors[rows[3]["questionId"]].startswith("prompt too long")
    assert results.counts == Counts(n_samples=5, n_scored=1, n_errors=3, n_unscored=1)
    # 4 requests sent to the generator: the empty question made none (the zero-byte image failed there)
    assert [(s.kind, s.n_requests) for s in results.generation.requests] == [("generate", 4)]
    assert results.unscored == [{"sample_id": rows[2]["questionId"], "reason": "no gold answers"}]
    assert records[2].prediction is not None and records[2].score is None
    assert results.metrics["anls"]["n"] == 1  # errors never count as right or wrong


@pytest.mark.parametrize("args,message", [
    (["--task", "nope"], "unknown task 'nope'; valid tasks: "),
    (["--task", "docvqa", "--model", "gpt9"], "unknown model 'gpt9'; valid models: "),
    (["--task", "docvqa", "--data", "/no/such/dir"], "--data /no/such/dir: no such file or directory"),
    (["--task", "docvqa", "--model", "hf"], "model 'hf' needs --model-id"),
    (["--task", "docvqa", "--dtype", "fp8"], "dtype 'fp8' is not valid; use one of fp32, bf16, fp16"),
    (["--task", "docvqa", "--longest-edge", "1000"], "longest edge 1000 is not valid"),
])
def test_bad_arguments_give_one_line(tmp_path, tiny_cache, capsys, args, message):
    code = main(["eval", *args, "--runs-dir", str(tmp_path), "--cache-dir", str(tiny_cache), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("evalkit: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_malformed_data_folder(tmp_path, tiny_cache, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    assert main(["eval", "--task", "docvqa", "--data", str(tmp_path / "junk"), "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 2
    assert "found no dataset" in capsys.readouterr().err


def test_data_missing_columns(tmp_path, capsys):
    datasets.Dataset.from_dict({"questionId": ["1"], "question": ["q"]}).to_parquet(str(tmp_path / "d.parquet"))
    assert main(["eval", "--task", "docvqa", "--data", str(tmp_path / "d.parquet"), "--runs-dir", str(tmp_path),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lacks column(s) ['image', 'answers']" in err


# ---------------------------------------------------------------- evalkit score

def _write_preds(path, items):
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return path


def test_score_predictions_counts_missing_and_extra(tmp_path, docvqa_rows):
    first = docvqa_rows[0]
    preds = [{"id": r["questionId"], "prediction": r["answers"][0]} for r in docvqa_rows[1:]]
    preds.append({"id": "not-a-question", "prediction": "x"})
    preds.append({"id": docvqa_rows[0]["questionId"] + "-typo", "prediction": "<script>alert(1)</script>"})
    p = _write_preds(tmp_path / "preds.jsonl", preds)
    assert main(["score", "--task", "docvqa", "--predictions", str(p), "--runs-dir", str(tmp_path / "runs"),
                 "--run-name", "sc", "--allow-missing"]) == 0
    results, records = read_run(tmp_path / "runs" / "sc")
    assert results.missing_predictions == [first["questionId"]]
    assert results.extra_predictions == sorted([first["questionId"] + "-typo", "not-a-question"])
    assert results.counts.n_missing_predictions == 1 and results.counts.n_errors == 0
    # every other prediction is a gold answer, so ANLS is exactly 100 on the scored rows
    assert results.metrics["anls"]["value"] == 100.0
    assert results.metrics["anls"]["n"] == len(docvqa_rows) - 1
    assert results.model.pipeline_check is False


@pytest.mark.parametrize("content,message", [
    ("not json\n", "preds.jsonl:1: not valid JSON"),
    ('{"id": "1"}\n', 'preds.jsonl:1: needs the keys "id" and "prediction"'),
    ('{"id": "1", "prediction": "a"}\n{"id": "1", "prediction": "b"}\n', "preds.jsonl:2: id '1' appears twice"),
])
def test_malformed_predictions(tmp_path, capsys, content, message):
    (tmp_path / "preds.jsonl").write_text(content)
    assert main(["score", "--task", "docvqa", "--predictions", str(tmp_path / "preds.jsonl"),
                 "--runs-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_tasks_and_models_listing(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "docvqa" in out and "lmms-lab/DocVQA (DocVQA)" in out and "67.3 / 74.0" in out
    assert main(["models"]) == 0
    lines = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()}
    # each description is the first line of the registered factory's docstring
    assert lines["tiny-idefics2"] == "Embedded Idefics2 with random weights, built offline (pipeline check only)."
    assert lines["vllm"].endswith("untested: needs a GPU check).") and "hf" in lines


def test_base_prompt_style_is_selectable_and_recorded(tmp_path, tiny_cache, tiny_backend):
    from evalkit.models import ModelSpec
    from evalkit.models.tiny.idefics2 import load_tiny
    from evalkit.types import Request

    base = load_tiny(ModelSpec(prompt_style="base", device="cpu"), tiny_cache)
    req = Request(uid="u", text="What is written here?", images=["ignored"])
    assert base.render_prompt(req) == "<image>What is written here?"
    assert tiny_backend.render_prompt(req) == "User:<image>What is written here?<end_of_utterance>\nAssistant:"
    assert _eval(tmp_path, tiny_cache, "--limit", "2", "--run-name", "b", "--prompt-style", "base") == 0
    results, records = read_run(tmp_path / "runs" / "b")
    assert results.generation.prompt_style == "base" and results.model.prompt_style == "base"
    assert all(r.error is None for r in records)


def test_longest_edge_resizes_images(tiny_cache):
    from PIL import Image

    from evalkit.models import ModelSpec
    from evalkit.models.tiny.idefics2 import load_tiny
    from evalkit.types import Request

    small = load_tiny(ModelSpec(longest_edge=56, device="cpu"), tiny_cache)
    prepared = small.prepare(Request(uid="u", text="q", images=[Image.new("RGB", (300, 150))]))
    assert max(prepared.inputs["pixel_values"].shape[-2:]) == 56
    assert small.describe()["longest_edge"] == 56


def test_unavailable_attention_implementation_is_one_line(tmp_path, tiny_cache, capsys):
    # No flash-attn on a CPU machine: transformers refuses, evalkit says so in one line.
    assert _eval(tmp_path, tiny_cache, "--limit", "1", "--attn", "flash_attention_2") == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: ") and "flash" in err.lower() and err.count("\n") == 1


def test_data_folder_in_the_hub_layouts_picks_split_and_config(tmp_path, docvqa_rows, capsys):
    """A snapshot of the hub repo (`<config>/<split>-*.parquet` for several configs and splits) or
    its converted layout (`<config>/<split>/0000.parquet`) gives exactly the task's split."""
    from evalkit.pipeline.data import load_task_data

    features = datasets.Features({**DocVQA_features()})
    val = datasets.Dataset.from_list([dict(r) for r in docvqa_rows[:3]], features=features)
    other = datasets.Dataset.from_list([dict(r) for r in docvqa_rows[3:8]], features=features)
    snap = tmp_path / "snapshot"
    for config in ("DocVQA", "InfographicVQA"):
        (snap / config).mkdir(parents=True)
        (val if config == "DocVQA" else other).to_parquet(str(snap / config / "validation-00000-of-00001.parquet"))
        other.to_parquet(str(snap / config / "test-00000-of-00001.parquet"))
    assert len(load_task_data(DocVQA(), str(snap)).rows) == 3
    conv = tmp_path / "converted" / "DocVQA"
    (conv / "validation").mkdir(parents=True)
    (conv / "train").mkdir()
    val.to_parquet(str(conv / "validation" / "0000.parquet"))
    other.to_parquet(str(conv / "train" / "0000.parquet"))
    assert len(load_task_data(DocVQA(), str(tmp_path / "converted")).rows) == 3
    only_test = tmp_path / "only-test"
    only_test.mkdir()
    other.to_parquet(str(only_test / "test-00000-of-00001.parquet"))
    assert main(["eval", "--task", "docvqa", "--data", str(only_test), "--runs-dir", str(tmp_path)]) == 2
    assert "has parquet files for split(s) ['test'], not 'validation'" in capsys.readouterr().err


def test_help_labels_every_path_no_test_runs_as_untested():
    """The flags whose paths only a GPU runs say so in --help, as the docs' list does."""
    from evalkit.cli.commands import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    helps = {opt: a.help for a in sub.choices["eval"]._actions for opt in a.option_strings}
    for flag in ("--model", "--attn", "--load-in-4bit", "--tensor-parallel-size", "--launcher", "--batch-size"):
        assert "untested: needs a GPU check" in helps[flag], flag
    page = (Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    untested = page.split("are **untested: needs a GPU check**:")[1].split("`bash benchmarks/gpu_check.sh")[0]
    for item in ("`--model vllm`", "`--tensor-parallel-size`", "`--attn flash_attention_2`", "`--load-in-4bit`",
                 "`--batch-size auto`", "nccl"):
        assert item in untested, item
