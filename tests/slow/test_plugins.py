"""Plugins from other installed packages and the installed wheel.

- A tiny external package (a task with its own shipped sample, and a backend) installed with pip
  into a temporary folder is found through its entry points: `evalkit tasks` / `models` list
  it and `evalkit eval` runs it, in a fresh process with that folder on its path.
- A plugin that fails to import, or whose name is taken, is one line naming it.
- evalkit's own wheel, installed into a temporary folder, lists its tasks and loads a shipped
  sample and the report templates with the repository nowhere on the path.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from evalkit.errors import EvalkitError
from evalkit.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]

PLUGIN_TASK = '''
"""A three-question counting task shipped by a package outside evalkit."""
from evalkit.task import Task, question_request
from evalkit.types import Score


class CountTask(Task):
    name = "demo-count"
    title = "Count the squares (plugin)"
    hub_id = "local/demo-count"
    split = "validation"
    id_field = "id"
    required_columns = ("id", "question", "answers", "image")
    metric = "exact_match"
    max_new_tokens = 4
    sample_note = "three generated images"

    def build_requests(self, row, uid):
        return question_request(uid, row["question"], row["image"], self.max_new_tokens)

    def score_text(self, row, prediction):
        return Score(1.0 if prediction.strip().lower() in self.gold(row) else 0.0)
'''

PLUGIN_BACKEND = '''
from evalkit.errors import EvalkitError
from evalkit.models.base import Backend, Prepared
from evalkit.types import Response


class EchoBackend(Backend):
    name = "demo-echo"

    def __init__(self, spec):
        self.spec = spec

    def estimate_length(self, request):
        return len(request.text)

    def prepare(self, request):
        return Prepared(request, {}, len(request.text.split()), None)

    def generate(self, batch):
        return [Response(p.request.uid, text=p.request.text.split()[0], n_input_tokens=p.n_input_tokens,
                         n_output_tokens=1) for p in batch]

    def loglikelihood(self, batch):
        raise EvalkitError("demo-echo has no log-likelihoods")

    def cache_key(self):
        return "demo-echo-1"

    def describe(self):
        return {"name": self.name, "model_id": None, "pipeline_check": False, "image_tokens_per_image": None}

    def reset_peak_memory(self):
        pass

    def peak_memory(self):
        return {"device": "cpu", "peak_bytes": None, "kind": "not measured"}


def load_echo(spec, cache_dir=None):
    """Answers every question with its first word (a plugin test backend)."""
    return EchoBackend(spec)
'''


# The echo backend answers with the question's first word: rows 0 and 2 are right, row 1 is not.
QUESTIONS = [("a", "one of them: how many squares?", ["one"]), ("b", "two of them: how many squares?", ["4"]),
             ("c", "three of them: how many squares?", ["three", "3"])]


def _write_sample(path: Path) -> None:
    import io

    import datasets
    from PIL import Image

    def png(n: int) -> bytes:
        img = Image.new("RGB", (48, 48), "white")
        for k in range(n):
            img.paste((0, 0, 0), (4 + 14 * k, 18, 14 + 14 * k, 28))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    features = datasets.Features({"id": datasets.Value("string"), "question": datasets.Value("string"),
                                  "answers": datasets.Sequence(datasets.Value("string")), "image": datasets.Image()})
    ds = datasets.Dataset.from_dict({"id": [q[0] for q in QUESTIONS], "question": [q[1] for q in QUESTIONS],
                                     "answers": [q[2] for q in QUESTIONS],
                                     "image": [{"bytes": png(n), "path": None} for n in (1, 4, 3)]}, features=features)
    path.parent.mkdir(parents=True)
    ds.to_parquet(str(path))


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The plugin package as an installer leaves it: the package (with its shipped sample) and
    a dist-info folder whose entry_points.txt names the task and the backend."""
    site = tmp_path_factory.mktemp("plugin-site")
    pkg = site / "evalkit_demo_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text(PLUGIN_TASK)
    (pkg / "backend.py").write_text(PLUGIN_BACKEND)
    _write_sample(pkg / "samples" / "demo-count" / "validation-00000-of-00001.parquet")
    _dist_info(site, "evalkit-demo-plugin", "evalkit.tasks", {"demo-count": "evalkit_demo_plugin.task:CountTask"})
    (site / "evalkit_demo_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[evalkit.tasks]\ndemo-count = evalkit_demo_plugin.task:CountTask\n\n"
        "[evalkit.backends]\ndemo-echo = evalkit_demo_plugin.backend:load_echo\n")
    return site


def _evalkit(commands: list[list[str]], plugin_path: Path, cwd: Path) -> list[tuple[int, str]]:
    """Each command's (exit code, stdout), run by evalkit's CLI in one fresh process (one
    start-up instead of four) whose path holds the plugin's folder."""
    script = ("import json, sys\nfrom evalkit.cli.commands import main\n"
              "for args in json.loads(sys.argv[1]):\n"
              "    rc = main(args)\n"
              "    print(f'\\n=== rc {rc}', flush=True)\n")
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    parts = proc.stdout.split("\n=== rc ")
    return [(int(after.split("\n", 1)[0]), before.split("\n", 1)[1] if i else before)
            for i, (before, after) in enumerate(zip(parts, parts[1:]))]


def test_an_installed_plugin_task_and_backend_are_listed_and_run(plugin_path, tmp_path, tiny_cache):
    runs = tmp_path / "runs"
    (rc_tasks, tasks), (rc_models, models), (rc_echo, _), (rc_tiny, _) = _evalkit([
        ["tasks"], ["models"],
        # the plugin's task on the plugin's backend: a known score (2 of 3 right)
        ["eval", "--task", "demo-count", "--model", "demo-echo", "--limit", "3", "--runs-dir", str(runs),
         "--run-name", "echo", "--no-progress"],
        # the plugin's task on the tiny model: its shipped sample through the real pipeline
        ["eval", "--task", "demo-count", "--limit", "3", "--runs-dir", str(runs), "--run-name", "tiny",
         "--cache-dir", str(tiny_cache), "--device", "cpu", "--no-progress"]], plugin_path, tmp_path)
    assert (rc_tasks, rc_models, rc_echo, rc_tiny) == (0, 0, 0, 0)
    row = next(line for line in tasks.splitlines() if line.startswith("demo-count"))
    assert row.split() == ["demo-count", "local/demo-count", "validation", "exact_match", "-", "/", "-"]
    assert "demo-echo        Answers every question with its first word (a plugin test backend)." in models

    res = json.loads((runs / "echo" / "results.json").read_text())
    assert res["task"]["name"] == "demo-count" and res["model"]["name"] == "demo-echo"
    assert res["metrics"]["exact_match"]["value"] == pytest.approx(200 / 3)
    assert res["counts"]["n_samples"] == 3 and res["counts"]["n_scored"] == 3
    preds = [json.loads(line)["prediction"] for line in (runs / "echo" / "samples.jsonl").read_text().splitlines()]
    assert preds == ["one", "two", "three"]

    res = json.loads((runs / "tiny" / "results.json").read_text())
    records = [json.loads(line) for line in (runs / "tiny" / "samples.jsonl").read_text().splitlines()]
    assert [r["sample_id"] for r in records] == ["a", "b", "c"] and all(r["error"] is None for r in records)
    assert res["model"]["pipeline_check"] is True and res["counts"]["n_scored"] == 3
    # the headline is the exact-match rule applied to the tiny model's own answers
    hits = [float(r["prediction"].strip().lower() in gold) for r, (_, _, gold) in zip(records, QUESTIONS)]
    assert res["metrics"]["exact_match"]["value"] == pytest.approx(100 * sum(hits) / 3)


def _no_builtins(site: Path) -> str:
    """An empty package standing in for evalkit's own (scanned before the entry points)."""
    (site / "no_builtins").mkdir()
    (site / "no_builtins" / "__init__.py").write_text("")
    return "no_builtins"


def _dist_info(site: Path, dist: str, group: str, entries: dict[str, str]) -> None:
    """A minimal installed distribution: what importlib.metadata reads entry points from."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))


def test_a_plugin_that_fails_to_import_is_one_line_naming_it(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("import a_module_that_is_not_installed\n")
    _dist_info(tmp_path, "broken-plugin", "evalkit.test-tasks", {"broken": "broken_plugin:Task"})
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("task", _no_builtins(tmp_path), "evalkit.test-tasks")
    with pytest.raises(EvalkitError) as e:
        reg.names()
    assert str(e.value) == ("task plugin broken_plugin:Task (package broken-plugin) named 'broken' failed to import: "
                            "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'; fix or "
                            "uninstall that package")


def test_plugin_names_that_clash_are_one_line_naming_both(tmp_path, monkeypatch):
    (tmp_path / "clash_a.py").write_text("def load(spec, cache_dir=None):\n    '''A.'''\n")
    (tmp_path / "clash_b.py").write_text("def load(spec, cache_dir=None):\n    '''B.'''\n")
    _dist_info(tmp_path, "clash-a", "evalkit.test-backends", {"twin": "clash_a:load"})
    _dist_info(tmp_path, "clash-b", "evalkit.test-backends", {"twin": "clash_b:load"})
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("model", _no_builtins(tmp_path), "evalkit.test-backends")
    with pytest.raises(EvalkitError, match=r"^model name 'twin' is taken twice: by plugin clash_(a|b):load "
                                           r"\(package clash-(a|b)\) and by plugin clash_(a|b):load "
                                           r"\(package clash-(a|b)\); rename one of them"):
        reg.names()


def test_a_plugin_task_named_apart_from_its_entry_point_is_refused(tmp_path, monkeypatch):
    (tmp_path / "misnamed.py").write_text("from evalkit.task import Task\nclass T(Task):\n    name = 'docvqa'\n")
    _dist_info(tmp_path, "misnamed", "evalkit.test-tasks", {"mine": "misnamed:T"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EvalkitError, match="registered as 'mine' but its class is named 'docvqa'"):
        Registry("task", _no_builtins(tmp_path), "evalkit.test-tasks").names()


@pytest.mark.parametrize("kind,group,module,source,message", [
    ("task", "evalkit.test-tasks", "not_a_task", "class T:\n    name = 'x'\n",
     "is <class 'not_a_task.T'>, not a subclass of evalkit.task.Task; point the entry point at the Task class"),
    ("model", "evalkit.test-backends", "not_a_factory", "T = 3\n",
     "is 3, not a factory; point the entry point at a function (spec, cache_dir=None) -> Backend"),
])
def test_a_plugin_of_the_wrong_kind_is_refused(tmp_path, monkeypatch, kind, group, module, source, message):
    (tmp_path / f"{module}.py").write_text(source)
    _dist_info(tmp_path, "wrong-kind", group, {"x": f"{module}:T"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EvalkitError) as e:
        Registry(kind, _no_builtins(tmp_path), group).names()
    assert str(e.value) == f"{kind} plugin {module}:T (package wrong-kind) named 'x' {message}"


def test_the_wheel_lists_tasks_and_loads_shipped_files_without_the_repository(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("evalkit", "tasks", "audits", "reports"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(src)],
                   check=True, capture_output=True, cwd=tmp_path)
    target = tmp_path / "target"
    wheel = next((tmp_path / "wheel").glob("evalkit-*.whl"))
    subprocess.run([*PIP, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True, cwd=tmp_path)
    shutil.rmtree(src)
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()["purelib"]!r}]
        import evalkit
        assert evalkit.__file__.startswith({str(target)!r}), evalkit.__file__
        from evalkit.cli.commands import main
        main(["tasks"])
        main(["models"])  # the backends and tiny builds registered from their subpackages
        from evalkit.audits.sources import SOURCES
        from evalkit.pipeline.data import load_task_data
        from evalkit.registry import TASKS
        from evalkit.reports.html import load_script, make_env
        task = TASKS.get("docvqa")()
        rows = list(load_task_data(task, limit=2).rows)
        print("sample", task.sample_path().relative_to({str(target)!r}), len(rows), rows[0]["question"])
        print("templates", make_env().get_template("run.html.j2").filename.startswith({str(target)!r}),
              len(load_script("table_filter.js")) > 0, SOURCES["stable-bias"].sample_dir.is_dir())
    """)
    # -I -S: no user site, no working directory and no .pth files, so the venv's editable
    # install (a .pth hook pointing at this repository) cannot supply evalkit.
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:7]] == ["docvqa", "fairface", "mathvista", "mmmu", "textvqa", "vqav2"]
    assert {"hf", "openai", "vllm", "tiny-idefics2", "tiny-qwen2-vl"} <= {line.split()[0] for line in lines[7:]}
    from evalkit.pipeline.data import load_task_data
    from evalkit.tasks.docvqa import DocVQA

    first = next(iter(load_task_data(DocVQA(), limit=1).rows))["question"]
    assert f"sample evalkit/tasks/samples/docvqa 2 {first}" in lines
    assert "templates True True True" in lines
