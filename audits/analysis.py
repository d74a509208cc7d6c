"""The audit's analysis from generation rows alone: TF-IDF term rankings with permutation
tests, toxicity tables, example generations, and a plain-language summary. The result is
one JSON-able AuditAnalysis (audit.json) that the HTML report renders.
"""
from __future__ import annotations

import math

from dataclasses import asdict, dataclass, field
from typing import Sequence

from .appearance import MASK_WORDS
from .fairface import FairFaceAccuracy
from .generations import GenerationRow
from .prompts import PROMPT_IDS, PROMPTS
from .tfidf import ALPHA, TOP_K, AxisAnalysis, analyze_axis, fit_tfidf
from .toxicity import ToxicityTable, toxicity_table

EXAMPLES_PER_GROUP = 2


@dataclass
class AnalysisOptions:
    modes: tuple[str, ...] = ("variance",)  # add "legacy" for the notebook's ranking beside it
    n_permutations: int = 1000
    seed: int = 0
    alpha: float = ALPHA
    top_k: int = TOP_K
    mask_appearance: bool = False
    group_columns: dict[str, list[str]] | None = None  # dataset -> axes; None = all in the rows
    examples_per_group: int = EXAMPLES_PER_GROUP


@dataclass
class AuditAnalysis:
    options: dict
    slices: list[dict]  # per dataset x model x prompt: n_docs, n_empty, n_errors
    tfidf: list[AxisAnalysis] = field(default_factory=list)
    toxicity: list[ToxicityTable] = field(default_factory=list)
    classifiers: list[dict] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    fairface: FairFaceAccuracy | None = None
    summary: list[str] = field(default_factory=list)
    masked_words: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AuditAnalysis":
        d = dict(d)
        d["tfidf"] = [AxisAnalysis.from_dict(a) for a in d.get("tfidf", [])]
        d["toxicity"] = [ToxicityTable.from_dict(t) for t in d.get("toxicity", [])]
        d["fairface"] = FairFaceAccuracy.from_dict(d["fairface"]) if d.get("fairface") else None
        return cls(**d)


def _slices(rows: Sequence[GenerationRow]) -> dict[tuple[str, str, str], list[GenerationRow]]:
    """Rows by (dataset, model, prompt), prompts in the card's order."""
    out: dict[tuple[str, str, str], list[GenerationRow]] = {}
    for r in rows:
        out.setdefault((r.dataset, r.model, r.prompt_id), []).append(r)
    rank = {p: i for i, p in enumerate(PROMPT_IDS)}
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1], rank.get(kv[0][2], 99))))


def _axes(rows: Sequence[GenerationRow], dataset: str, opts: AnalysisOptions) -> list[str]:
    if opts.group_columns and dataset in opts.group_columns:
        return list(opts.group_columns[dataset])
    seen: dict[str, None] = {}
    for r in rows:
        for k in r.groups:
            seen.setdefault(k, None)
    return list(seen)


def _is_empty(r: GenerationRow) -> bool:
    return r.error is not None or not (r.generation or "").strip()


def analyze(rows: Sequence[GenerationRow], *, options: AnalysisOptions | None = None,
            classifiers: Sequence = (), fairface: FairFaceAccuracy | None = None) -> AuditAnalysis:
    """Everything the report shows, from generation rows (and optionally a FairFace run)."""
    opts = options or AnalysisOptions()
    mask = sorted(MASK_WORDS) if opts.mask_appearance else []
    result = AuditAnalysis(options=asdict(opts), slices=[], fairface=fairface, masked_words=mask)
    slices = _slices(rows)

    # Toxicity: each classifier scores every distinct non-empty text once.
    texts = sorted({r.generation for r in rows if not _is_empty(r)})
    scores: dict[str, dict[str, float]] = {}
    for clf in classifiers:
        probs = clf.predict_proba(texts) if texts else []
        scores[clf.name] = {t: float(p) for t, p in zip(texts, probs)}
        result.classifiers.append(clf.describe())

    for (dataset, model, prompt_id), srows in slices.items():
        kept = [r for r in srows if not _is_empty(r)]
        n_errors = sum(r.error is not None for r in srows)
        result.slices.append({"dataset": dataset, "model": model, "prompt_id": prompt_id,
                              "prompt": PROMPTS.get(prompt_id, ""), "n_docs": len(srows),
                              "n_empty": len(srows) - len(kept), "n_errors": n_errors})
        fitted, note = fit_tfidf([r.generation for r in kept], mask) if kept else (None, "no terms: every generation is empty")
        for axis in _axes(srows, dataset, opts):
            base = AxisAnalysis(dataset=dataset, model=model, prompt_id=prompt_id, axis=axis,
                                mode=opts.modes[0], n_docs=len(srows), n_empty=len(srows) - len(kept))
            by_mode = analyze_axis(fitted, [r.groups.get(axis) for r in kept], base, modes=opts.modes,
                                   fit_note=note, top_k=opts.top_k, n_permutations=opts.n_permutations,
                                   seed=opts.seed, alpha=opts.alpha)
            result.tfidf.extend(by_mode[m] for m in opts.modes)
            for clf in classifiers:
                probs = [None if _is_empty(r) else scores[clf.name][r.generation] for r in srows]
                result.toxicity.append(toxicity_table(
                    clf.name, dataset, model, prompt_id, axis, probs,
                    [r.groups.get(axis) for r in srows], [r.generation for r in srows],
                    [r.example_id for r in srows]))
            result.examples.append(_examples(dataset, model, prompt_id, axis, kept, opts.examples_per_group))
    result.summary = summarize(result)
    return result


def _examples(dataset, model, prompt_id, axis, kept, k) -> dict:
    by_group: dict[str, list[dict]] = {}
    for r in kept:
        g = r.groups.get(axis)
        if g is None:
            continue
        lst = by_group.setdefault(g, [])
        if len(lst) < k:
            lst.append({"example_id": r.example_id, "generation": r.generation})
    return {"dataset": dataset, "model": model, "prompt_id": prompt_id, "axis": axis,
            "groups": dict(sorted(by_group.items()))}


# Means of identical scores can differ in the last float digit; such gaps are not differences.
_TOL = 1e-9


def _ci_overlap(a: dict, b: dict) -> bool:
    return not (a["ci_high"] < b["ci_low"] - _TOL or b["ci_high"] < a["ci_low"] - _TOL)


def summarize(res: AuditAnalysis) -> list[str]:
    """Plain-language sentences: which term differences survive the FDR correction, and
    whether toxicity differs between groups beyond the bootstrap noise."""
    out = []
    for a in res.tfidf:
        if a.mode != res.options["modes"][0]:
            continue
        where = f"{a.dataset} / {a.model} / {a.prompt_id} / {a.axis}"
        if a.note:
            out.append(f"{where}: {a.note}.")
            continue
        if not a.n_permutations:
            out.append(f"{where}: no permutation test was run, so no difference is called significant.")
            continue
        if a.n_significant == 0:
            out.append(f"{where}: no term differs between groups beyond chance "
                       f"(0 of {a.vocab_size} terms at FDR q < {a.alpha}); the top-ranked terms "
                       f"are consistent with noise.")
            continue
        sig = [t for t in a.terms if t.significant][:3]
        shown = ", ".join(f"'{t.term}' (more for {t.lean_group})" for t in sig)
        out.append(f"{where}: {a.n_significant} of {a.vocab_size} terms differ between groups "
                   f"beyond chance (FDR q < {a.alpha})" + (f"; among the top-ranked: {shown}." if shown else "."))
    for t in res.toxicity:
        # Groups of one generation have no interval worth comparing.
        groups = [r for r in t.rows if r.group != "(all)" and r.n >= 2 and r.mean["value"] is not None]
        if len(groups) < 2:
            continue
        hi = max(groups, key=lambda r: r.mean["value"])
        lo = min(groups, key=lambda r: r.mean["value"])
        where = f"toxicity ({t.classifier}) {t.dataset} / {t.model} / {t.prompt_id} / {t.axis}"
        if math.isclose(hi.mean["value"], lo.mean["value"], rel_tol=_TOL, abs_tol=_TOL):
            out.append(f"{where}: mean P(toxic) is the same for every group ({hi.mean['value']:.3f}).")
            continue
        verdict = ("the 95% intervals overlap, so the groups are not distinguishable"
                   if _ci_overlap(hi.mean, lo.mean) else
                   "the 95% intervals do not overlap: a difference beyond bootstrap noise")
        out.append(f"{where}: mean P(toxic) is highest for {hi.group} ({hi.mean['value']:.3f}) and "
                   f"lowest for {lo.group} ({lo.mean['value']:.3f}); {verdict}.")
    return out
