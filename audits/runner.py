"""The bias audit end to end: (optional) generation, analysis, report.

    from evalkit.audits.runner import AuditConfig, run_audit
    report = run_audit(AuditConfig(dataset="both", model=ModelSpec("hf", model_id="HuggingFaceM4/idefics2-8b")))

AuditConfig fields:
  dataset            "fairface" | "stable-bias" | "both"
  model              evalkit ModelSpec of the model that generates (ignored with `generations`)
  fairface_data      FairFace rows (save_to_disk / parquet folder or file); None = shipped sample
  stable_bias_data   Stable Bias rows, likewise
  generations        a generations file: skips generation. Our generations.jsonl, or a wide
                     published dataset with <model>_<prompt> columns (9B_resume, 80B_arrest, ...)
  models             with a wide file, which of its models to audit (None = all)
  group_columns      {dataset: [column, ...]} axes to compare; None = the dataset's defaults
                     (fairface: gender, race; stable-bias: gender_phrase, ethnicity_phrase)
  name / runs_dir    output goes to runs_dir / f"audit-{name}" (or out_dir when given)
  limit              first N images per dataset (generation) -- quick runs
  max_new_tokens     512 as in the original generation; small values for smoke tests
  batch_size         generator batch size (int or "auto")
  toxicity           classifiers: "profanity-check" (offline default) and/or transformers
                     model ids / local paths (e.g. citizenlab/distilbert-base-multilingual-cased-toxicity)
  permutations       label shuffles of the toxicity group test (default 2000; 0 = no test);
                     the term test is a stratified CMH test and needs none
  seed               permutation seed
  min_docs           frequency filter of the term test: a term must occur in this many
                     generations (label-independent; default 5)
  mask_appearance    drop appearance words (audits.appearance.MASK_WORDS) before TF-IDF
  legacy             add the ranking formula of the team's published TF-IDF bias scripts
                     (verified on their FineWeb tables; the Idefics2 notebook is not public)
                     beside the corrected one
  fairface_run       a FairFace task run folder (runs/<run>) for the accuracy section; when the
                     audit generates and covers FairFace, it runs the classification itself
                     (into <output>/fairface-classification/)

Output folder: generations.jsonl (when generated), cache.jsonl (the generator's resumable
cache), audit.json (the analysis + metadata), audit.html (the report, returned).
Generation here is thin on purpose: the analysis reads only generation rows, so
`--generations FILE` reproduces any report without a model.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.models import ModelSpec
from evalkit.models.spec import settings_dict, without_credentials
from evalkit.results.schema import atomic_write_text
from evalkit.results.runfolder import locked_run_dir
from evalkit.pipeline.records import now_iso

from .analysis import AnalysisOptions, analyze
from .fairface import fairface_accuracy
from .generations import GenerationRow, load_generations, write_jsonl
from .prompts import MAX_NEW_TOKENS, PROMPT_IDS, PROMPTS
from .report import render_report
from .sources import SOURCES, get_source, label_decoder, load_source_rows
from .tfidf import MIN_DOCS
from .toxicity import DEFAULT_CLASSIFIER, N_PERMUTATIONS, make_classifier

DATASET_CHOICES = ("fairface", "stable-bias", "both")


@dataclass
class AuditConfig:
    dataset: str = "both"
    model: ModelSpec = field(default_factory=ModelSpec)
    fairface_data: str | None = None
    stable_bias_data: str | None = None
    generations: Path | None = None
    models: list[str] | None = None
    group_columns: dict[str, list[str]] | None = None
    name: str | None = None
    runs_dir: Path = Path("runs")
    out_dir: Path | None = None
    limit: int | None = None
    max_new_tokens: int = MAX_NEW_TOKENS
    batch_size: int | str = 8
    toxicity: list[str] = field(default_factory=lambda: [DEFAULT_CLASSIFIER])
    toxicity_device: str = "cpu"
    permutations: int = N_PERMUTATIONS
    seed: int = 0
    min_docs: int = MIN_DOCS
    mask_appearance: bool = False
    legacy: bool = False
    fairface_run: Path | None = None
    cache_dir: Path | None = None  # where the tiny model is built
    progress: bool = True

    def datasets(self) -> list[str]:
        if self.dataset not in DATASET_CHOICES:
            raise EvalkitError(f"audit dataset {self.dataset!r} is not valid; use one of "
                               f"{', '.join(DATASET_CHOICES)}")
        return ["fairface", "stable-bias"] if self.dataset == "both" else [self.dataset]

    def validate(self) -> None:
        self.datasets()
        self.output_dir()  # a bad --name is refused before any work
        if self.permutations < 0:
            raise EvalkitError(f"permutations {self.permutations}: use 0 (no toxicity test) or a positive number")
        if self.min_docs < 1:
            raise EvalkitError(f"min_docs {self.min_docs}: use a positive number of generations (default {MIN_DOCS})")
        if self.max_new_tokens < 1:
            raise EvalkitError(f"max_new_tokens {self.max_new_tokens}: use a positive number "
                               f"({MAX_NEW_TOKENS} as in the card)")

    def output_dir(self) -> Path:
        if self.out_dir is not None:
            return Path(self.out_dir)
        from evalkit.results.runfolder import check_run_name

        if self.name is not None:
            name = check_run_name(self.name, "--name")
        else:
            name = check_run_name(Path(self.generations).stem if self.generations else self.model.label,
                                  "the default audit name (from the file or model name; --run-name sets another)")
        return Path(self.runs_dir) / f"audit-{name}"


def generate(cfg: AuditConfig, out: Path, backend) -> tuple[list[GenerationRow], dict]:
    """Ask the three prompts about every image through the shared generator."""
    from evalkit.pipeline.generator import Generator
    from evalkit.types import GenConfig, Request

    sources, requests, owners = [], [], []
    for name in cfg.datasets():
        src = get_source(name)
        cols = tuple((cfg.group_columns or {}).get(name) or src.group_columns)
        data = cfg.fairface_data if name == "fairface" else cfg.stable_bias_data
        ds, origin, n_total = load_source_rows(src, data, cfg.limit, cols)
        decoders = {c: label_decoder(ds, c, src) for c in cols}
        sources.append({"dataset": name, "source": src.describe(), "origin": origin,
                        "n_rows": len(ds), "n_total": n_total, "group_columns": list(cols)})
        gen = GenConfig(max_new_tokens=cfg.max_new_tokens)
        for i, row in enumerate(ds):
            groups = {c: decoders[c](row[c]) for c in cols}
            for pid in PROMPT_IDS:
                requests.append(Request(uid=f"{name}:{i}:{pid}", text=PROMPTS[pid],
                                        images=[row[src.image_column]], gen=gen))
                owners.append((name, str(i), pid, groups))
    model = backend.describe()
    label = cfg.model.label
    generator = Generator(backend, batch_size=cfg.batch_size, cache_path=out / "cache.jsonl",
                          progress=cfg.progress, desc="audit")
    t0 = time.perf_counter()
    responses = generator.run(requests)
    rows = [GenerationRow(example_id=ex, prompt_id=pid, dataset=ds_name, model=label, groups=groups,
                          generation=resp.text or "", error=resp.error, pipeline_check=backend.random_weights)
            for (ds_name, ex, pid, groups), resp in zip(owners, responses)]
    write_jsonl(rows, out / "generations.jsonl")
    info = {"model": model, "pipeline_check": backend.random_weights,
            "sources": sources, "generation_s": round(time.perf_counter() - t0, 3),
            "generator": generator.stats.to_dict()}
    return rows, info


def classify_fairface(cfg: AuditConfig, out: Path, backend) -> Path:
    """The card's FairFace accuracy table needs the classification task on the same images and
    model: run it through the engine (its own resumable run folder inside the audit's), with
    the model already loaded for generation."""
    from evalkit.reports.run_report import render_new_run_report
    from evalkit.pipeline.runner import EvalConfig, run_eval

    run_dir = run_eval(EvalConfig(task="fairface", model=cfg.model, data=cfg.fairface_data, limit=cfg.limit,
                                  batch_size=cfg.batch_size, run_name="fairface-classification", runs_dir=out,
                                  cache_dir=cfg.cache_dir, progress=cfg.progress), backend=backend)
    render_new_run_report(run_dir)
    return run_dir


def run_audit(cfg: AuditConfig) -> Path:
    """Run the audit described by `cfg`; returns the path of the HTML report."""
    cfg.validate()
    wanted = cfg.datasets()
    started, t0 = now_iso(), time.perf_counter()
    # Every input is read before the output folder exists, so a bad path leaves nothing behind.
    rows = None
    if cfg.generations:
        hint = wanted[0] if len(wanted) == 1 else None
        rows = load_generations(cfg.generations, dataset=hint, models=cfg.models,
                                group_columns=(cfg.group_columns or {}).get(hint) if hint else None)
        rows = [r for r in rows if r.dataset in wanted or r.dataset not in SOURCES]
        if not rows:
            raise EvalkitError(f"--generations {cfg.generations}: has no generations for "
                               f"dataset(s) {wanted}")
        _check_group_columns(rows, cfg)
    fairface = fairface_accuracy(cfg.fairface_run) if cfg.fairface_run else None
    classifiers = [make_classifier(c, device=cfg.toxicity_device) for c in cfg.toxicity]

    out = cfg.output_dir()
    # One writer per audit folder, as for runs (evalkit.results.runfolder).
    with locked_run_dir(out):
        return _run_locked(cfg, out, rows, fairface, classifiers, wanted, started, t0)


def _run_locked(cfg: AuditConfig, out: Path, rows, fairface, classifiers, wanted, started, t0) -> Path:
    if rows is not None:
        info = {"model": {}, "sources": [], "generations_file": str(cfg.generations),
                "pipeline_check": any(r.pipeline_check for r in rows)}
    else:
        from evalkit.models import load_backend

        backend = load_backend(cfg.model, cache_dir=cfg.cache_dir)
        rows, info = generate(cfg, out, backend)
        if fairface is None and "fairface" in wanted:
            fairface = fairface_accuracy(classify_fairface(cfg, out, backend))

    modes = ("variance", "legacy") if cfg.legacy else ("variance",)
    opts = AnalysisOptions(modes=modes, n_permutations=cfg.permutations, seed=cfg.seed, min_docs=cfg.min_docs,
                           mask_appearance=cfg.mask_appearance, group_columns=cfg.group_columns)
    analysis = analyze(rows, options=opts, classifiers=classifiers, fairface=fairface)
    meta = _meta(cfg, info, rows, started, time.perf_counter() - t0)
    # Written with the results, not before the work: a rerun that fails must leave the folder's
    # config.json describing the audit.json and report still beside it.
    atomic_write_text(out / "config.json", json.dumps(without_credentials(settings_dict(cfg)), indent=2, default=str))
    atomic_write_text(out / "audit.json", json.dumps({"meta": meta, "analysis": analysis.to_dict()}, indent=2,
                                                     ensure_ascii=False))
    return render_report(analysis, meta, out / "audit.html")


def _check_group_columns(rows: list[GenerationRow], cfg: AuditConfig) -> None:
    """Every group column named for a dataset must label some of its generation rows; one
    that labels none would give an analysis with no groups to compare, so it is refused."""
    for dataset, cols in (cfg.group_columns or {}).items():
        mine = [r for r in rows if r.dataset == dataset]
        if not mine:
            continue
        have = sorted({k for r in mine for k, v in r.groups.items() if v is not None})
        absent = [c for c in cols if c not in have]
        if absent:
            raise EvalkitError(f"--groups {dataset}={','.join(cols)}: {cfg.generations} has no column(s) "
                               f"{absent} for {dataset}; its group columns are {have}")


def _meta(cfg: AuditConfig, info: dict, rows: list[GenerationRow], started: str, wall: float) -> dict:
    from evalkit.pipeline.records import environment

    models = sorted({r.model for r in rows})
    datasets = sorted({r.dataset for r in rows})
    model = info.get("model") or {}
    shipped = any(s["origin"] == "shipped sample" for s in info.get("sources", []))
    table = {"model": model.get("model_id") or ", ".join(models),
             "generations": info.get("generations_file") or "generated in this run",
             "datasets": ", ".join(f"{s['dataset']}: {s['source']} ({s['origin']}, {s['n_rows']} of "
                                   f"{s['n_total']} images)" for s in info.get("sources", [])) or ", ".join(datasets),
             "generation rows": len(rows)}
    if not cfg.generations:
        table.update({"dtype": model.get("dtype"), "image splitting": model.get("do_image_splitting"),
                      "max new tokens": cfg.max_new_tokens, "batch size": cfg.batch_size,
                      "generation time (s)": info.get("generation_s")})
    env = environment()
    table.update({"wall time (s)": round(wall, 2), "started": started,
                  "versions": env.get("versions"), "git commit": env.get("git_commit")})
    return {"name": cfg.output_dir().name.removeprefix("audit-"), "model_name": ", ".join(models),
            "datasets": datasets, "start": started, "pipeline_check": info.get("pipeline_check", False),
            "shipped_sample": shipped,
            "data_note": ("The shipped samples are small synthetic images made by evalkit's sample "
                          "scripts, not the FairFace / Stable Bias photographs: use full data paths for a real audit."),
            "table": table, "model": model, "sources": info.get("sources", []),
            "generator": info.get("generator")}
