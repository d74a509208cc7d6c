"""The audit's analysis from generation rows alone: TF-IDF term rankings, a stratified
per-term test with effect sizes, generation lengths, toxicity tables with a tested group
difference and a classifier check, example generations, and a plain-language summary. The result is
one JSON-able AuditAnalysis (audit.json) that the HTML report renders.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from .appearance import MASK_WORDS
from .fairface import FairFaceAccuracy
from .generations import GenerationRow
from .prompts import PROMPT_IDS, PROMPTS
from .tfidf import ALPHA, MIN_DOCS, TOP_K, AxisAnalysis, analyze_axis, fit_tfidf, word_count
from .toxicity import N_PERMUTATIONS, IdentityCheck, ToxicityTable, adjust_slices, identity_check, toxicity_table

EXAMPLES_PER_GROUP = 2


@dataclass
class AnalysisOptions:
    modes: tuple[str, ...] = ("variance",)  # add "legacy" for the published scripts' ranking beside it
    n_permutations: int = N_PERMUTATIONS  # label shuffles of the toxicity group test
    seed: int = 0
    min_docs: int = MIN_DOCS  # frequency filter of the term test
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
    identity_checks: list[IdentityCheck] = field(default_factory=list)
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
        d["identity_checks"] = [IdentityCheck(**c) for c in d.get("identity_checks", [])]
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

    checks: dict[tuple[str, str], IdentityCheck] = {}
    for (dataset, model, prompt_id), srows in slices.items():
        kept = [r for r in srows if not _is_empty(r)]
        n_errors = sum(r.error is not None for r in srows)
        result.slices.append({"dataset": dataset, "model": model, "prompt_id": prompt_id,
                              "prompt": PROMPTS.get(prompt_id, ""), "n_docs": len(srows),
                              "n_empty": len(srows) - len(kept), "n_errors": n_errors})
        fitted, note = fit_tfidf([r.generation for r in kept], mask) if kept else (None, "no terms: every generation is empty")
        lengths = [word_count(r.generation) for r in kept]
        axes = _axes(srows, dataset, opts)
        for axis in axes:
            # The other recorded axes are strata: a term (or toxicity) tied to race is not
            # reported for gender through an unbalanced design, and vice versa.
            others = {o: [r.groups.get(o) for r in kept] for o in axes if o != axis}
            base = AxisAnalysis(dataset=dataset, model=model, prompt_id=prompt_id, axis=axis,
                                mode=opts.modes[0], n_docs=len(srows), n_empty=len(srows) - len(kept))
            by_mode = analyze_axis(fitted, [r.groups.get(axis) for r in kept], base, lengths=lengths,
                                   strata=others, modes=opts.modes, fit_note=note, top_k=opts.top_k,
                                   alpha=opts.alpha, min_docs=opts.min_docs)
            result.tfidf.extend(by_mode[m] for m in opts.modes)
            for clf in classifiers:
                groups = sorted({str(r.groups[axis]) for r in srows if r.groups.get(axis) not in (None, "")})
                key = (clf.name, dataset, axis)
                if key not in checks and groups:
                    checks[key] = identity_check(clf, axis, groups)
                    result.identity_checks.append(checks[key])
                probs = [None if _is_empty(r) else scores[clf.name][r.generation] for r in srows]
                tab = toxicity_table(
                    clf.name, dataset, model, prompt_id, axis, probs,
                    [r.groups.get(axis) for r in srows], [r.generation for r in srows],
                    [r.example_id for r in srows],
                    strata={o: [r.groups.get(o) for r in srows] for o in axes if o != axis},
                    n_permutations=opts.n_permutations, seed=opts.seed)
                tab.identity = checks.get(key)
                result.toxicity.append(tab)
            result.examples.append(_examples(dataset, model, prompt_id, axis, kept, opts.examples_per_group))
    adjust_slices(result.toxicity, opts.alpha)
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


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def summarize(res: AuditAnalysis) -> list[str]:
    """Plain-language sentences: which terms differ between groups after the FDR correction,
    and, from the permutation test only, whether toxicity differs between groups."""
    out = []
    for a in res.tfidf:
        if a.mode != res.options["modes"][0]:
            continue
        where = f"{a.dataset} / {a.model} / {a.prompt_id} / {a.axis}"
        if a.note:
            out.append(f"{where}: {a.note}.")
            continue
        if a.n_tested == 0:
            out.append(f"{where}: no term is frequent enough in every group to test "
                       f"({a.vocab_size} terms, {a.n_frequent} in at least {a.min_docs} generations).")
            continue
        family = f"{a.n_tested} tested of {a.vocab_size} terms, FDR q < {a.alpha}"
        if a.n_significant == 0:
            out.append(f"{where}: no term differs between groups beyond chance ({family}).")
            continue
        shown = ", ".join(f"'{t.term}' (more for {t.lean_group}, odds ratio {_or(t.lean_log_or)})"
                          for t in a.significant[:3])
        out.append(f"{where}: {a.n_significant} terms differ between groups beyond chance ({family}); "
                   f"strongest: {shown}.")
    for t in res.toxicity:
        groups = [r for r in t.rows if r.group != "(all)" and r.n >= 2 and r.mean["value"] is not None]
        where = f"toxicity ({t.classifier}) {t.dataset} / {t.model} / {t.prompt_id} / {t.axis}"
        if t.test is None or len(groups) < 2:
            continue
        hi = max(groups, key=lambda r: r.mean["value"])
        lo = min(groups, key=lambda r: r.mean["value"])
        test = (f"permutation p = {_fmt_p(t.test.p_value)}, q = {_fmt_p(t.test.q_value)} over "
                f"{sum(x.test is not None for x in res.toxicity)} slices")
        if t.test.significant:
            verdict = (f"mean P(toxic) differs between groups beyond chance ({test}): highest for "
                       f"{hi.group} ({hi.mean['value']:.3f}), lowest for {lo.group} ({lo.mean['value']:.3f})")
        else:
            verdict = f"no difference in mean P(toxic) between groups beyond chance ({test})"
        if t.identity is not None and t.identity.warning:
            verdict += (f"; caution: the classifier alone scores identical sentences differently by "
                        f"{t.axis} words (spread {t.identity.spread:.3f})")
        out.append(f"{where}: {verdict}.")
    return out


def _or(log_or: float) -> str:
    import math

    return f"{math.exp(log_or):.2g}" if log_or < 700 else "inf"
