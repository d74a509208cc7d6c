"""The run's result files: results.json (versioned schema) and samples.jsonl beside it.

Reports, comparisons and audits read these files only, never live objects. Each section of
results.json is a dataclass here; `Results.from_dict` also reads schema version 1 files
(written before the sections were typed) by moving their values into the version 2 places.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import EvalkitError, write_error
from .jsonl import read_jsonl
from ..types import Count, SampleRecord

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"


class Section:
    """A results.json section: a dataclass written as a plain JSON object and read back from one.

    Keys a reader does not know are ignored, so a file from a newer minor change still reads."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in names})


@dataclass
class DataInfo(Section):
    source: str | None = None  # "shipped sample" | "hub" | the local path given
    description: str | None = None
    n_rows: int | None = None  # rows evaluated
    n_total: int | None = None  # rows in the data before --limit
    note: str = ""  # what the shipped sample is, when it was used


@dataclass
class ModelInfo(Section):
    """The backend's describe(): the facts every backend gives, then whatever else it adds
    (kept in `extra`, written beside the others so the file reads flat)."""

    name: str | None = None
    model_id: str | None = None
    pipeline_check: bool = False  # random weights: the score checks the pipeline, not a model
    image_tokens_per_image: int | None = None  # None: the backend cannot measure it
    dtype: str | None = None
    attn_implementation: str | None = None
    do_image_splitting: bool | None = None
    longest_edge: int | None = None
    load_in_4bit: bool | None = None
    device: str | None = None
    prompt_style: str | None = None
    n_parameters: int | None = None
    architecture: str | None = None
    family: str | None = None  # the model family whose prompt/collation rules ran (evalkit.models.families)
    extra: dict[str, Any] = field(default_factory=dict)

    ALWAYS: ClassVar[tuple[str, ...]] = ("name", "model_id", "pipeline_check", "image_tokens_per_image")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        # Settings a backend does not have (a predictions file has no dtype) are left out.
        d = {k: v for k, v in d.items() if k in self.ALWAYS or v is not None}
        return {**d, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "ModelInfo":
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = {k: v for k, v in d.items() if k not in names and k != "extra"}
        return cls(**{k: v for k, v in d.items() if k in names}, extra={**d.get("extra", {}), **extra})


@dataclass
class RequestSettings(Section):
    """One distinct setting among the requests a run sent to the model, and how many had it."""

    kind: str | None = None  # "generate" | "loglikelihood"; None: not recorded (schema 1)
    n_requests: int | None = None  # None: not recorded (schema 1)
    max_new_tokens: int | None = None  # generate only
    do_sample: bool | None = None  # generate only; evalkit decodes greedily
    stop: list[str] | None = None  # generate only

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        # A log-likelihood request has no decoding settings: none are written, rather than nulls.
        return {k: v for k, v in d.items() if k in ("kind", "n_requests") or v is not None}


@dataclass
class Generation(Section):
    """How the predictions were made: the settings of the requests actually sent, and batching."""

    source: str = "model"  # "model": generated in this run; "predictions file": made elsewhere
    prompt_style: str | None = None
    batch_size: int | str | None = None  # as asked: N or "auto"
    final_batch_size: int | None = None  # after any halvings on out-of-memory
    largest_batch: int | None = None  # the largest batch the model ran (0: every response came from the cache)
    requests: list[RequestSettings] = field(default_factory=list)
    # the served model that extracted answers (evalkit.pipeline.judging.apply_judge's summary), or None
    judge: dict[str, Any] | None = None

    def __post_init__(self):
        self.requests = [r if isinstance(r, RequestSettings) else RequestSettings.from_dict(r) for r in self.requests]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "requests": [r.to_dict() for r in self.requests]}

    @property
    def max_new_tokens(self) -> list[int]:
        """The distinct max_new_tokens of the generate requests (empty when none was recorded)."""
        return sorted({r.max_new_tokens for r in self.requests if r.max_new_tokens is not None})

    @property
    def do_sample(self) -> bool | None:
        """True if any request sampled, False if all were greedy, None if not recorded."""
        values = {r.do_sample for r in self.requests if r.do_sample is not None}
        return (True in values) if values else None


def request_settings(requests) -> list[RequestSettings]:
    """The distinct settings of `requests` (evalkit.types.Request), in first-seen order."""
    seen: dict[tuple, RequestSettings] = {}
    for r in requests:
        if r.kind == "generate":
            key = (r.kind, r.gen.max_new_tokens, r.gen.do_sample, tuple(r.gen.stop))
        else:  # a log-likelihood request scores given continuations: no decoding settings apply
            key = (r.kind,)
        if key not in seen:
            seen[key] = (RequestSettings(r.kind, 0, r.gen.max_new_tokens, r.gen.do_sample, list(r.gen.stop))
                         if r.kind == "generate" else RequestSettings(r.kind, 0))
        seen[key].n_requests += 1
    return list(seen.values())


@dataclass
class Counts(Section):
    n_samples: int = 0
    n_scored: int = 0
    n_errors: int = 0  # samples with an error (not counting missing predictions)
    n_unscored: int = 0  # samples without a gold answer or a scorable label
    n_missing_predictions: int = 0  # score mode: rows without a prediction
    n_extra_predictions: int = 0  # score mode: predictions for ids not in the data
    # The task's own counts, e.g. n_unparseable: answers the official parser could not read.
    task_counts: dict[str, Count] = field(default_factory=dict)

    def __post_init__(self):
        self.task_counts = {k: v if isinstance(v, Count) else Count(**v) for k, v in self.task_counts.items()}


@dataclass
class Tokens(Section):
    image_tokens_per_sample: float | None = None  # mean over scored samples, from the processor's output
    image_tokens_per_image: int | None = None
    input_tokens_mean: float | None = None
    output_tokens_total: int = 0


@dataclass
class Timing(Section):
    start: str | None = None
    end: str | None = None
    wall_s: float | None = None  # model load, generation and scoring (not reading the data)
    generation_s: float | None = None
    samples_per_s: float | None = None  # of the samples the model ran (cached ones took no time)
    tokens_per_s: float | None = None
    n_cached: int | None = None  # requests answered from the run's cache
    n_cache_ignored: int | None = None
    n_batches: int | None = None
    padding_fraction: float | None = None
    oom_halvings: int | None = None
    world_size: int | None = None  # data-parallel ranks


@dataclass
class Memory(Section):
    device: str | None = None
    peak_bytes: int | None = None
    kind: str | None = None  # what was measured (CUDA allocator peak, process peak RSS, ...)
    per_rank_peak_bytes: list[int | None] | None = None  # data-parallel runs: every rank's peak

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["per_rank_peak_bytes"] is None:
            del d["per_rank_peak_bytes"]
        return d


_SECTIONS = {"data": DataInfo, "model": ModelInfo, "generation": Generation, "counts": Counts, "tokens": Tokens,
             "timing": Timing, "memory": Memory}


def _section(cls, value):
    return value if isinstance(value, cls) else cls.from_dict(value)


@dataclass
class Results:
    """Everything about one run of one task. Field order here is the order in results.json.

    Metric values are on the 0-100 scale, each a dict {value, ci_low, ci_high, n}. The typed
    sections (data, model, generation, counts, tokens, timing, memory) may be given as their
    dataclass or as the dict results.json holds.
    """

    run_name: str
    task: dict[str, Any]  # Task.describe(): name, hub_id, hub_config, split, id_field, metric, reference
    data: DataInfo
    model: ModelInfo
    generation: Generation
    headline: str  # key into metrics
    metrics: dict[str, dict[str, Any]]
    breakdowns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    errors: list[dict[str, str]] = field(default_factory=list)  # [{uid, sample_id, error}]
    unscored: list[dict[str, str]] = field(default_factory=list)  # [{sample_id, reason}]
    missing_predictions: list[str] = field(default_factory=list)  # score mode: rows without a prediction
    # score mode: ids not in the data, the first MAX_LISTED_EXTRA sorted (counts.n_extra_predictions: all)
    extra_predictions: list[str] = field(default_factory=list)
    tokens: Tokens = field(default_factory=Tokens)
    timing: Timing = field(default_factory=Timing)
    memory: Memory = field(default_factory=Memory)
    environment: dict[str, Any] = field(default_factory=dict)  # versions, git_commit, host
    # headline rule + each variant rule's score, paired difference and disagreeing samples
    scoring_sensitivity: dict[str, Any] = field(default_factory=dict)
    # how the samples cluster and what the run could detect (evalkit.analyses.clustered.run_statistics);
    # empty in runs written before clusters existed
    statistics: dict[str, Any] = field(default_factory=dict)
    # control runs and checks (evalkit.analyses.controls): image_ablation, circular; {} for a plain run
    controls: dict[str, Any] = field(default_factory=dict)
    # responses made by another harness (evalkit.pipeline.imported.SourceRun): harness, version,
    # its task and model arguments; {} for a run whose responses evalkit generated or a plain
    # predictions file (and in every run written before imports existed)
    imported: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        for name, cls in _SECTIONS.items():
            try:
                setattr(self, name, _section(cls, getattr(self, name)))
            except (TypeError, AttributeError, ValueError) as e:
                raise EvalkitError(f"section {name!r} does not match results schema {SCHEMA_VERSION} "
                                   f"({type(e).__name__}: {e})") from None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schema_version": self.schema_version}
        for f in dataclasses.fields(self):
            if f.name != "schema_version":
                value = getattr(self, f.name)
                d[f.name] = value.to_dict() if isinstance(value, Section) else value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Results":
        version = d.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise EvalkitError(f"results schema_version {version!r} is not supported; this evalkit reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}")
        if version == 1:
            try:
                d = upgrade_v1(d)
            except (TypeError, AttributeError, ValueError) as e:
                raise EvalkitError(f"does not match results schema 1 ({type(e).__name__}: {e})") from None
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A schema 1 results dict in the version 2 layout. Version 1 stored a task's counts (MMMU's
    n_unparseable) among the metrics, as {value: k, n: of, no interval}; they move to
    counts.task_counts. Its generation section gave the task's max_new_tokens and do_sample
    whatever the requests were: kept as one setting of unknown kind and request count."""
    d = dict(d)
    metrics = dict(d.get("metrics") or {})
    task_counts = {}
    for name, m in list(metrics.items()):
        if (name.startswith("n_") and name != d.get("headline") and isinstance(m, dict)
                and m.get("ci_low") is None and m.get("ci_high") is None):
            task_counts[name] = Count(int(m.get("value") or 0), int(m.get("n") or 0))
            del metrics[name]
    d["metrics"] = metrics
    d["counts"] = {**(d.get("counts") or {}), "task_counts": task_counts}
    old = dict(d.get("generation") or {})
    gen: dict[str, Any] = {"source": old.get("source", "model")}
    if gen["source"] == "model":
        gen.update({k: old.get(k) for k in ("prompt_style", "batch_size", "final_batch_size")})
        if "max_new_tokens" in old or "do_sample" in old:
            gen["requests"] = [RequestSettings(None, None, old.get("max_new_tokens"), old.get("do_sample"))]
    d["generation"] = gen
    d["schema_version"] = SCHEMA_VERSION
    return d


def atomic_write_text(path: Path, text: str) -> Path:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file.

    Text that UTF-8 cannot encode (a lone surrogate, valid in JSON as "\\ud800" and so in a
    model's or a file's answer) is written as its backslash escape. Inside a JSON string that
    escape is the same JSON, so samples.jsonl and results.json read back the text they were
    given; in HTML it shows as the escape. Either way the write never fails on it."""
    import os
    import tempfile

    path = Path(path)
    # A unique temporary name: two writers never rename each other's half-written file.
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise EvalkitError(f"cannot write {path}: {write_error(e)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; keep the mode a plain write gives
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)  # the file that was there before is untouched
        raise EvalkitError(f"cannot write {path}: {write_error(e)}; the previous {path.name} (if any) is "
                           f"kept: free space (or fix the folder) and run the same command again") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_run(run_dir: Path, results: Results, records: list[SampleRecord]) -> None:
    """Write samples.jsonl then results.json, each atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SAMPLES_FILE,
                      "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records))
    atomic_write_text(run_dir / RESULTS_FILE, json.dumps(results.to_dict(), indent=2, ensure_ascii=False))


def _required(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


REWRITE = "re-run the `evalkit eval` or `evalkit score` command that wrote it"


def read_results(run_dir: Path | str) -> Results:
    """A run folder's results.json alone (no samples); a damaged file is one EvalkitError naming it."""
    run_dir = Path(run_dir)
    path = run_dir / RESULTS_FILE
    if not path.exists():
        raise EvalkitError(f"{run_dir}: not a run folder (no {RESULTS_FILE}); run `evalkit eval` first")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalkitError(f"{path}: not valid JSON ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EvalkitError(f"{path}: cannot be read ({e})") from None
    if not isinstance(d, dict):
        raise EvalkitError(f"{path}: holds a JSON {type(d).__name__}, not a run's results object; {REWRITE}")
    missing = [k for k in _required(Results) if k not in d]
    if missing:
        raise EvalkitError(f"{path}: lacks {missing}; it is not a complete results file; {REWRITE}")
    try:
        return Results.from_dict(d)
    except EvalkitError as e:
        raise EvalkitError(f"{path}: {e}; {REWRITE}") from None


def read_run(run_dir: Path | str) -> tuple[Results, list[SampleRecord]]:
    """Read a run folder: results.json and samples.jsonl; a damaged file is one EvalkitError
    naming the file (and line)."""
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    records = []
    sp = run_dir / SAMPLES_FILE
    if sp.exists():
        needed = _required(SampleRecord)
        for n, rec in read_jsonl(sp, "sample record", remedy=REWRITE):
            if not isinstance(rec, dict) or any(k not in rec for k in needed):
                raise EvalkitError(f"{sp}:{n}: not a sample record (needs {needed}); {REWRITE}")
            records.append(SampleRecord.from_dict(rec))
    return results, records
