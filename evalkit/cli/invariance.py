"""`evalkit invariance --task T [--limit N] [--model ...]`: the numerical-invariance audit."""
from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .commands import add_model_args, positive_int

    p = subparsers.add_parser(
        "invariance", help="rerun a subsample under settings that should not change answers",
        description="Run a task's first N samples under pairs of settings that should leave every answer as "
                    "it is (batch size 1 vs N, fp32 vs bf16, eager vs sdpa attention; local vs served is not "
                    "configured) and report, per pair, the share of answers that changed (Wilson CI), the "
                    "score difference (paired bootstrap CI) and the changed samples.")
    p.add_argument("--task", required=True, help="task name (see `evalkit tasks`)")
    p.add_argument("--data", help="local dataset in the hub schema, or 'hub' (default: shipped sample)")
    p.add_argument("--limit", type=positive_int, default=20, help="samples to run (default 20)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="N of the batch pair (1 vs N; N >= 2)")
    p.add_argument("--pairs", default="batch,dtype,attn,served",
                   help="comma-separated subset of batch,dtype,attn,served")
    from .output_flags import add_deprecated_path, add_output_args

    add_output_args(p, "invariance-<task>-<model>")
    add_deprecated_path(p, "--out", "out", "the exact output folder")
    p.add_argument("--workers", type=positive_int, default=2)
    add_model_args(p)
    p.set_defaults(func=cmd_invariance)
    return p


def cmd_invariance(args) -> int:
    from evalkit.reports.invariance_report import render_invariance_report

    from .commands import quiet_libraries, spec_from_args
    from ..analyses.invariance import InvarianceConfig, run_invariance
    from ..registry import TASKS

    quiet_libraries()
    TASKS.get(args.task)  # an unknown task fails here, before any run
    spec = spec_from_args(args)
    from .output_flags import output_dir

    out = output_dir(args.runs_dir, args.run_name, f"invariance-{args.task}-{spec.label}", exact=args.out)
    pairs = tuple(p.strip() for p in args.pairs.split(",") if p.strip())
    path = run_invariance(InvarianceConfig(task=args.task, model=spec, data=args.data, limit=args.limit,
                                           batch_size=args.batch_size, out_dir=out, pairs=pairs,
                                           cache_dir=args.cache_dir, workers=args.workers))
    html = render_invariance_report(path)
    import json

    for p in json.loads(path.read_text(encoding="utf-8"))["pairs"]:
        if p["status"] != "ran":
            print(f"  {p['pair']}: {p['status']}: {p['reason']}")
            continue
        ci = (f" (95% CI {100 * p['share_ci_low']:.0f}-{100 * p['share_ci_high']:.0f}%)"
              if p["share_ci_low"] is not None else "")
        print(f"  {p['pair']} ({p['a']} vs {p['b']}): {p['n_changed']} of {p['n']} answers changed{ci}"
              + (f", score {p['diff']:+.1f} (95% CI {p['diff_ci_low']:+.1f} to {p['diff_ci_high']:+.1f})"
                 if p["diff"] is not None else ""))
    print(f"  json:   {path}\n  report: {html}")
    return 0
