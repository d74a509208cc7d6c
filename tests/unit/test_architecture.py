"""Dependencies point one way: the engine (evalkit's modules outside its command-line package
evalkit.cli, and the tasks installed as evalkit.tasks) imports nothing from the reports, the audit
or the CLI. The CLI wires them: it runs the engine, then draws reports from the files the engine
wrote. The engine is grouped by role into subpackages; only the plugin API sits at its top.

Read from the source with `ast`, so an import hidden in a function body counts as much as one
at the top of a module, and relative imports are resolved against the module's package."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = "evalkit.cli"  # the command line is one package, recognized by its name
FORBIDDEN = ("evalkit.reports", "evalkit.audits", CLI)
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
            if not within(name, CLI):
                out[name] = path
    return out


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


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
            if any(within(name, f) for f in FORBIDDEN)]


def test_the_engine_imports_no_report_audit_or_cli_module():
    modules = engine_modules()
    assert {"evalkit.pipeline.runner", "evalkit.pipeline.score_predictions", "evalkit.pipeline.generation_stage",
            "evalkit.results.schema", "evalkit.models.backends.hf", "evalkit.tasks.docvqa"} <= set(modules)
    assert not [name for name in modules if within(name, CLI)]
    bad = {name: v for name, path in modules.items()
           if (v := violations(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"))}
    assert bad == {}


@pytest.mark.parametrize("source, module", [
    ("from evalkit.reports.run_report import render_run_report", "evalkit.pipeline.runner"),
    ("def f():\n    if True:\n        import evalkit.audits.runner", "evalkit.pipeline.runner"),
    ("def f():\n    from ...reports import index", "evalkit.models.backends.hf"),
    ("from .. import audits", "evalkit.pipeline.score_predictions"),
    ("from evalkit import reports", "evalkit.tasks.docvqa"),
    ("from ..reports.html import fmt_num", "evalkit.tasks.docvqa"),
    ("import importlib\nimportlib.import_module('evalkit.reports.index')", "evalkit.analyses.compare"),
    ("from ..cli.commands import positive_int", "evalkit.analyses.invariance"),
    ("from .. import cli", "evalkit.pipeline.runner"),
    ("import evalkit.cli", "evalkit.models.backends.hf"),
])
def test_the_check_finds_every_form_of_import(source, module):
    assert len(violations(source, module)) == 1


def test_the_check_lets_engine_imports_pass():
    source = ("from ...results.schema import read_run\nfrom ...errors import EvalkitError\n"
              "import evalkit.report_helpers\nimport evalkit.client")
    assert violations(source, "evalkit.models.backends.hf") == []
    # a package's own relative import resolves inside it
    assert imported_names("from . import hf", "evalkit.models.backends", is_package=True) == [
        (1, "evalkit.models.backends.hf")]


# --- the engine grouped by role -------------------------------------------------------------

# What plugins import from evalkit's top: the task interface, the registries, the boundary types,
# the errors and the shipped-file helper. Everything else sits in a subpackage named for its role.
PLUGIN_API = {"evalkit", "evalkit.errors", "evalkit.registry", "evalkit.resources", "evalkit.task", "evalkit.types"}
ROLES = {"analyses", "cli", "metrics", "models", "pipeline", "results"}


def all_evalkit_modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package), for everything under evalkit/ (the CLI included)."""
    out = {}
    for path in sorted((ROOT / "evalkit").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def test_only_the_plugin_api_sits_at_the_top_and_the_rest_in_role_packages():
    modules = all_evalkit_modules()
    top_modules = {name for name, (_, is_package) in modules.items() if name.count(".") <= 1 and not is_package}
    assert top_modules | {"evalkit"} == PLUGIN_API
    packages = {name.split(".")[1] for name, (_, is_package) in modules.items() if name.count(".") == 1 and is_package}
    assert packages == ROLES


def test_every_module_and_package_says_what_it_holds():
    """A docstring whose first line is a sentence, not blank (a newcomer reads these first)."""
    missing = []
    for name, (path, _) in all_evalkit_modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc or not doc.splitlines()[0].strip():
            missing.append(name)
    assert missing == []


def test_the_public_plugin_import_paths_still_work():
    from evalkit.models import MODELS as models_registry, ModelSpec, load_backend
    from evalkit.models.base import Backend, Prepared
    from evalkit.registry import MODELS, TASKS, Registry
    from evalkit.task import Task, TaskSpec
    from evalkit.types import Request, Response, Rule, SampleRecord, Score

    assert models_registry is MODELS and isinstance(TASKS, Registry)
    assert TaskSpec.__dataclass_fields__["headline_rule"].type in ("Rule | None", Rule | None)
    assert all(callable(x) for x in (ModelSpec, load_backend, Backend, Prepared, Task, Request, Response,
                                     SampleRecord, Score))
    # the console script's target and `python -m evalkit.cli` enter through the package
    import evalkit.cli

    assert evalkit.cli.console_main.__module__ == "evalkit.cli.commands"
    assert (ROOT / "evalkit" / "cli" / "__main__.py").is_file()


def import_layers(edges: dict[str, set[str]]) -> int:
    """How many layers deep the import graph stands: the longest chain of modules each importing
    the next, where modules that import one another (a cycle through lazy imports) count as one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    component: dict[str, int] = {}
    members: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w not in component:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                component[w] = len(members)
                group.append(w)
                if w == v:
                    break
            members.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    depth: dict[int, int] = {}
    for c, group in enumerate(members):  # Tarjan emits a component after all it reaches
        below = {component[w] for v in group for w in edges.get(v, ())} - {c}
        depth[c] = 1 + max((depth[b] for b in below), default=0)
    return max(depth.values(), default=0)


def evalkit_import_graph() -> dict[str, set[str]]:
    """Module -> the evalkit modules it imports anywhere in its source (lazy imports included)."""
    modules = all_evalkit_modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        found = set()
        for _, target in imported_names(path.read_text(encoding="utf-8"), name, is_package):
            # `from .x import name` names a module or something inside x
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
        graph[name] = found
    return graph


def test_import_layers_counts_a_chain_and_folds_a_cycle():
    assert import_layers({"a": {"b"}, "b": {"c"}, "c": set()}) == 3
    assert import_layers({"a": {"b"}, "b": {"c"}, "c": {"b", "d"}, "d": set()}) == 3
    assert import_layers({"a": set(), "b": set()}) == 1


def test_the_engine_stands_at_most_ten_import_layers_deep():
    # Measured with this function: 12 layers when evalkit/ was one flat folder (13 counting a
    # cycle's modules apart), 10 after the regrouping; a new deeper chain shows up here first.
    graph = evalkit_import_graph()
    assert {"evalkit.task", "evalkit.cli.commands", "evalkit.models.backends.hf"} <= set(graph)
    assert "evalkit.analyses.stats" in graph["evalkit.task"]
    assert import_layers(graph) <= 10
