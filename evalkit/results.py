"""The run's result files: results.json (versioned schema) and samples.jsonl beside it.

Reports, comparisons and audits read these files only, never live objects.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EvalkitError
from .jsonl import read_jsonl
from .types import SampleRecord

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"


@dataclass
class Results:
    """Everything about one run of one task. Field order here is the order in results.json.

    Metric values are on the 0-100 scale, each a dict {value, ci_low, ci_high, n}.
    """

    run_name: str
    task: dict[str, Any]  # Task.describe(): name, hub_id, hub_config, split, id_field, metric, reference
    data: dict[str, Any]  # source ("shipped sample" | "hub" | path), description, n_rows, n_total, note
    model: dict[str, Any]  # backend describe(): name, model_id, dtype, do_image_splitting, pipeline_check, ...
    generation: dict[str, Any]  # prompt_style, max_new_tokens, batch_size, do_sample
    headline: str  # key into metrics
    metrics: dict[str, dict[str, Any]]
    breakdowns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # n_samples, n_scored, n_errors, n_unscored, ...
    errors: list[dict[str, str]] = field(default_factory=list)  # [{uid, sample_id, error}]
    unscored: list[dict[str, str]] = field(default_factory=list)  # [{sample_id, reason}]
    missing_predictions: list[str] = field(default_factory=list)  # score mode: rows without a prediction
    extra_predictions: list[str] = field(default_factory=list)  # score mode: ids not in the data
    tokens: dict[str, Any] = field(default_factory=dict)  # image_tokens_per_sample, input/output tokens
    timing: dict[str, Any] = field(default_factory=dict)  # start, end, wall_s, samples_per_s, tokens_per_s
    memory: dict[str, Any] = field(default_factory=dict)  # peak_bytes, device
    environment: dict[str, Any] = field(default_factory=dict)  # versions, git_commit, host
    # headline rule + each variant rule's score, paired difference and disagreeing samples
    scoring_sensitivity: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = {"schema_version": self.schema_version}
        for k in self.__dataclass_fields__:
            if k != "schema_version":
                d[k] = getattr(self, k)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Results":
        if d.get("schema_version") != SCHEMA_VERSION:
            raise EvalkitError(f"results schema_version {d.get('schema_version')!r} is not supported; "
                               f"this evalkit reads version {SCHEMA_VERSION}")
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def atomic_write_text(path: Path, text: str) -> Path:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    import os
    import tempfile

    path = Path(path)
    # A unique temporary name: two writers never rename each other's half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; keep the mode a plain write gives
        os.replace(tmp, path)
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


def read_run(run_dir: Path | str) -> tuple[Results, list[SampleRecord]]:
    """Read a run folder; a damaged file is one EvalkitError naming the file (and line)."""
    run_dir = Path(run_dir)
    path = run_dir / RESULTS_FILE
    rewrite = "re-run the `evalkit eval` or `evalkit score` command that wrote it"
    if not path.exists():
        raise EvalkitError(f"{run_dir}: not a run folder (no {RESULTS_FILE}); run `evalkit eval` first")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalkitError(f"{path}: not valid JSON ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EvalkitError(f"{path}: cannot be read ({e})") from None
    if not isinstance(d, dict):
        raise EvalkitError(f"{path}: holds a JSON {type(d).__name__}, not a run's results object; {rewrite}")
    missing = [k for k in _required(Results) if k not in d]
    if missing:
        raise EvalkitError(f"{path}: lacks {missing}; it is not a complete results file; {rewrite}")
    results = Results.from_dict(d)
    records = []
    sp = run_dir / SAMPLES_FILE
    if sp.exists():
        needed = _required(SampleRecord)
        for n, rec in read_jsonl(sp, "sample record", remedy=rewrite):
            if not isinstance(rec, dict) or any(k not in rec for k in needed):
                raise EvalkitError(f"{sp}:{n}: not a sample record (needs {needed}); {rewrite}")
            records.append(SampleRecord.from_dict(rec))
    return results, records
