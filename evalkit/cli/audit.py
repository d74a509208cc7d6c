"""`evalkit audit`: the bias audit's command line (the audit itself is evalkit.audits).

    evalkit audit                                  # tiny model, both shipped samples
    evalkit audit --model hf --model-id HuggingFaceM4/idefics2-8b --dtype bf16 \
        --fairface-data /data/FairFace --stable-bias-data /data/stable-bias \
        --toxicity citizenlab/distilbert-base-multilingual-cased-toxicity --toxicity profanity-check
    evalkit audit --generations m4-bias-eval-stable-bias/ --dataset stable-bias --legacy
"""
from __future__ import annotations

from pathlib import Path

from evalkit.audits.prompts import MAX_NEW_TOKENS

from ..errors import EvalkitError


def _group_columns(values: list[str] | None, datasets: list[str]) -> dict[str, list[str]] | None:
    """'fairface=gender,race,age' per dataset, or a bare 'gender,race' for every chosen dataset."""
    from evalkit.audits.sources import SOURCES  # here, not at the top: building the CLI parser stays light

    if not values:
        return None
    out: dict[str, list[str]] = {}
    for v in values:
        name, sep, cols = v.partition("=")
        if sep and name not in SOURCES:
            raise EvalkitError(f"--groups {v!r}: unknown dataset {name!r}; valid: {', '.join(SOURCES)}")
        targets = [name] if sep else datasets
        cols = cols if sep else v
        names = [c.strip() for c in cols.split(",") if c.strip()]
        if not names:
            raise EvalkitError(f"--groups {v!r}: no column names; use e.g. gender,race or fairface=gender,race")
        for t in targets:
            out[t] = names
    return out


def cmd_audit(args) -> int:
    from .commands import quiet_libraries, spec_from_args

    from evalkit.audits.runner import AuditConfig, run_audit

    quiet_libraries()
    out_dir = _output_dir(args)
    toxicity = [] if args.toxicity == ["none"] else (args.toxicity or ["profanity-check"])
    cfg = AuditConfig(dataset=args.dataset, model=spec_from_args(args), fairface_data=args.fairface_data,
                      stable_bias_data=args.stable_bias_data, generations=args.generations,
                      models=args.gen_models.split(",") if args.gen_models else None,
                      name=args.name, runs_dir=args.runs_dir, out_dir=out_dir, limit=args.limit,
                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, toxicity=toxicity,
                      toxicity_device=args.toxicity_device, permutations=args.permutations, seed=args.seed,
                      min_docs=args.min_docs,
                      mask_appearance=args.mask_appearance, legacy=args.legacy, fairface_run=args.fairface_run,
                      cache_dir=args.cache_dir, progress=not args.no_progress)
    cfg.group_columns = _group_columns(args.groups, cfg.datasets())
    report = run_audit(cfg)
    print(f"audit report: {report}\n  analysis:   {report.with_name('audit.json')}")
    return 0


def _output_dir(args) -> Path | None:
    """The exact folder when --run-name or the old --out-dir names it; None leaves the audit's own
    rule (runs-dir/audit-<name or model>) to the runner, so the old --name keeps its meaning."""
    from .output_flags import deprecation_notice, output_dir

    old = [f for f, v in (("--name", args.name), ("--out-dir", args.out_dir)) if v is not None]
    if args.run_name is not None and old:
        raise EvalkitError(f"--run-name and {' and '.join(old)} each name the output folder; "
                           f"give --runs-dir and --run-name only")
    if args.name is not None:  # as before, --out-dir wins over --name
        deprecation_notice("--name NAME", f"--run-name audit-{args.name}")
    if args.run_name is not None or args.out_dir is not None:
        return output_dir(args.runs_dir, args.run_name, "", exact=args.out_dir, exact_flag="--out-dir")
    return None


def add_parser(sub) -> None:
    from .commands import add_model_args, batch_size_arg, non_negative_int, positive_int

    a = sub.add_parser("audit", help="bias audit: generations about people, term differences, toxicity")
    a.add_argument("--dataset", default="both", choices=["fairface", "stable-bias", "both"])
    a.add_argument("--fairface-data", help="FairFace rows (save_to_disk / parquet); default: shipped sample")
    a.add_argument("--stable-bias-data", help="Stable Bias rows (save_to_disk / parquet); default: shipped sample")
    a.add_argument("--generations", type=Path,
                   help="analyse this file instead of generating: our generations.jsonl, or a dataset with "
                        "<model>_<prompt> columns (9B_resume, 80B_arrest, ...)")
    a.add_argument("--gen-models", help="with a wide --generations file: which models, e.g. 9B,80B (default all)")
    a.add_argument("--groups", action="append",
                   help="group columns to compare, e.g. fairface=gender,race,age (repeatable)")
    from .output_flags import add_deprecated_path, add_output_args

    add_output_args(a, "audit-<model, or the --generations file's name>")
    a.add_argument("--name", help="deprecated: output folder <runs-dir>/audit-<name>; use --run-name")
    add_deprecated_path(a, "--out-dir", "out_dir", "the exact output folder")
    a.add_argument("--limit", type=positive_int, help="only the first N images per dataset")
    a.add_argument("--max-new-tokens", type=positive_int, default=MAX_NEW_TOKENS)
    a.add_argument("--batch-size", type=batch_size_arg, default=8)
    a.add_argument("--toxicity", action="append",
                   help="classifier: profanity-check (default, offline) or a transformers model id / "
                        "local folder; repeat for several; 'none' to skip")
    a.add_argument("--toxicity-device", default="cpu")
    a.add_argument("--permutations", type=int, default=2000,
                   help="label shuffles of the per-slice toxicity group test (0 = no test); the term test "
                        "is a stratified Cochran-Mantel-Haenszel test and needs none")
    a.add_argument("--min-docs", type=positive_int, default=5,
                   help="term test frequency filter: a term must occur in at least this many generations")
    a.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0 or a positive integer)")
    a.add_argument("--mask-appearance", action="store_true",
                   help="drop gender / ethnicity / hair / skin / eye words before TF-IDF")
    a.add_argument("--legacy", action="store_true",
                   help="add the ranking formula of the team's published TF-IDF bias scripts (verified on their "
                        "FineWeb tables; the Idefics2 notebook itself is not public) beside ours")
    a.add_argument("--fairface-run", type=Path, help="a FairFace task run folder for the accuracy section")
    a.add_argument("--no-progress", action="store_true")
    add_model_args(a)
    a.set_defaults(func=cmd_audit)
