"""Shared fixtures: the embedded tiny model is built once per test session into a temp folder."""
from __future__ import annotations

import pytest


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
    from benchmarks.serve_bench import LocalServer, served_copy
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

    from tests.scripted_server import ScriptedHandler, ScriptedServer

    handler = type("Handler", (ScriptedHandler,), {"script": [], "seen": []})
    server = ScriptedServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
