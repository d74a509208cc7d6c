"""Figures of the run report, each returned as a PNG data URI (or None when there is nothing
to draw). Pure functions of plain numbers: no Results, no records, no files."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .html import fig_to_data_uri, new_figure, shorten

BAR_COLOR = "#4c78a8"
# Past this many groups a bar chart stops being readable; the table still lists them all.
MAX_BARS = 40
MAX_LABEL_CHARS = 38


@dataclass
class GroupStat:
    """One bar: a group's metric value (0-100) with its 95% interval and sample count."""

    label: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


def group_bars(groups: Sequence[GroupStat], metric: str) -> str | None:
    """Horizontal bars of a metric per group, with CI error bars, in the given order top to
    bottom. Groups without a value are left out; with more than MAX_BARS groups the ones with
    most samples are kept (the caller says so in the caption). None if fewer than 2 bars."""
    bars = [g for g in groups if g.value is not None]
    if len(bars) > MAX_BARS:
        keep = {id(g) for g in sorted(bars, key=lambda g: -g.n)[:MAX_BARS]}
        bars = [g for g in bars if id(g) in keep]
    if len(bars) < 2:
        return None
    values = np.array([g.value for g in bars], dtype=float)
    lo = np.array([g.value - g.ci_low if g.ci_low is not None else 0.0 for g in bars])
    hi = np.array([g.ci_high - g.value if g.ci_high is not None else 0.0 for g in bars])
    labels = [f"{shorten(g.label, MAX_LABEL_CHARS)}  (n={g.n:,})" for g in bars]

    fig = new_figure(7.0, 0.9 + 0.32 * len(bars))
    ax = fig.add_subplot()
    y = np.arange(len(bars))
    ax.barh(y, values, color=BAR_COLOR, height=0.65,
            xerr=np.vstack([np.clip(lo, 0, None), np.clip(hi, 0, None)]),
            error_kw={"ecolor": "#333333", "elinewidth": 1, "capsize": 3})
    for yi, g in zip(y, bars):
        x_text = g.ci_high if g.ci_high is not None else g.value
        ax.text(min(x_text + 1.5, 101), yi, f"{g.value:.1f}", va="center", fontsize=8.5, color="#333333")
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()  # first group on top, as in the table
    ax.set_xlim(0, 108)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel(f"{metric} (0-100), bars = 95% CI", fontsize=9)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig_to_data_uri(fig)


def length_histogram(lengths: Sequence[int]) -> str | None:
    """Histogram of prediction lengths in words. Short answers (the usual case) get one bar
    per length; long generations get 30 equal bins. None when there are no predictions."""
    if not lengths:
        return None
    x = np.asarray(lengths, dtype=int)
    top = int(x.max())
    edges = np.arange(-0.5, top + 1.5) if top <= 30 else np.histogram_bin_edges(x, bins=30)
    fig = new_figure(7.0, 2.6)
    ax = fig.add_subplot()
    ax.hist(x, bins=edges, color=BAR_COLOR, edgecolor="white", linewidth=0.6)
    ax.set_xlabel("prediction length (words)", fontsize=9)
    ax.set_ylabel("samples", fontsize=9)
    if top <= 30:
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig_to_data_uri(fig)
