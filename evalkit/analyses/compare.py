"""Comparing runs of one task under different configurations (split vs no split, dtype, ...).

Everything here reads run folders (results.json + samples.jsonl through `read_run`), never
live objects. Runs are matched on `sample_id`; the paired statistics use the samples every
run has, and the report says how many each run lost to that intersection.

Questions about one page or image share it, and a configuration helps or hurts a whole page
at once, so every paired statistic works by cluster (the baseline run's per-sample `cluster`
label, falling back to the other run's, then to the sample itself; runs written before
clusters existed pair sample by sample). Each B - A against the first run A, 0-100 scale:
- delta: mean(B) - mean(A) over the pairs both runs scored;
- 95% CI: paired percentile bootstrap resampling whole clusters of pairs (each cluster's A and
  B scores drawn together) with a fixed seed, so the same runs give the same interval;
- p-value: two-sided sign-flip permutation test on the per-cluster summed differences
  (evalkit.analyses.clustered). Exact (all 2^m sign patterns of the m non-zero cluster differences)
  when m <= EXACT_MAX_FLIPS, else Monte Carlo with a fixed seed and the (1 + hits) / (1 + draws)
  estimate, which never reports p = 0 from a finite sample;
- minimum detectable difference at 80% power, alpha 0.05, from the clustered standard error;
- McNemar's exact test where every per-sample score of both runs is 0 or 1 and every cluster is
  one question: a two-sided binomial test on the discordant pairs (b = A right B wrong,
  c = A wrong B right), p = min(1, 2 * sum_{k <= min(b, c)} C(b + c, k) / 2^(b + c)); with larger
  clusters Durkalski et al.'s cluster-adjusted McNemar instead, shown when at least
  DURKALSKI_MIN_CLUSTERS clusters are discordant (a line says why otherwise).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Hashable, Sequence

import numpy as np

from . import clustered
from .clustered import DURKALSKI_MIN_CLUSTERS, EXACT_MAX_FLIPS, PairedDelta, durkalski_p
from ..errors import EvalkitError
from ..results.schema import Results, atomic_write_text, read_run
from .stats import bootstrap_mean
from ..types import SampleRecord

COMPARE_SCHEMA_VERSION = 2  # 2: cluster-aware statistics (n_clusters, mdd, mcnemar kind)
COMPARE_FILE = "compare.json"
N_RESAMPLES = 10_000
SEED = 0


# ---------------------------------------------------------------------------- statistics
def p_value_method(n_resamples: int = N_RESAMPLES, seed: int = SEED) -> str:
    return ("two-sided sign-flip permutation test on per-cluster summed differences (exact up to "
            f"{EXACT_MAX_FLIPS} non-zero cluster differences, else {n_resamples:,} random flips, seed {seed})")


def ci_method(n_resamples: int = N_RESAMPLES, seed: int = SEED) -> str:
    return f"paired cluster bootstrap, {n_resamples:,} resamples of whole clusters of pairs, seed {seed}"


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable | None] | None = None,
                        *, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                        scale: float = 100.0) -> tuple[float | None, float | None, float | None]:
    """(delta, ci_low, ci_high) of mean(b) - mean(a), resampling whole clusters of pairs
    (clusters=None: every pair its own cluster)."""
    x, y = _pairs(a, b)
    # Resampling the pairs' differences by cluster is resampling the clusters' pairs jointly.
    mv = bootstrap_mean(list(y - x), clusters=None if clusters is None else list(clusters), scale=scale,
                        n_resamples=n_resamples, seed=seed)
    return mv.value, mv.ci_low, mv.ci_high


def sign_flip_p_value(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable | None] | None = None,
                      *, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                      exact_max: int = EXACT_MAX_FLIPS) -> float | None:
    """Two-sided paired permutation p-value on per-cluster summed differences."""
    return clustered.sign_flip_p_value(a, b, clusters, n_resamples=n_resamples, seed=seed, exact_max=exact_max)


def paired_delta(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable | None] | None = None,
                 **kw) -> PairedDelta:
    """B - A with its cluster-bootstrap CI, cluster sign-flip p-value and minimum detectable
    difference; `clusters` aligned with a and b (None: every sample its own cluster).
    Keywords: n_resamples, seed, scale."""
    kw.setdefault("n_resamples", N_RESAMPLES)
    kw.setdefault("seed", SEED)
    return clustered.paired_delta(a, b, clusters, **kw)


@dataclass
class McNemar:
    b: int  # A right, B wrong
    c: int  # A wrong, B right
    p_value: float


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> McNemar:
    """McNemar's exact test on paired 0/1 outcomes (binomial(b + c, 1/2) on the discordant pairs)."""
    x, y = _pairs(a, b)
    if not is_binary(list(x) + list(y)):
        raise ValueError("McNemar's test needs 0/1 scores")
    nb = int(((x == 1) & (y == 0)).sum())
    nc = int(((x == 0) & (y == 1)).sum())
    return McNemar(nb, nc, mcnemar_p(nb, nc))


def mcnemar_p(b: int, c: int) -> float:
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(Fraction(math.comb(n, k), 2 ** n) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), 2 * tail))


def mcnemar_for(a: list[float], b: list[float], clusters: list) -> tuple[dict[str, Any] | None, str]:
    """The McNemar entry and its note: exact with one question per cluster, Durkalski's
    cluster-adjusted form with larger clusters, or None and the reason."""
    if not a:
        return None, "n/a: no scored pairs"
    if not is_binary(a + b):
        return None, "n/a: per-sample scores are not all 0/1"
    mc = mcnemar_exact(a, b)
    codes = clustered._codes(len(a), clusters)
    if codes.max() + 1 == len(codes):
        return {**asdict(mc), "kind": "exact"}, "exact binomial test on discordant pairs"
    p, k = durkalski_p(a, b, clusters)
    if k < DURKALSKI_MIN_CLUSTERS:
        return None, (f"left out: clusters hold several questions, so plain McNemar would treat dependent pairs as "
                      f"independent, and only {k} cluster(s) are discordant, too few for the cluster-adjusted "
                      f"(Durkalski 2003) chi-square; read the cluster sign-flip p-value")
    return ({"b": mc.b, "c": mc.c, "p_value": p, "kind": "durkalski", "discordant_clusters": k},
            "cluster-adjusted McNemar (Durkalski et al. 2003, chi-square 1 df on per-cluster b - c)")


def is_binary(values: Sequence[float]) -> bool:
    return all(v in (0, 1) for v in values)


def _pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(f"paired statistics need equal lengths, got {len(a)} and {len(b)}")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


# ---------------------------------------------------------------------------- from run folders
@dataclass
class RunSummary:
    """One configuration's numbers, as compare.json and the report show them."""

    label: str
    run_dir: str
    run_name: str
    config: dict[str, Any]  # model, dtype, attention, splitting, ... from results.model
    pipeline_check: bool
    data: dict[str, Any]  # source, n_rows
    headline: dict[str, Any]  # results.metrics[headline]: value, ci_low, ci_high, n (whole run)
    shared_mean: float | None  # headline mean on the samples every run scored, 0-100
    n_samples: int
    n_dropped: int  # records whose sample_id is missing from some other run
    n_errors: int
    image_tokens_per_sample: float | None  # measured from the processor's output
    image_tokens_per_image: int | None
    input_tokens_mean: float | None
    samples_per_s: float | None
    wall_s: float | None
    peak_memory_bytes: int | None
    memory_kind: str | None


@dataclass
class PairComparison:
    """One run against the first (baseline) run, on the samples both scored."""

    baseline: str
    other: str
    n_pairs: int
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_value_method: str
    mcnemar: dict[str, Any] | None  # {b, c, p_value, kind: exact | durkalski}; None: see mcnemar_note
    mcnemar_note: str
    n_better: int
    n_worse: int
    n_same: int
    n_clusters: int = 0  # clusters the pairs fall in (= n_pairs when every cluster is one sample)
    max_cluster_size: int = 0
    mdd: float | None = None  # minimum detectable difference, points, 80% power, alpha 0.05


@dataclass
class ChangedSample:
    sample_id: str
    question: str
    thumb: str | None
    predictions: list[str | None]  # per run, in run order
    scores: list[float | None]
    errors: list[str | None]


@dataclass
class Comparison:
    task: str
    task_title: str
    metric: str
    runs: list[RunSummary]
    n_shared: int  # sample ids present in every run
    n_shared_scored: int  # ... and scored (no error, score not None) in every run
    comparisons: list[PairComparison]
    changed: list[ChangedSample]
    n_changed: int
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)  # evalkit.analyses.controls.compare_controls

    def to_dict(self, with_thumbs: bool = False) -> dict[str, Any]:
        d = {"schema_version": COMPARE_SCHEMA_VERSION, **asdict(self)}
        if not with_thumbs:
            for c in d["changed"]:
                c.pop("thumb", None)
        return d


def keyed_records(records: list[SampleRecord]) -> dict[str, SampleRecord]:
    """Records by sample_id; a repeated id gets '#k' so equal datasets still match one to one."""
    seen: Counter = Counter()
    out = {}
    for r in records:
        k = r.sample_id if not seen[r.sample_id] else f"{r.sample_id}#{seen[r.sample_id]}"
        seen[r.sample_id] += 1
        out[k] = r
    return out


def _labels(results: list[Results]) -> list[str]:
    names = [r.run_name for r in results]
    counts = Counter(names)
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if counts[n] == 1 else f"{n} ({seen[n]})")
    return out


def _config(res: Results) -> dict[str, Any]:
    """The settings a comparison sets side by side; those the run did not record are left out."""
    m = res.model.to_dict()  # leaves out the settings the backend does not have
    keys = ("name", "model_id", "family", "dtype", "attn_implementation", "do_image_splitting", "longest_edge",
            "load_in_4bit", "device", "prompt_style")
    return {k: m[k] for k in keys if k in m}


def is_scored(r: SampleRecord | None) -> bool:
    return r is not None and r.error is None and r.score is not None


def load_runs(run_dirs: Sequence[Path | str]) -> list[tuple[Path, Results, list[SampleRecord]]]:
    if len(run_dirs) < 2:
        raise EvalkitError(f"compare needs at least two run folders, got {len(run_dirs)}")
    out = []
    for d in run_dirs:
        p = Path(d)
        if not p.is_dir():
            raise EvalkitError(f"{p}: no such run folder; give folders written by `evalkit eval` (runs/<name>)")
        res, records = read_run(p)
        out.append((p, res, records))
    tasks = [res.task.get("name") for _, res, _ in out]
    if len(set(tasks)) > 1:
        first = tasks[0]
        other = next(i for i, t in enumerate(tasks) if t != first)
        raise EvalkitError(f"runs are of different tasks: {out[0][0]} is {first!r} but {out[other][0]} is "
                           f"{tasks[other]!r}; compare runs of one task")
    return out


def build_comparison(run_dirs: Sequence[Path | str], *, max_changed: int = 1000,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Comparison:
    loaded = load_runs(run_dirs)
    results = [res for _, res, _ in loaded]
    keyed = [keyed_records(records) for _, _, records in loaded]
    shared_ids = set(keyed[0])
    for k in keyed[1:]:
        shared_ids &= set(k)
    if not shared_ids:
        raise EvalkitError(f"the runs share no samples (matched on sample_id): {loaded[0][0]} and "
                           f"{', '.join(str(p) for p, _, _ in loaded[1:])}; compare runs of the same data")
    # Keep the first run's order so tables read like its samples.jsonl.
    shared = [k for k in keyed[0] if k in shared_ids]
    all_scored = [k for k in shared if all(is_scored(kr[k]) for kr in keyed)]
    labels = _labels(results)

    runs = []
    for (path, res, records), label, kr in zip(loaded, labels, keyed):
        runs.append(RunSummary(
            label=label, run_dir=str(path), run_name=res.run_name, config=_config(res),
            pipeline_check=res.model.pipeline_check,
            data={"source": res.data.source, "n_rows": res.data.n_rows},
            headline={"name": res.headline, **res.metrics.get(res.headline, {})},
            shared_mean=(100.0 * float(np.mean([kr[k].score for k in all_scored]))) if all_scored else None,
            n_samples=len(records), n_dropped=len(kr) - len(shared),
            n_errors=sum(1 for r in records if r.error is not None),
            image_tokens_per_sample=res.tokens.image_tokens_per_sample,
            image_tokens_per_image=res.tokens.image_tokens_per_image, input_tokens_mean=res.tokens.input_tokens_mean,
            samples_per_s=res.timing.samples_per_s, wall_s=res.timing.wall_s,
            peak_memory_bytes=res.memory.peak_bytes, memory_kind=res.memory.kind))

    comparisons = []
    for j in range(1, len(loaded)):
        ids = [k for k in shared if is_scored(keyed[0][k]) and is_scored(keyed[j][k])]
        a = [keyed[0][k].score for k in ids]
        b = [keyed[j][k].score for k in ids]
        clusters = [pair_cluster(k, keyed[0][k], keyed[j][k]) for k in ids]
        pd = paired_delta(a, b, clusters, n_resamples=n_resamples, seed=seed)
        mcnemar, note = mcnemar_for(a, b, clusters)
        comparisons.append(PairComparison(
            baseline=labels[0], other=labels[j], n_pairs=pd.n, delta=pd.delta, ci_low=pd.ci_low,
            ci_high=pd.ci_high, p_value=pd.p_value, p_value_method=p_value_method(n_resamples, seed), mcnemar=mcnemar,
            mcnemar_note=note, n_better=sum(1 for x, y in zip(a, b) if y > x),
            n_worse=sum(1 for x, y in zip(a, b) if y < x), n_same=sum(1 for x, y in zip(a, b) if y == x),
            n_clusters=pd.n_clusters, max_cluster_size=max(Counter(clusters).values(), default=0), mdd=pd.mdd))

    changed = []
    for k in shared:
        recs = [kr[k] for kr in keyed]
        outcomes = [r.score if is_scored(r) else None for r in recs]
        if len(set(outcomes)) > 1:
            changed.append(ChangedSample(
                sample_id=recs[0].sample_id, question=recs[0].question,
                thumb=next((r.thumb for r in recs if r.thumb), None),
                predictions=[r.prediction for r in recs], scores=outcomes, errors=[r.error for r in recs]))
    # Largest swing first: those are the samples worth reading.
    changed.sort(key=lambda c: -_swing(c.scores))

    notes = []
    sources = {(r.data.source, r.data.n_rows) for r in results}
    if len(sources) > 1:
        notes.append("the runs read different data (source or row count differ); only shared samples are paired")
    return Comparison(
        task=results[0].task.get("name"), task_title=results[0].task.get("title") or results[0].task.get("name"),
        metric=results[0].headline, runs=runs, n_shared=len(shared), n_shared_scored=len(all_scored),
        comparisons=comparisons, changed=changed[:max_changed], n_changed=len(changed),
        settings={"ci": ci_method(n_resamples, seed), "p_value": p_value_method(n_resamples, seed),
                  "n_resamples": n_resamples, "seed": seed,
                  "mcnemar": "exact two-sided binomial on discordant pairs when all scores are 0/1 and every "
                             "cluster is one question; Durkalski et al. 2003 cluster-adjusted McNemar otherwise",
                  "mdd": "minimum detectable difference: (z_0.975 + z_0.80) x clustered SE of the mean difference",
                  "clusters": "the baseline run's per-sample cluster label (else the other run's, else the sample)",
                  "scale": "0-100", "matched_on": "sample_id"},
        notes=notes, controls=_controls(loaded))


def _controls(loaded) -> list[dict[str, Any]]:
    from .controls import compare_controls  # controls import this module's paired_delta

    return compare_controls(loaded)


def pair_cluster(key: str, a: SampleRecord, b: SampleRecord) -> str:
    """The cluster of a matched pair: the baseline's label, else the other run's, else the sample
    itself (runs written before clusters existed pair sample by sample)."""
    c = a.cluster if a.cluster is not None else b.cluster
    return f"c:{c}" if c is not None else f"s:{key}"


def _swing(scores: list[float | None]) -> float:
    vals = [s for s in scores if s is not None]
    if len(vals) < len(scores):
        return 2.0  # an error or unscored sample on one side: show with the biggest swings
    return max(vals) - min(vals)


def write_comparison(comp: Comparison, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / COMPARE_FILE
    return atomic_write_text(path, json.dumps(comp.to_dict(), indent=2, ensure_ascii=False))
