"""The `evalkit` command's process entry (evalkit.cli.console_main): main, with the garbage
collector tuned for a one-shot process; `main` itself leaves the collector alone."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points


def test_the_evalkit_command_is_console_main():
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "evalkit"]
    assert ep.value == "evalkit.cli:console_main"


def test_console_main_runs_main_with_fewer_collections_and_none_at_exit():
    code = ("import gc, evalkit.cli as c; before = gc.get_threshold(); rc = c.console_main(['tasks']); "
            "print(before, gc.get_threshold(), gc.get_freeze_count() > 0, rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[0] == "task"  # main ran the command
    assert lines[-1] == "(700, 10, 10) (10000, 10, 10) True 0"


def test_main_leaves_the_collector_alone(capsys):
    import gc

    from evalkit.cli import main

    before = gc.get_threshold(), gc.get_freeze_count()
    assert main(["tasks"]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
