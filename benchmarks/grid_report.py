"""grid.html: the efficiency grid as measured here, beside the Idefics2 card's H100 table.

Hooks (tests rely on them):
  #banner-comparability (.banner.warn)   when the numbers cannot be read against the card
  table#grid     tr.cell[data-status=ok|oom|error][data-split][data-dtype][data-attn][data-quant]
                 > td.time td.per-gen td.memory td.status
  table#skipped  tr.cell[data-status=skipped] > td.status (the reason)
  table#card     tr.card-row[data-split][data-dtype][data-fa2][data-quant]
                 > td.card-memory td.card-time td.ours (li.match[data-attn] per matching cell)
  img[data-figure="grid-bars"]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalkit.reports.html import fig_to_data_uri, fmt_num, make_env, new_figure, render_page

from .card import CARD_SOURCE, CardRow, card_rows
from .grid import CellResult, Grid

TEMPLATES = Path(__file__).resolve().parent / "templates"
GRID_HTML = "grid.html"


@dataclass
class CardLine:
    row: CardRow
    matches: list[CellResult]
    note: str | None


def card_lines(cells: list[CellResult]) -> list[CardLine]:
    out = []
    for row in card_rows():
        if not row.measurable:
            out.append(CardLine(row, [], "AWQ needs a pre-quantized checkpoint; not measured here"))
            continue
        attns = ("flash_attention_2",) if row.flash_attention_2 else ("eager", "sdpa")
        matches = [c for c in cells if c.cell.split == row.split and c.cell.dtype == row.dtype
                   and c.cell.quant4 == row.quant4_bnb and c.cell.attn in attns]
        out.append(CardLine(row, matches, None if matches else "this cell was not in the grid"))
    return out


def bars_figure(cells: list[CellResult]) -> str | None:
    measured = [c for c in cells if c.status == "ok"]
    if not measured:
        return None
    fig = new_figure(7.0, 1.0 + 0.28 * len(measured))
    left, right = fig.subplots(1, 2, sharey=True)
    y = list(range(len(measured)))
    colors = ["#f58518" if c.cell.split else "#4c78a8" for c in measured]
    left.barh(y, [c.time_s for c in measured], color=colors)
    right.barh(y, [c.peak_bytes / 1e9 for c in measured], color=colors)
    left.set_yticks(y, [c.cell.label for c in measured], fontsize=8)
    left.invert_yaxis()
    n = measured[0].n_generations
    left.set_xlabel(f"time for {n} generations (s)", fontsize=8.5)
    right.set_xlabel("peak memory (GB)", fontsize=8.5)
    for ax in (left, right):
        ax.grid(axis="x", color="#e5e5e5")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig_to_data_uri(fig)


def comparability(grid: Grid) -> str | None:
    s = grid.source
    if not grid.settings.get("cuda"):
        return ("Measured on a CPU: times and process memory show that the grid runs and how the settings "
                "rank here; they are not comparable with the card's H100 numbers.")
    if any(c.pipeline_check for c in grid.cells):
        return f"{s.label} has random weights and is not Idefics2 8B: not comparable with the card's 8B numbers."
    if s.full_size_random:
        return None if "H100" in str(grid.settings.get("device")) else (
            "8B shapes with random weights, on a GPU other than the card's H100: compare the trends, not the values.")
    return None if "H100" in str(grid.settings.get("device")) else (
        "Not an H100 (the card's GPU): compare the trends, not the values.")


def fmt_gb(n) -> str:
    """Bytes as decimal GB with 2 decimals (the card's unit); missing -> an em dash."""
    return fmt_num(n / 1e9, 2) if isinstance(n, (int, float)) and not isinstance(n, bool) else fmt_num(None)


def render_grid_report(grid: Grid, out_dir: Path) -> Path:
    env = make_env(extra_dirs=[TEMPLATES])
    env.filters["gb"] = fmt_gb
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return render_page(env, "grid.html.j2", out_dir / GRID_HTML, title="Efficiency grid", g=grid,
                       cells=grid.cells, skipped=[c for c in grid.cells if c.status == "skipped"],
                       measured_any=any(c.status == "ok" for c in grid.cells), card=card_lines(grid.cells),
                       card_source=CARD_SOURCE,
                       figure=bars_figure(grid.cells), warning=comparability(grid),
                       pipeline_check=any(c.pipeline_check for c in grid.cells))
