"""What every task plugin must do: declare its source, load its shipped sample in the
hub schema, build requests for every row, score its own gold answer as the maximum and an empty
answer as the minimum. A new plugin is covered by adding nothing: it is found in the registry."""
import dataclasses
import sys

import pytest

from evalkit.pipeline.data import load_task_data
from evalkit.registry import TASKS
from evalkit.task import TaskSpec
from evalkit.types import Request

TASK_NAMES = TASKS.names()


def test_every_task_class_under_tasks_is_registered():
    """Discovery finds every Task subclass a module under tasks/ defines (each under its own
    name), so the suite below covers a new plugin with no list here to edit."""
    import importlib
    import inspect
    import pkgutil

    import evalkit.tasks as tasks_pkg
    from evalkit.task import Task

    defined = set()
    for info in pkgutil.iter_modules(tasks_pkg.__path__):
        if not info.ispkg and not info.name.startswith("_"):
            module = importlib.import_module(f"evalkit.tasks.{info.name}")
            defined |= {cls for _, cls in inspect.getmembers(module, inspect.isclass)
                        if issubclass(cls, Task) and cls is not Task and cls.__module__ == module.__name__}
    # (tasks of other installed packages come through entry points: tests/test_plugins.py)
    registered = {name: cls for name in TASK_NAMES
                  if (cls := TASKS.get(name)).__module__.startswith("evalkit.tasks.")}
    assert defined and set(registered.values()) == defined
    assert all(cls.name == name for name, cls in registered.items())


@pytest.fixture(scope="module", params=TASK_NAMES)
def task_and_rows(request):
    task = TASKS.get(request.param)()
    return task, list(load_task_data(task).rows)


def test_spec_is_complete(task_and_rows):
    task, _ = task_and_rows
    assert task.hub_id and task.split and task.id_field and task.metric
    doc = sys.modules[type(task).__module__].__doc__
    assert doc and len(doc) > 200  # the module reads as a spec of its benchmark
    assert task.sample_note  # the report says what the shipped sample is
    # the facts are declared once, in the spec; the attributes read the same values
    spec = type(task).spec
    assert isinstance(spec, TaskSpec)
    assert all(getattr(task, f.name) == getattr(spec, f.name) for f in dataclasses.fields(TaskSpec))
    assert task.judges == bool(spec.judge_prompt_name)
    # published numbers are not the task's: they are rows of the reference table
    assert not hasattr(task, "reference")


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if TASKS.get(n).__module__.startswith("evalkit.tasks.")])
def test_name_is_written_once(name):
    """The registry takes the name from the spec, so the plugin file states it once: no name in
    the decorator, one `name=` (a scorer scheme may share the word, e.g. TextVQA's "textvqa")."""
    import inspect
    import re

    cls = TASKS.get(name)
    assert cls.name == cls.spec.name == name
    source = inspect.getsource(sys.modules[cls.__module__])
    assert not re.search(r"\.register\(\s*[\"']", source)
    assert len(re.findall(rf"\bname\s*=\s*[\"']{re.escape(name)}[\"']", source)) == 1


def test_sample_has_hub_columns_and_unique_ids(task_and_rows):
    task, rows = task_and_rows
    assert len(rows) >= 30
    assert all(c in rows[0] for c in task.required_columns)
    ids = [task.sample_id(r, i) for i, r in enumerate(rows)]
    assert len(set(ids)) == len(ids)


def test_every_row_builds_requests(task_and_rows):
    task, rows = task_and_rows
    for i, row in enumerate(rows):
        reqs = task.build_requests(row, str(i))
        assert reqs and all(isinstance(r, Request) and r.uid.startswith(str(i)) for r in reqs)
        assert all(r.images for r in reqs)


def _strict(score):
    """The score with unparseable answers counted wrong (MMMU and MathVista also report the
    official rule, under which an empty answer can still land on the right option)."""
    return score.extras.get("strict", score.value)


def test_gold_scores_max_and_empty_scores_min(task_and_rows):
    task, rows = task_and_rows
    for row in rows:
        gold = task.gold(row)
        assert gold, f"{task.name}: a shipped row without gold answers"
        # the best gold answer (for VQA: the one most annotators gave) gets full marks
        assert max(task.score_text(row, g).value for g in gold) == 1.0
        assert _strict(task.score_text(row, "")) == 0.0


def test_evalkit_score_on_gold_predictions(task_and_rows, tmp_path):
    """`evalkit score` works for every task with ids in the task's id field: predicting each row's
    best gold answer scores the maximum, with nothing missing or extra."""
    import json

    from evalkit.cli.commands import main
    from evalkit.results.schema import read_run

    task, rows = task_and_rows
    lines = []
    for i, row in enumerate(rows):
        best = max(task.gold(row), key=lambda g: task.score_text(row, g).value)
        lines.append(json.dumps({"id": task.sample_id(row, i), "prediction": best}))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    assert main(["score", "--task", task.name, "--predictions", str(preds), "--runs-dir", str(tmp_path),
                 "--run-name", "gold"]) == 0
    results, _ = read_run(tmp_path / "gold")
    assert results.metrics[results.headline]["value"] == 100.0
    assert results.counts.n_missing_predictions == 0 and results.counts.n_extra_predictions == 0
    assert results.counts.n_scored == len(rows)
