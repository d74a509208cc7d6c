"""`evalkit compare RUN_A RUN_B [RUN_C ...] [--out DIR]`: paired comparison of runs of one task."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare", help="compare runs of one task (e.g. with and without image splitting)",
        description="Compare runs of one task on the samples they share: metric with CI, paired delta vs "
                    "the first run with bootstrap CI and permutation p-value, McNemar for 0/1 scores, "
                    "image tokens, throughput, memory, and the samples whose outcome changed.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="run folders written by `evalkit eval`; the first is the baseline")
    p.add_argument("--out", type=Path,
                   help="output folder for compare.json and compare.html "
                        "(default: compare-<task> beside the first run, i.e. runs/compare-<task>)")
    p.set_defaults(func=cmd_compare)
    return p


def cmd_compare(args) -> int:
    from evalkit.reports.compare_report import render_compare_report

    from .compare import build_comparison, write_comparison

    comp = build_comparison(args.runs)
    out = args.out or (args.runs[0].resolve().parent / f"compare-{comp.task}")
    json_path = write_comparison(comp, out)
    html_path = render_compare_report(comp, out)
    print(f"{comp.task}: {comp.n_shared} shared samples ({comp.n_shared_scored} scored in every run)")
    for r in comp.runs:
        h = r.headline
        value = "n/a" if h.get("value") is None else f"{h['value']:.1f} ({h['ci_low']:.1f}-{h['ci_high']:.1f})"
        cost = "; ".join(x for x in (
            None if r.image_tokens_per_sample is None else f"{r.image_tokens_per_sample:.1f} image tokens/sample",
            None if r.samples_per_s is None else f"{r.samples_per_s:.2f} samples/s") if x)
        print(f"  {r.label}: {comp.metric} = {value}; {cost + '; ' if cost else ''}dropped {r.n_dropped} unshared samples")
    for c in comp.comparisons:
        if c.delta is None:
            print(f"  {c.other} - {c.baseline}: no scored pairs")
            continue
        mc = f", McNemar p = {c.mcnemar['p_value']:.3g}" if c.mcnemar else ""
        print(f"  {c.other} - {c.baseline}: {c.delta:+.1f} (95% CI {c.ci_low:+.1f} to {c.ci_high:+.1f}), "
              f"p = {c.p_value:.3g}{mc}, n = {c.n_pairs}")
    for c in comp.controls:
        d = c["delta"]
        if d["delta"] is not None:
            print(f"  without the right image ({c['mode']}, {c['control_run']}): {c['without_image']['value']:.1f} vs "
                  f"{c['real']['value']:.1f}, {d['delta']:+.1f} (95% CI {d['ci_low']:+.1f} to {d['ci_high']:+.1f}), "
                  f"n = {d['n']}")
    print(f"  json:   {json_path}\n  report: {html_path}")
    return 0
