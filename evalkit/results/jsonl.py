"""The one reader of JSON-lines files (samples.jsonl, predictions, generation rows): whatever
the file, bytes that are not UTF-8, a line that is not JSON or a JSON array in place of lines
end as one EvalkitError naming the file and the line."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

from ..errors import EvalkitError


def read_jsonl(path: Path, what: str, *, remedy: str | None = None, name: str | None = None
               ) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of `path`.

    `what` names one line's content in messages ("generation row"); `remedy` ends them (default:
    give a UTF-8 JSONL file, one `what` per line); `name` is how the file is called in the
    message about its encoding (default: its path).
    """
    remedy = remedy or f"give a JSONL file in UTF-8, one {what} per line"
    first = True
    try:
        with Path(path).open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if first and line.lstrip().startswith("["):
                    raise EvalkitError(f"{path}:{n}: is a JSON array; give JSON lines instead, one {what} per "
                                       f"line (e.g. convert with: jq -c '.[]' {Path(path).name})")
                first = False
                try:
                    value = json.loads(line)
                except (ValueError, RecursionError) as e:
                    raise EvalkitError(f"{path}:{n}: {_why(e)}; {remedy}") from None
                yield n, value
    except UnicodeDecodeError as e:
        # e.start counts from the decoder's current chunk, not the file's start: not reported
        raise EvalkitError(f"{name or path}: not UTF-8 text ({e.reason}); {remedy}") from None


def _why(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg})"
    if isinstance(e, RecursionError):
        return "not valid JSON (nested too deeply)"
    # valid JSON, but Python refuses to convert integers this long (a guard against slow parsing)
    return (f"holds an integer of more than {sys.get_int_max_str_digits():,} digits, which is not read; "
            f"write long ids or numbers as strings")
