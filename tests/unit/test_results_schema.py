"""results.json schema 2 (typed sections) and schema 1 files still read; the report of a fresh run
failing leaves the result files and one line saying how to draw it again."""
from __future__ import annotations

import json

import pytest

from evalkit.cli.commands import main
from evalkit.analyses.compare import build_comparison
from evalkit.errors import EvalkitError
from evalkit.reports.run_report import render_run_report
from evalkit.results.schema import (SCHEMA_VERSION, Counts, Generation, ModelInfo, RequestSettings, Results, read_run,
                             request_settings)
from evalkit.types import Count, GenConfig, Request, SampleRecord

from tests.helpers.htmldom import by_id, parse  # noqa: E402


def v1_results(run_name: str) -> dict:
    """A results.json as evalkit wrote it before schema 2: an MMMU eval run of 4 samples, with
    n_unparseable among the metrics and generation giving the task's settings."""
    return {
        "schema_version": 1, "run_name": run_name,
        "task": {"name": "mmmu", "title": "MMMU", "metric": "mmmu_acc", "split": "validation",
                 "max_new_tokens": 16, "reference": {"no_split": 43.5, "split": 43.0}},
        "data": {"source": "shipped sample", "description": "4 rows", "n_rows": 4, "n_total": 4, "note": ""},
        "model": {"name": "hf", "model_id": "/models/idefics2", "dtype": "bf16", "attn_implementation": "sdpa",
                  "do_image_splitting": False, "pipeline_check": False, "image_tokens_per_image": 64,
                  "engine": "transformers"},
        "generation": {"prompt_style": "instruct", "max_new_tokens": 16, "batch_size": "auto",
                       "final_batch_size": 32, "do_sample": False},
        "headline": "mmmu_acc",
        "metrics": {"mmmu_acc": {"value": 50.0, "ci_low": 0.0, "ci_high": 100.0, "n": 4},
                    "mmmu_acc_strict": {"value": 25.0, "ci_low": 0.0, "ci_high": 75.0, "n": 4},
                    "n_unparseable": {"value": 3.0, "ci_low": None, "ci_high": None, "n": 4}},
        "breakdowns": {},
        "counts": {"n_samples": 4, "n_scored": 4, "n_errors": 0, "n_unscored": 0, "n_missing_predictions": 0,
                   "n_extra_predictions": 0},
        "errors": [], "unscored": [], "missing_predictions": [], "extra_predictions": [],
        "tokens": {"image_tokens_per_sample": 64.0, "image_tokens_per_image": 64, "input_tokens_mean": 120.5,
                   "output_tokens_total": 40},
        "timing": {"start": "2025-01-02T03:04:05+00:00", "end": "2025-01-02T03:05:05+00:00", "wall_s": 60.0,
                   "generation_s": 50.0, "samples_per_s": 0.08, "tokens_per_s": 0.8, "n_cached": 0,
                   "n_cache_ignored": 0, "n_batches": 1, "padding_fraction": 0.1, "oom_halvings": 0, "world_size": 1},
        "memory": {"device": "NVIDIA H100", "peak_bytes": 17_000_000_000, "kind": "cuda max_memory_allocated"},
        "environment": {"versions": {"python": "3.11"}, "git_commit": "abc1234", "host": "h"},
        "scoring_sensitivity": {},
    }


def write_v1(folder, run_name="old", scores=(1.0, 1.0, 0.0, 0.0)):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(v1_results(run_name)), encoding="utf-8")
    recs = [SampleRecord(str(i), f"validation_Art_{i}", "q", "A", ["A"], s) for i, s in enumerate(scores)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs), encoding="utf-8")
    return folder


def test_a_schema_1_file_reads_into_the_typed_sections(tmp_path):
    res, records = read_run(write_v1(tmp_path / "old"))
    assert res.schema_version == SCHEMA_VERSION == 2 and len(records) == 4
    # the count stored as a metric moves to the counts section
    assert "n_unparseable" not in res.metrics and set(res.metrics) == {"mmmu_acc", "mmmu_acc_strict"}
    assert res.counts == Counts(n_samples=4, n_scored=4, task_counts={"n_unparseable": Count(3, 4)})
    # version 1 recorded the task's settings, not the requests': kind and request count unknown
    assert res.generation == Generation(source="model", prompt_style="instruct", batch_size="auto",
                                        final_batch_size=32,
                                        requests=[RequestSettings(None, None, max_new_tokens=16, do_sample=False)])
    assert res.model.attn_implementation == "sdpa" and res.model.extra == {"engine": "transformers"}
    assert (res.timing.wall_s, res.tokens.input_tokens_mean, res.memory.peak_bytes) == (60.0, 120.5, 17_000_000_000)


def test_a_schema_1_run_gets_a_report_and_compares_with_a_schema_2_run(tmp_path):
    old = write_v1(tmp_path / "old")
    dom = parse(render_run_report(old).read_text(encoding="utf-8"))
    counts = {tr.attrs["data-count"]: tr.one("td").text() for tr in by_id(dom, "counts").find_all("tr")}
    assert counts == {"n_samples": "4", "n_scored": "4", "n_errors": "0", "n_unscored": "0", "n_unparseable": "3 of 4"}
    assert not dom.find_all("tr", data_metric="n_unparseable")  # no longer shown as a score
    meta = {tr.attrs["data-key"]: tr.one("td").text() for tr in by_id(dom, "run-metadata").find_all("tr")}
    assert meta["max_new_tokens"] == "16" and meta["requests"] == "not recorded (max 16 new tokens, greedy)"

    # the same run written again in schema 2 (as `read_run` returns it), then compared with the old file
    res, records = read_run(old)
    new = tmp_path / "new"
    new.mkdir()
    from evalkit.results.schema import write_run

    write_run(new, res, records)
    written = json.loads((new / "results.json").read_text(encoding="utf-8"))
    assert written["schema_version"] == 2
    assert written["counts"]["task_counts"] == {"n_unparseable": {"count": 3, "of": 4}}
    assert written["model"]["engine"] == "transformers"  # a backend's own facts stay beside the others
    comp = build_comparison([old, new])
    assert comp.comparisons[0].delta == 0.0 and comp.runs[0].peak_memory_bytes == 17_000_000_000


def test_results_round_trip_and_unknown_versions_are_refused():
    res = Results.from_dict(v1_results("r"))
    again = Results.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again == res
    with pytest.raises(EvalkitError, match="schema_version 3 is not supported; this evalkit reads versions 1, 2"):
        Results.from_dict({**v1_results("r"), "schema_version": 3})
    # a predictions file has no dtype or device: those keys are left out, not written as null
    assert ModelInfo(name="predictions file", model_id="p.jsonl").to_dict() == {
        "name": "predictions file", "model_id": "p.jsonl", "pipeline_check": False, "image_tokens_per_image": None}


def test_request_settings_are_the_distinct_settings_sent():
    reqs = [Request("0", "q", gen=GenConfig(max_new_tokens=32)), Request("1", "q", gen=GenConfig(max_new_tokens=32)),
            Request("2", "q", gen=GenConfig(max_new_tokens=8, stop=("\n",))),
            Request("3", "q", kind="loglikelihood", choices=["a", "b"], gen=GenConfig(max_new_tokens=99)),
            Request("4", "q", kind="loglikelihood", choices=["c"])]
    assert request_settings(reqs) == [RequestSettings("generate", 2, 32, False, ["<end_of_utterance>"]),
                                      RequestSettings("generate", 1, 8, False, ["\n"]),
                                      RequestSettings("loglikelihood", 2)]
    g = Generation(requests=request_settings(reqs))
    assert (g.max_new_tokens, g.do_sample) == ([8, 32], False)
    assert sorted({r.kind for r in g.requests}) == ["generate", "loglikelihood"]


def test_a_failing_report_leaves_the_results_and_says_how_to_retry(tmp_path, docvqa_rows, monkeypatch, capsys):
    import evalkit.reports.run_report as run_report

    def broken(run_dir, **kw):
        raise ValueError("figure backend missing\nsecond line")
    monkeypatch.setattr(run_report, "render_run_report", broken)
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": r["questionId"], "prediction": "x"}) + "\n" for r in docvqa_rows),
                     encoding="utf-8")
    code = main(["score", "--task", "docvqa", "--predictions", str(preds), "--run-name", "s",
                 "--runs-dir", str(tmp_path / "runs")])
    run = tmp_path / "runs" / "s"
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"evalkit: error: {run}: results.json and samples.jsonl are written, but the report "
                                 f"failed (ValueError: figure backend missing); `evalkit report {run}` retries it"]
    assert (run / "results.json").exists() and (run / "samples.jsonl").exists() and not (run / "report.html").exists()
    monkeypatch.undo()
    assert main(["report", str(run)]) == 0 and (run / "report.html").exists()


def test_a_damaged_section_is_one_line_naming_the_file_and_section(tmp_path):
    run = write_v1(tmp_path / "old")
    d = Results.from_dict(v1_results("old")).to_dict()
    d["counts"] = [4, 4]  # a hand edit: a list where the counts object belongs
    (run / "results.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(EvalkitError) as e:
        read_run(run)
    assert str(e.value).startswith(f"{run / 'results.json'}: section 'counts' does not match results schema 2 "
                                   f"(AttributeError: ")
    assert "\n" not in str(e.value)
    (run / "results.json").write_text(json.dumps({**v1_results("old"), "counts": [4, 4]}), encoding="utf-8")
    with pytest.raises(EvalkitError, match=r"results.json: does not match results schema 1 \(TypeError: "):
        read_run(run)
    (run / "results.json").write_text(json.dumps({**v1_results("old"), "schema_version": 7}), encoding="utf-8")
    with pytest.raises(EvalkitError, match=r"results.json: results schema_version 7 is not supported"):
        read_run(run)
