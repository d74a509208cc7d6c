"""Run folders: a checked name and an advisory lock while one process writes the folder.

A run name becomes one folder under the runs directory, so it must be one path component:
`../x`, an absolute path, `.` or a name the file system refuses would write elsewhere or fail
deep inside. Two processes writing one run would interleave its files (results.json from one,
samples.jsonl from the other) and both compute everything, so a writer holds an exclusive
`fcntl.flock` on `<run>/.lock`; a second writer is refused with one line. The lock is
advisory (other programs may still write the folder) and released by the kernel when the
process ends, kill -9 included, so a crashed run never leaves a stale lock behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import EvalkitError

MAX_NAME_CHARS = 120
LOCK_FILE = ".lock"


def check_run_name(name: str, flag: str = "--run-name") -> str:
    """`name` if it is a usable folder name, else EvalkitError naming `flag` and the rule."""
    rule = (f"use one folder name of at most {MAX_NAME_CHARS} printable characters, without '/' or '\\', "
            f"not '.' or '..'")
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not name or not name.strip():
        raise EvalkitError(f"{flag} {name!r} is empty; {rule}")
    if not name.isprintable():
        raise EvalkitError(f"{flag} {shown!r} holds control or non-printable characters; {rule}")
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        raise EvalkitError(f"{flag} {shown!r} is a path; {rule}")
    if name in (".", ".."):
        raise EvalkitError(f"{flag} {name!r} names the runs folder or its parent; {rule}")
    if len(name) > MAX_NAME_CHARS or len(name.encode("utf-8")) > 2 * MAX_NAME_CHARS:
        raise EvalkitError(f"{flag} {shown!r} is {len(name)} characters long; {rule}")
    return name


@contextlib.contextmanager
def locked_run_dir(run_dir: Path, lock_name: str = LOCK_FILE) -> Iterator[Path]:
    """Create `run_dir` if needed and hold its write lock for the block. If the block fails
    and this call created the folder, a folder holding nothing but config.json and the lock
    is removed, so a failed start leaves no empty run behind."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EvalkitError(f"cannot create the run folder {run_dir}: {e.strerror or e}") from None
    fh = _acquire(run_dir, lock_name)
    try:
        yield run_dir
    except BaseException:
        if created:
            _remove_if_unused(run_dir, lock_name)
        raise
    finally:
        fh.close()  # releases the lock


def _acquire(run_dir: Path, lock_name: str):
    path = run_dir / lock_name
    fh = open(path, "a+")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip()[:40]
        fh.close()
        raise EvalkitError(f"run folder {run_dir} is being written by another evalkit process"
                           f"{f' (pid {holder})' if holder.isdigit() else ''}; wait for it to finish "
                           f"or write elsewhere (another --run-name, or --runs-dir)") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _remove_if_unused(run_dir: Path, lock_name: str) -> None:
    try:
        left = {p.name for p in run_dir.iterdir()}
    except OSError:
        return
    if left <= {lock_name, "config.json"}:
        shutil.rmtree(run_dir, ignore_errors=True)
