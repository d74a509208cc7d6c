"""Shared fixtures: the embedded tiny model is built once per test session into a temp folder."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    from evalkit.models.tiny import tiny_path

    cache = tmp_path_factory.mktemp("evalkit-cache")
    tiny_path(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_backend(tiny_cache):
    from evalkit.models import ModelSpec, load_backend

    return load_backend(ModelSpec(name="tiny-idefics2", device="cpu"), cache_dir=tiny_cache)


@pytest.fixture(scope="session")
def docvqa_rows():
    from evalkit.data import load_task_data
    from evalkit.tasks.docvqa import DocVQA

    return list(load_task_data(DocVQA()).rows)
