"""Controls: runs that ask the same questions with something taken away, so a score can be
read against what it owes to the image (evalkit.pipeline.ablation) and to the order of the options
(evalkit.pipeline.circular).

Both write their summary into results.json `controls` (a dict, empty for an ordinary run):
- `controls.image_ablation`: {mode, seed, n_images, n_replaced, chance} on a control run;
- `controls.circular`: the circular-accuracy summary on a run made with --circular.
Runs written before controls existed have no `controls` key and read as ordinary runs.
"""
from __future__ import annotations

from typing import Hashable, Sequence

from .compare import PairedDelta, is_scored, keyed_records, pair_cluster, paired_delta


def paired_difference(a: Sequence[float], b: Sequence[float],
                      clusters: Sequence[Hashable | None] | None = None) -> PairedDelta:
    """b - a on the 0-100 scale, paired per question, with its cluster-bootstrap 95% interval,
    cluster-level p-value and minimum detectable difference (`clusters` aligned with a and b:
    a page's questions move together, as in evalkit compare)."""
    return paired_delta(a, b, clusters)


def delta_dict(pd: PairedDelta) -> dict:
    return {"n": pd.n, "delta": pd.delta, "ci_low": pd.ci_low, "ci_high": pd.ci_high, "p_value": pd.p_value,
            "n_clusters": pd.n_clusters, "mdd": pd.mdd}


def ablation_of(results) -> dict | None:
    """The image-ablation settings of a control run; None for a real run (and every older run)."""
    section = (getattr(results, "controls", None) or {}).get("image_ablation")
    return section if isinstance(section, dict) else None


def ablation_vs_real(real, real_records, control, control_records) -> dict:
    """What the real run's score owes to the right image: both runs' scores on the samples both
    scored, the paired difference (control - real) and, for multiple-choice samples, the chance
    rate beside their scores. `real`/`control`: Results."""
    from .stats import bootstrap_mean

    a, b = keyed_records(real_records), keyed_records(control_records)
    ids = [k for k in a if is_scored(a[k]) and is_scored(b.get(k))]
    x, y = [a[k].score for k in ids], [b[k].score for k in ids]
    cluster = {k: pair_cluster(k, a[k], b[k]) for k in ids}
    cl = [cluster[k] for k in ids]
    settings = ablation_of(control) or {}
    out = {"control_run": control.run_name, "mode": settings.get("mode"), "n_pairs": len(ids),
           "metric": real.headline, "real": bootstrap_mean(x, clusters=cl).to_dict(),
           "without_image": bootstrap_mean(y, clusters=cl).to_dict(),
           "delta": delta_dict(paired_difference(x, y, cl))}
    mc = [k for k in ids if "chance" in b[k].extras]
    if mc:
        mc_cl = [cluster[k] for k in mc]
        out["multiple_choice"] = {
            "n": len(mc), "real": bootstrap_mean([a[k].score for k in mc], clusters=mc_cl).to_dict(),
            "without_image": bootstrap_mean([b[k].score for k in mc], clusters=mc_cl).to_dict(),
            "chance": 100.0 * sum(b[k].extras["chance"] for k in mc) / len(mc)}
    return out


MODEL_IDENTITY = ("name", "model_id", "dtype", "do_image_splitting", "longest_edge", "load_in_4bit", "prompt_style")


def same_setup(real, control) -> bool:
    """Whether `control` asked the real run's questions of the real run's model (task, model
    settings, data source and row count)."""
    rm, cm = real.model.to_dict(), control.model.to_dict()
    return (real.task.get("name") == control.task.get("name")
            and all(rm.get(k) == cm.get(k) for k in MODEL_IDENTITY)
            and (real.data.source, real.data.n_rows) == (control.data.source, control.data.n_rows))


def find_partners(run_dir) -> list:
    """The runs beside `run_dir` (sibling folders of its runs folder) on the other side of an
    image-ablation control: for a real run its controls, for a control the real runs it controls;
    only runs that asked the same questions of the same model (same_setup)."""
    from pathlib import Path

    from ..errors import EvalkitError
    from ..results.schema import RESULTS_FILE, read_results

    run_dir = Path(run_dir)
    this = read_results(run_dir)
    is_control = ablation_of(this) is not None
    found = []
    for path in sorted(run_dir.parent.glob(f"*/{RESULTS_FILE}")):
        if path.parent.resolve() == run_dir.resolve():
            continue
        try:
            other = read_results(path.parent)
        except EvalkitError:
            continue  # a damaged neighbour is its own report's problem
        if (ablation_of(other) is not None) != is_control and same_setup(this, other):
            found.append(path.parent)
    return found


def compare_controls(loaded) -> list[dict]:
    """For `evalkit compare`: each pair (first run, run j) where exactly one is an image-ablation
    control, summarised as ablation_vs_real. `loaded`: compare.load_runs's (path, Results, records)."""
    out = []
    _, first, first_records = loaded[0]
    for _, other, other_records in loaded[1:]:
        if ablation_of(first) is None and ablation_of(other) is not None:
            out.append(ablation_vs_real(first, first_records, other, other_records))
        elif ablation_of(first) is not None and ablation_of(other) is None:
            out.append(ablation_vs_real(other, other_records, first, first_records))
    return out


def summary_lines(results) -> list[str]:
    """What `evalkit eval` prints about a run's controls, under its headline line."""
    lines = []
    ab = ablation_of(results)
    if ab is not None:
        chance = ab.get("chance")
        lines.append(f"  control: every image {'blank' if ab.get('mode') == 'blank' else 'from another sample'}"
                     f" ({ab.get('n_replaced')} of {ab.get('n_images')} replaced)"
                     + (f"; chance on its {chance['n_questions']} multiple-choice questions: {chance['rate']:.1f}"
                        if chance else ""))
    c = (results.controls or {}).get("circular")
    if c and c.get("n_questions"):
        def v(key):
            return c[key]["value"]
        lines.append(f"  circular: {v('circular'):.1f} right under every rotation vs {v('standard'):.1f} in the "
                     f"benchmark's order ({c['delta']['delta']:+.1f}); same letter every rotation: "
                     f"{v('fixed_letter'):.1f}% of {c['n_questions']} questions")
    return lines
