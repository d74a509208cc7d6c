"""The numerical-invariance page: <out>/invariance.html, built from invariance.json only.

Hooks the tests rely on:
  pairs    table#pairs  tr.pair[data-pair=NAME][data-status=ran|skipped|not configured]
           > td.a td.b td.n td.n-changed td.share td.share-ci-low td.share-ci-high td.diff
           td.diff-ci-low td.diff-ci-high td.reason
  changed  table.changed[data-pair=NAME]  tr[data-sample-id] > td.prediction-a td.prediction-b
Shares are percentages with 1 decimal; score differences on the 0-100 scale with 1 decimal.
"""
from __future__ import annotations

import json
from pathlib import Path

from .html import make_env, render_page

INVARIANCE_HTML = "invariance.html"


def render_invariance_report(json_path: Path) -> Path:
    json_path = Path(json_path)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    title = f"Numerical invariance — {doc['task']}"
    return render_page(make_env(), "invariance.html.j2", json_path.parent / INVARIANCE_HTML, title=title, d=doc,
                       pipeline_check=doc.get("pipeline_check", False))
