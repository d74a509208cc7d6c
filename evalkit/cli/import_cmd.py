"""`evalkit import --from lmms-eval|vlmevalkit PATH`: score another harness's responses as a run."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .output_flags import add_output_args

    p = subparsers.add_parser(
        "import", help="score an lmms-eval log or a VLMEvalKit prediction file as an evalkit run",
        description="Read another harness's per-sample output, match it to the task's data, and write a run "
                    "folder scored by evalkit's rules, with the harness's own per-sample metric as a "
                    "scoring-sensitivity variant (see docs/results.md: imported runs).")
    p.add_argument("path", type=Path, help="lmms-eval: its *_samples_<task>.jsonl or the folder holding it; "
                                           "vlmevalkit: its <model>_<dataset>.xlsx or .tsv")
    p.add_argument("--from", dest="harness", required=True, choices=("lmms-eval", "vlmevalkit"),
                   help="the harness that wrote PATH")
    p.add_argument("--task", help="evalkit task (required for lmms-eval; VLMEvalKit's file name names its dataset)")
    p.add_argument("--data", help="the task's data in the hub schema (local folder or parquet, or 'hub'; default: "
                                  "shipped sample): the split the harness ran on")
    add_output_args(p, "<task>-<harness>-<model>")
    from .commands import add_judge_args
    from ..models.options import catalog

    add_judge_args(p)
    # The judge is asked as a served model is (evalkit eval's --concurrency, --timeout, ...): their defaults here.
    served = {name: opt.default for name, (opt, _) in catalog().items()
              if name in ("base_url", "api_key_env", "concurrency", "timeout", "max_retries", "server_stop")}
    p.set_defaults(func=cmd_import, **served)
    return p


def cmd_import(args) -> int:
    from .commands import judge_spec_from_args, quiet_libraries, show_scored_run
    from ..pipeline.import_run import ImportConfig, import_run

    quiet_libraries()
    run_dir = import_run(ImportConfig(harness=args.harness, path=args.path, task=args.task, data=args.data,
                                      run_name=args.run_name, runs_dir=args.runs_dir or Path("runs"),
                                      judge=judge_spec_from_args(args)))
    show_scored_run(run_dir)
    _print_unmatched(run_dir)
    return 0


def _print_unmatched(run_dir: Path) -> None:
    from ..results.schema import read_results

    im = read_results(run_dir).imported
    if im.get("n_unmatched"):
        shown = "; ".join(im["unmatched"][:3]) + ("; ..." if im["n_unmatched"] > 3 else "")
        print(f"  unmatched: {im['n_unmatched']} of {im['n_lines']} rows of {im['files'][0]} match no sample "
              f"({shown}); listed in results.json")
