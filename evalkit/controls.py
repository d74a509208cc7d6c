"""Controls: runs that ask the same questions with something taken away, so a score can be
read against what it owes to the image (evalkit.ablation) and to the order of the options
(evalkit.circular).

Both write their summary into results.json `controls` (a dict, empty for an ordinary run):
- `controls.image_ablation`: {mode, seed, n_images, n_replaced, chance} on a control run;
- `controls.circular`: the circular-accuracy summary on a run made with --circular.
Runs written before controls existed have no `controls` key and read as ordinary runs.
"""
from __future__ import annotations

from typing import Sequence

from .compare import PairedDelta, paired_delta


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDelta:
    """b - a on the 0-100 scale, paired per question, with its 95% interval and p-value.

    The one place the controls call compare.paired_delta: once the statistics are cluster-aware
    (paired_delta(a, b, clusters=...)), the clusters aligned with a and b are passed here."""
    return paired_delta(a, b)


def delta_dict(pd: PairedDelta) -> dict:
    return {"n": pd.n, "delta": pd.delta, "ci_low": pd.ci_low, "ci_high": pd.ci_high, "p_value": pd.p_value}
