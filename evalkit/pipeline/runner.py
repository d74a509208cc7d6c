"""One evaluation run, as stages: load data -> build requests -> generate -> score -> write.

`run_eval` drives a model and returns the run folder holding results.json and samples.jsonl;
the CLI draws the report from those files. Only the generate stage (evalkit.pipeline.generation_stage) knows
about data-parallel ranks. `evalkit score` (evalkit.pipeline.score_predictions) shares the last stage, so a run
scored from a file and a run made here produce the same files.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ablation, circular, distributed
from .data import load_task_data
from ..errors import EvalkitError, JudgeFailed, SampleError
from .generation_stage import Generated, GenerationSetup, generate
from ..models import ModelSpec, load_backend
from ..models.spec import settings_dict, without_credentials
from .records import BackgroundThumbnails, data_info, new_record, now_iso, run_name_of, write_results
from ..registry import TASKS
from ..results.schema import Generation, Timing, atomic_write_text, request_settings
from ..results.runfolder import LOCK_FILE, locked_run_dir
from ..task import Judge, Task
from ..types import Request, Response, SampleRecord


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
    launcher: str | None = None  # "torchrun" / "accelerate": data-parallel ranks, see evalkit.pipeline.distributed
    config_file: str | None = None  # the --config file these settings were read from (already applied)
    judge: ModelSpec | None = None  # a served model that extracts answers (evalkit.pipeline.judging), or None
    image_ablation: str | None = None  # "blank" | "shuffle": a vision-dependence control run (evalkit.pipeline.ablation)
    shuffle_seed: int = 0  # the shuffle's derangement seed
    circular: bool = False  # also ask every rotation of multiple-choice options (evalkit.pipeline.circular)


def default_run_name(task: str, spec: ModelSpec, image_ablation: str | None = None) -> str:
    # a control gets its own folder (and cache) beside the real run's
    suffix = f"-{image_ablation}-images" if image_ablation else ""
    return f"{task}-{spec.label}-{'split' if spec.do_image_splitting else 'nosplit'}{suffix}"


@dataclass
class Built:
    """The requests of a run and the records they answer: owners[k] is request k's record."""

    records: list[SampleRecord]
    rows: list[dict]
    requests: list[Request]
    owners: list[int]

    def responses_by_record(self, responses: list[Response]) -> list[list[Response]]:
        """Each record's responses (responses[k] answers request k), in record order."""
        grouped: list[list[Response]] = [[] for _ in self.records]
        for owner, resp in zip(self.owners, responses):
            grouped[owner].append(resp)
        return grouped


def run_eval(cfg: EvalConfig, backend=None) -> Path | None:
    """Evaluate cfg.model on cfg.task and write runs/<name>/{config.json,results.json,samples.jsonl}.

    Under a launcher (cfg.launcher) each rank runs every k-th request and rank 0 writes the
    run; the other ranks return None. `backend`: a model already loaded for cfg.model (the
    audit passes the one it generated with), so it is not loaded twice.
    """
    ranks = distributed.setup(cfg.launcher, cfg.model.device)
    run_dir = cfg.runs_dir / run_name_of(cfg.run_name, default_run_name(cfg.task, cfg.model, cfg.image_ablation))
    # Each rank locks its own file: a second job on the same folder is refused on every rank.
    with locked_run_dir(run_dir, LOCK_FILE if ranks.is_main else f"{LOCK_FILE}.rank{ranks.rank}"):
        task: Task = TASKS.get(cfg.task)()
        ControlPlan.check(cfg, task)
        data = load_task_data(task, cfg.data, cfg.limit)
        if ranks.is_main:
            write_config(cfg, run_dir)
        started, t0 = now_iso(), time.perf_counter()
        # Loaded before generation so a wrong judge URL fails in a second, not after the model's run.
        judge = load_backend(cfg.judge) if cfg.judge is not None and task.judges and ranks.is_main else None
        try:
            built = build_requests(task, data)
            controls = ControlPlan.make(cfg, task, built)
            thumbs = BackgroundThumbnails(task, built.rows, cfg.thumbnails) if ranks.is_main else None
            gen = generate(controls.requests, GenerationSetup(
                model=cfg.model, run_dir=run_dir, batch_size=cfg.batch_size, workers=cfg.workers,
                progress=cfg.progress, desc=cfg.task, cache_dir=cfg.cache_dir), ranks, backend)
            if gen is None:  # a rank other than 0: rank 0 scores and writes the run
                return None
            responses = gen.responses[:len(built.requests)]  # the task's own; rotations follow (--circular)
            judged = judge_stage(task, judge, built, responses, run_dir, cfg.progress)
        finally:
            if judge is not None:
                judge.close()
        score_records(task, built, responses, thumbs.result(), judged.extract if judged else None)
        write_results(task, built.records, run_dir, data=data_info(task, data), model=gen.model,
                      generation=generation_section(cfg, controls.requests, gen, judged.info if judged else None),
                      timing=timing_section(gen, len(built.records), started, t0), memory=gen.memory,
                      controls=controls.finish(task, built, gen.responses))
        return run_dir


@dataclass
class ControlPlan:
    """The requests a run sends: the task's own, then any option rotations (--circular), all
    with their images replaced when the run is an image-ablation control."""

    cfg: EvalConfig
    requests: list[Request]
    rotations: list = field(default_factory=list)  # evalkit.pipeline.circular.Rotated
    not_rotated: list[str] = field(default_factory=list)
    ablation: dict | None = None

    @staticmethod
    def check(cfg: EvalConfig, task: Task) -> None:
        """Refuse settings the controls cannot honour, before any model or judge is loaded."""
        if cfg.circular and cfg.judge is not None and task.judges:
            # the judge extracts the answers of the benchmark-order requests only
            raise EvalkitError(f"--circular with --judge: the judge reads only the {task.name} answers in the "
                               f"benchmark's option order; run --circular without --judge")

    @classmethod
    def make(cls, cfg: EvalConfig, task: Task, built: Built) -> "ControlPlan":
        plan = cls(cfg, list(built.requests))
        owners = list(built.owners)
        if cfg.circular:
            plan.rotations, plan.not_rotated = circular.plan(task, built.records, built.rows)
            for rot in plan.rotations:
                n = sum(len(reqs) for reqs in rot.requests)
                owners += [rot.record] * n
            plan.requests += circular.flat_requests(plan.rotations)
        if cfg.image_ablation:
            done = ablation.ablate(plan.requests, owners, cfg.image_ablation, cfg.shuffle_seed)
            plan.requests = done.requests
            built.requests = done.requests[:len(built.requests)]
            plan.ablation = {"mode": cfg.image_ablation, "seed": cfg.shuffle_seed if cfg.image_ablation == "shuffle"
                             else None, "n_images": done.n_images, "n_replaced": done.n_replaced}
        return plan

    def finish(self, task: Task, built: Built, responses: list[Response]) -> dict:
        """The results.json `controls` section, after the records are scored; {} for a plain run."""
        out = {}
        if self.ablation is not None:
            for rec, row in zip(built.records, built.rows):
                n = task.option_count(row) if rec.error is None and rec.score is not None else None
                if n:  # what a uniform guess scores, for the report's chance rate
                    rec.extras = {**rec.extras, "chance": 1.0 / n}
            out["image_ablation"] = {**self.ablation, **ablation.chance_summary(built.records)}
        if self.cfg.circular:
            circular.score_rotations(task, self.rotations, built.responses_by_record(responses[:len(built.requests)]),
                                     responses[len(built.requests):], built.records)
            out["circular"] = circular.summarize(built.records, self.not_rotated)
        return out


def judge_stage(task: Task, judge, built: "Built", responses: list[Response], run_dir: Path,
                progress: bool):
    """The judge's extractions for the task's scorer and its results.json summary (evalkit.pipeline.judging's
    Judged), or None without a judge."""
    if judge is None:
        return None
    from .judging import apply_judge

    return apply_judge(task, judge, built.rows, built.responses_by_record(responses), run_dir, progress=progress)


def write_config(cfg: EvalConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / "config.json", json.dumps(without_credentials(
        {**settings_dict(cfg), "runs_dir": str(cfg.runs_dir), "cache_dir": str(cfg.cache_dir) if cfg.cache_dir else None}),
        indent=2))


def build_requests(task: Task, data) -> Built:
    """Every row's record and requests; a row the task refuses becomes an error record."""
    built = Built([], [], [], [])
    for index, row in enumerate(data.iter_rows()):
        uid = str(index)
        rec = new_record(task, row, index, uid)
        built.records.append(rec)
        built.rows.append(row)
        try:
            reqs = task.build_requests(row, uid)
        except SampleError as e:
            rec.error = str(e)
            continue
        built.requests += reqs
        built.owners += [len(built.records) - 1] * len(reqs)
    return built


def score_records(task: Task, built: Built, responses: list[Response], thumbs: list[str | None],
                  judge: Judge | None = None) -> None:
    """Put each record's responses through the task's scorer (with the judge's extractions when
    the run has a judge); the first records get the report's thumbnails `thumbs` (see records.thumbnails)."""
    by_record = built.responses_by_record(responses)
    for i, rec in enumerate(built.records):
        if rec.error is None:
            apply_score(task, rec, built.rows[i], by_record[i], judge)
        if i < len(thumbs):
            rec.thumb = thumbs[i]


def apply_score(task: Task, rec: SampleRecord, row: dict, responses: list[Response],
                judge: Judge | None = None) -> None:
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
        # Only tasks with a judge step take the argument (a plugin's own score() may not).
        prediction, score = (task.score(row, responses) if judge is None
                             else task.score(row, responses, judge=judge))
    except SampleError as e:
        rec.error = str(e)
        if isinstance(e, JudgeFailed) and responses:
            rec.prediction = responses[0].text  # the model did answer; only the extraction failed
        return
    rec.prediction = prediction
    rec.score = score.value
    rec.extras = score.extras
    if score.value is None:
        rec.extras = {**score.extras, "unscored_reason": score.reason or "not scorable"}


def generation_section(cfg: EvalConfig, requests: list[Request], gen: Generated,
                       judge: dict | None = None) -> Generation:
    """The settings of the requests actually sent, and the batch sizes asked for and run."""
    return Generation(source="model", prompt_style=cfg.model.prompt_style, batch_size=cfg.batch_size,
                      final_batch_size=gen.stats.final_batch_size, largest_batch=gen.stats.largest_batch,
                      requests=request_settings(requests), judge=judge)


def timing_section(gen: Generated, n_samples: int, started: str, t0: float) -> Timing:
    stats, seconds = gen.stats, gen.seconds
    return Timing(
        start=started, end=now_iso(), wall_s=round(time.perf_counter() - t0, 3), generation_s=round(seconds, 3),
        # Throughput of the model work done in this run: cached responses took no time.
        samples_per_s=(round(n_samples * (1 - stats.n_cached / stats.n_requests) / seconds, 3)
                       if seconds > 0 and stats.n_requests > stats.n_cached else None),
        tokens_per_s=round(stats.output_tokens / stats.model_seconds, 1) if stats.model_seconds > 0 else None,
        n_cached=stats.n_cached, n_cache_ignored=stats.n_cache_ignored, n_batches=stats.n_batches,
        padding_fraction=round(stats.padding_fraction, 4), oom_halvings=stats.oom_halvings,
        world_size=gen.world_size)
