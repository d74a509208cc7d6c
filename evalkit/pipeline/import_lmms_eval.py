"""Reading lmms-eval's per-sample log (`--log_samples`) as the responses of an evalkit run.

The log: `<output_path>/<model>/<date>_samples_<task>.jsonl` beside `<date>_results.json`, one
JSON object per document. The fields read (the same in 0.6.x and 0.7.x; lmms-eval's
EvaluationTracker.save_results_samples drops `doc` and `arguments` before writing):
  doc_id          the row's index in the split lmms-eval loaded
  input           the prompt text it built (doc_to_text)
  filtered_resps  the response after its filters: a string in 0.7, a one-string list in 0.6
  resps           the unfiltered response, written only where it differs from the filtered one
  target          the gold as text
  <metric>        its per-sample metric, named by the task (anls, exact_match, mmmu_acc, ...)
The results file gives the model (`config.model`, `config.model_args`), the task's
generation_kwargs and `lmms_eval_version` (a git description; "unknown@unknown" from a wheel).

A line is matched to the data's row `doc_id`; the row's question must appear in the logged
prompt (and the task id lmms-eval logged in its metric or submission, where it logs one, must
be the row's), so a log made on another split or another order is refused at the first line
that does not fit.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import EvalkitError
from ..task import Task
from ..types import Rule
from .data import LoadedData
from .imported import Imported, SourceRun, fold, read_text

HARNESS = "lmms-eval"
_SAMPLES = re.compile(r"^(?P<date>.+?)_samples_(?P<task>.+)\.jsonl$")


def _number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _mmmu(value) -> float | None:
    """lmms-eval logs MMMU's parsed answer, not its correctness: judged here as its eval_multi_choice
    (parsed letter equals the answer) and eval_open (evalkit.metrics.mmmu.score_open, the same
    official rule) do, with the answer as lmms-eval read it."""
    from ..metrics.mmmu import score_multi_choice, score_open

    if not isinstance(value, dict) or "parsed_pred" not in value:
        return None
    parsed = value["parsed_pred"]
    first = parsed[0] if isinstance(parsed, list) and parsed else parsed
    answer = value.get("answer")
    if value.get("question_type") == "multiple-choice":
        return float(isinstance(first, str) and score_multi_choice(first, str(answer)))
    preds = first if isinstance(first, list) else [first]
    return float(score_open(preds, answer if isinstance(answer, list) else str(answer)))


def _true_false(value) -> float | None:
    return float(bool(value["true_false"])) if isinstance(value, dict) and "true_false" in value else None


@dataclass(frozen=True)
class LmmsTask:
    """How lmms-eval names and scores one of evalkit's tasks."""

    prefix: str  # its task names start with this (docvqa_val, docvqa_val_lite, ...)
    names: str  # the usual ones, for messages
    metrics: tuple[str, ...]  # the per-sample metric field, by version
    score: Callable[[Any], float | None]
    logged_id: Callable[[dict], Any] = lambda line: None  # the task id lmms-eval logged, if any
    answer: Callable[[Any], str | None] = lambda value: None  # its own extracted answer, from the metric


def _mmmu_answer(value) -> str | None:
    if not isinstance(value, dict) or "parsed_pred" not in value:
        return None
    parsed = value["parsed_pred"]
    first = parsed[0] if isinstance(parsed, list) and parsed else parsed  # 0.7 nests it per sample (pass@k)
    return first if isinstance(first, str) else json.dumps(first)


def _mathvista_answer(value) -> str | None:
    """Its extraction (by its extraction model where the response was not already a choice or a
    number), as logged before its normalisation."""
    if not isinstance(value, dict) or value.get("extraction") is None:
        return None
    return str(value["extraction"])


def _submission_id(line: dict):
    sub = line.get("submission")
    return sub.get("question_id") if isinstance(sub, dict) else None


def _mmmu_id(line: dict):
    acc = line.get("mmmu_acc")
    return acc.get("id") if isinstance(acc, dict) else None


def _mathvista_id(line: dict):
    for key in ("llm_as_judge_eval", "gpt_eval_score", "submission"):
        value = line.get(key)
        if isinstance(value, dict) and "question_id" in value:
            return value["question_id"]
    return None


LMMS_TASKS = {
    "docvqa": LmmsTask("docvqa", "docvqa_val", ("anls",), _number),
    "textvqa": LmmsTask("textvqa", "textvqa_val", ("exact_match",), _number, _submission_id),
    "vqav2": LmmsTask("vqav2", "vqav2_val", ("exact_match",), _number, _submission_id),
    "mmmu": LmmsTask("mmmu", "mmmu_val", ("mmmu_acc",), _mmmu, _mmmu_id, _mmmu_answer),
    "mathvista": LmmsTask("mathvista", "mathvista_testmini", ("llm_as_judge_eval", "gpt_eval_score"), _true_false,
                          _mathvista_id, _mathvista_answer),
}
_OTHER_DATASETS = ("mmmu_pro",)  # names that start like one of ours but load another dataset


def evalkit_task_of(lmms_task: str) -> str | None:
    if lmms_task.startswith(_OTHER_DATASETS):
        return None
    for name, t in LMMS_TASKS.items():
        if lmms_task == t.prefix or lmms_task.startswith(t.prefix + "_"):
            return name
    return None


def find_log(path: Path, task: str) -> Path:
    """The samples file: PATH itself, or the one for `task` in the folder lmms-eval wrote."""
    if not path.exists():
        raise EvalkitError(f"{path}: no such file or folder; give lmms-eval's *_samples_<task>.jsonl (written "
                           f"with --log_samples) or the folder holding it")
    if path.is_file():
        return path
    logs = sorted(p for p in path.rglob("*_samples_*.jsonl"))
    mine = [p for p in logs if evalkit_task_of(_SAMPLES.match(p.name)["task"]) == task]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        found = ", ".join(p.name for p in logs[:5]) or "none"
        raise EvalkitError(f"{path}: holds no lmms-eval log of a {task} task (*_samples_{LMMS_TASKS[task].names}"
                           f"*.jsonl; found: {found}); give the log file itself")
    raise EvalkitError(f"{path}: holds {len(mine)} logs of {task} tasks ({', '.join(p.name for p in mine[:5])}); "
                       f"give the log file itself")


def _lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) per non-blank line; bad bytes, a cut-off last line or a line that is
    not a JSON object end as one error naming the line."""
    text = read_text(path, "lmms-eval writes its logs in UTF-8")
    out = []
    rows = text.split("\n")
    for n, line in enumerate(rows, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            if n == len(rows) and not text.endswith("\n"):
                raise EvalkitError(f"{path}:{n}: the last line is cut off ({e.msg}); the log is truncated "
                                   f"(a run stopped while writing?): give the complete log") from None
            raise EvalkitError(f"{path}:{n}: not valid JSON ({e.msg}); give lmms-eval's log unchanged, one "
                               f"JSON object per line") from None
        if not isinstance(obj, dict) or "doc_id" not in obj or "filtered_resps" not in obj:
            have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise EvalkitError(f"{path}:{n}: not an lmms-eval sample line (needs doc_id and filtered_resps, has "
                               f"{have}); give the *_samples_<task>.jsonl that --log_samples writes")
        out.append((n, obj))
    if not out:
        raise EvalkitError(f"{path}: holds no sample lines; give the *_samples_<task>.jsonl that --log_samples "
                           f"writes")
    return out


def _first_text(value) -> str | None:
    """The first response in lmms-eval's nesting (a string, [str] in 0.6, [[str]] for resps)."""
    while isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _results_file(log: Path) -> Path | None:
    m = _SAMPLES.match(log.name)
    if m:
        exact = log.with_name(f"{m['date']}_results.json")
        if exact.exists():
            return exact
    return None


def _read_results(path: Path | None, lmms_task: str | None) -> dict:
    """What the results file says about the run; {} without one. A damaged one is an error (it
    was found beside the log, so it is this run's)."""
    if path is None:
        return {}
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise EvalkitError(f"{path}: not lmms-eval's results JSON ({e}); give it as lmms-eval wrote it, or move "
                           f"it away to import the log alone") from None
    if not isinstance(d, dict):
        raise EvalkitError(f"{path}: holds a JSON {type(d).__name__}, not lmms-eval's results object")
    config = d.get("config") if isinstance(d.get("config"), dict) else {}
    task_cfg = (d.get("configs") or {}).get(lmms_task) or {}
    version = d.get("lmms_eval_version")
    return {"version": None if not version or "unknown" in str(version) else str(version),
            "model": config.get("model"), "model_args": config.get("model_args") or None,
            "generation_kwargs": task_cfg.get("generation_kwargs") if isinstance(task_cfg, dict) else None}


def read_lmms_log(path: Path, task: Task, data: LoadedData) -> tuple[Imported, LoadedData]:
    """The log's responses keyed by the task's id, and the data narrowed to the rows it answers."""
    spec = LMMS_TASKS.get(task.name)
    if spec is None:
        raise EvalkitError(f"task {task.name}: evalkit reads lmms-eval logs of {', '.join(LMMS_TASKS)} only")
    log = find_log(path, task.name)
    m = _SAMPLES.match(log.name)
    lmms_task = m["task"] if m else None
    if lmms_task is not None:
        theirs = evalkit_task_of(lmms_task)
        if theirs != task.name:
            hint = f"give --task {theirs}" if theirs else f"evalkit reads {', '.join(t.names for t in LMMS_TASKS.values())}"
            raise EvalkitError(f"{log}: is a log of lmms-eval task {lmms_task!r}, not of {task.name} "
                               f"({spec.names}); {hint}")
    lines = _lines(log)
    n_rows = len(data.rows)
    plain = data.plain_rows()
    seen: dict[int, int] = {}
    preds, raw, scores, answers = {}, {}, {}, {}
    metric = next((k for k in spec.metrics if k in lines[0][1]), None)
    fmt = None
    for n, line in lines:
        doc_id = line["doc_id"]
        if not isinstance(doc_id, int) or isinstance(doc_id, bool) or doc_id < 0:
            raise EvalkitError(f"{log}:{n}: doc_id {json.dumps(doc_id)} is not a row index; lmms-eval's doc_id "
                               f"is the row's position (0, 1, ...) in the split it loaded")
        if doc_id in seen:
            raise EvalkitError(f"{log}:{n}: doc_id {doc_id} appears again (first on line {seen[doc_id]}); one "
                               f"lmms-eval run logs each document once: give one run's log, not several joined")
        seen[doc_id] = n
        if doc_id >= n_rows:
            raise EvalkitError(f"{log}:{n}: doc_id {doc_id} is past the data's last row ({n_rows} rows, doc_id "
                               f"0-{n_rows - 1}); the log was made on a larger split: give that split with --data")
        row = plain[doc_id]
        sid = task.sample_id(row, doc_id)
        _check_line(log, n, line, row, doc_id, sid, task, spec)
        fmt = fmt or ("0.7" if isinstance(line["filtered_resps"], str) else "0.6")
        text = _first_text(line["filtered_resps"])
        if text is None:
            raise EvalkitError(f"{log}:{n}: filtered_resps is {json.dumps(line['filtered_resps'])[:80]}, not a "
                               f"response text; evalkit imports generate_until tasks' logs")
        preds[sid] = text
        unfiltered = _first_text(line.get("resps"))
        if unfiltered is not None and unfiltered != text:
            raw[sid] = unfiltered
        if metric is not None:
            value = spec.score(line.get(metric))
            if value is not None:
                scores[sid] = value
            answer = spec.answer(line.get(metric))
            if answer is not None:
                answers[sid] = answer
    results_file = _results_file(log)
    info = _read_results(results_file, lmms_task)
    source = SourceRun(harness=HARNESS, version=info.get("version"), task=lmms_task, model=info.get("model"),
                       model_args=info.get("model_args"), generation_kwargs=info.get("generation_kwargs"),
                       files=[str(log)] + ([str(results_file)] if results_file else []),
                       n_lines=len(lines), log_format=fmt,
                       matched_by="doc_id = row index of the split; the row's question checked against the "
                                  "logged prompt" + (", its id against the logged id" if spec.logged_id(lines[0][1])
                                                     is not None else ""),
                       raw_responses=bool(raw))
    rule = None
    if metric is not None and scores:
        rule = Rule(f"lmms_eval_{metric}", f"lmms-eval's own per-sample {metric}, as its log records it"
                    + (" (correctness of its logged parsed answer)" if spec.score is _mmmu else ""),
                    f"lmms-eval {info.get('version') or f'{fmt}.x log'} task {lmms_task or '?'}")
    return Imported(source, preds, raw, rule, scores, answers), data.narrowed(seen)


def _check_line(log: Path, n: int, line: dict, row: dict, doc_id: int, sid: str, task: Task, spec: LmmsTask) -> None:
    """The line must be about the row `doc_id` names: its question in the prompt, its id where logged."""
    logged = spec.logged_id(line)
    if logged is not None and str(logged) != sid:
        raise EvalkitError(f"{log}:{n}: doc_id {doc_id} logged {task.id_field} {logged!r}, but the data's row "
                           f"{doc_id} is {sid!r}; the log was made on another split or order: give that data with "
                           f"--data")
    prompt = line.get("input")
    question = fold(task.question(row))
    said = fold(prompt) if isinstance(prompt, str) else None
    if said is not None and question and question not in said and fold(row.get("question") or "") not in said:
        raise EvalkitError(f"{log}:{n}: doc_id {doc_id} logged the prompt {prompt[:60]!r}, which does not hold "
                           f"the data's row {doc_id} question {task.question(row)[:60]!r}; the log was made on "
                           f"another split or order: give that data with --data")
