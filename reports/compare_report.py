"""The comparison page: <out>/compare.html, built from an evalkit.analyses.compare.Comparison.

The Comparison is built from run folders only (evalkit.analyses.compare.build_comparison), and
compare.json beside the page holds the same numbers.

Hooks the tests rely on:
  banners   #banner-pipeline-check  #banner-notes
  configs   table#configs  tr.config[data-run=LABEL] > td.value td.ci-low td.ci-high td.n
            td.shared-mean td.dropped td.errors
  costs     table#costs  tr.cost[data-run=LABEL] > td.image-tokens td.image-tokens-per-image
            td.input-tokens td.samples-per-s td.peak-memory td.wall
  deltas    table#deltas  tr.delta[data-run=LABEL][data-delta=<repr>][data-p=<repr>]
            > td.delta td.ci-low td.ci-high td.p-value td.mcnemar td.n-pairs td.n-clusters
            td.mdd[data-value] td.better td.worse
            ul#detectability li[data-run][data-detectable=yes|no]   section#reading-comparison
  figure    img[data-figure="metric-by-config"]
  changed   table#changed  tr.changed[data-sample-id] > td.thumb td.question
            td[data-run] > span.prediction[data-run] span.score[data-run]    #changed-count
Numbers on the 0-100 scale show 1 decimal, per-sample scores 2, p-values 3 significant digits.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.analyses.compare import Comparison

from .html import fig_to_data_uri, inline_image, make_env, new_figure, render_page, shorten

COMPARE_HTML = "compare.html"
COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2")


def fmt_p(p: Any) -> str:
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def fmt_signed(x: Any, digits: int = 1) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return "—"
    return f"{x:+.{digits}f}"


def fmt_score(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def metric_figure(comp: Comparison) -> str | None:
    """Left: each config's headline with its 95% CI. Right: delta vs the baseline with its paired CI."""
    runs = [r for r in comp.runs if r.headline.get("value") is not None]
    if not runs:
        return None
    fig = new_figure(7.0, 1.2 + 0.45 * len(comp.runs))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    labels = [r.label for r in comp.runs]
    for i, r in enumerate(comp.runs):
        h = r.headline
        if h.get("value") is None:
            continue
        lo = h["value"] - h["ci_low"] if h.get("ci_low") is not None else 0
        hi = h["ci_high"] - h["value"] if h.get("ci_high") is not None else 0
        left.errorbar([h["value"]], [i], xerr=[[max(lo, 0)], [max(hi, 0)]], fmt="o",
                      color=COLORS[i % len(COLORS)], capsize=4, markersize=6)
        left.annotate(f"{h['value']:.1f}", (h["value"], i), textcoords="offset points", xytext=(0, 7),
                      ha="center", fontsize=8)
    left.set_yticks(range(len(labels)), [shorten(x, 34) for x in labels], fontsize=8.5)
    left.set_ylim(len(labels) - 0.5, -0.5)
    left.set_xlim(-2, 102)
    left.set_xlabel(f"{comp.metric} (0-100), whole run, 95% CI", fontsize=8.5)
    left.grid(axis="x", color="#e5e5e5")

    right.axvline(0, color="#888888", linewidth=1)
    for j, c in enumerate(comp.comparisons, start=1):
        if c.delta is None:
            continue
        # no interval (every pair in one cluster): the point alone, as for a headline without one
        lo = c.delta - c.ci_low if c.ci_low is not None else 0
        hi = c.ci_high - c.delta if c.ci_high is not None else 0
        right.errorbar([c.delta], [j], xerr=[[max(lo, 0)], [max(hi, 0)]],
                       fmt="s", color=COLORS[j % len(COLORS)], capsize=4, markersize=6)
    right.set_yticks(range(len(labels)), [""] * len(labels))
    right.set_ylim(len(labels) - 0.5, -0.5)
    span = max([abs(v) for c in comp.comparisons for v in (c.ci_low, c.ci_high) if v is not None] + [1.0])
    right.set_xlim(-span * 1.15, span * 1.15)
    right.set_xlabel("delta vs first run, paired 95% CI", fontsize=8.5)
    right.grid(axis="x", color="#e5e5e5")
    for ax in (left, right):
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig_to_data_uri(fig)


def _all_cached(run_dir: str) -> bool:
    """True when the run answered every request from the response cache: its samples/s then
    measures the cache, not the model, and the page says so instead of showing it."""
    try:
        timing = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8")).get("timing") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return bool(timing.get("n_cached")) and timing.get("n_batches") == 0


def build_context(comp: Comparison) -> dict[str, Any]:
    changed = []
    for c in comp.changed:
        changed.append({"sample_id": c.sample_id, "question": c.question,
                        "thumb": inline_image(c.thumb),
                        "cells": list(zip([r.label for r in comp.runs], c.predictions, c.scores, c.errors))})
    return {
        "title": f"{comp.task_title} — comparison of {len(comp.runs)} runs",
        "c": comp,
        "pipeline_check": any(r.pipeline_check for r in comp.runs),
        "figure": metric_figure(comp),
        "changed": changed,
        "all_cached": {r.label for r in comp.runs if _all_cached(r.run_dir)},
    }


def render_compare_report(comp: Comparison, out_dir: Path) -> Path:
    env = make_env()
    env.filters.update(fmt_p=fmt_p, fmt_signed=fmt_signed, fmt_score=fmt_score)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return render_page(env, "compare.html.j2", out_dir / COMPARE_HTML, **build_context(comp))
