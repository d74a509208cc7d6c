"""`evalkit score`: score predictions made elsewhere, without loading a model.

The predictions file is JSON lines, each {"id": <the task's id field>, "prediction": "..."}.
Rows with no prediction and predictions for unknown ids are counted and listed in the
results and report, never dropped silently.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

from .data import load_task_data
from .errors import EvalkitError, SampleError
from .registry import TASKS
from .runner import _data_info, _record, _thumb, finish_run
from .task import Task

NO_PREDICTION = "no prediction for this sample in the predictions file"


@dataclass
class ScoreConfig:
    task: str
    predictions: Path
    data: str | None = None
    run_name: str | None = None
    runs_dir: Path = Path("runs")
    thumbnails: int = 300
    report: bool = True


def read_predictions(path: Path) -> dict[str, str]:
    if not path.exists():
        raise EvalkitError(f"predictions file {path} does not exist")
    preds: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalkitError(f"{path}:{n}: not valid JSON ({e.msg}); each line must be "
                                   f'{{"id": ..., "prediction": "..."}}') from None
            if not isinstance(obj, dict) or "id" not in obj or "prediction" not in obj:
                raise EvalkitError(f'{path}:{n}: needs the keys "id" and "prediction", got '
                                   f"{sorted(obj) if isinstance(obj, dict) else type(obj).__name__}")
            key = str(obj["id"])
            if key in preds:
                raise EvalkitError(f"{path}:{n}: id {key!r} appears twice; give one prediction per id")
            pred = obj["prediction"]
            if pred is None:
                pred = ""
            if not isinstance(pred, str):
                pred = json.dumps(pred) if isinstance(pred, (list, dict)) else str(pred)
            preds[key] = pred
    return preds


def score_predictions(cfg: ScoreConfig) -> Path:
    task: Task = TASKS.get(cfg.task)()
    preds = read_predictions(cfg.predictions)
    data = load_task_data(task, cfg.data)
    run_dir = cfg.runs_dir / (cfg.run_name or f"{cfg.task}-scored-{cfg.predictions.stem}")
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    records, seen, missing = [], set(), []
    for index, row in enumerate(data.iter_rows()):
        rec = _record(task, row, index, str(index))
        records.append(rec)
        seen.add(rec.sample_id)
        if rec.sample_id not in preds:
            rec.error = NO_PREDICTION
            missing.append(rec.sample_id)
        else:
            rec.prediction = preds[rec.sample_id]
            try:
                score = task.score_text(row, rec.prediction)
                rec.score, rec.extras = score.value, dict(score.extras)
                if score.value is None:
                    rec.extras["unscored_reason"] = score.reason or "not scorable"
            except SampleError as e:
                rec.error = str(e)
        if index < cfg.thumbnails:
            rec.thumb = _thumb(task, row)
    extra = sorted(k for k in preds if k not in seen)
    model = {"name": "predictions file", "model_id": str(cfg.predictions), "pipeline_check": False}
    timing = {"start": started, "end": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return finish_run(task, records, run_dir, data_info=_data_info(task, data), model=model,
                      generation={"source": "predictions file"}, timing=timing, memory={},
                      missing=missing, extra=extra, report=cfg.report)
