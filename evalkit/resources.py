"""Files shipped inside installed packages (task samples, report templates).

They are found through `importlib.resources`, never by walking up from a source file: an
installed wheel has no repository around it, and a plugin package ships its own samples.
"""
from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from .errors import EvalkitError


def shipped_path(package: str, *parts: str) -> Path:
    """The file or folder `parts` inside `package`, as a file-system path: pyarrow and jinja2
    read them by path. It need not exist (a task without a shipped sample)."""
    try:
        root = resources.files(package)
    except (ModuleNotFoundError, TypeError) as e:
        raise EvalkitError(f"cannot find shipped files of {package!r}: {e}") from None
    target = root.joinpath(*parts)
    if not isinstance(target, Path):
        # A zip import has no folder to hand pyarrow; pip always installs unpacked.
        raise EvalkitError(f"{package} is installed without a file-system folder ({target}); "
                           f"install it unpacked (pip install) to read its shipped files")
    return target


def module_package(module_name: str) -> str:
    """The package a module belongs to (its own name when it is a package), whose shipped files
    a class defined there reads."""
    module = sys.modules[module_name]
    if hasattr(module, "__path__"):
        return module_name
    if not module.__package__:
        raise EvalkitError(f"module {module_name!r} is not inside a package, so it cannot ship files "
                           f"through importlib.resources; put it in a package")
    return module.__package__
