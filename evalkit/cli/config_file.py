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
import reprlib
import stat
import sys
from pathlib import Path
from typing import Any

from ..errors import EvalkitError

# Options that are not settings: the file itself, and argparse's own --help.
NOT_SETTINGS = ("config", "help")


# A settings file is a few dozen short lines: anything far larger is not one, and a bound keeps
# a wrong path (a log, a dataset) or an expanding YAML from filling memory.
MAX_FILE_BYTES = 1 << 20
MAX_NODES = 10_000  # values in the parsed file, each alias counted again where it is used


def shown(value: Any) -> str:
    """`value`'s repr cut to a few dozen characters: reprlib stops early, so the repr of a huge
    value (or of a YAML alias expanding to billions of items) is never built."""
    r = reprlib.Repr()  # keyword arguments only from Python 3.12
    r.maxstring = r.maxother = 60
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 4
    r.maxlevel = 2
    return r.repr(value)


def _file_kind(mode: int) -> str | None:
    """What a path that is not a regular file is, for the message; None for a regular file."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def _read_text(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise EvalkitError(f"--config {path}: no such file") from None
    except OSError as e:
        raise EvalkitError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    kind = _file_kind(st.st_mode)
    if kind is not None:
        # not opened: a FIFO would block and /dev/zero never ends
        raise EvalkitError(f"--config {path}: is {kind}; give a TOML or YAML settings file")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise EvalkitError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise EvalkitError(f"--config {path}: larger than {MAX_FILE_BYTES // 1024} KiB; a settings file holds "
                           f"a few `key = value` lines")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Windows editors add one) is not content
    except UnicodeDecodeError as e:
        raise EvalkitError(f"--config {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _count_nodes(data: Any, path: Path) -> None:
    """Refuse a parsed file with more than MAX_NODES values. YAML aliases share one object, so
    a few hundred bytes can stand for billions of values; the walk stops at the bound."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise EvalkitError(f"--config {path}: more than {MAX_NODES:,} values (counting each use of a YAML "
                               f"alias); a settings file holds a few `key = value` lines")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            stack.extend(value)


_LONG_INT = (f"holds an integer of more than {sys.get_int_max_str_digits():,} digits, which is not read; "
             f"no setting takes one")


def read_settings(path: Path) -> dict[str, Any]:
    """The file's key -> value table; a missing, unreadable or malformed file is an EvalkitError."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise EvalkitError(f"--config {path}: YAML needs PyYAML (pip install pyyaml); "
                               f"or write the file as TOML") from None
        fmt, parse, syntax_error = "YAML", yaml.safe_load, yaml.YAMLError
        describe = lambda e: " ".join(str(e).split())[:300]  # noqa: E731  (YAML's messages span lines)
    else:
        import tomllib

        fmt, parse, syntax_error = "TOML", tomllib.loads, tomllib.TOMLDecodeError
        describe = lambda e: str(e)[:300]  # noqa: E731
    try:
        data = parse(text)
    except syntax_error as e:  # first: TOMLDecodeError is a ValueError
        raise EvalkitError(f"--config {path}: not valid {fmt}: {describe(e)}") from None
    except RecursionError:
        raise EvalkitError(f"--config {path}: not valid {fmt}: nested too deeply") from None
    except ValueError:  # raised by int() on a number past Python's digit limit
        raise EvalkitError(f"--config {path}: {_LONG_INT}") from None
    if data is None:  # an empty YAML file
        data = {}
    _count_nodes(data, path)
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
            raise EvalkitError(f"{where} = {shown(value)}: use true or false")
        return value
    # A float is written as the flag would be typed (timeout = 2.5 is `--timeout 2.5`); the
    # flag's own parser then takes or refuses it, so an integer setting still refuses 2.5.
    takes_text = action.type in (None, str, Path)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or \
            (isinstance(value, (int, float)) and takes_text):
        raise EvalkitError(f"{where} = {shown(value)}: expected {_expected(action)}")
    if action.type is not None:
        text = repr(value) if isinstance(value, float) else str(value)
        try:
            value = action.type(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            why = str(e).removeprefix(f"{text!r}: ")  # the flag's parser quotes the value again
            raise EvalkitError(f"{where} = {shown(value)}: {_bounded(why)}") from None
    if action.choices is not None and value not in action.choices:
        raise EvalkitError(f"{where} = {shown(value)}: use one of {', '.join(map(str, action.choices))}")
    return value


def _bounded(e: Exception | str, limit: int = 200) -> str:
    """A message that may quote a whole value, cut to `limit` characters."""
    text = str(e)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_model_setting(dest: str, value: Any, where: str) -> None:
    """A model setting (dtype, longest-edge, prompt-style, ...) checked where the file gives it,
    so the error names the file and key instead of surfacing later without either."""
    from ..models.spec import check_setting

    try:
        check_setting(dest, value)
    except EvalkitError as e:
        raise EvalkitError(f"{where}: {_bounded(e)}") from None


def _expected(action: argparse.Action) -> str:
    if action.type in (None, str, Path):
        return "a string"
    if action.type is int:
        return "an integer"
    return "a number or string the flag accepts"


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
            raise EvalkitError(f"--config {path}: unknown key {shown(str(raw_key))}; valid keys: "
                               f"{', '.join(sorted(options))}")
        if key in seen:
            raise EvalkitError(f"--config {path}: {shown(raw_key)} and {shown(seen[key])} are the same setting; keep one")
        seen[key] = str(raw_key)
        converted = convert(str(raw_key), value, action, str(path))
        _check_model_setting(action.dest, converted, f"--config {path}: {raw_key}")
        if action.dest not in given:
            setattr(args, action.dest, converted)
    return args
