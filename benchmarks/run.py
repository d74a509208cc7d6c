"""`make bench`: the speed claims of the engine and the audit, measured as ratios in one run.

Writes bench.json and bench.html under --runs-dir/--run-name (default runs/bench). Not a test: nothing here fails a build.
"""
from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    from evalkit.cli.output_flags import add_deprecated_path, add_output_args

    add_output_args(ap, "bench")
    add_deprecated_path(ap, "--out", "out", "the exact output folder")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--cache-dir", type=Path, help="where the tiny model is built")
    ap.add_argument("--tfidf-docs", type=int, default=30_000)
    ap.add_argument("--tfidf-permutations", type=int, default=2000, help="toxicity group test shuffles")
    ap.add_argument("--skip-tfidf", action="store_true")
    ap.add_argument("--skip-stats", action="store_true", help="skip the cluster vs per-sample bootstrap timing")
    ap.add_argument("--skip-serve", action="store_true", help="skip the served-model throughput (transformers serve)")
    ap.add_argument("--profile-rows", type=int, default=384,
                    help="DocVQA rows for the whole-process profile of `evalkit eval` (0 skips it)")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch intra-op threads for both loops; on a 2-core CPU one thread leaves a core "
                         "for the generator's image workers (the naive loop runs no faster with two)")
    return ap


def out_dir(ap: argparse.ArgumentParser, args) -> Path:
    """Where bench.json and bench.html go; a bad --run-name exits with one line."""
    from evalkit.errors import EvalkitError
    from evalkit.cli.output_flags import output_dir

    try:
        return output_dir(args.runs_dir, args.run_name, "bench", exact=args.out)
    except EvalkitError as e:
        ap.exit(2, f"benchmarks.run: error: {e}\n")


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    out = out_dir(ap, args)

    from evalkit.models import ModelSpec, load_backend
    from benchmarks import eval_profile, generator_bench, loglik_bench, resume_bench

    import os

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    backend = load_backend(ModelSpec(name="tiny-idefics2"), cache_dir=args.cache_dir)
    results = {"machine": {"python": platform.python_version(), "processor": platform.machine(),
                           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "device": backend.device, "model": "tiny-idefics2 (random weights)"}}
    if not args.skip_stats:
        from benchmarks import stats_bench
        print("statistics: cluster bootstrap (50,000 samples in 10,000 clusters) vs per-sample bootstrap ...")
        results["stats"] = asdict(stats_bench.run())
        print(json.dumps(results["stats"], indent=2))
    print("generator: shared batched generator vs one-at-a-time generate on the DocVQA sample ...")
    results["generator"] = asdict(generator_bench.run(backend, batch_size=args.batch_size))
    print(json.dumps(results["generator"], indent=2))
    print("log-likelihood: FairFace age (9 choices), image once vs a forward per choice ...")
    results["loglikelihood"] = asdict(loglik_bench.run(backend))
    print(json.dumps(results["loglikelihood"], indent=2))
    print("resume: a run killed halfway, rerun, vs the full run ...")
    results["resume"] = asdict(resume_bench.run(backend, batch_size=args.batch_size))
    print(json.dumps(results["resume"], indent=2))
    if args.profile_rows:
        print(f"whole-process profile: `evalkit eval` on {args.profile_rows} DocVQA rows ...")
        results["eval_profile"] = asdict(eval_profile.run(args.cache_dir, batch_size=8, n_rows=args.profile_rows,
                                                          threads=args.torch_threads or None))
        print(json.dumps(results["eval_profile"], indent=2))
    if not args.skip_serve:
        from benchmarks import serve_bench
        print("served model: requests/s at concurrency 1 vs 8, transformers serve with and without continuous batching ...")
        results["serve"] = asdict(serve_bench.run(args.cache_dir))
        print(json.dumps(results["serve"], indent=2))
    if not args.skip_tfidf:
        from benchmarks.bench_tfidf import run as tfidf_run
        print(f"audit terms: {args.tfidf_docs} synthetic generations (TF-IDF, stratified CMH test, effects; toxicity test with {args.tfidf_permutations} shuffles) ...")
        results["tfidf"] = tfidf_run(args.tfidf_docs, 300, args.tfidf_permutations)
        print(json.dumps(results["tfidf"], indent=2))

    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    from evalkit.reports.html import make_env, render_page
    page = render_page(make_env([TEMPLATES]), "bench.html.j2", out / "bench.html", r=results)
    print(f"wrote {out / 'bench.json'} and {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
