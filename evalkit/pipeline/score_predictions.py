"""`evalkit score`: score predictions made elsewhere, without loading a model.

The predictions file is JSON lines, each {"id": <the task's id field>, "prediction": "..."}.
Ids are compared as text (123 matches "123"). A prediction is the model's output text; a
number is taken as its JSON text, null as an empty answer, and a list, object or boolean is
a per-sample error (counted and listed), never scored as a guess. Rows with no prediction
and predictions for unknown ids are counted and listed in the results, report and console,
never dropped silently; rows without a prediction are refused unless `allow_missing`, and no
id in common or a duplicate id in the data always is. A row the eval would refuse (an empty
question) is a per-sample error here too. An empty file or a JSON array is refused with one line.

A task with an answer-extraction step (MathVista) also reads an `extraction` field, beside or
instead of `prediction`: an answer already extracted from the response, which then gets only
the benchmark's official normalisation (Task.score_extraction). Its value is kept as JSON gave
it (a string, number, list or null, as the official scorer would read it); an object or a
boolean is a per-sample error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .data import load_task_data
from .imported import Imported
from ..errors import EvalkitError, ImageMissing, SampleError
from ..results.jsonl import read_jsonl
from ..registry import TASKS
from ..results.runfolder import locked_run_dir
from .records import data_info, new_record, now_iso, run_name_of, thumbnails, write_results
from ..results.schema import Generation, Memory, ModelInfo, Timing
from ..task import Task

NO_PREDICTION = "no prediction for this sample in the predictions file"


@dataclass
class ScoreConfig:
    task: str
    predictions: Path
    data: str | None = None
    run_name: str | None = None
    runs_dir: Path = Path("runs")
    thumbnails: int = 300
    allow_missing: bool = False  # score when some samples have no prediction (they count as errors)


@dataclass(frozen=True)
class Unusable:
    """A prediction that is present but cannot be scored as text; becomes the sample's error."""

    reason: str


@dataclass(frozen=True)
class Extraction:
    """A line's `extraction` field as JSON gave it, and whether the line also had a prediction."""

    value: object
    has_prediction: bool

    def unusable(self) -> str | None:
        if isinstance(self.value, (dict, bool)):
            return (f"extraction is a JSON {_json_type(self.value)}; give the extracted answer as a string "
                    f"(or a number or list, as the official scorer reads them)")
        return None


_FORMAT = '{"id": ..., "prediction": "..."}'


def _id_text(value, where: str) -> str:
    """Ids are compared as text, so 123 matches "123"; an integral float (123.0, as pandas
    writes ids of a column with gaps) is read as the integer."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise EvalkitError(f"{where}: id {json.dumps(value)} is a JSON {_json_type(value)}; an id must be a "
                       f"string or an integer (the task's id field)")


def _json_type(value) -> str:
    return {bool: "boolean", type(None): "null", list: "list", dict: "object", float: "number",
            int: "number", str: "string"}.get(type(value), type(value).__name__)


def prediction_text(value) -> str | Unusable:
    """The prediction as the text a model would have written. A number is its JSON text; null
    is an empty answer. Lists, objects and booleans are not text: serialising them would
    score a guess (["Finance"] is close enough to "Finance" for ANLS), so they become a
    per-sample error that says how to write them."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = json.dumps(value)
        if text in ("NaN", "Infinity", "-Infinity"):
            return Unusable(f"prediction is {text}, not an answer; write the model's output as a string")
        return text
    return Unusable(f"prediction is a JSON {_json_type(value)}, not text; write the model's output as a "
                    f"string (a list or object answer goes inside the string, e.g. \"[2014, 2016]\")")


def read_predictions(path: Path, extractions: dict[str, "Extraction"] | None = None) -> dict[str, str | Unusable]:
    """{id: prediction text, or Unusable} from a JSON-lines file (see the module docstring).
    With `extractions` given, each line's `extraction` field is put there by id."""
    if not path.exists():
        raise EvalkitError(f"predictions file {path} does not exist")
    if not path.is_file():
        raise EvalkitError(f"predictions file {path} is not a file; give a JSONL file, one {_FORMAT} per line")
    preds: dict[str, str | Unusable] = {}
    for n, obj in read_jsonl(path, _FORMAT):
        _read_line(path, n, obj, preds, extractions)
    if not preds:
        raise EvalkitError(f"predictions file {path} holds no predictions; give one {_FORMAT} per line")
    return preds


def _read_line(path: Path, n: int, obj, preds: dict[str, str | Unusable],
               extractions: dict[str, "Extraction"] | None = None) -> None:
    if not isinstance(obj, dict) or "id" not in obj or ("prediction" not in obj and "extraction" not in obj):
        raise EvalkitError(f'{path}:{n}: needs the keys "id" and "prediction" (or "extraction", an answer '
                           f'already extracted), got {sorted(obj) if isinstance(obj, dict) else type(obj).__name__}')
    key = _id_text(obj["id"], f"{path}:{n}")
    if key in preds:
        raise EvalkitError(f"{path}:{n}: id {key!r} appears twice; give one prediction per id")
    preds[key] = prediction_text(obj.get("prediction"))
    if "extraction" in obj and extractions is not None:
        extractions[key] = Extraction(obj["extraction"], "prediction" in obj)


def score_predictions(cfg: ScoreConfig, imported: Imported | None = None, data=None, judge=None,
                      judge_info: dict | None = None) -> Path:
    """Score the predictions file `cfg.predictions`, or the responses `imported` from another
    harness's files (then `data`, already loaded by the importer to match them, is reused).
    `judge`: a judge's extractions (evalkit.pipeline.judging.Judged.extract) for a task with a
    judge step, `judge_info` its results.json summary."""
    task: Task = TASKS.get(cfg.task)()
    run_name = run_name_of(cfg.run_name, f"{cfg.task}-scored-{cfg.predictions.stem}")
    extractions: dict[str, Extraction] = {}
    if imported is None:
        preds = read_predictions(cfg.predictions, extractions)
    else:
        preds = dict(imported.predictions)
    if extractions and not task.accepts_extraction:
        raise EvalkitError(f"{cfg.predictions}: has `extraction` fields, which task {cfg.task} does not read "
                           f"(only tasks with an answer-extraction step do: mathvista); give the answer as "
                           f"`prediction`")
    # Score mode reads the data once: no Arrow copy of a --data parquet in the user's datasets cache.
    data = data if data is not None else load_task_data(task, cfg.data, copy=False)
    run_dir = cfg.runs_dir / run_name
    started = now_iso()
    records, rows, first_row, missing = [], [], {}, []
    for index, row in enumerate(data.iter_rows()):
        rec = new_record(task, row, index, str(index))
        if rec.sample_id in first_row:
            # One prediction per id: two rows with one id would silently share it.
            raise EvalkitError(f"data: rows {first_row[rec.sample_id]} and {index} have the same "
                               f"{task.id_field} {rec.sample_id!r}; score mode matches predictions by id, so "
                               f"ids must be unique")
        first_row[rec.sample_id] = index
        records.append(rec)
        rows.append(row)
        if rec.sample_id not in preds:
            rec.error = NO_PREDICTION
            missing.append(rec.sample_id)
            continue
        try:  # a row the eval would refuse (an empty question) is refused here too
            task.build_requests(row, rec.uid)
        except ImageMissing:
            pass  # the predictions were made elsewhere; scoring reads only the text and the gold
        except SampleError as e:
            rec.error = str(e)
            continue
        if isinstance(preds[rec.sample_id], Unusable):
            rec.error = preds[rec.sample_id].reason
        else:
            rec.prediction = preds[rec.sample_id]
            ext = extractions.get(rec.sample_id)
            try:
                if ext is not None and ext.unusable():
                    raise SampleError(ext.unusable())
                if ext is not None:
                    score = task.score_extraction(row, rec.prediction if ext.has_prediction else None, ext.value)
                elif judge is not None:  # only tasks with a judge step take the keyword
                    score = task.score_text(row, rec.prediction, judge=judge)
                else:
                    score = task.score_text(row, rec.prediction)
                rec.score, rec.extras = score.value, dict(score.extras)
                if score.value is None:
                    rec.extras["unscored_reason"] = score.reason or "not scorable"
            except SampleError as e:
                rec.error = str(e)
            if imported is not None:
                _keep_source(rec, imported)
    extra = sorted(k for k in preds if k not in first_row)
    _check_matching(cfg, task, records, missing, preds)
    with locked_run_dir(run_dir):
        for rec, thumb in zip(records, thumbnails(task, rows, cfg.thumbnails)):
            rec.thumb = thumb
        if imported is None:
            model = ModelInfo(name="predictions file", model_id=str(cfg.predictions), pipeline_check=False)
        else:
            src = imported.source
            model = ModelInfo(name=f"{src.harness} run" + (f" ({src.model})" if src.model else ""),
                              model_id=src.model_args_folder() or src.model or str(cfg.predictions),
                              pipeline_check=False)
        write_results(task, records, run_dir, data=data_info(task, data), model=model,
                      generation=Generation(source="predictions file", judge=judge_info),
                      timing=Timing(start=started, end=now_iso()),
                      memory=Memory(), missing=missing, extra=extra,
                      imported=imported.source.to_dict() if imported is not None else None,
                      extra_rules=[imported.rule] if imported is not None and imported.rule else ())
        return run_dir


def _keep_source(rec, imported: Imported) -> None:
    """The source harness's raw response and its own per-sample metric, beside evalkit's score:
    the metric as a sensitivity variant (only where evalkit scored the sample too)."""
    if rec.sample_id in imported.raw:
        rec.extras["raw_response"] = imported.raw[rec.sample_id]
    if rec.sample_id in imported.answers:
        rec.extras["source_answer"] = imported.answers[rec.sample_id]
    value = imported.scores.get(rec.sample_id)
    if imported.rule is not None and value is not None and rec.score is not None:
        rec.extras.setdefault("variants", {})[imported.rule.name] = value


def _check_matching(cfg: ScoreConfig, task: Task, records: list, missing: list[str], preds: dict) -> None:
    """No id in common is always an error (wrong file, or ids in another column); samples
    without a prediction are an error unless `allow_missing`, so a partial file never passes
    for a full score."""
    if not records:
        return
    def first(ids) -> str:
        ids = list(ids)
        return ", ".join(repr(i) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")
    if len(missing) == len(records):
        raise EvalkitError(f"predictions file {cfg.predictions}: none of its {len(preds)} ids matches the "
                           f"data's {task.id_field} values (data: {first(r.sample_id for r in records)}; "
                           f"predictions: {first(preds)}); give the task's {task.id_field} as each \"id\"")
    if missing and not cfg.allow_missing:
        raise EvalkitError(f"predictions file {cfg.predictions}: no prediction for {len(missing)} of "
                           f"{len(records)} samples ({task.id_field} {first(missing)}); pass --allow-missing to "
                           f"score the rest (the missing ones count as errors)")
