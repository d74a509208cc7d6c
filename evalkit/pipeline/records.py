"""What `evalkit eval` (evalkit.pipeline.runner) and `evalkit score` (evalkit.pipeline.score_predictions) share: a sample's
record and report thumbnail, the run's data section and run name, and the last stage of both,
which aggregates the records and writes the result files.

A run scored from a file and a run made here therefore produce the same files.
"""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .images import decode_image, image_key, thumbnail_data_uri
from ..results.schema import (Counts, DataInfo, Generation, Memory, ModelInfo, Results, Timing, Tokens,
                      write_run)
from ..results.runfolder import check_run_name
from ..analyses.sensitivity import task_sensitivity
from ..analyses.clustered import run_statistics
from ..task import IMAGE_CLUSTER, Task
from ..types import SampleRecord

# results.json lists at most this many prediction ids that are not in the data (sorted; the
# count beside them is complete): a file of the wrong split can hold millions.
MAX_LISTED_EXTRA = 1000


def now_iso() -> str:
    """The current UTC time to the second, as results and reports show it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def environment() -> dict:
    versions = {"python": platform.python_version()}
    for pkg in ("evalkit", "torch", "transformers", "datasets", "numpy"):
        try:
            from importlib.metadata import version
            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = None
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"versions": versions, "git_commit": commit, "host": platform.node()}


def run_name_of(given: str | None, default: str) -> str:
    """The checked run folder name: `given` (--run-name) or the default built from the inputs."""
    if given is not None:
        return check_run_name(given, "--run-name")
    return check_run_name(default, "the default run name (built from the model or file name; --run-name sets another)")


def new_record(task: Task, row: dict, index: int, uid: str) -> SampleRecord:
    """A row's record before it has a prediction or score."""
    return SampleRecord(uid=uid, sample_id=task.sample_id(row, index), question=task.question(row),
                        prediction=None, gold=task.gold(row), score=None, groups=task.groups(row),
                        cluster=task.cluster(row))


def thumbnail(task: Task, row: dict, memo: dict) -> str | None:
    """The report's thumbnail of the row's first image. `memo` (image digest -> thumbnail) makes
    an image shown by several rows (DocVQA asks ~4 questions per page) shrunk once."""
    for col in task.image_columns:
        ref = row.get(col)
        if ref:
            key = image_key(ref)
            if key not in memo:
                try:
                    memo[key] = thumbnail_data_uri(decode_image(ref))
                except Exception:
                    memo[key] = None
            return memo[key]
    return None


def thumbnails(task: Task, rows: list[dict], n: int) -> list[str | None]:
    """The thumbnails of the first `n` rows, one per distinct image."""
    memo: dict = {}
    return [thumbnail(task, row, memo) for row in rows[:n]]


class BackgroundThumbnails:
    """`thumbnails` on a thread of its own, started before generation. They need only the rows'
    images, so decoding and shrinking them (PIL releases the GIL for both) overlaps the model's
    run instead of adding to the wall time after it; `result` waits for what is left."""

    def __init__(self, task: Task, rows: list[dict], n: int):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-thumbnails")
        self._future = pool.submit(thumbnails, task, rows, n)
        pool.shutdown(wait=False)  # the thread ends with its one job, whether or not the run gets that far

    def result(self) -> list[str | None]:
        return self._future.result()


def data_info(task: Task, data) -> DataInfo:
    return DataInfo(source=data.source, description=data.description, n_rows=len(data.rows), n_total=data.n_total,
                    note=task.sample_note if data.source == "shipped sample" else "")


def write_results(task: Task, records: list[SampleRecord], run_dir: Path, *, data: DataInfo, model: ModelInfo,
                  generation: Generation, timing: Timing, memory: Memory, missing: list[str] | None = None,
                  extra: list[str] | None = None, controls: dict | None = None, imported: dict | None = None,
                  extra_rules=()) -> Results:
    """Aggregate the scored records and write run_dir/{results.json,samples.jsonl}. `imported`:
    the source harness of responses made elsewhere; `extra_rules`: variant rules beyond the
    task's own (that harness's per-sample metric)."""
    ok = [r for r in records if r.error is None]
    task.finalize(records)
    metrics = task.aggregate(records)
    headline = task.metric if task.metric in metrics else next(iter(metrics))
    breakdowns = task.breakdowns(records)
    unscored = [{"sample_id": r.sample_id, "reason": r.extras.get("unscored_reason", "not scorable")}
                for r in ok if r.score is None and "unscored_reason" in r.extras]
    missing = missing or []
    missing_ids = set(missing)
    counts = Counts(n_samples=len(records), n_scored=sum(1 for r in ok if r.score is not None),
                    n_errors=len(records) - len(ok) - len(missing), n_unscored=len(unscored),
                    n_missing_predictions=len(missing), n_extra_predictions=len(extra or []),
                    task_counts=task.counts(records))
    img_tokens = [r.n_image_tokens for r in ok if r.n_image_tokens]
    tokens = Tokens(image_tokens_per_sample=(sum(img_tokens) / len(img_tokens)) if img_tokens else None,
                    image_tokens_per_image=model.image_tokens_per_image,
                    input_tokens_mean=(sum(r.n_input_tokens for r in ok) / len(ok)) if ok else None,
                    output_tokens_total=sum(r.n_output_tokens for r in ok))
    results = Results(
        run_name=run_dir.name, task=task.describe(), data=data, model=model, generation=generation,
        headline=headline,
        metrics={k: v.to_dict() for k, v in metrics.items()},
        breakdowns={a: {g: v.to_dict() for g, v in gs.items()} for a, gs in breakdowns.items()},
        counts=counts,
        errors=[{"uid": r.uid, "sample_id": r.sample_id, "error": r.error} for r in records
                if r.error is not None and r.sample_id not in missing_ids],
        unscored=unscored, missing_predictions=missing, extra_predictions=(extra or [])[:MAX_LISTED_EXTRA],
        tokens=tokens, timing=timing, memory=memory, environment=environment(),
        scoring_sensitivity=task_sensitivity(task, records, metrics, extra_rules),
        statistics=run_statistics(task.cluster_by, IMAGE_CLUSTER, records, metrics[headline].to_dict()),
        controls=controls or {}, imported=imported or {})
    write_run(run_dir, results, records)
    return results
