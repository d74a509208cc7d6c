"""Model options that each backend declares: flag, config-file key, default, check, cache-key role.

A backend lists its own options (an `options` tuple on its class or factory); the command
line's flags, the config file's keys (they are the long flag names), the checks on a
ModelSpec and the options table in docs/models.md are all read from those declarations, so
adding an option to one backend touches that backend's module only. Several backends may
declare the same option by sharing one `Option` object (hf, vllm and the tiny builds share
the local-model options; the served backend shares `longest_edge`).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import EvalkitError


@dataclass(frozen=True)
class Option:
    name: str  # the ModelSpec attribute, results' key and config key (dashes or underscores)
    default: Any
    help: str
    parse: Callable[[str], Any] | None = None  # flag text -> value (an argparse type); None keeps the text
    check: Callable[[Any], None] | None = None  # raises EvalkitError on a bad value, whichever way it came
    in_cache_key: bool = True  # False: the setting changes no output (a device, a timeout)
    flag: str | None = None  # the long flag when it is not --<name with dashes> (e.g. --attn)
    switch: bool = False  # a flag without a value that turns the (boolean) default around

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def validate(self, value: Any) -> None:
        if self.check is not None:
            self.check(value)

    def add_flag(self, group) -> None:
        if self.switch:  # metavar: a switch takes no value
            group.add_argument(self.flag_name, dest=self.name, default=self.default, help=self.help,
                               action="store_false" if self.default else "store_true")
        else:
            group.add_argument(self.flag_name, dest=self.name, default=self.default, help=self.help,
                               type=self.parse, metavar=self.flag_name[2:].upper().replace("-", "_"))


def with_options(*options: Option) -> Callable:
    """Decorator for a backend factory (a function): the options it reads from its ModelSpec."""
    def deco(factory):
        factory.options = tuple(options)
        return factory
    return deco


def declared(factory) -> tuple[Option, ...]:
    """The options a registered backend declares. One that declares none is read as a local
    transformers model, which is what every spec carried before options were declared, so a
    plugin backend's settings and cache key stay what they were."""
    own = getattr(factory, "options", None)
    if own is None:
        # looked up through the registry, not imported: the hf backend imports this module
        from ..registry import MODELS

        return tuple(MODELS.get("hf").options)
    return tuple(own)


def catalog(models=None) -> dict[str, tuple[Option, tuple[str, ...]]]:
    """Every declared option -> (its declaration, the backends declaring it), in registry order.
    Two backends that declare one name differently are a plugin error, named here."""
    if models is None:
        from ..registry import MODELS as models
    out: dict[str, tuple[Option, tuple[str, ...]]] = {}
    for backend in models.names():
        for opt in declared(models.get(backend)):
            if opt.name in out:
                known, users = out[opt.name]
                if known != opt:
                    raise EvalkitError(f"model option {opt.name!r} is declared differently by backends "
                                       f"{users[0]!r} and {backend!r}; share one Option or rename one")
                out[opt.name] = (known, users + (backend,))
            else:
                out[opt.name] = (opt, (backend,))
    return out


def add_option_flags(parser: argparse.ArgumentParser, models=None) -> None:
    """One argument group per set of backends, holding the flags of the options they declare."""
    groups: dict[tuple[str, ...], list[Option]] = {}
    for opt, users in catalog(models).values():
        groups.setdefault(users, []).append(opt)
    for users, opts in groups.items():
        g = parser.add_argument_group(f"model options of --model {_names(users)}")
        for opt in opts:
            opt.add_flag(g)


def _names(backends: tuple[str, ...]) -> str:
    """Backend names, the embedded tiny builds (which share every option) shown as tiny-*."""
    tiny = [b for b in backends if b.startswith("tiny-")]
    if len(tiny) < 2:
        return ", ".join(backends)
    return ", ".join(sorted({b if not b.startswith("tiny-") else "tiny-*" for b in backends}))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def options_table(models=None) -> str:
    """The markdown table of docs/models.md: one row per declared option."""
    rows = ["| flag | config key | default | backends | in cache key | what |", "|---|---|---|---|---|---|"]
    for opt, users in catalog(models).values():
        default = "(none)" if opt.default is None else opt.default
        if opt.switch:  # the flag (and its config key = true) turns the setting around
            default = "off (a switch)"
        rows.append(f"| `{opt.flag_name}` | `{opt.flag_name[2:]}` | {_cell(default)} | {_names(users)} | "
                    f"{'yes' if opt.in_cache_key else 'no'} | {_cell(opt.help)} |")
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- value parsers and checks

def number_arg(parse, accept, what: str):
    """An argparse type: `parse` the text, and refuse it unless `accept`s the value."""
    def convert(value: str):
        try:
            x = parse(value)
        except ValueError:
            x = None
        if x is None or not accept(x):
            raise argparse.ArgumentTypeError(f"{value!r}: use {what}")
        return x
    return convert


positive_int = number_arg(int, lambda n: n >= 1, "a positive integer")
positive_float = number_arg(float, lambda x: x > 0, "a positive number")
non_negative_int = number_arg(int, lambda n: n >= 0, "0 or a positive integer")


def one_of(what: str, valid: Iterable[str], allow_none: bool = False) -> Callable[[Any], None]:
    """A check refusing any value outside `valid`, with today's message: '<what> 'x' is not valid; use one of ...'."""
    valid = tuple(valid)

    def check(value):
        if (value is None and allow_none) or value in valid:
            return
        raise EvalkitError(f"{what} {value!r} is not valid; use one of {', '.join(valid)}")
    return check


def _check_longest_edge(value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 14):
        raise EvalkitError(f"longest edge {value} is not valid; use a positive multiple of 14 (e.g. 980)")


# Shared by the local backends (the processor resizes) and the served one (images are resized
# before they are sent), so declared once here.
LONGEST_EDGE = Option("longest_edge", None, "resize images to this longest edge (multiple of 14; 980 default)",
                      parse=int, check=_check_longest_edge)

