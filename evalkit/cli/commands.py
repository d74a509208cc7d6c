"""The `evalkit` command line. Every user-facing problem ends as one line on stderr, exit code 2."""
from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from ..errors import EvalkitError
# the value parsers live with the options that use them; imported here for the other commands too
from ..models.options import non_negative_int, positive_float, positive_int  # noqa: F401


def ci_text(low: float | None, high: float | None, signed: bool = False, label: str = "95% CI ") -> str:
    """A 95% interval for a summary line; a run whose samples all sit in one cluster has none."""
    if low is None or high is None:
        return "(no interval: one cluster)"
    f = "+.1f" if signed else ".1f"
    return f"({label}{low:{f}}{' to ' if signed else '-'}{high:{f}})"


def base_url_arg(value: str) -> str:
    """--judge-base-url: checked as --base-url is (the served backend's parser)."""
    from ..models.backends.openai import base_url_arg as parse

    return parse(value)


def batch_size_arg(value: str):
    if value == "auto":
        return "auto"
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{value!r}: use a positive integer or 'auto'") from None


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The shared model flags here; each backend's own options (--dtype, --split-images, --base-url,
    ...) come from its declarations (evalkit.models.options)."""
    from ..models.options import add_option_flags

    g = p.add_argument_group("model")
    g.add_argument("--model", default="tiny-idefics2",
                   help="backend: tiny-idefics2 (embedded, random weights; tiny-idefics3, tiny-llava-next, ... "
                        "likewise), hf (transformers), vllm (untested: needs a GPU check), openai (a served model "
                        "at --base-url), or a plugin package's (see `evalkit models`)")
    g.add_argument("--model-id", help="hub id or local folder for --model hf, e.g. HuggingFaceM4/idefics2-8b; "
                                      "the served model's name for --model openai")
    g.add_argument("--prompt-style", default="instruct", help="instruct (chat template) or base (raw prompt)")
    g.add_argument("--threads", type=positive_int,
                   help="torch CPU threads (default: torch's choice); on a small CPU, fewer than the cores "
                        "leaves room for the image-decoding workers")
    g.add_argument("--cache-dir", type=Path, help="where the embedded tiny model is built (default ~/.cache/evalkit)")
    add_option_flags(p)


def add_judge_args(p: argparse.ArgumentParser) -> None:
    j = p.add_argument_group("judge (answer extraction by a served model: mathvista, mmmu multiple choice)")
    j.add_argument("--judge", metavar="MODEL_ID",
                   help="the served model that extracts each response's final answer; the report shows rule-based "
                        "and judge scores side by side (its calls are cached in judge_cache.jsonl)")
    j.add_argument("--judge-base-url", type=base_url_arg, help="the judge server's API root (default: --base-url)")
    j.add_argument("--judge-api-key-env", help="NAME of the environment variable with the judge's API key "
                                               "(default: --api-key-env)")


def judge_spec_from_args(args):
    """The judge's ModelSpec (--concurrency, --timeout, --max-retries shared with the model), or None."""
    from ..models import ModelSpec

    if not getattr(args, "judge", None):
        if getattr(args, "judge_base_url", None) or getattr(args, "judge_api_key_env", None):
            raise EvalkitError("--judge-base-url and --judge-api-key-env need --judge MODEL_ID (the served judge model)")
        return None
    base_url = args.judge_base_url or args.base_url
    if not base_url:
        raise EvalkitError("--judge needs a server: give --judge-base-url (or --base-url when the model is served too)")
    return ModelSpec(name="openai", model_id=args.judge, base_url=base_url,
                     api_key_env=args.judge_api_key_env or args.api_key_env, **_request_policy(args))


def _request_policy(args) -> dict:
    """How a served model is asked, shared by the model and the judge."""
    return {"concurrency": args.concurrency, "timeout": args.timeout, "max_retries": args.max_retries,
            "server_stop": args.server_stop}


def spec_from_args(args):
    from ..models import ModelSpec
    from ..models.options import catalog

    return ModelSpec(name=args.model, model_id=args.model_id, prompt_style=args.prompt_style,
                     **{name: getattr(args, name) for name in catalog()})


def quiet_libraries() -> None:
    """The CLI owns the terminal: keep transformers' load-time progress bars and notices out of it."""
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        import datasets
        datasets.disable_progress_bars()  # "Generating train split" when a --data folder is first read
    except ImportError:
        pass


def cmd_eval(args) -> int:
    from ..pipeline.runner import EvalConfig, run_eval

    if not args.task:
        raise EvalkitError("the following arguments are required: --task (or `task` in the --config file)")

    tasks = _task_list(args.task)
    controls = {task: control_settings(args, task, tasks) for task in tasks}  # refused before any import
    quiet_libraries()

    from ..pipeline import distributed

    judge = judge_spec_from_args(args)
    if judge is not None and len(tasks) == 1:
        from ..registry import TASKS

        if not TASKS.get(tasks[0]).judges:
            raise EvalkitError(f"--judge: task {tasks[0]} has no answer-extraction step for a judge; tasks that "
                               f"have one: {', '.join(n for n in TASKS.names() if TASKS.get(n).judges)}")
    done, failed = [], []
    try:
        for task in tasks:
            cfg = EvalConfig(task=task, model=spec_from_args(args), data=args.data, limit=args.limit,
                             batch_size=args.batch_size, run_name=_run_name_for(args.run_name, task, tasks),
                             runs_dir=args.runs_dir, cache_dir=args.cache_dir, workers=args.workers,
                             progress=not args.no_progress, launcher=args.launcher,
                             config_file=str(args.config) if args.config else None,
                             judge=judge, **controls[task])
            run_dir = run_eval(cfg)
            if run_dir is None:  # a rank other than 0: rank 0 writes and prints the run
                continue
            _report(run_dir)
            if cfg.image_ablation:  # the real runs' pages gain this control's numbers
                from ..analyses.controls import find_partners
                for real in find_partners(run_dir):
                    _report(real)
            done.append(run_dir)
            _print_summary(run_dir)
            why = nothing_scored(run_dir)
            if why is not None:
                failed.append(f"{task}: {why}")
    finally:
        distributed.teardown()
    if len(done) > 1:
        from evalkit.reports.summary import render_summary
        print(f"summary: {render_summary(done, args.runs_dir)}")
    for line in failed:
        print(f"evalkit: error: {line}", file=sys.stderr)
    # a run without a single score is a failed run, whatever it wrote (scripts check the status)
    return 1 if failed else 0


def nothing_scored(run_dir: Path) -> str | None:
    """None when the run scored a sample; else why it scored none, from its most common error."""
    from collections import Counter

    from ..results.schema import read_results, read_run

    res = read_results(run_dir)
    c = res.counts
    if c.n_scored > 0 or c.n_samples == 0:
        return None
    _, records = read_run(run_dir)
    errors = Counter(r.error for r in records if r.error)
    if not errors:
        reasons = Counter(str((r.extras or {}).get("unscored_reason", "not scorable")) for r in records)
        reason, n = reasons.most_common(1)[0]
        return f"no sample was scored: {n} of {c.n_samples} have no score ({reason[:300]})"
    error, n = errors.most_common(1)[0]
    why = f"no sample was scored: {n} of {c.n_samples} samples failed with: {error[:500]}"
    if res.model.extra.get("server_stop") and "HTTP 5" in error:
        why += ("; if the server fails only when stop strings are sent (transformers serve does with a "
                "multimodal processor), pass --no-server-stop")
    return why


def add_control_args(e) -> None:
    g = e.add_argument_group("controls (see docs: controls)")
    g.add_argument("--image-ablation", choices=("blank", "shuffle"),
                   help="a control run: the same requests with every image blank (same size) or another sample's "
                        "image; written to <run>-<mode>-images, marked as a control")
    g.add_argument("--shuffle-seed", type=int, default=0, help="seed of the shuffle's derangement (default 0)")
    g.add_argument("--circular", action="store_true",
                   help="multiple choice (mmmu, mathvista): also ask every rotation of the options and report "
                        "circular accuracy and position bias")


def control_settings(args, task: str, tasks: list[str]) -> dict:
    """The control settings of one task's run: --circular applies to tasks with options, and
    naming one without them alone is an error rather than a run that silently rotates nothing."""
    from ..registry import TASKS
    from ..task import Task

    has_options = TASKS.get(task).option_count is not Task.option_count
    if args.circular and not has_options and len(tasks) == 1:
        raise EvalkitError(f"--circular: task {task} has no multiple-choice options to rotate; tasks that have: "
                           f"{', '.join(n for n in TASKS.names() if TASKS.get(n).option_count is not Task.option_count)}")
    return {"image_ablation": args.image_ablation, "shuffle_seed": args.shuffle_seed,
            "circular": bool(args.circular) and has_options}


def _report(run_dir: Path) -> Path:
    """The engine writes the result files; the CLI draws the report from them."""
    from evalkit.reports.run_report import render_new_run_report

    return render_new_run_report(run_dir)


def _run_name_for(run_name: str | None, task: str, tasks: list[str]) -> str | None:
    """One task: --run-name as given. Several (--task all): --run-name is the prefix of each
    task's run, <run-name>-<task>, so the runs neither share one folder nor lose the name."""
    if run_name is None or len(tasks) == 1:
        return run_name
    from ..results.runfolder import check_run_name

    check_run_name(run_name)
    return f"{run_name}-{task}"


def _task_list(name: str) -> list[str]:
    from ..registry import TASKS

    if name == "all":
        return TASKS.names()
    TASKS.get(name)  # unknown names fail here, before any work
    return [name]


def _print_summary(run_dir: Path) -> None:
    from ..results.schema import read_results

    res = read_results(run_dir)
    m = res.metrics[res.headline]
    value = "n/a" if m["value"] is None else f"{m['value']:.1f} {ci_text(m['ci_low'], m['ci_high'])}"
    tag = "  [pipeline check: random weights, not a model score]" if res.model.pipeline_check else ""
    if "known_answer" in res.model.extra:
        tag = "  [known-answer model: checks the pipeline; the report shows the expected score]"
    c = res.counts
    print(f"{res.task['name']}: {res.headline} = {value} on {c.n_scored} scored / {c.n_samples} samples, "
          f"{c.n_errors} errors{tag}")
    from ..analyses.controls import summary_lines
    for line in summary_lines(res):
        print(line)
    print(f"  results: {run_dir / 'results.json'}\n  report:  {run_dir / 'report.html'}")


def cmd_score(args) -> int:
    from ..pipeline.score_predictions import ScoreConfig, score_predictions

    quiet_libraries()
    run_dir = score_predictions(ScoreConfig(task=args.task, predictions=args.predictions, data=args.data,
                                            run_name=args.run_name, runs_dir=args.runs_dir,
                                            allow_missing=args.allow_missing))
    show_scored_run(run_dir)
    return 0


def show_scored_run(run_dir: Path) -> None:
    """What `score` and `import` print for a run scored from responses made elsewhere: the
    report written, the summary, and how the responses matched the data."""
    _report(run_dir)
    _print_summary(run_dir)
    _print_matching(run_dir)


def _print_matching(run_dir: Path) -> None:
    """How the predictions file matched the data, on the console and not only in the report."""
    from ..results.schema import read_results

    c = read_results(run_dir).counts
    print(f"  predictions: {c.n_samples - c.n_missing_predictions} matched, {c.n_missing_predictions} samples "
          f"without a prediction, {c.n_extra_predictions} predictions for ids not in the data")


def cmd_report(args) -> int:
    from evalkit.reports.index import render_index
    from evalkit.reports.run_report import render_run_report

    target = args.path
    if not target.exists():
        raise EvalkitError(f"{target}: no such folder; give a run folder or the runs/ folder")
    if not target.is_dir():
        raise EvalkitError(f"{target}: not a folder; give a run folder or the runs/ folder")
    if (target / "results.json").exists():
        print(render_run_report(target))
        return 0
    for sub in sorted(p for p in target.iterdir() if (p / "results.json").exists()):
        try:
            render_run_report(sub)
        except EvalkitError as e:
            print(f"skipped {sub}: {e}", file=sys.stderr)
        except Exception as e:  # one run that cannot be drawn must not cost the other runs their index
            print(f"skipped {sub}: its report failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
                  file=sys.stderr)
    print(render_index(target))
    return 0


def cmd_tasks(args) -> int:
    from ..analyses.references import reference_table
    from ..registry import TASKS

    # The listing shows the design's reference model; every model's numbers are in evalkit/references.toml.
    table = reference_table()
    print(f"{'task':<10} {'source':<34} {'split':<11} {'metric':<14} Idefics2-8B card (no split / split)")
    for name in TASKS.names():
        t = TASKS.get(name)
        ref = {r.setting: r.value for r in table.rows("idefics2-8b", name, t.metric)}
        card = " / ".join("-" if ref.get(k) is None else f"{ref[k]}" for k in ("no_split", "split"))
        src = t.hub_id + (f" ({t.hub_config})" if t.hub_config else "")
        print(f"{name:<10} {src:<34} {t.split:<11} {t.metric:<14} {card}")
    return 0


def cmd_models(args) -> int:
    from ..registry import MODELS

    for name in MODELS.names():
        # each backend describes itself: the first line of its registered factory's docstring
        doc = (MODELS.get(name).__doc__ or "").strip()
        print(f"{name:<16} {doc.splitlines()[0] if doc else ''}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form every other evalkit error has."""

    def error(self, message: str):
        self.exit(2, f"evalkit: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="evalkit", description="Evaluate and audit vision-language models.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    e = sub.add_parser("eval", help="evaluate a model on a task (or 'all')")
    e.add_argument("--config", type=Path, help="settings from a TOML (or YAML) file: keys are these long option "
                   "names (batch-size or batch_size); flags given here override the file")
    e.add_argument("--task", help="task name (see `evalkit tasks`) or 'all' (required, here or in --config)")
    e.add_argument("--data", help="local dataset in the hub schema (save_to_disk folder or parquet), or 'hub'")
    e.add_argument("--limit", type=positive_int, help="only the first N samples")
    e.add_argument("--batch-size", type=batch_size_arg, default=8, help="N or 'auto' (halve on out-of-memory; tested on a simulated one, a real "
                        "CUDA out-of-memory untested: needs a GPU check)")
    e.add_argument("--run-name", help="folder name under --runs-dir (default <task>-<model>-<split|nosplit>); "
                                      "with --task all, the prefix of each run: <run-name>-<task>")
    e.add_argument("--runs-dir", type=Path, default=Path("runs"))
    e.add_argument("--workers", type=positive_int, default=2, help="threads decoding images ahead of the model")
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--launcher", choices=("torchrun", "accelerate"),
                   help="data-parallel over processes started by this launcher: run as `torchrun "
                        "--nproc_per_node N -m evalkit.cli eval ... --launcher torchrun` (or `accelerate launch`); "
                        "each rank takes every N-th request, rank 0 writes the run (tested: gloo on CPU; "
                        "nccl on GPUs untested: needs a GPU check)")
    add_model_args(e)
    add_judge_args(e)
    add_control_args(e)
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("score", help="score predictions made elsewhere (no model)")
    s.add_argument("--task", required=True)
    s.add_argument("--predictions", type=Path, required=True, help='JSONL: {"id": ..., "prediction": "..."}')
    s.add_argument("--data", help="local dataset in the hub schema, or 'hub' (default: shipped sample)")
    s.add_argument("--run-name", help="folder name under --runs-dir (default <task>-scored-<predictions file name>)")
    s.add_argument("--runs-dir", type=Path, default=Path("runs"))
    s.add_argument("--allow-missing", action="store_true",
                   help="score even when some samples have no prediction (they count as errors); "
                        "without it a partial predictions file is refused")
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("report", help="re-render a run's report, or every run's plus an index")
    r.add_argument("path", type=Path, nargs="?", default=Path("runs"))
    r.set_defaults(func=cmd_report)

    sub.add_parser("tasks", help="list tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("models", help="list model backends").set_defaults(func=cmd_models)

    for extra in _extra_commands():
        extra(sub)
    return p


def _extra_commands():
    """The commands whose parsers sit in their own modules of this package."""
    from .audit import add_parser as audit
    from .compare import add_parser as compare
    from .import_cmd import add_parser as import_
    from .invariance import add_parser as invariance

    return [audit, compare, invariance, import_]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None) is not None:
            from . import config_file
            args = config_file.apply(config_file.subcommand(parser, args.command),
                                     argv[argv.index(args.command) + 1:], args, args.config)
        if getattr(args, "threads", None):
            import torch
            torch.set_num_threads(args.threads)
        return args.func(args)
    except EvalkitError as e:
        print(f"evalkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalkit: interrupted; finished batches are in the run's cache.jsonl - rerun the same "
              "command to resume", file=sys.stderr)
        return 130


def console_main(argv: list[str] | None = None) -> int:
    """The `evalkit` command: `main` in a process of its own, with the garbage collector tuned for
    one. Importing torch and transformers and loading a model leave about half a million
    long-lived objects; at the default thresholds the collector rescans all of them about eight
    times while they pile up (about 1 s of CPU) and finds nothing to free, and once more at
    interpreter exit (about 1.5 s). Young collections every 10,000 allocations instead of 700
    let them pile up unscanned (cycles are still collected, a little later); freezing what is
    left before exit skips the last scan (files are written and closed by then; finalizers and
    atexit handlers still run). `main` itself leaves the collector alone: tests and other
    programs call it in their own process."""
    gc.set_threshold(10_000, 10, 10)
    code = main(argv)
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
