"""Judge-based answer extraction: a served model (the real `transformers serve` fixture, or a
scripted handler where exact judge answers are needed) extracts answers; calls are cached
and resumable; the report shows the rule-based and judge scores side by side."""
from __future__ import annotations


import pytest

from evalkit.cli.commands import main
from evalkit.pipeline.data import load_task_data
from evalkit.pipeline.judging import JUDGE_CACHE, apply_judge
from evalkit.models.backends.openai import OpenAIBackend
from evalkit.models.spec import ModelSpec
from evalkit.results.schema import read_run
from evalkit.tasks.mathvista import JUDGE_INSTRUCTIONS, MathVista
from evalkit.types import Response
from tests.helpers.htmldom import parse


def _mmmu_judged(tmp_path, server, *extra):
    return main(["eval", "--task", "mmmu", "--model", "openai", "--base-url", server.base_url, "--no-server-stop",
                 "--judge", str(server.model_dir), "--limit", "4", "--runs-dir", str(tmp_path / "runs"),
                 "--run-name", "j", "--no-progress", *extra])


def test_mmmu_judge_run_is_cached_and_reported_side_by_side(tmp_path, served_tiny):
    assert _mmmu_judged(tmp_path, served_tiny) == 0
    run = tmp_path / "runs" / "j"
    res, records = read_run(run)
    judge = res.generation.judge
    assert judge["model_id"] == str(served_tiny.model_dir) and judge["prompt"] == "evalkit-mmmu-letter-v1"
    assert judge["n_cached"] == 0 and judge["n_errors"] == 0
    # one judge call per distinct multiple-choice (question, response) with a non-empty response
    mc = [r for r in records if r.extras.get("question_type") == "multiple-choice" and r.prediction]
    assert judge["n_requests"] == len({(r.question, r.prediction) for r in mc}) >= 1
    assert (run / JUDGE_CACHE).read_bytes().count(b"\n") == judge["n_requests"]
    # the judge variant: every judged sample has it; its mean is the section's value
    judged = [r for r in records if "judge_extraction" in r.extras["variants"]]
    assert len(judged) == len(mc) + sum(1 for r in records if r.extras.get("question_type") == "open")
    per_sample = [r.extras["variants"]["judge_extraction"] for r in judged]
    variant = {v["name"]: v for v in res.scoring_sensitivity["variants"]}["judge_extraction"]
    assert variant["n"] == len(judged)
    assert variant["value"] == pytest.approx(100 * sum(per_sample) / len(per_sample))
    disagree = [r.sample_id for r in judged if r.extras["variants"]["judge_extraction"] != r.score]
    assert variant["n_disagree"] == len(disagree) and variant["disagree_ids"] == disagree
    assert variant["diff"] == pytest.approx(100 * (sum(per_sample) - sum(r.score for r in judged)) / len(judged))

    # the report: the judge named in the scoring-sensitivity section, its row beside the headline's rule
    page = parse((run / "report.html").read_text(encoding="utf-8"))
    section = page.one("section", id="scoring-sensitivity")
    para = section.one("p", id="judge")
    assert para.one("strong", cls="judge-model").text() == str(served_tiny.model_dir)
    assert para.one("span", cls="judge-requests").text() == str(judge["n_requests"])
    row = section.one("tr", data_variant="judge_extraction")
    assert float(row.one("td", cls="value").text()) == pytest.approx(variant["value"], abs=0.05)
    assert row.one("td", cls="n-disagree").text() == str(len(disagree))
    if disagree:
        listed = section.one("details", data_variant="judge_extraction")
        assert [li.text() for li in listed.find_all("li")] == disagree

    # a rerun takes every judge answer from judge_cache.jsonl and scores the same
    assert _mmmu_judged(tmp_path, served_tiny) == 0
    res2, records2 = read_run(run)
    assert res2.generation.judge["n_cached"] == judge["n_requests"]
    assert [r.extras["variants"] for r in records2] == [r.extras["variants"] for r in records]


def test_judge_needs_a_task_with_an_extraction_step(tmp_path, capsys):
    code = main(["eval", "--task", "docvqa", "--judge", "m", "--judge-base-url", "http://127.0.0.1:9/v1",
                 "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--judge: task docvqa has no answer-extraction step" in err and "mathvista, mmmu" in err
    assert main(["eval", "--task", "mmmu", "--judge", "m", "--runs-dir", str(tmp_path)]) == 2
    assert "--judge needs a server" in capsys.readouterr().err




def _reply(text):
    return (200, {}, {"choices": [{"message": {"content": text}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})


def test_mathvista_judge_extraction_then_official_normalisation(tmp_path, scripted):
    """Exact judge answers from a scripted server: the headline uses the judge's extraction and the
    official normalisation; the rule-based score is the `rule_extraction` variant; a failed judge
    call is that sample's error."""
    handler, url = scripted
    task = MathVista()
    rows = list(load_task_data(task).rows)
    mc = next(r for r in rows if r["question_type"] == "multi_choice")
    num = next(r for r in rows if r["answer_type"] == "integer")
    # responses the rules read one way; the judge reads them another
    texts = [f"The answer is ({'A' if mc['answer'] != mc['choices'][0] else 'B'}) for sure",
             f"Roughly {int(num['answer']) + 1} or so."]
    gold_letter = "ABCDEFG"[list(mc["choices"]).index(mc["answer"])]
    handler.script += [_reply(gold_letter), _reply(str(num["answer"]))]
    backend = OpenAIBackend(ModelSpec(name="openai", base_url=url, concurrency=1, max_retries=0))
    try:
        judged = apply_judge(task, backend, [mc, num], [[Response("0", text=texts[0])], [Response("1", text=texts[1])]],
                             tmp_path)
    finally:
        backend.close()
    info = judged.info
    assert "judge" not in vars(task)  # nothing is set on the task: scoring takes the judge as an argument
    assert task.score_text(mc, texts[0]).extras["extraction_source"] == "rules"
    assert info["n_requests"] == 2 and info["prompt"] == "evalkit-mathvista-extract-v1"
    prompts = [s["body"]["messages"][0]["content"][0]["text"] for s in handler.seen]
    assert prompts[0].startswith(JUDGE_INSTRUCTIONS) and mc["query"].strip() in prompts[0]
    assert prompts[0].endswith(f"Response: {texts[0]}\nExtracted answer:")
    for row, text in ((mc, texts[0]), (num, texts[1])):
        s = task.score_text(row, text, judge=judged.extract)  # the judge reaches scoring as an argument
        assert s.value == 1.0 and s.extras["extraction_source"] == "judge"
        assert s.extras["variants"]["rule_extraction"] == 0.0  # the rules read the wrong letter / number
    # a judge answer that failed becomes the sample's error, not a silent rule-based score
    other = next(r for r in rows if r["answer_type"] == "integer" and r is not num)
    handler.script += [(500, {}, {"detail": "judge down"})]
    backend = OpenAIBackend(ModelSpec(name="openai", base_url=url, concurrency=1, max_retries=0))
    try:
        failed = apply_judge(task, backend, [other], [[Response("2", text="no idea")]], tmp_path)
    finally:
        backend.close()
    from evalkit.errors import SampleError
    with pytest.raises(SampleError, match="judge: server request failed: .*HTTP 500: judge down"):
        task.score_text(other, "no idea", judge=failed.extract)
