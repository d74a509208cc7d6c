"""The options table of docs/models.md, written from the backends' declarations:
`python -m evalkit.models.options_doc docs/models.md` (tests/test_model_options.py checks the page)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EvalkitError
from .options import options_table

TABLE_START = ("<!-- options table: generated from the backends' declarations by `python -m "
               "evalkit.models.options_doc docs/models.md`; do not edit by hand -->")
TABLE_END = "<!-- end of options table -->"


def with_table(page: str, models=None) -> str:
    """`page` (markdown) with the text between the table markers replaced by the current table."""
    if TABLE_START not in page or TABLE_END not in page:
        raise EvalkitError("the page has no options-table markers; add the two marker lines where the table goes")
    head, rest = page.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{options_table(models)}{TABLE_END}{tail}"


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/models.md")
    target.write_text(with_table(target.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the options table into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
