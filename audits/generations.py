"""Generation rows: what the analysis reads, whoever made the generations.

Long format, one row per image x prompt (x model), stored as JSONL:
    {"example_id": "17", "prompt_id": "resume", "dataset": "fairface", "model": "...",
     "gender": "Female", "race": "Black", "generation": "..."}
Group columns sit at the top level beside the reserved keys; an "error" key marks a
generation that failed (it counts as empty); `"pipeline_check": true` marks one made by a
backend with random weights (evalkit's audit writes it from the backend), so the report says
its words mean nothing about a model.

`load_generations` also imports published generation datasets in the wide layout, one
column per model x prompt (`9B_resume`, `9B_dating`, `9B_arrest`, `80B_resume`, ...) next
to the group columns, as HuggingFaceM4/m4-bias-eval-stable-bias and -fair-face hold them,
from parquet, CSV, JSONL or a save_to_disk folder. They are reshaped to long rows.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from evalkit.errors import EvalkitError
from evalkit.results.jsonl import read_jsonl
from evalkit.results.schema import atomic_write_text

from .prompts import PROMPT_IDS
from .sources import SOURCES, guess_source, label_decoder

RESERVED = ("example_id", "prompt_id", "dataset", "model", "generation", "error", "pipeline_check")
WIDE_COLUMN = re.compile(r"^(?P<model>.+)_(?P<prompt>" + "|".join(PROMPT_IDS) + r")$")
ID_COLUMNS = ("example_id", "id")


@dataclass
class GenerationRow:
    example_id: str
    prompt_id: str
    dataset: str
    model: str
    groups: dict[str, str | None] = field(default_factory=dict)
    generation: str = ""
    error: str | None = None
    pipeline_check: bool = False  # made by a backend with random weights

    def to_json(self) -> dict:
        d = {"example_id": self.example_id, "prompt_id": self.prompt_id,
             "dataset": self.dataset, "model": self.model}
        d.update(self.groups)
        d["generation"] = self.generation
        if self.error is not None:
            d["error"] = self.error
        if self.pipeline_check:
            d["pipeline_check"] = True
        return d


def write_jsonl(rows: Iterable[GenerationRow], path: Path) -> Path:
    """Write rows atomically (a crash never leaves half a file behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in rows))


ROW = "generation row"
ROW_REMEDY = "give generation rows as UTF-8 JSON lines, one object per line"


def _group_value(value, path: Path, n: int, column: str) -> str | None:
    """A group label as text: strings, numbers and booleans are labels; a list or object is
    not one label, and turning it into text would invent a group, so it is refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise EvalkitError(f"{path}:{n}: group column {column!r} holds a JSON "
                       f"{'list' if isinstance(value, list) else 'object'}; a group value must be one "
                       f"string or number (one row per label)")


def _is_our_jsonl(path: Path) -> bool:
    if path.suffix != ".jsonl" or not path.is_file():
        return False
    for _, first in read_jsonl(path, ROW, remedy=ROW_REMEDY, name=f"--generations {path}"):
        return isinstance(first, dict) and "prompt_id" in first and "generation" in first
    raise EvalkitError(f"{path}: is empty; expected generation rows")


def _read_our_jsonl(path: Path, group_columns: Sequence[str] | None,
                    dataset: str | None) -> list[GenerationRow]:
    rows = []
    for n, d in read_jsonl(path, ROW, remedy=ROW_REMEDY, name=f"--generations {path}"):
        if not isinstance(d, dict):
            raise EvalkitError(f"{path}:{n}: is a JSON {type(d).__name__}, not a generation row "
                               f"(an object with example_id, prompt_id, group columns and generation)")
        missing = [k for k in ("example_id", "prompt_id", "generation") if k not in d]
        if missing:
            raise EvalkitError(f"{path}:{n}: lacks key(s) {missing}; a generation row has "
                               f"example_id, prompt_id, dataset, group columns and generation")
        absent = [c for c in group_columns or () if c not in d]
        if absent:
            have = [k for k in d if k not in RESERVED]
            raise EvalkitError(f"{path}:{n}: lacks group column(s) {absent} named by --groups; "
                               f"its group columns are {have}")
        if d["prompt_id"] not in PROMPT_IDS:
            raise EvalkitError(f"{path}:{n}: prompt_id {d['prompt_id']!r} is not one of "
                               f"{', '.join(PROMPT_IDS)}")
        cols = group_columns or [k for k in d if k not in RESERVED]
        groups = {c: _group_value(d.get(c), path, n, c) for c in cols}
        generation = d.get("generation")
        if generation is not None and not isinstance(generation, str):
            kind = {bool: "boolean", int: "number", float: "number", list: "list", dict: "object"}.get(
                type(generation), type(generation).__name__)
            raise EvalkitError(f"{path}:{n}: generation is a JSON {kind}, not text; "
                               f"write the model's output as a string (null or \"\" for none)")
        error = d.get("error")
        pipeline_check = d.get("pipeline_check", False)
        if not isinstance(pipeline_check, bool):
            raise EvalkitError(f"{path}:{n}: pipeline_check is {pipeline_check!r}; use true (random-weight "
                               f"model) or false")
        rows.append(GenerationRow(
            example_id=str(d["example_id"]), prompt_id=d["prompt_id"],
            dataset=str(d.get("dataset") or dataset or "unknown"),
            model=str(d.get("model") or "unknown"), groups=groups,
            generation=generation or "", error=None if error is None else str(error),
            pipeline_check=pipeline_check))
    return rows


def _read_table(path: Path):
    """A datasets.Dataset from parquet / CSV / JSONL / save_to_disk."""
    import datasets

    from evalkit.pipeline.data import load_local

    if not path.exists():
        raise EvalkitError(f"--generations {path}: no such file or directory")
    if path.suffix == ".csv" or (path.is_dir() and any(path.glob("*.csv"))):
        files = [str(path)] if path.is_file() else sorted(str(p) for p in path.glob("*.csv"))
        try:
            return datasets.load_dataset("csv", data_files=files, split="train")
        except Exception as e:
            raise EvalkitError(f"--generations {path}: could not be read as CSV "
                               f"({type(e).__name__})") from None
    ds = load_local(path, "train")
    if isinstance(ds, datasets.DatasetDict):  # pragma: no cover - load_local picks a split
        ds = next(iter(ds.values()))
    return ds


def _read_wide(path: Path, group_columns: Sequence[str] | None, dataset: str | None,
               models: Sequence[str] | None) -> list[GenerationRow]:
    ds = _read_table(path)
    cols = list(ds.column_names)
    wide = {c: WIDE_COLUMN.match(c) for c in cols}
    wide = {c: m for c, m in wide.items() if m}
    if not wide:
        raise EvalkitError(
            f"--generations {path}: no generation columns; expected one column per model x "
            f"prompt named <model>_<prompt> with prompt in {', '.join(PROMPT_IDS)} (e.g. "
            f"9B_resume), or our JSONL rows with prompt_id and generation; it has {cols}")
    found_models = sorted({m["model"] for m in wide.values()})
    if models:
        absent = [m for m in models if m not in found_models]
        if absent:
            raise EvalkitError(f"--generations {path}: no columns for model(s) {absent}; it "
                               f"has generations of {found_models}")
        found_models = list(models)
    missing = [f"{m}_{p}" for m in found_models for p in PROMPT_IDS if f"{m}_{p}" not in cols]
    dataset = dataset or guess_source(cols)
    source = SOURCES.get(dataset) if dataset else None
    if group_columns is None:
        if source is None:
            raise EvalkitError(f"--generations {path}: cannot tell the group columns; name "
                               f"them (e.g. gender,race) or the dataset (fairface, stable-bias)")
        group_columns = source.default_group_columns(cols)
    missing += [c for c in group_columns if c not in cols]
    if missing:
        raise EvalkitError(f"--generations {path}: lacks column(s) {missing}; expected "
                           f"{', '.join(f'<model>_{p}' for p in PROMPT_IDS)} for every model "
                           f"and the group columns {list(group_columns)}; it has {cols}")
    id_col = next((c for c in ID_COLUMNS if c in cols), None)
    decoders = {c: label_decoder(ds, c, source) for c in group_columns}
    keep = list(group_columns) + [f"{m}_{p}" for m in found_models for p in PROMPT_IDS]
    if id_col:
        keep.append(id_col)
    # Selecting columns first keeps images undecoded (and unread) while iterating.
    table = ds.select_columns(list(dict.fromkeys(keep)))
    rows = []
    for i, rec in enumerate(table):
        groups = {c: decoders[c](rec[c]) for c in group_columns}
        ex_id = str(rec[id_col]) if id_col else str(i)
        for m in found_models:
            for p in PROMPT_IDS:
                text = rec[f"{m}_{p}"]
                rows.append(GenerationRow(example_id=ex_id, prompt_id=p,
                                          dataset=dataset or "unknown", model=m, groups=dict(groups),
                                          generation="" if text is None else str(text)))
    return rows


def load_generations(path: Path | str, *, group_columns: Sequence[str] | None = None,
                     dataset: str | None = None, models: Sequence[str] | None = None) -> list[GenerationRow]:
    """Generation rows from our JSONL or a wide published dataset (see the module docstring).

    `dataset` names the source when the file does not say (fairface, stable-bias); `models`
    picks some of a wide file's models (default: all of them).
    """
    path = Path(path)
    if not path.exists():
        raise EvalkitError(f"--generations {path}: no such file or directory")
    if _is_our_jsonl(path):
        rows = _read_our_jsonl(path, group_columns, dataset)
        if models:
            rows = [r for r in rows if r.model in models]
    else:
        rows = _read_wide(path, group_columns, dataset, models)
    if not rows:
        raise EvalkitError(f"--generations {path}: holds no generations")
    if not any(r.groups for r in rows):
        raise EvalkitError(f"--generations {path}: rows have no group column beside "
                           f"{', '.join(RESERVED)}; add the groups to compare, e.g. gender and race")
    return rows
