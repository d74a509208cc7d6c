"""Scoring sensitivity: how much a task's number depends on which scorer's rule is used.

A task names the rule behind its headline metric (`Task.headline_rule`) and the other widely
used rules (`Task.variant_rules`); each sample's score under a variant rule is stored in
`record.extras["variants"][name]`. For each variant this module reports, on the 0-100 scale:
the mean with its 95% bootstrap CI, the paired difference variant - headline with a paired
bootstrap CI, and the ids of the samples where the two rules disagree. Both intervals resample
whole clusters (the records' `cluster`, evalkit.analyses.stats), as the headline's does. Samples count
where both the headline and the variant have a score.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .compare import ci_method, paired_bootstrap_ci
from .stats import bootstrap_mean
from ..types import Rule, SampleRecord  # Rule: a task's spec names its rules

N_RESAMPLES = 2000
SEED = 0
_EPS = 1e-12


@dataclass
class VariantResult:
    name: str
    description: str
    source: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    diff: float | None  # variant - headline, 0-100 scale, over the samples both score
    diff_ci_low: float | None
    diff_ci_high: float | None
    n_disagree: int
    disagree_ids: list[str] = field(default_factory=list)


def variant_scores(records: Sequence[SampleRecord], name: str) -> list[tuple[str, float, float, str | None]]:
    """(sample_id, headline score, variant score, cluster) for every sample that has both."""
    out = []
    for r in records:
        if r.error is not None or r.score is None:
            continue
        v = (r.extras.get("variants") or {}).get(name)
        if v is not None:
            out.append((r.sample_id, float(r.score), float(v), r.cluster))
    return out


def variant_result(records: Sequence[SampleRecord], rule: Rule, *, n_resamples: int = N_RESAMPLES,
                   seed: int = SEED) -> VariantResult:
    rows = variant_scores(records, rule.name)
    clusters = [c for *_, c in rows]
    mv = bootstrap_mean([v for _, _, v, _ in rows], clusters=clusters)
    if rows:
        diff, lo, hi = paired_bootstrap_ci([h for _, h, _, _ in rows], [v for _, _, v, _ in rows], clusters,
                                           n_resamples=n_resamples, seed=seed)
    else:
        diff = lo = hi = None
    disagree = [sid for sid, h, v, _ in rows if abs(h - v) > _EPS]
    return VariantResult(rule.name, rule.description, rule.source, mv.value, mv.ci_low, mv.ci_high, mv.n,
                         diff, lo, hi, len(disagree), disagree)


def scoring_sensitivity(headline_metric: str, headline_rule: Rule | None, variants: Sequence[Rule],
                        records: Sequence[SampleRecord], *, n_resamples: int = N_RESAMPLES,
                        seed: int = SEED) -> dict[str, Any]:
    """The `scoring_sensitivity` section of results.json."""
    head = {"metric": headline_metric}
    if headline_rule is not None:
        head.update(rule=headline_rule.description, source=headline_rule.source)
    return {
        "headline": head,
        "method": f"{ci_method(n_resamples, seed)} for variant - headline; disagreeing samples are those "
                  f"whose two per-sample scores differ",
        "variants": [asdict(variant_result(records, rule, n_resamples=n_resamples, seed=seed))
                     for rule in variants],
    }


def task_sensitivity(task, records: Sequence[SampleRecord], metrics: dict,
                     extra_rules: Sequence[Rule] = ()) -> dict[str, Any]:
    """The section for a task's run: its declared variant rules that some sample was scored
    under (a rule that needs an input the run lacks, such as a judge, is left out), then
    `extra_rules` (an imported run's source metric) on the same terms."""
    present = {k for r in records for k in (r.extras.get("variants") or {})}
    headline = task.metric if task.metric in metrics else next(iter(metrics), task.metric)
    return scoring_sensitivity(headline, task.headline_rule,
                               [v for v in (*task.variant_rules, *extra_rules) if v.name in present], records)
