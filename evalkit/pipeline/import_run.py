"""`evalkit import`: another harness's responses scored as an evalkit run.

The source file is read and matched to the task's data first (evalkit.pipeline.import_lmms_eval,
evalkit.pipeline.import_vlmevalkit); every refusal happens there, before the run folder exists.
Scoring and writing are `evalkit score`'s (evalkit.pipeline.score_predictions), so an imported
run's files are a scored run's files plus results.json's `imported` section.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import EvalkitError
from ..registry import TASKS
from .data import load_task_data
from .records import run_name_of
from .score_predictions import ScoreConfig, score_predictions

HARNESSES = ("lmms-eval", "vlmevalkit")


@dataclass
class ImportConfig:
    harness: str  # one of HARNESSES
    path: Path
    task: str | None = None  # required for lmms-eval; VLMEvalKit's file name says its dataset
    data: str | None = None
    run_name: str | None = None
    runs_dir: Path = Path("runs")
    judge: object | None = None  # a ModelSpec of a served judge (tasks with an extraction step), or None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "run"


def import_run(cfg: ImportConfig) -> Path:
    if cfg.harness not in HARNESSES:
        raise EvalkitError(f"--from {cfg.harness}: not a harness evalkit reads; give one of {', '.join(HARNESSES)}")
    if cfg.harness == "lmms-eval":
        from .import_lmms_eval import read_lmms_log as read
        if cfg.task is None:
            raise EvalkitError("--from lmms-eval needs --task (the evalkit task the log is of: docvqa, textvqa, "
                               "vqav2, mmmu or mathvista)")
        task_name = cfg.task
    else:
        from .import_vlmevalkit import read_vlmevalkit as read, task_of_file
        task_name = task_of_file(cfg.path, cfg.task)
    task = TASKS.get(task_name)()
    data = load_task_data(task, cfg.data, copy=False)
    imported, data = read(cfg.path, task, data)
    src = imported.source
    stem = _slug(Path(src.model_args_folder() or src.model or cfg.path.stem).name)
    run_name = run_name_of(cfg.run_name, f"{task.name}-{_slug(src.harness.lower())}-{stem}")
    judged = _judge(cfg, task, imported, data, cfg.runs_dir / run_name) if cfg.judge is not None else None
    return score_predictions(ScoreConfig(task=task.name, predictions=Path(src.files[0]), data=cfg.data,
                                         run_name=run_name, runs_dir=cfg.runs_dir, allow_missing=False),
                             imported=imported, data=data, judge=judged.extract if judged else None,
                             judge_info=judged.info if judged else None)


def _judge(cfg: ImportConfig, task, imported, data, run_dir: Path):
    """The judge's extractions of the imported responses (as `evalkit eval --judge` makes them for
    its own), its calls cached in the run folder."""
    from ..models import load_backend
    from ..types import Response
    from .judging import apply_judge, require_extraction_step

    require_extraction_step(task)  # before the judge's server is reached
    rows = list(data.iter_rows())
    responses = [[Response(uid=str(i), text=imported.predictions.get(task.sample_id(row, i), ""))]
                 for i, row in enumerate(rows)]
    backend = load_backend(cfg.judge)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        return apply_judge(task, backend, rows, responses, run_dir)
    finally:
        backend.close()
