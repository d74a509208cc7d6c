"""Model-card verdict: is a run's headline score the model card's number, within a margin?

Only a run whose settings match a row of the card gets a number verdict: the card row is
chosen by image splitting (on/off), and the run must use the data split the card scored, the
full benchmark data (not the shipped sample, not a --limit subset) and real weights. Anything
else lists the settings that differ instead of a verdict.

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

from .results import DataInfo, ModelInfo

DEFAULT_MARGIN = 1.0
ALPHA = 0.05
_Z975 = 1.959963984540054


@dataclass
class CardVerdict:
    status: str  # "equivalent" | "not_equivalent" | "settings_differ" | "not_applicable"
    summary: str
    card_value: float | None = None
    card_row: str | None = None  # "no_split" | "split"
    score: float | None = None
    margin: float = DEFAULT_MARGIN
    p_value: float | None = None  # TOST: the larger of the two one-sided p-values
    differences: list[str] = field(default_factory=list)

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
                 from_predictions_file: bool = False, margin: float = DEFAULT_MARGIN) -> CardVerdict:
    """The verdict for one run, from results.json's task, model, data and headline metric;
    `from_predictions_file`: the run scored predictions made elsewhere (generation.source)."""
    if model.pipeline_check:
        return CardVerdict("not_applicable", f"The verdict does not apply: {model.name or 'this model'} has "
                           "random weights (a pipeline check), so its score is not the card's model's.", margin=margin)
    splitting = model.do_image_splitting
    if splitting is None and from_predictions_file:
        return CardVerdict("not_applicable", "The verdict does not apply: predictions scored from a file carry no "
                           "model settings (model, image splitting) to match against the card's rows.", margin=margin)
    if splitting is None:
        return CardVerdict("not_applicable", "The verdict does not apply: the run does not record whether image "
                           "splitting was on, which picks the card's row.", margin=margin)
    row = "split" if splitting else "no_split"
    ref = (task.get("reference") or {}).get(row)
    if ref is None:
        return CardVerdict("not_applicable", "The model card gives no number for this task and setting.",
                           card_row=row, margin=margin)
    differences = []
    card_split = task.get("reference_split") or task.get("split")
    if card_split != task.get("split"):
        differences.append(f"data split: the card scored {card_split}, this run {task.get('split')}")
    if data.source == "shipped sample":
        differences.append("data: the shipped sample, not the benchmark's data")
    elif data.n_total and data.n_rows is not None and data.n_rows < data.n_total:
        differences.append(f"data: {data.n_rows} of {data.n_total} rows (a --limit subset)")
    model_id = str(model.model_id or "")
    if "idefics2-8b" not in model_id.lower():
        differences.append(f"model: {model_id or model.name}, the card's is HuggingFaceM4/idefics2-8b")
    if model.load_in_4bit:
        differences.append("weights: 4-bit quantised")
    score = (headline or {}).get("value")
    if differences:
        return CardVerdict("settings_differ", f"No equivalence verdict against the card's {ref:g} ({row}): "
                           f"{len(differences)} setting(s) differ from the card's row.", ref, row, score, margin,
                           None, differences)
    lo, hi = (headline or {}).get("ci_low"), (headline or {}).get("ci_high")
    if score is None or lo is None or hi is None:
        return CardVerdict("not_applicable", "The verdict does not apply: the run has no score with an interval.",
                           ref, row, score, margin)
    p = tost_p_value(score, lo, hi, ref, margin)
    if p < ALPHA:
        return CardVerdict("equivalent", f"Equivalent to the card's {ref:g} within ±{margin:g} point "
                           f"(TOST p = {p:.3g} < {ALPHA:g}).", ref, row, score, margin, p)
    return CardVerdict("not_equivalent", f"Not shown equivalent to the card's {ref:g} within ±{margin:g} point "
                       f"(TOST p = {p:.3g} >= {ALPHA:g}; score {score:.1f}, 95% CI {lo:.1f}–{hi:.1f}).",
                       ref, row, score, margin, p)
