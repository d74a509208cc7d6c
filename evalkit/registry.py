"""Task and model registries: explicit names, filled by decorators and by plugin packages.

evalkit's own tasks and backends register themselves when their package is scanned. Another
installed package adds its own through an entry point, named as the task or backend and
pointing at the Task subclass or the backend factory:

    [project.entry-points."evalkit.tasks"]
    mytask = "mypkg.mytask:MyTask"

    [project.entry-points."evalkit.backends"]
    mybackend = "mypkg.backend:load_mybackend"
"""
from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata
from typing import TypeVar

from .errors import EvalkitError

T = TypeVar("T")

TASK_GROUP = "evalkit.tasks"
BACKEND_GROUP = "evalkit.backends"


class Registry:
    """Name -> factory map whose unknown-name error lists what is valid."""

    def __init__(self, kind: str, package: str | tuple[str, ...], group: str):
        self.kind = kind
        # evalkit's own, scanned: one package, or several when its modules sit in subpackages
        self.packages = (package,) if isinstance(package, str) else tuple(package)
        self.group = group  # entry-point group of other packages' plugins
        self._items: dict[str, object] = {}
        self._origin: dict[str, str] = {}  # name -> where it came from, for clash messages
        self._discovered = False

    def register(self, name=None):
        """`@REG.register("name")`, or bare `@REG.register` on a class that carries its own `name`
        (a Task's spec), so a task's name is written once."""
        if name is not None and not isinstance(name, str):
            return self.register()(name)

        def deco(obj: T) -> T:
            own = name if name is not None else getattr(obj, "name", None)
            if not isinstance(own, str) or not own:
                raise EvalkitError(f"{self.kind} {getattr(obj, '__qualname__', obj)!r} is registered without a name "
                                   f"and has no `name` of its own; give one: @register(\"<name>\")")
            self._add(own, obj, f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}")
            return obj
        return deco

    def _add(self, name: str, obj: object, origin: str) -> None:
        if name in self._items and self._items[name] is not obj:
            raise EvalkitError(f"{self.kind} name {name!r} is taken twice: by {self._origin[name]} and by "
                               f"{origin}; rename one of them (the plugin's entry point name)")
        self._items[name] = obj
        self._origin[name] = origin

    def _ensure(self) -> None:
        if not self._discovered:
            self._discovered = True
            for package in self.packages:
                import_submodules(package)
            for ep in _entry_points(self.group):
                self._add(ep.name, _load_plugin(self.kind, ep), _describe(ep))

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._items)

    def get(self, name: str):
        self._ensure()
        if name not in self._items:
            raise EvalkitError(
                f"unknown {self.kind} {_shown(name)}; valid {self.kind}s: {', '.join(self.names())}")
        return self._items[name]


def import_submodules(package: str, skip: tuple[str, ...] = ()) -> list:
    """Import every module of `package` except private ones ("_...") and `skip`, in name order;
    importing is what registers what they define."""
    pkg = importlib.import_module(package)
    return [importlib.import_module(f"{package}.{mod.name}") for mod in pkgutil.iter_modules(pkg.__path__)
            if not mod.name.startswith("_") and mod.name not in skip]


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    # A distribution found twice on sys.path (an editable install and a copy) lists its entry
    # points twice; the same name and target is one plugin.
    seen: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        seen.setdefault((ep.name, ep.value), ep)
    return list(seen.values())


def _describe(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"plugin {ep.value} (package {dist.name if dist else 'unknown'})"


def _load_plugin(kind: str, ep: metadata.EntryPoint) -> object:
    try:
        obj = ep.load()
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise EvalkitError(f"{kind} {_describe(ep)} named {ep.name!r} failed to import: {type(e).__name__}"
                           f"{': ' + first if first else ''}; fix or uninstall that package") from None
    if kind == "task":
        # Task is recognised by name in the class's ancestry: importing evalkit.task here would put
        # the registry (which every backend and family imports) above the task interface.
        if not (isinstance(obj, type) and any(c.__module__ == "evalkit.task" and c.__qualname__ == "Task"
                                              for c in obj.__mro__)):
            raise EvalkitError(f"task {_describe(ep)} named {ep.name!r} is {obj!r}, not a subclass of "
                               f"evalkit.task.Task; point the entry point at the Task class")
        if getattr(obj, "name", None) != ep.name:
            raise EvalkitError(f"task {_describe(ep)} is registered as {ep.name!r} but its class is named "
                               f"{getattr(obj, 'name', None)!r}; make the entry point name and the Task's "
                               f"`name` the same")
    elif not callable(obj):
        raise EvalkitError(f"{kind} {_describe(ep)} named {ep.name!r} is {obj!r}, not a factory; point the "
                           f"entry point at a function (spec, cache_dir=None) -> Backend")
    return obj


TASKS = Registry("task", "evalkit.tasks", TASK_GROUP)
# the backends and the tiny builds sit in subpackages of evalkit.models; a model package placed
# directly in evalkit.models registers when the first scan imports it
MODELS = Registry("model", ("evalkit.models", "evalkit.models.backends", "evalkit.models.tiny"), BACKEND_GROUP)


def _shown(name) -> str:
    """A name as an error shows it: a name from a file may be megabytes long."""
    text = repr(name)
    return text if len(text) <= 80 else text[:60] + f"... ({len(str(name)):,} characters)"
