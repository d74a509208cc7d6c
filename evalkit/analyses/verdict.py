"""Model-card verdict: is a run's headline score its model's published number, within a margin?

The number comes from the reference table (evalkit.analyses.references), from the rows of the run's own
model only; a model the table does not know, or a pipeline check, gets no verdict and says so.
Only a run whose settings match a row gets a number verdict: the row is chosen by image splitting
(on/off) unless the source publishes a single setting, and the run must use the data split the
source scored, the full benchmark data (not the shipped sample, not a --limit subset) and real
weights. Anything else lists the settings that differ instead of a verdict.

Equivalence is two one-sided tests (TOST) with margin `margin` points on the 0-100 scale,
H0: |score - card| >= margin, at level alpha = 0.05, using a normal approximation to the
score's sampling distribution whose standard error is read off its 95% bootstrap interval
(se = (ci_high - ci_low) / (2 * 1.96)). The score is equivalent when both one-sided p-values
are below alpha (the same as its 90% interval lying inside card +- margin).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .references import ReferenceTable, reference_table
from ..results.schema import DataInfo, ModelInfo

DEFAULT_MARGIN = 1.0
ALPHA = 0.05
_Z975 = 1.959963984540054


@dataclass
class CardVerdict:
    status: str  # "equivalent" | "not_equivalent" | "settings_differ" | "not_applicable"
    summary: str
    card_value: float | None = None
    card_row: str | None = None  # "no_split" | "split" | "single" (evalkit.analyses.references settings)
    score: float | None = None
    margin: float = DEFAULT_MARGIN
    p_value: float | None = None  # TOST: the larger of the two one-sided p-values
    differences: list[str] = field(default_factory=list)
    reference_model: str | None = None  # the reference table's model the run matched
    source: str | None = None  # where the number is published
    reference_split: str | None = None  # the data split the number was measured on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def tost_p_value(score: float, ci_low: float, ci_high: float, reference: float, margin: float) -> float:
    """max of the two one-sided p-values for H0: score <= ref - margin and H0: score >= ref + margin."""
    se = (ci_high - ci_low) / (2 * _Z975)
    if se <= 0:
        return 0.0 if abs(score - reference) < margin else 1.0
    p_low = 1.0 - _phi((score - (reference - margin)) / se)
    p_high = 1.0 - _phi(((reference + margin) - score) / se)
    return max(p_low, p_high)


def card_verdict(task: dict[str, Any], model: ModelInfo, data: DataInfo, headline: dict[str, Any] | None, *,
                 from_predictions_file: bool = False, margin: float = DEFAULT_MARGIN,
                 table: ReferenceTable | None = None) -> CardVerdict:
    """The verdict for one run, from results.json's task, model, data and headline metric, against
    the published numbers of the run's own model (`table`, default evalkit's references.toml);
    `from_predictions_file`: the run scored predictions made elsewhere (generation.source)."""
    if model.pipeline_check:
        return CardVerdict("not_applicable", f"The verdict does not apply: {model.name or 'this model'} has "
                           "random weights (a pipeline check), so no published number is comparable.", margin=margin)
    if from_predictions_file and not model.model_id:
        return CardVerdict("not_applicable", "The verdict does not apply: predictions scored from a file carry no "
                           "model settings (model, image splitting) to match against a published number.",
                           margin=margin)
    table = table or reference_table()
    ref_model = table.match_model(model)
    if ref_model is None:
        known = ", ".join(m.label for m in table.models)
        return CardVerdict("not_applicable", f"No published number matches this model ({model.model_id or model.name}"
                           f"); the reference table has numbers for {known}.", margin=margin)
    # A task section without its metric (hand-made files) is matched on the task alone.
    rows = {r.setting: r for r in table.rows(ref_model.key, str(task.get("name")), task.get("metric"))}
    source = f"{ref_model.label}'s {ref_model.kind}"
    if "single" in rows:
        number = rows["single"]
    else:
        splitting = model.do_image_splitting
        if splitting is None and rows:
            return CardVerdict("not_applicable", f"The verdict does not apply: the run does not record whether image "
                               f"splitting was on, which picks the row of {source}.", reference_model=ref_model.label,
                               margin=margin)
        number = rows.get("split" if splitting else "no_split")
    if number is None:
        return CardVerdict("not_applicable", f"{source} gives no number for this task and setting.",
                           card_row=None if not rows else ("split" if model.do_image_splitting else "no_split"),
                           reference_model=ref_model.label, margin=margin)
    ref, row = number.value, number.setting
    common = dict(reference_model=ref_model.label, source=number.source, reference_split=number.split)
    differences = []
    if number.split != task.get("split"):
        differences.append(f"data split: the {ref_model.kind} scored {number.split}, this run {task.get('split')}")
    if data.source == "shipped sample":
        differences.append("data: the shipped sample, not the benchmark's data")
    elif data.n_total and data.n_rows is not None and data.n_rows < data.n_total:
        differences.append(f"data: {data.n_rows} of {data.n_total} rows (a --limit subset)")
    if model.load_in_4bit:
        differences.append("weights: 4-bit quantised")
    score = (headline or {}).get("value")
    if differences:
        return CardVerdict("settings_differ", f"No equivalence verdict against {source} {ref:g} ({row}): "
                           f"{len(differences)} setting(s) differ from its row.", ref, row, score, margin,
                           None, differences, **common)
    lo, hi = (headline or {}).get("ci_low"), (headline or {}).get("ci_high")
    if score is None or lo is None or hi is None:
        return CardVerdict("not_applicable", "The verdict does not apply: the run has no score with an interval.",
                           ref, row, score, margin, **common)
    p = tost_p_value(score, lo, hi, ref, margin)
    if p < ALPHA:
        return CardVerdict("equivalent", f"Equivalent to {source} {ref:g} within ±{margin:g} point "
                           f"(TOST p = {p:.3g} < {ALPHA:g}).", ref, row, score, margin, p, **common)
    return CardVerdict("not_equivalent", f"Not shown equivalent to {source} {ref:g} within ±{margin:g} point "
                       f"(TOST p = {p:.3g} >= {ALPHA:g}; score {score:.1f}, 95% CI {lo:.1f}–{hi:.1f}).",
                       ref, row, score, margin, p, **common)
