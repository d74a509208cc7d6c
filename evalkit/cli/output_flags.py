"""Where a command writes: the one pair of output flags every writing command takes.

`--runs-dir DIR` (the parent folder, `runs` unless a command says otherwise) and `--run-name NAME`
(the folder under it). eval and score always spelled it this way; audit (`--name`, `--out-dir`),
compare and invariance (`--out`) and the benchmarks (`--out`) had their own spellings, which keep
working for one release with a one-line notice on stderr, each with its old meaning.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..results.runfolder import check_run_name


def add_output_args(p: argparse.ArgumentParser, default_name: str, runs_dir_default: Path | None = Path("runs"),
                    runs_dir_help: str = "parent folder of the output (default runs)") -> None:
    """The pair, with `default_name` saying in the help what --run-name falls back to."""
    p.add_argument("--runs-dir", type=Path, default=runs_dir_default, help=runs_dir_help)
    p.add_argument("--run-name", help=f"output folder's name under --runs-dir (default {default_name})")


def add_deprecated_path(p: argparse.ArgumentParser, flag: str, dest: str, meaning: str) -> None:
    """An old spelling kept for one release; `meaning` is what it still does."""
    p.add_argument(flag, dest=dest, type=Path, default=None,
                   help=f"deprecated: {meaning}; use --runs-dir and --run-name")


def deprecation_notice(old: str, new: str) -> None:
    print(f"evalkit: warning: {old} is deprecated and will be removed in the next release; use {new}",
          file=sys.stderr)


def output_dir(runs_dir: Path, run_name: str | None, default_name: str, exact: Path | None = None,
               exact_flag: str = "--out") -> Path:
    """The output folder. `exact` is an old flag's exact folder (its notice printed here, once per
    call); --run-name and an old exact folder together would disagree, so that is refused."""
    if exact is not None:
        if run_name is not None:
            from ..errors import EvalkitError

            raise EvalkitError(f"{exact_flag} {exact} and --run-name {run_name} both name the output folder; "
                               f"give --runs-dir and --run-name only")
        deprecation_notice(f"{exact_flag} DIR", f"--runs-dir {exact.parent} --run-name {exact.name}")
        return exact
    name = check_run_name(run_name) if run_name is not None else default_name
    return Path(runs_dir) / name
