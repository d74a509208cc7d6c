"""Model families for the `hf` backend, chosen from the loaded model's `config.model_type`.

Adding a family: write one module in this package (say `myfamily.py`) that defines a
module-level `FAMILY = Family(name=..., model_types=(...), ...)` — or an instance of a
`Family` subclass that overrides `render_prompt`, `collate`, `continuation_inputs`,
`continuation_context`, `load_processor` or `model_inputs` — and
nothing else changes: `family_for` finds it. Modules whose name starts with "_" and `base`
are skipped. A model type no family claims gets `GENERIC`, which behaves as the backend did
before families existed (Idefics2's collation, `<end_of_utterance>` as a stop token when
the tokenizer has it), and results.json says "generic" so the reader knows no family-specific
facts were applied.

The embedded tiny builds of the families are registered as model names in
evalkit/models/tiny/<name>.py, through evalkit.models.tiny.build.
"""
from __future__ import annotations

from functools import lru_cache

from ...errors import EvalkitError
from ...registry import import_submodules
from .base import Family

__all__ = ["Family", "GENERIC", "all_families", "family_for", "family_named"]

GENERIC = Family(name="generic", model_types=(), stop_tokens=("<end_of_utterance>",))


@lru_cache(maxsize=1)
def all_families() -> tuple[Family, ...]:
    """Every family defined in this package, by module name. Two families claiming one model
    type is a programming error, reported with both names."""
    found: list[Family] = []
    owner: dict[str, str] = {}
    for module in import_submodules(__name__, skip=("base",)):
        family = getattr(module, "FAMILY", None)
        if not isinstance(family, Family):
            continue
        for mt in family.model_types:
            if mt in owner:
                raise EvalkitError(f"model type {mt!r} is claimed by two families: {owner[mt]} and {family.name}")
            owner[mt] = family.name
        found.append(family)
    return tuple(found)


def family_for(config) -> Family:
    """The family of a loaded model, from its top-level config's model_type (GENERIC if none)."""
    model_type = getattr(config, "model_type", None)
    for family in all_families():
        if model_type in family.model_types:
            return family
    return GENERIC


def family_named(name: str) -> Family:
    for family in all_families():
        if family.name == name:
            return family
    valid = ", ".join(f.name for f in all_families())
    raise EvalkitError(f"unknown model family {name!r}; known families: {valid}")
