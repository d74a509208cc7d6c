"""runs/index.html: one row per run folder, linking to each run's report.html.

Reads results.json only (never samples.jsonl: an index over many large runs must stay quick).
A folder whose results.json cannot be read is listed with the reason, never fatal.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from evalkit.errors import EvalkitError
from evalkit.results.schema import RESULTS_FILE, Results

from .html import make_env, render_page
from .run_report import REPORT_FILE

INDEX_FILE = "index.html"
# Other evalkit pages that may sit in the runs folder (top level or one folder down), with
# what each is, so the index links every page a person may look for.
OTHER_PAGES = {"summary.html": "summary of a multi-task run", "compare.html": "comparison of runs",
               "audit.html": "bias audit", "bench.html": "speed benchmarks", "grid.html": "efficiency grid"}


@dataclass
class RunEntry:
    name: str
    href: str | None  # relative link to the report, None until one is rendered
    task: str
    model: str
    pipeline_check: bool
    data_source: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    date: str
    sort_key: str
    control: str | None = None  # an image-ablation control run: its mode (evalkit.analyses.controls)
    imported: str | None = None  # responses made by another harness (results.json `imported`): its name


@dataclass
class Unreadable:
    name: str
    reason: str


@dataclass
class OtherPage:
    name: str  # the path shown, relative to the runs folder
    href: str
    kind: str


def render_index(runs_dir: Path) -> Path:
    """Write runs_dir/index.html listing every subfolder holding a results.json."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise EvalkitError(f"{runs_dir}: not a folder; give the folder that holds the run folders (e.g. runs/)")
    runs, unreadable = scan_runs(runs_dir)
    return render_page(make_env(), "index.html.j2", runs_dir / INDEX_FILE,
                       title=f"Runs in {runs_dir.name or runs_dir}", runs=runs, unreadable=unreadable,
                       pages=other_pages(runs_dir), pipeline_check=any(r.pipeline_check for r in runs))


def other_pages(runs_dir: Path) -> list[OtherPage]:
    """Summary, comparison, audit and benchmark pages beside the run folders (not inside a run)."""
    found = [runs_dir / name for name in OTHER_PAGES if (runs_dir / name).is_file()]
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir() and not (p / RESULTS_FILE).is_file()):
        found += [folder / name for name in OTHER_PAGES if (folder / name).is_file()]
    return [OtherPage(p.relative_to(runs_dir).as_posix(), quote(p.relative_to(runs_dir).as_posix()), OTHER_PAGES[p.name])
            for p in found]


def scan_runs(runs_dir: Path) -> tuple[list[RunEntry], list[Unreadable]]:
    runs, unreadable = [], []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if not (folder / RESULTS_FILE).is_file():
            continue
        try:
            runs.append(read_entry(folder))
        except (EvalkitError, OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            unreadable.append(Unreadable(folder.name, _reason(e)))
    # Newest first; runs without a start time go last, by name.
    runs.sort(key=lambda e: e.name)
    runs.sort(key=lambda e: e.sort_key, reverse=True)
    return runs, unreadable


def read_entry(folder: Path) -> RunEntry:
    raw = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{RESULTS_FILE} holds a {type(raw).__name__}, not an object")
    r = Results.from_dict(raw)
    head = r.metrics.get(r.headline) or {}
    start = str(r.timing.start or "")
    return RunEntry(
        name=folder.name,
        href=f"{quote(folder.name)}/{REPORT_FILE}" if (folder / REPORT_FILE).is_file() else None,
        task=str(r.task.get("title") or r.task.get("name") or "—"),
        model=str(r.model.name or r.model.model_id or "—"),
        pipeline_check=bool(r.model.pipeline_check),
        data_source=str(r.data.source or "—"),
        metric=str(r.headline),
        value=head.get("value"), ci_low=head.get("ci_low"), ci_high=head.get("ci_high"), n=head.get("n"),
        date=_short_date(start), sort_key=start,
        control=((r.controls or {}).get("image_ablation") or {}).get("mode"),
        imported=(r.imported or {}).get("harness"))


def _short_date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso or "—"


def _reason(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{RESULTS_FILE} is not valid JSON ({e})"
    if isinstance(e, (TypeError, KeyError, AttributeError)):
        return f"{RESULTS_FILE} does not match the results schema ({e})"
    return str(e)
