"""`evalkit import --judge`: a served judge extracts the answers of imported MMMU responses (the
real lmms-eval 0.7.3 log), as `evalkit eval --judge` does for its own; the judge is a scripted
local server, so its answers are exact."""
from __future__ import annotations

import json
from pathlib import Path

from evalkit.cli.commands import main
from evalkit.results.schema import read_run

LOG = (Path(__file__).resolve().parents[1] / "data" / "lmms_eval" / "0.7.3" /
       "20261203_205354_samples_mmmu_val_evalkit.jsonl")


def test_judge_reads_imported_mmmu_responses(tmp_path, scripted):
    handler, url = scripted
    # the judge names the gold letter of every multiple-choice question it is asked about
    gold = {json.loads(line)["input"][:40]: json.loads(line)["mmmu_acc"]["answer"] for line in LOG.read_text().splitlines()}

    def respond(body):
        prompt = body["messages"][0]["content"][0]["text"]
        letter = next(g for q, g in gold.items() if q.split("\n")[0][:30] in prompt)
        return 200, {}, {"choices": [{"message": {"content": letter}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    handler.respond = staticmethod(respond)
    assert main(["import", "--from", "lmms-eval", str(LOG), "--task", "mmmu", "--runs-dir", str(tmp_path),
                 "--run-name", "j", "--judge", "stub-model", "--judge-base-url", url]) == 0
    res, recs = read_run(tmp_path / "j")
    judge = res.generation.judge
    assert judge["model_id"] == "stub-model" and judge["n_errors"] == 0 and judge["n_requests"] == len(handler.seen) >= 4
    assert (tmp_path / "j" / "judge_cache.jsonl").exists()
    # MMMU's headline stays the official rule; the judge's reading is its `judge_extraction` variant,
    # beside lmms-eval's own: "unknown" (rules: random fallback, wrong) and "B" (gold C) the judge reads as right
    by_id = {r.sample_id: r for r in recs}
    assert by_id["validation_Physics_1"].score == 0.0
    assert by_id["validation_Physics_1"].extras["variants"]["judge_extraction"] == 1.0
    variants = {v["name"]: v for v in res.scoring_sensitivity["variants"]}
    assert variants["judge_extraction"]["value"] == 62.5
    assert variants["judge_extraction"]["disagree_ids"] == ["validation_Physics_1", "validation_Chemistry_1"]
    assert variants["lmms_eval_mmmu_acc"]["value"] == 37.5 and variants["lmms_eval_mmmu_acc"]["n_disagree"] == 0


def test_judge_on_a_task_without_an_extraction_step(tmp_path, capsys):
    docvqa = LOG.with_name("20261203_205354_samples_docvqa_val_evalkit.jsonl")
    assert main(["import", "--from", "lmms-eval", str(docvqa), "--task", "docvqa", "--runs-dir", str(tmp_path / "runs"),
                 "--judge", "stub-model", "--judge-base-url", "http://127.0.0.1:9/v1"]) == 2
    assert capsys.readouterr().err == ("evalkit: error: task docvqa has no answer-extraction step for a judge; --judge "
                                       "applies to tasks that extract answers from free text (mathvista, mmmu)\n")
    assert not (tmp_path / "runs").exists()
