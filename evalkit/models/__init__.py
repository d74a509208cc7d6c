"""Model backends. `load_backend(spec)` picks one by name from the MODELS registry."""
from __future__ import annotations

from pathlib import Path

from ..registry import MODELS
from .spec import ModelSpec

__all__ = ["ModelSpec", "load_backend", "MODELS"]


def load_backend(spec: ModelSpec, cache_dir: Path | None = None):
    factory = MODELS.get(spec.name)
    return factory(spec, cache_dir=cache_dir)
