"""The audit report's figures as PNG data URIs (pure functions of plain numbers)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from evalkit.reports.html import fig_to_data_uri, new_figure, shorten

CHART_TERMS = 20  # bars in a term chart; the table beside it lists the full top 50
MAX_TERM_CHARS = 28  # longer terms (random-weight models emit long non-words) are cut with an ellipsis
MAX_GROUP_CHARS = 28  # group labels come from the data and may be any length
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac", "#eeca3b"]


def term_bars(terms: Sequence[dict], groups: Sequence[str], score_label: str) -> str | None:
    """Horizontal bars of the top terms' scores, coloured by the group each leans to;
    significant terms (FDR) are drawn solid and marked '*', the rest hatched and pale."""
    from matplotlib.patches import Patch

    terms = list(terms)[:CHART_TERMS]
    if not terms or not any(t["score"] for t in terms):
        return None
    colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    fig = new_figure(7.0, 0.9 + 0.2 * len(terms))
    ax = fig.add_subplot()
    y = np.arange(len(terms))[::-1]
    for yi, t in zip(y, terms):
        sig = t["significant"]
        ax.barh(yi, t["score"], color=colors.get(t["lean_group"], "#888"),
                alpha=1.0 if sig else 0.45, hatch=None if sig else "//", edgecolor="white")
    ax.set_yticks(y, [("* " if t["significant"] else "") + shorten(t["term"], MAX_TERM_CHARS) for t in terms], fontsize=8)
    ax.set_xlabel(score_label, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    # Scores are often 1e-4 or smaller: a shared "1e-4" offset label keeps the ticks short and
    # apart instead of running "0.000000.00005..." together.
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3), useMathText=False)
    ax.xaxis.get_offset_text().set_fontsize(8)
    handles = [Patch(color=colors[g], label=shorten(g, MAX_GROUP_CHARS)) for g in groups]
    ax.legend(handles=handles, title="leans to", fontsize=7, title_fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return fig_to_data_uri(fig)


def toxicity_bars(rows: Sequence[dict]) -> str | None:
    """Mean P(toxic) per group with its 95% bootstrap interval."""
    rows = [r for r in rows if r["mean"]["value"] is not None]
    if len(rows) < 2:
        return None
    # Narrow: it sits beside its table (about 450 px), where a 7 in figure would shrink its
    # labels below reading size.
    fig = new_figure(4.6, 0.8 + 0.28 * len(rows))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    vals = np.array([r["mean"]["value"] for r in rows])
    lo = vals - np.array([r["mean"]["ci_low"] for r in rows])
    hi = np.array([r["mean"]["ci_high"] for r in rows]) - vals
    ax.barh(y, vals, xerr=[lo, hi], color=["#bab0ac" if r["group"] == "(all)" else "#e45756" for r in rows],
            capsize=3, error_kw={"elinewidth": 1})
    ax.set_yticks(y, [shorten(r["group"], MAX_GROUP_CHARS) for r in rows], fontsize=8)
    ax.set_xlabel("mean P(toxic), 95% bootstrap CI", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlim(0, max(0.05, float((vals + hi).max()) * 1.15))
    ax.spines[["top", "right"]].set_visible(False)
    return fig_to_data_uri(fig)


def bucket_heatmaps(grids: dict[str, list[list[float | None]]], rows: Sequence[str],
                    cols: Sequence[str]) -> str | None:
    """One heat map per attribute: accuracy (0-100) by gender (rows) x race (columns)."""
    if not grids:
        return None
    fig = new_figure(7.2, 1.6 * len(grids) + 0.6)
    axes = fig.subplots(len(grids), 1, squeeze=False)[:, 0]
    for ax, (attr, grid) in zip(axes, grids.items()):
        a = np.array([[np.nan if v is None else v for v in row] for row in grid], dtype=float)
        im = ax.imshow(a, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                txt = "—" if np.isnan(a[i, j]) else f"{a[i, j]:.0f}"
                color = "#888888" if np.isnan(a[i, j]) else ("white" if a[i, j] < 60 else "black")
                ax.text(j, i, txt, ha="center", va="center", fontsize=9, color=color)
        ax.set_yticks(range(len(rows)), [shorten(r, MAX_GROUP_CHARS) for r in rows], fontsize=9)
        ax.set_xticks(range(len(cols)), [shorten(c.replace("_", "/"), MAX_GROUP_CHARS) for c in cols],
                      fontsize=8, rotation=20)
        ax.set_title(f"{attr} accuracy (%) by gender x race", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig_to_data_uri(fig)
