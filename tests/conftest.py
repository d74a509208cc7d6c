"""Shared fixtures (the embedded tiny model is built once per test session into a temp folder) and
the tiers: a test's folder is its tier, so `pytest -m unit` and `pytest tests/unit` select the same
tests and no file has to remember to mark itself.

- unit/: pure functions and file-level commands (score, compare, report) on shipped samples; no
  model is built. `make test-fast` runs these.
- e2e/: runs on the embedded tiny models (every family's tiny build), in this process.
- slow/: real servers, extra processes (gloo ranks, the GPU check's dry run, a built wheel),
  headless Chromium, the benchmarks' own checks.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = ("unit", "e2e", "slow")
RUN_ORDER = ("slow", "e2e", "unit")
_HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    # `make test` runs the suite in pytest-xdist workers, one per core: torch's own intra-op
    # threads on top of that oversubscribe the cores (the tiny models gain nothing from them,
    # and OpenMP's spinning threads slowed a run tenfold). Set before any test imports torch, and
    # inherited by the processes tests start (servers, ranks, the GPU check's steps).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(config, items):
    tiers = {}
    for item in items:
        tiers[item.nodeid] = tier = _tier_of(item.path)
        if tier is not None:
            item.add_marker(tier)
    # The slow tier first: its few long tests (extra processes, servers) then overlap with the
    # many short ones instead of finishing alone at the end of a parallel run.
    items.sort(key=lambda item: RUN_ORDER.index(tiers[item.nodeid] or "slow"))


def _tier_of(path) -> str | None:
    """The tier a test file's folder names; None for a test collected from elsewhere (a path
    given by hand)."""
    path = Path(str(path)).resolve()
    if not path.is_relative_to(_HERE):
        return None
    rel = path.relative_to(_HERE)
    if rel.parts[0] not in TIERS:
        raise pytest.UsageError(f"{rel}: a test file belongs in one of tests/{{{','.join(TIERS)}}}/")
    return rel.parts[0]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    from evalkit.models.tiny.idefics2 import tiny_path

    cache = tmp_path_factory.mktemp("evalkit-cache")
    tiny_path(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_backend(tiny_cache):
    from evalkit.models import ModelSpec, load_backend

    return load_backend(ModelSpec(name="tiny-idefics2", device="cpu"), cache_dir=tiny_cache)


@pytest.fixture(scope="session")
def docvqa_rows():
    from evalkit.pipeline.data import load_task_data
    from evalkit.tasks.docvqa import DocVQA

    return list(load_task_data(DocVQA()).rows)


@pytest.fixture(scope="session")
def served_tiny(tiny_cache, tmp_path_factory):
    """A real `transformers serve` process on 127.0.0.1 (free port) serving the tiny model, once
    per session; tests that kill it start it again on the same port (`.start()`)."""
    from tests.helpers.local_server import LocalServer, served_copy
    from evalkit.models.tiny.idefics2 import tiny_path

    work = tmp_path_factory.mktemp("served")
    server = LocalServer(served_copy(tiny_path(tiny_cache), work / "tiny-idefics2-served"),
                         log_path=work / "serve.log").start()
    yield server
    server.kill()


@pytest.fixture
def scripted():
    """(handler class, base URL) of a ScriptedHandler on a free port: append (status, headers, body)
    to `handler.script`; `handler.seen` holds what each POST carried."""
    import threading

    from tests.helpers.scripted_server import ScriptedHandler, ScriptedServer

    handler = type("Handler", (ScriptedHandler,), {"script": [], "seen": []})
    server = ScriptedServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
