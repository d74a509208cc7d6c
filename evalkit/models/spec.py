"""What the user asked for: which model (backend and id), its prompt style, and the options its
backend declares (evalkit.models.options). Every backend reads the same three shared fields;
everything else is declared by the backends that read it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import EvalkitError
from .options import catalog, declared

PROMPT_STYLES = ("instruct", "base")


def _check_prompt_style(value) -> None:
    if value not in PROMPT_STYLES:
        raise EvalkitError(f"prompt style {value!r} is not valid; use one of {', '.join(PROMPT_STYLES)}")


def _is_default(value, default) -> bool:
    return type(value) is type(default) and value == default  # True is not 1, 1.0 is not 1


@dataclass(frozen=True, init=False)
class ModelSpec:
    name: str = "tiny-idefics2"  # a registered backend: "tiny-idefics2", "hf", "vllm", "openai", a plugin's
    model_id: str | None = None  # hub id, local folder or served model name
    prompt_style: str = "instruct"
    # the backend options set away from their declared defaults, as sorted (name, value) pairs so
    # the spec stays hashable; read them as attributes (spec.dtype), defaults included
    options: tuple[tuple[str, Any], ...] = ()

    def __init__(self, name: str = "tiny-idefics2", model_id: str | None = None, prompt_style: str = "instruct",
                 options: Any = (), **settings: Any):
        given = {**dict(options), **settings}
        known = catalog()
        for key in sorted(given):
            if key not in known:
                raise EvalkitError(f"model option {key!r} is not declared by any backend; declared options: "
                                   f"{', '.join(known)}")
        _check_prompt_style(prompt_style)
        for key, (opt, _) in known.items():  # declaration order: the first bad setting is reported
            if key in given:
                opt.validate(given[key])
        kept = tuple(sorted((k, v) for k, v in given.items() if not _is_default(v, known[k][0].default)))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "model_id", model_id)
        object.__setattr__(self, "prompt_style", prompt_style)
        object.__setattr__(self, "options", kept)

    def __getattr__(self, attr: str):
        # only reached for names that are not fields: a declared option's value or default
        if attr.startswith("__") or "options" not in self.__dict__:
            raise AttributeError(attr)
        for k, v in self.__dict__["options"]:
            if k == attr:
                return v
        opt = catalog().get(attr)
        if opt is None:
            raise AttributeError(f"ModelSpec has no option {attr!r}")
        return opt[0].default

    def to_dict(self) -> dict:
        """Flat: the shared fields and every declared option's value (results' and config.json's shape)."""
        d = {"name": self.name, "model_id": self.model_id, "prompt_style": self.prompt_style}
        for key in catalog():
            d[key] = getattr(self, key)
        return d

    @property
    def label(self) -> str:
        """The model's short name for run folders: the last part of the hub id or folder, else the backend."""
        return (self.model_id or self.name).rstrip("/").split("/")[-1]

    def cache_key(self) -> str:
        """Identity of the outputs this spec produces: the shared fields and this backend's options
        that change outputs (a device, a timeout, a server's concurrency do not)."""
        from ..registry import MODELS

        d = {"name": self.name, "model_id": self.model_id, "prompt_style": self.prompt_style}
        for opt in declared(MODELS.get(self.name)):
            if opt.in_cache_key:
                d[opt.name] = getattr(self, opt.name)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def check_setting(name: str, value: Any) -> None:
    """One model setting checked on its own (a config file's key), by the same rule as the spec."""
    if name == "prompt_style":
        _check_prompt_style(value)
        return
    opt = catalog().get(name)
    if opt is not None:
        opt[0].validate(value)


def settings_dict(config) -> dict:
    """asdict(config) with every ModelSpec in it flat (its to_dict), as config.json has always held it."""
    d = asdict(config)
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, ModelSpec):
            d[f.name] = value.to_dict()
    return d


def without_credentials(data):
    """`data` (a spec's or config's dict, nested) with the user and password taken out of every
    `base_url`: they are for the connection only, never for a file (see models.backends.http.parse_base_url)."""
    from .backends.http import parse_base_url

    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if k.endswith("base_url") and isinstance(v, str):
                try:
                    v = parse_base_url(v).shown
                except EvalkitError:
                    v = "(not a valid URL; not recorded)"
            out[k] = without_credentials(v)
        return out
    if isinstance(data, list):
        return [without_credentials(v) for v in data]
    return data

