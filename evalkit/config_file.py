"""`evalkit eval --config run.toml`: a command's settings from a file, flags on the command line winning.

Keys are the command's long option names, with dashes or underscores (`batch-size`,
`batch_size`, `split-images`), at the top level of the file. Values are checked by the same
parsers as the flags, so a file cannot hold a setting the command line would refuse. A flag
given on the command line wins over the file's key; a setting in neither keeps its default.
Switches (`split-images = true`) can only be turned on by a file: the command line has no
flag to turn them off again.

TOML (`.toml`, read with the standard library); YAML (`.yaml`/`.yml`) when PyYAML is installed.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import EvalkitError

# Options that are not settings: the file itself, and argparse's own --help.
NOT_SETTINGS = ("config", "help")


def read_settings(path: Path) -> dict[str, Any]:
    """The file's key -> value table; a missing, unreadable or malformed file is an EvalkitError."""
    path = Path(path)
    if not path.is_file():
        raise EvalkitError(f"--config {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EvalkitError(f"--config {path}: cannot read it ({e})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise EvalkitError(f"--config {path}: YAML needs PyYAML (pip install pyyaml); "
                               f"or write the file as TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise EvalkitError(f"--config {path}: not valid YAML: {' '.join(str(e).split())}") from None
        data = {} if data is None else data
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise EvalkitError(f"--config {path}: not valid TOML: {e}") from None
    if not isinstance(data, dict):
        raise EvalkitError(f"--config {path}: expected key = value settings, found a {type(data).__name__}")
    return data


def settings_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Setting key (long option name without dashes) -> its argparse action."""
    out = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or action.dest in NOT_SETTINGS:
            continue
        out[longs[0][2:]] = action
    return out


def explicit_dests(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The settings the command line gave: argv parsed again with every default suppressed,
    so only options actually present land in the namespace (abbreviations included)."""
    saved = [(a, a.default, a.required) for a in parser._actions]
    try:
        for a in parser._actions:
            a.default = argparse.SUPPRESS
            a.required = False
        ns, _ = parser.parse_known_args(argv)
    finally:
        for a, default, required in saved:
            a.default, a.required = default, required
    return set(vars(ns))


def convert(key: str, value: Any, action: argparse.Action, source: str) -> Any:
    """A file value as the flag's parser would produce it, or a one-line error naming the key."""
    where = f"--config {source}: {key}"
    if isinstance(value, dict):
        raise EvalkitError(f"{where} is a table; write every setting as a top-level `key = value` line")
    if action.nargs == 0:  # a switch (store_true)
        if not isinstance(value, bool):
            raise EvalkitError(f"{where} = {value!r}: use true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EvalkitError(f"{where} = {value!r}: expected {_expected(action)}")
    if isinstance(value, int) and action.type in (None, str, Path):
        raise EvalkitError(f"{where} = {value!r}: expected {_expected(action)}")
    if action.type is not None:
        try:
            value = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            raise EvalkitError(f"{where} = {value!r}: {e}") from None
    if action.choices is not None and value not in action.choices:
        raise EvalkitError(f"{where} = {value!r}: use one of {', '.join(map(str, action.choices))}")
    return value


def _expected(action: argparse.Action) -> str:
    if action.type in (None, str, Path):
        return "a string"
    if action.type is int:
        return "an integer"
    return "an integer or string the flag accepts"


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand `name` (argparse keeps it on its subparsers action)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def apply(parser: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace,
          path: Path) -> argparse.Namespace:
    """args with the file's settings filled in wherever the command line did not give the flag.
    `parser` is the subcommand's parser and `argv` its arguments (after the subcommand name)."""
    settings = read_settings(path)
    options = settings_options(parser)
    given = explicit_dests(parser, argv)
    seen: dict[str, str] = {}
    for raw_key, value in settings.items():
        key = str(raw_key).replace("_", "-")
        action = options.get(key)
        if action is None:
            raise EvalkitError(f"--config {path}: unknown key {str(raw_key)!r}; valid keys: "
                               f"{', '.join(sorted(options))}")
        if key in seen:
            raise EvalkitError(f"--config {path}: {raw_key!r} and {seen[key]!r} are the same setting; keep one")
        seen[key] = str(raw_key)
        converted = convert(str(raw_key), value, action, str(path))
        if action.dest not in given:
            setattr(args, action.dest, converted)
    return args
