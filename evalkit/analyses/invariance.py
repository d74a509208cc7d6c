"""`evalkit invariance`: does the answer change under settings that should not change it?

A subsample of a task runs under pairs of settings that change only the arithmetic, never the
question: batch size 1 vs N (padding and batched kernels), fp32 vs bf16, eager vs sdpa
attention, and local vs served (not configured until a served backend exists). Each run is an
ordinary run folder (the same code path as `evalkit eval`); a run shared by two pairs (the
batch-N fp32 run) is made once. Per pair, over the samples both runs answered:

- the share of samples whose answer text changed, with a 95% Wilson interval on the effective
  sample size (n / design effect when samples share a page or image; n when they do not);
- the headline score difference B - A with a paired cluster-bootstrap 95% CI, the cluster
  sign-flip p-value and the number of clusters (evalkit.analyses.compare.paired_delta);
- the samples whose answer changed, with both answers and both scores.

A pair whose runs cannot be made here (bf16 on a backend without it, an attention kernel the
installed transformers lacks) is recorded as skipped with the reason, never dropped silently.
Greedy decoding in fp32 with left padding should give identical answers for batch size 1 and N;
lower precision may flip a near-tied token, which is what this audit measures.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .clustered import design_effect
from .compare import ci_method, p_value_method, pair_cluster, paired_delta
from ..errors import EvalkitError
from ..models import ModelSpec
from ..models.spec import without_credentials
from ..results.schema import atomic_write_text, read_results, read_run
from .stats import cluster_codes, wilson_interval

INVARIANCE_FILE = "invariance.json"
PAIRS = ("batch", "dtype", "attn", "served")
SERVED_NOT_CONFIGURED = ("no served model backend is set up in this evalkit, so local vs "
                         "served did not run")


@dataclass
class InvarianceConfig:
    task: str
    model: ModelSpec = field(default_factory=ModelSpec)
    data: str | None = None
    limit: int | None = 20
    batch_size: int = 8
    out_dir: Path = Path("runs/invariance")
    pairs: tuple[str, ...] = PAIRS
    cache_dir: Path | None = None
    workers: int = 2


@dataclass
class Setting:
    batch_size: int
    dtype: str
    attn: str | None

    def label(self) -> str:
        return f"bs{self.batch_size}-{self.dtype}-{self.attn or 'default-attn'}"


@dataclass
class PairResult:
    pair: str
    a: str  # setting labels
    b: str
    status: str  # "ran" | "skipped" | "not configured"
    reason: str = ""
    n: int = 0  # samples both runs answered
    n_changed: int = 0
    share_changed: float | None = None  # 0-1
    share_ci_low: float | None = None
    share_ci_high: float | None = None
    score_a: float | None = None  # 0-100, on the n paired samples
    score_b: float | None = None
    diff: float | None = None  # B - A, 0-100
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    changed: list[dict[str, Any]] = field(default_factory=list)
    diff_p_value: float | None = None  # cluster sign-flip permutation test
    n_clusters: int = 0  # clusters the n samples fall in


def pair_settings(cfg: InvarianceConfig) -> dict[str, tuple[Setting, Setting]]:
    if cfg.batch_size < 2:
        raise EvalkitError(f"--batch-size {cfg.batch_size}: the batch pair compares 1 with N; use N >= 2")
    base = Setting(cfg.batch_size, cfg.model.dtype, cfg.model.attn_implementation)
    other_dtype = "bf16" if base.dtype == "fp32" else "fp32"
    return {
        "batch": (replace(base, batch_size=1), base),
        "dtype": (replace(base, dtype="fp32"), replace(base, dtype=other_dtype)) if base.dtype == "fp32"
        else (replace(base, dtype="fp32"), base),
        "attn": (replace(base, attn="eager"), replace(base, attn="sdpa")),
    }


def _effective_count(k: int, both: list, changed: list, clusters: list[str]) -> tuple[float, float]:
    """(k, n) for the Wilson interval of the changed share, shrunk to the effective sample size
    n / design effect (Kish 1965) when samples share clusters: a page's answers change together.
    With no change at all the design effect is unknown, so the clusters count as the samples
    (as if each cluster's answers moved as one), the cautious end."""
    n = len(both)
    n_clusters = len(set(clusters))
    if n == 0 or n_clusters == n:
        return k, n
    changed_ids = {c["sample_id"] for c in changed}
    x = np.asarray([float(ra.sample_id in changed_ids) for ra, _ in both])
    deff = design_effect(x, cluster_codes(clusters))
    n_eff = n_clusters if deff is None else min(n, max(n_clusters, n / deff))
    return k * n_eff / n, n_eff


def compare_answers(pair: str, a_label: str, b_label: str, run_a: Path, run_b: Path) -> PairResult:
    """The pair's statistics from two run folders (matched on sample id)."""
    _, recs_a = read_run(run_a)
    _, recs_b = read_run(run_b)
    by_b = {r.sample_id: r for r in recs_b}
    both = [(ra, by_b[ra.sample_id]) for ra in recs_a if ra.sample_id in by_b
            and ra.error is None and by_b[ra.sample_id].error is None]
    changed = [{"sample_id": ra.sample_id, "prediction_a": ra.prediction, "prediction_b": rb.prediction,
                "score_a": ra.score, "score_b": rb.score}
               for ra, rb in both if (ra.prediction or "") != (rb.prediction or "")]
    clusters = [pair_cluster(ra.sample_id, ra, rb) for ra, rb in both]
    n_clusters = len(set(clusters))
    lo, hi = wilson_interval(*_effective_count(len(changed), both, changed, clusters))
    scored = [(ra.score, rb.score, c) for (ra, rb), c in zip(both, clusters)
              if ra.score is not None and rb.score is not None]
    res = PairResult(pair, a_label, b_label, "ran", n=len(both), n_changed=len(changed),
                     share_changed=len(changed) / len(both) if both else None, share_ci_low=lo, share_ci_high=hi,
                     changed=changed, n_clusters=n_clusters)
    if scored:
        xa, xb = [s for s, _, _ in scored], [s for _, s, _ in scored]
        res.score_a, res.score_b = 100 * sum(xa) / len(xa), 100 * sum(xb) / len(xb)
        pd = paired_delta(xa, xb, [c for _, _, c in scored])
        res.diff, res.diff_ci_low, res.diff_ci_high, res.diff_p_value = pd.delta, pd.ci_low, pd.ci_high, pd.p_value
    return res


def run_invariance(cfg: InvarianceConfig, *, runner=None) -> Path:
    """Run every requested pair and write invariance.json (and invariance.html) in cfg.out_dir."""
    from ..pipeline.runner import EvalConfig, run_eval

    runner = runner or run_eval
    unknown = [p for p in cfg.pairs if p not in PAIRS]
    if unknown:
        raise EvalkitError(f"unknown invariance pair(s) {unknown}; valid: {', '.join(PAIRS)}")
    settings = pair_settings(cfg)
    made: dict[str, Path | str] = {}  # setting label -> run folder, or the reason it failed

    def run(s: Setting) -> Path | str:
        label = s.label()
        if label not in made:
            spec = replace(cfg.model, dtype=s.dtype, attn_implementation=s.attn)
            ec = EvalConfig(task=cfg.task, model=spec, data=cfg.data, limit=cfg.limit, batch_size=s.batch_size,
                            run_name=label, runs_dir=cfg.out_dir / "runs", cache_dir=cfg.cache_dir,
                            workers=cfg.workers, progress=False)
            try:
                made[label] = runner(ec)
            except EvalkitError as e:
                made[label] = str(e)
            except (RuntimeError, NotImplementedError, TypeError, ValueError) as e:  # kernel/dtype unsupported here
                made[label] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return made[label]

    results = []
    for pair in cfg.pairs:
        if pair == "served":
            results.append(PairResult("served", "local", "served", "not configured", SERVED_NOT_CONFIGURED))
            continue
        a, b = settings[pair]
        ra, rb = run(a), run(b)
        if isinstance(ra, str) or isinstance(rb, str):
            why = "; ".join(f"{s.label()}: {r}" for s, r in ((a, ra), (b, rb)) if isinstance(r, str))
            results.append(PairResult(pair, a.label(), b.label(), "skipped", f"could not run here ({why})"))
            continue
        results.append(compare_answers(pair, a.label(), b.label(), ra, rb))
    # Random weights is the backend's fact, recorded in each run's model section; every setting
    # runs the same model, so one run tells.
    pipeline_check = next((read_results(r).model.pipeline_check for r in made.values() if isinstance(r, Path)), False)
    doc = {"task": cfg.task, "model": without_credentials(cfg.model.to_dict()), "pipeline_check": pipeline_check,
           "data": cfg.data or "shipped sample",
           "limit": cfg.limit, "batch_size": cfg.batch_size,
           "method": {"share_changed": "answers compared as text; 95% Wilson score interval on the effective sample "
                                       "size (n / design effect of the clusters; the clusters' count when no answer "
                                       "changed)",
                      "diff": ci_method() + "; B - A on the 0-100 scale; p-value: " + p_value_method()},
           "pairs": [asdict(r) for r in results]}
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    path = atomic_write_text(cfg.out_dir / INVARIANCE_FILE, json.dumps(doc, indent=2, ensure_ascii=False))
    return path
