"""Task and model registries: explicit names, filled by decorators, plugins found by import."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, TypeVar

from .errors import EvalkitError

T = TypeVar("T")


class Registry:
    """Name -> factory map whose unknown-name error lists what is valid."""

    def __init__(self, kind: str, discover: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, object] = {}
        self._discover = discover
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj
        return deco

    def _ensure(self) -> None:
        if not self._discovered and self._discover is not None:
            self._discovered = True
            self._discover()

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._items)

    def get(self, name: str):
        self._ensure()
        if name not in self._items:
            raise EvalkitError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}")
        return self._items[name]


def _import_all(package: str) -> None:
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")


TASKS = Registry("task", lambda: _import_all("evalkit.tasks"))
MODELS = Registry("model", lambda: _import_all("evalkit.models"))
