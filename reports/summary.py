"""The summary of a multi-task run (`evalkit eval --task all`): one row per task with its
headline metric and CI beside its model's published numbers without and with image splitting
(evalkit.analyses.references; none for a model the table does not know), linking to each report."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from evalkit.analyses.references import ReferenceTable, reference_table
from evalkit.results.schema import read_results

from .html import make_env, render_page

SUMMARY_FILE = "summary.html"


@dataclass
class SummaryRow:
    task: str
    title: str
    run: str
    href: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_errors: int
    card_no_split: float | None
    card_split: float | None
    card_note: str
    pipeline_check: bool
    splitting: bool | None
    model: str  # the model's id (or name)


def published(res, table: ReferenceTable) -> tuple[dict[str, float], str]:
    """The headline metric's published numbers of the run's own model by setting, and a note that
    names the model (or says none matches)."""
    ref_model = table.match_model(res.model)
    if ref_model is None:
        return {}, "No published number matches this model."
    rows = table.rows(ref_model.key, res.task["name"], res.task.get("metric") or res.headline)
    single = [r for r in rows if r.setting == "single"]
    note = f"{ref_model.label} {ref_model.kind}" + (f": {single[0].value:g} (one published setting)" if single else "")
    return {r.setting: r.value for r in rows}, note


def summary_rows(run_dirs: list[Path], out_dir: Path, table: ReferenceTable | None = None) -> list[SummaryRow]:
    table = table or reference_table()
    rows = []
    for run_dir in run_dirs:
        res = read_results(run_dir)
        m = res.metrics[res.headline]
        ref, note = published(res, table)
        rows.append(SummaryRow(
            task=res.task["name"], title=res.task.get("title") or res.task["name"], run=res.run_name,
            # URL-quoted: a run named "a#b" or "50% split" is a folder name, not a fragment or escape.
            href=quote(os.path.relpath(run_dir / "report.html", out_dir).replace(os.sep, "/")),
            metric=res.headline, value=m["value"], ci_low=m["ci_low"], ci_high=m["ci_high"], n=m["n"],
            n_errors=res.counts.n_errors, card_no_split=ref.get("no_split"), card_split=ref.get("split"),
            card_note=note, pipeline_check=res.model.pipeline_check,
            splitting=res.model.do_image_splitting, model=res.model.model_id or res.model.name or ""))
    return rows


def render_summary(run_dirs: list[Path], out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    rows = summary_rows([Path(p) for p in run_dirs], out_dir)
    model = ", ".join(sorted({r.model for r in rows}))
    return render_page(make_env(), "summary.html.j2", out_dir / SUMMARY_FILE, title="evalkit summary",
                       rows=rows, model=model, pipeline_check=any(r.pipeline_check for r in rows))
