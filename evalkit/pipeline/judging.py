"""Judge-based answer extraction: a served model reads each response and names its final answer.

MathVista's official pipeline extracts answers with an LLM, and the extraction style moves its
score by points; a task that has such a step says so by returning a question from
`Task.judge_query(row)` and wording the judge's prompt in `Task.judge_prompt(query, response)`.
This stage runs between generation and scoring:

- one text-only request per distinct (query, response) through the shared generator, with the
  judge's own cache file (judge_cache.jsonl in the run folder): judge calls are cached, and a
  killed run resumes them like the model's own requests;
- the result carries `extract`, a lookup in those answers that the run hands to the task's
  scoring as its `judge` argument, so scoring stays a pure function of the row, the response
  and that lookup (nothing is set on the task); a sample whose judge call failed is that
  sample's error record (scoring asks for an answer the judge did not give), and a rerun
  retries only those;
- the task scores its headline with the judge's extraction and keeps its rule-based score as
  a variant, so the scoring-sensitivity section shows both with their paired difference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import EvalkitError, JudgeFailed
from ..types import GenConfig, Request, Response

JUDGE_CACHE = "judge_cache.jsonl"
# An extraction is a short answer; a judge that reasons at length is cut here (and says less).
JUDGE_MAX_TOKENS = 32


@dataclass
class JudgeInfo:
    """The judge section of results.json `generation`: who extracted and what it cost."""

    model_id: str
    base_url: str | None
    n_requests: int
    n_cached: int
    n_errors: int
    max_new_tokens: int
    prompt: str  # which prompt the task used (its name and version)


class JudgeAnswers:
    """The `judge` argument of a task's scoring: (query, response) -> the judge's extraction, from
    answers fetched in advance."""

    def __init__(self, task, answers: dict[str, Response]):
        self._task = task
        self._answers = answers

    def __call__(self, query: str, response: str) -> str:
        r = self._answers.get(self._task.judge_prompt(query, response))
        if r is None:
            raise JudgeFailed("the judge was not asked about this response")
        if r.error is not None:
            raise JudgeFailed(f"judge: {r.error}")
        return (r.text or "").strip()


@dataclass
class Judged:
    """What the judge stage gives the run: the lookup scoring takes as `judge`, and the
    JudgeInfo (as a dict) for results.json."""

    extract: JudgeAnswers
    info: dict[str, Any]


def require_extraction_step(task) -> None:
    """EvalkitError unless `task` extracts answers from free text, the step a judge takes over;
    callers that must load the judge first check before they do."""
    if not task.judges:
        raise EvalkitError(f"task {task.name} has no answer-extraction step for a judge; --judge applies to "
                           f"tasks that extract answers from free text (mathvista, mmmu)")


def apply_judge(task, backend, rows: list[dict], responses: list[list[Response]], run_dir: Path, *,
                progress: bool = False) -> Judged:
    """Ask `backend` to extract the answer of every row's first response; the task is only read."""
    from .generator import Generator

    require_extraction_step(task)
    prompts: dict[str, None] = {}
    for row, resps in zip(rows, responses):
        if not resps or resps[0].error is not None or not resps[0].text:
            continue
        query = task.judge_query(row)
        if query is not None:
            prompts[task.judge_prompt(query, resps[0].text)] = None
    requests = [Request(uid=f"judge-{i}", text=p, gen=GenConfig(max_new_tokens=JUDGE_MAX_TOKENS))
                for i, p in enumerate(prompts)]
    gen = Generator(backend, cache_path=run_dir / JUDGE_CACHE, progress=progress, desc=f"{task.name} judge")
    answers = dict(zip(prompts, gen.run(requests)))
    info = backend.describe()
    return Judged(JudgeAnswers(task, answers), asdict(JudgeInfo(
        model_id=str(info.get("model_id")), base_url=info.get("base_url"), n_requests=len(requests),
        n_cached=gen.stats.n_cached, n_errors=sum(1 for r in answers.values() if r.error is not None),
        max_new_tokens=JUDGE_MAX_TOKENS, prompt=task.judge_prompt_name)))
