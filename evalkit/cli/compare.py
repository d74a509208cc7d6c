"""`evalkit compare RUN_A RUN_B [RUN_C ...] [--runs-dir DIR] [--run-name NAME]`: paired comparison of runs of one task."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare", help="compare runs of one task (e.g. with and without image splitting)",
        description="Compare runs of one task on the samples they share: metric with CI, paired delta vs "
                    "the first run with a cluster-bootstrap CI, a cluster-level permutation p-value and the "
                    "minimum detectable difference, McNemar for 0/1 scores (exact with one question per page "
                    "or image, cluster-adjusted otherwise), image tokens, throughput, memory, and the samples whose outcome changed.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="run folders written by `evalkit eval`; the first is the baseline")
    from .output_flags import add_deprecated_path, add_output_args

    # default parent: the folder holding the first run (runs/ for runs made with the defaults)
    add_output_args(p, "compare-<task>", runs_dir_default=None,
                    runs_dir_help="parent folder of compare.json and compare.html (default: the folder "
                                  "holding the first run, i.e. runs)")
    add_deprecated_path(p, "--out", "out", "the exact output folder")
    p.set_defaults(func=cmd_compare)
    return p


def cmd_compare(args) -> int:
    from evalkit.reports.compare_report import render_compare_report

    from ..analyses.compare import build_comparison, write_comparison
    from .commands import ci_text

    comp = build_comparison(args.runs)
    from .output_flags import output_dir

    out = output_dir(args.runs_dir or args.runs[0].resolve().parent, args.run_name, f"compare-{comp.task}",
                     exact=args.out)
    json_path = write_comparison(comp, out)
    html_path = render_compare_report(comp, out)
    print(f"{comp.task}: {comp.n_shared} shared samples ({comp.n_shared_scored} scored in every run)")
    for r in comp.runs:
        h = r.headline
        value = "n/a" if h.get("value") is None else f"{h['value']:.1f} {ci_text(h['ci_low'], h['ci_high'], label='')}"
        cost = "; ".join(x for x in (
            None if r.image_tokens_per_sample is None else f"{r.image_tokens_per_sample:.1f} image tokens/sample",
            None if r.samples_per_s is None else f"{r.samples_per_s:.2f} samples/s") if x)
        print(f"  {r.label}: {comp.metric} = {value}; {cost + '; ' if cost else ''}dropped {r.n_dropped} unshared samples")
    for c in comp.comparisons:
        if c.delta is None:
            print(f"  {c.other} - {c.baseline}: no scored pairs")
            continue
        mc = f", McNemar p = {c.mcnemar['p_value']:.3g}" if c.mcnemar else ""
        print(f"  {c.other} - {c.baseline}: {c.delta:+.1f} {ci_text(c.ci_low, c.ci_high, signed=True)}, "
              f"p = {'n/a' if c.p_value is None else format(c.p_value, '.3g')}{mc}, n = {c.n_pairs} in {c.n_clusters} clusters"
              + (f", detectable: {c.mdd:.1f} points (80% power)" if c.mdd is not None else ""))
    for c in comp.controls:
        d = c["delta"]
        if d["delta"] is not None:
            print(f"  without the right image ({c['mode']}, {c['control_run']}): {c['without_image']['value']:.1f} vs "
                  f"{c['real']['value']:.1f}, {d['delta']:+.1f} {ci_text(d['ci_low'], d['ci_high'], signed=True)}, "
                  f"n = {d['n']}")
    print(f"  json:   {json_path}\n  report: {html_path}")
    return 0
