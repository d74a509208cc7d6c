"""Dependencies point one way: the engine (evalkit's modules other than the CLI's, and the tasks
installed as evalkit.tasks) imports nothing from the reports, the audit or the CLI. The CLI
wires them: it runs the engine, then draws reports from the files the engine wrote.

Read from the source with `ast`, so an import hidden in a function body counts as much as one
at the top of a module, and relative imports are resolved against the module's package."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI_MODULES = {"evalkit.cli", "evalkit.compare_cli", "evalkit.invariance_cli"}
FORBIDDEN = ("evalkit.reports", "evalkit.audits", *sorted(CLI_MODULES))
IMPORT_FUNCTIONS = {"import_module", "__import__"}  # importlib.import_module("..."), __import__("...")


def engine_modules() -> dict[str, Path]:
    """Module name -> file, for every engine module (the folders as pyproject installs them)."""
    out = {}
    for folder, package in ((ROOT / "evalkit", "evalkit"), (ROOT / "tasks", "evalkit.tasks")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if name not in CLI_MODULES:
                out[name] = path
    return out


def imported_names(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of everything `source` imports, anywhere in it."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from evalkit import reports` imports the module evalkit.reports
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names]
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else None
            if name in IMPORT_FUNCTIONS and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    return [f"line {line}: {name}" for line, name in imported_names(source, module, is_package)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


def test_the_engine_imports_no_report_audit_or_cli_module():
    modules = engine_modules()
    assert {"evalkit.runner", "evalkit.scoring", "evalkit.generation", "evalkit.results", "evalkit.models.hf",
            "evalkit.tasks.docvqa"} <= set(modules)
    assert not CLI_MODULES & set(modules)
    bad = {name: v for name, path in modules.items()
           if (v := violations(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"))}
    assert bad == {}


@pytest.mark.parametrize("source, module", [
    ("from evalkit.reports.run_report import render_run_report", "evalkit.runner"),
    ("def f():\n    if True:\n        import evalkit.audits.runner", "evalkit.runner"),
    ("def f():\n    from ..reports import index", "evalkit.models.hf"),
    ("from . import audits", "evalkit.scoring"),
    ("from evalkit import reports", "evalkit.tasks.docvqa"),
    ("from ..reports.html import fmt_num", "evalkit.tasks.docvqa"),
    ("import importlib\nimportlib.import_module('evalkit.reports.index')", "evalkit.compare"),
    ("from .cli import positive_int", "evalkit.invariance"),
])
def test_the_check_finds_every_form_of_import(source, module):
    assert len(violations(source, module)) == 1


def test_the_check_lets_engine_imports_pass():
    source = "from .results import read_run\nfrom ..errors import EvalkitError\nimport evalkit.report_helpers"
    assert violations(source, "evalkit.models.hf") == []
    # a package's own relative import resolves inside it
    assert imported_names("from . import hf", "evalkit.models", is_package=True) == [(1, "evalkit.models.hf")]
