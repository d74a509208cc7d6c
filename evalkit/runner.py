"""One evaluation run: data -> requests -> generator -> scores -> results files -> report.

`run_eval` drives a model; `score_predictions` scores predictions made elsewhere. Both end in
`finish_run`, so a run scored from a file and a run made here produce the same files.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import distributed
from .data import load_task_data
from .errors import EvalkitError, SampleError
from .generator import Generator
from .images import decode_image, image_key, thumbnail_data_uri
from .models import ModelSpec, load_backend
from .registry import TASKS
from .results import Results, write_run
from .runfolder import LOCK_FILE, check_run_name, locked_run_dir
from .sensitivity import task_sensitivity
from .task import Task
from .types import Response, SampleRecord


FAILED = "rank failed"  # marker a rank sends to rank 0 in place of its responses


@dataclass
class EvalConfig:
    task: str
    model: ModelSpec = field(default_factory=ModelSpec)
    data: str | None = None  # None = shipped sample; "hub"; or a local path
    limit: int | None = None
    batch_size: int | str = 8
    run_name: str | None = None
    runs_dir: Path = Path("runs")
    cache_dir: Path | None = None  # where the tiny model is built
    workers: int = 2
    progress: bool = True
    thumbnails: int = 300  # how many samples get an image thumbnail in the report
    report: bool = True
    launcher: str | None = None  # "torchrun" / "accelerate": data-parallel ranks, see evalkit.distributed
    config_file: str | None = None  # the --config file these settings were read from (already applied)
    judge: ModelSpec | None = None  # a served model that extracts answers (evalkit.judging), or None


def default_run_name(task: str, spec: ModelSpec) -> str:
    return f"{task}-{spec.label}-{'split' if spec.do_image_splitting else 'nosplit'}"


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


def _thumb(task: Task, row: dict, memo: dict | None = None) -> str | None:
    """The report's thumbnail of the row's first image. With `memo` (image digest -> thumbnail),
    an image shown by several rows (DocVQA asks ~4 questions per page) is shrunk once."""
    for col in task.image_columns:
        ref = row.get(col)
        if ref:
            key = image_key(ref) if memo is not None else None
            if key is not None and key in memo:
                return memo[key]
            try:
                thumb = thumbnail_data_uri(decode_image(ref))
            except Exception:
                thumb = None
            if key is not None:
                memo[key] = thumb
            return thumb
    return None


def _record(task: Task, row: dict, index: int, uid: str) -> SampleRecord:
    return SampleRecord(uid=uid, sample_id=task.sample_id(row, index), question=task.question(row),
                        prediction=None, gold=task.gold(row), score=None, groups=task.groups(row))


def _apply_score(task: Task, rec: SampleRecord, row: dict, responses: list[Response]) -> None:
    errors = [r.error for r in responses if r.error]
    rec.n_input_tokens = sum(r.n_input_tokens for r in responses)
    rec.n_image_tokens = max((r.n_image_tokens for r in responses), default=0)
    rec.n_output_tokens = sum(r.n_output_tokens for r in responses)
    latencies = [r.latency_s for r in responses if r.latency_s is not None]
    rec.latency_s = round(sum(latencies), 4) if latencies else None
    if errors:
        rec.error = errors[0]
        return
    try:
        prediction, score = task.score(row, responses)
    except SampleError as e:
        rec.error = str(e)
        return
    rec.prediction = prediction
    rec.score = score.value
    rec.extras = score.extras
    if score.value is None:
        rec.extras = {**score.extras, "unscored_reason": score.reason or "not scorable"}


def run_eval(cfg: EvalConfig, backend=None) -> Path | None:
    """Evaluate cfg.model on cfg.task and write runs/<name>/{results.json,samples.jsonl,report.html}.

    Under a launcher (cfg.launcher) each rank runs every k-th request and rank 0 writes the
    run; the other ranks return None. `backend`: a model already loaded for cfg.model (the
    audit passes the one it generated with), so it is not loaded twice.
    """
    ctx = distributed.setup(cfg.launcher, cfg.model.device)
    run_dir = cfg.runs_dir / run_name_of(cfg.run_name, default_run_name(cfg.task, cfg.model))
    # Each rank locks its own file: a second job on the same folder is refused on every rank.
    with locked_run_dir(run_dir, LOCK_FILE if ctx.is_main else f"{LOCK_FILE}.rank{ctx.rank}"):
        return _run_eval_locked(cfg, ctx, run_dir, backend)


def run_name_of(given: str | None, default: str) -> str:
    """The checked run folder name: `given` (--run-name) or the default built from the inputs."""
    if given is not None:
        return check_run_name(given, "--run-name")
    return check_run_name(default, "the default run name (built from the model or file name; --run-name sets another)")


def _run_eval_locked(cfg: EvalConfig, ctx, run_dir: Path, backend) -> Path | None:
    task: Task = TASKS.get(cfg.task)()
    data = load_task_data(task, cfg.data, cfg.limit)
    if ctx.is_main:
        (run_dir / "config.json").write_text(json.dumps(
            {**asdict(cfg), "runs_dir": str(cfg.runs_dir), "cache_dir": str(cfg.cache_dir) if cfg.cache_dir else None},
            indent=2), encoding="utf-8")
    started = now_iso()
    t0 = time.perf_counter()
    if backend is None:
        with distributed.main_first(ctx):
            backend = load_backend(replace(cfg.model, device=distributed.rank_device(cfg.model.device, ctx)),
                                   cache_dir=cfg.cache_dir)
    backend.reset_peak_memory()
    # Loaded before generation so a wrong judge URL fails in a second, not after the model's run.
    judge_backend = load_backend(cfg.judge) if cfg.judge is not None and task.judges and ctx.is_main else None

    records: list[SampleRecord] = []
    rows: list[dict] = []
    requests, owners = [], []  # owners[k] = index of the record request k belongs to
    for index, row in enumerate(data.iter_rows()):
        uid = str(index)
        rec = _record(task, row, index, uid)
        records.append(rec)
        rows.append(row)
        try:
            reqs = task.build_requests(row, uid)
        except SampleError as e:
            rec.error = str(e)
            continue
        requests += reqs
        owners += [len(records) - 1] * len(reqs)

    mine = ctx.shard(len(requests))
    gen = Generator(backend, batch_size=cfg.batch_size, cache_path=run_dir / ctx.cache_name,
                    workers=cfg.workers, progress=cfg.progress and ctx.is_main,
                    desc=f"{cfg.task}" + (f" [rank 0 of {ctx.world_size}]" if ctx.distributed else ""))
    t_gen = time.perf_counter()
    failure = None
    try:
        payload = (mine, gen.run([requests[i] for i in mine]), gen.stats, backend.peak_memory())
    except Exception as e:
        if not ctx.distributed:
            raise
        # Tell rank 0 instead of leaving it waiting at the gather for the other ranks.
        failure, payload = e, (FAILED, f"{type(e).__name__}: {e}")
    shards = distributed.gather_to_main(ctx, payload)
    gen_seconds = time.perf_counter() - t_gen
    if failure is not None:
        raise failure
    if shards is None:
        return None
    failed = [f"rank {r}: {s[1]}" for r, s in enumerate(shards) if s[0] == FAILED]
    if failed:
        raise EvalkitError("the run failed on " + "; ".join(failed) + " (finished batches are cached: rerun to resume)")
    responses = distributed.merge_shards(len(requests), [(s[0], s[1]) for s in shards])

    by_record: dict[int, list[Response]] = {}
    for owner, resp in zip(owners, responses):
        by_record.setdefault(owner, []).append(resp)
    judge_info = None
    if judge_backend is not None:
        from .judging import apply_judge
        try:
            judge_info = apply_judge(task, judge_backend, rows, [by_record.get(i, []) for i in range(len(records))],
                                     run_dir, progress=cfg.progress)
        finally:
            judge_backend.close()
    thumbs: dict = {}
    for i, rec in enumerate(records):
        if rec.error is None:
            _apply_score(task, rec, rows[i], by_record.get(i, []))
        if i < cfg.thumbnails:
            rec.thumb = _thumb(task, rows[i], thumbs)

    n = len(records)
    stats = distributed.merge_stats([s[2] for s in shards])
    memory = distributed.merge_memory([s[3] for s in shards]) if ctx.distributed else shards[0][3]
    timing = {"start": started, "end": now_iso(), "wall_s": round(time.perf_counter() - t0, 3),
              "generation_s": round(gen_seconds, 3),
              # Throughput of the model work done in this run: cached responses took no time.
              "samples_per_s": (round(n * (1 - stats.n_cached / stats.n_requests) / gen_seconds, 3)
                                if gen_seconds > 0 and stats.n_requests > stats.n_cached else None),
              "tokens_per_s": round(stats.output_tokens / stats.model_seconds, 1) if stats.model_seconds > 0 else None,
              "n_cached": stats.n_cached, "n_cache_ignored": stats.n_cache_ignored, "n_batches": stats.n_batches,
              "padding_fraction": round(stats.padding_fraction, 4), "oom_halvings": stats.oom_halvings,
              "world_size": ctx.world_size}
    generation = {"prompt_style": cfg.model.prompt_style, "max_new_tokens": task.max_new_tokens,
                  "batch_size": cfg.batch_size, "final_batch_size": stats.final_batch_size, "do_sample": False,
                  "judge": judge_info}
    return finish_run(task, records, run_dir, data_info=_data_info(task, data), model=backend.describe(),
                      generation=generation, timing=timing, memory=memory, report=cfg.report)


def _data_info(task: Task, data) -> dict:
    return {"source": data.source, "description": data.description, "n_rows": len(data.rows),
            "n_total": data.n_total, "note": task.sample_note if data.source == "shipped sample" else ""}


def finish_run(task: Task, records: list[SampleRecord], run_dir: Path, *, data_info: dict, model: dict,
               generation: dict, timing: dict, memory: dict, missing: list[str] | None = None,
               extra: list[str] | None = None, report: bool = True) -> Path:
    ok = [r for r in records if r.error is None]
    task.finalize(records)
    metrics = task.aggregate(records)
    breakdowns = task.breakdowns(records)
    unscored = [{"sample_id": r.sample_id, "reason": r.extras.get("unscored_reason", "not scorable")}
                for r in ok if r.score is None and "unscored_reason" in r.extras]
    missing = missing or []
    missing_ids = set(missing)
    counts = {"n_samples": len(records), "n_scored": sum(1 for r in ok if r.score is not None),
              "n_errors": len(records) - len(ok) - len(missing), "n_unscored": len(unscored),
              "n_missing_predictions": len(missing), "n_extra_predictions": len(extra or [])}
    img_tokens = [r.n_image_tokens for r in ok if r.n_image_tokens]
    tokens = {"image_tokens_per_sample": (sum(img_tokens) / len(img_tokens)) if img_tokens else None,
              "image_tokens_per_image": model.get("image_tokens_per_image"),
              "input_tokens_mean": (sum(r.n_input_tokens for r in ok) / len(ok)) if ok else None,
              "output_tokens_total": sum(r.n_output_tokens for r in ok)}
    results = Results(
        run_name=run_dir.name, task=task.describe(), data=data_info, model=model, generation=generation,
        headline=task.metric if task.metric in metrics else next(iter(metrics)),
        metrics={k: v.to_dict() for k, v in metrics.items()},
        breakdowns={a: {g: v.to_dict() for g, v in gs.items()} for a, gs in breakdowns.items()},
        counts=counts,
        errors=[{"uid": r.uid, "sample_id": r.sample_id, "error": r.error} for r in records
                if r.error is not None and r.sample_id not in missing_ids],
        unscored=unscored, missing_predictions=missing, extra_predictions=extra or [],
        tokens=tokens, timing=timing, memory=memory, environment=environment(),
        scoring_sensitivity=task_sensitivity(task, records, metrics))
    write_run(run_dir, results, records)
    if report:
        from evalkit.reports.run_report import render_run_report
        try:
            render_run_report(run_dir)
        except EvalkitError:
            raise
        except Exception as e:
            raise EvalkitError(f"{run_dir}: results.json and samples.jsonl are written, but the report failed "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                               f"`evalkit report {run_dir}` retries it") from None
    return run_dir
