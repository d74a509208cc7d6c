"""Loading a task's rows: the shipped sample, the hub, or a local copy in the hub's schema.

Image columns are cast to undecoded form ({"bytes", "path"}) so that decoding happens per
sample in the generator, where a corrupt image becomes an error record, not a crash.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import EvalkitError
from .images import LazyImage
from ..task import Task

HUB = "hub"


@dataclass
class LoadedData:
    rows: "object"  # a datasets.Dataset
    source: str  # "shipped sample", "hub", or the local path
    description: str  # hub id / config / split, for results
    n_total: int
    image_columns: tuple[str, ...] = ()

    def _present_image_columns(self) -> list[str]:
        return [c for c in self.image_columns if c in self.rows.column_names]

    def plain_rows(self) -> list[dict]:
        """Every row as a dict without its image columns, decoded at once: indexing a
        datasets.Dataset row by row costs ~80 us a row, most of an import's reading time at the
        10^4-10^5 rows of a real split."""
        return self.rows.remove_columns(self._present_image_columns()).to_list()

    def narrowed(self, indices: Iterable[int]) -> "LoadedData":
        """The rows at `indices`, in row order; where the data came from is kept."""
        return dataclasses.replace(self, rows=self.rows.select(sorted(indices)))

    def iter_rows(self) -> Iterator[dict]:
        """Rows with each non-empty image cell as a LazyImage; empty cells stay None."""
        cols = self._present_image_columns()
        if not cols:
            yield from self.rows
            return
        table = self.rows.with_format("arrow")[:]
        present = {c: table.column(c).is_valid().to_pylist() for c in cols}
        # One table per column, so reading image_1 does not read image_2..image_7 too.
        images = {c: self.rows.select_columns([c]) for c in cols}
        for index, row in enumerate(self.rows.remove_columns(cols)):
            for c in cols:
                row[c] = LazyImage(images[c], index, c) if present[c][index] else None
            yield row


SPLIT_NAMES = ("train", "validation", "val", "dev", "test", "testmini")


def _select_parquet(path: Path, files: list[str], split: str, config: str | None) -> list[str]:
    """The files of one split (and config): the hub names them `<split>-00000-of-0000N.parquet`,
    possibly under `<config>/`, and its converted layout uses `<config>/<split>/0000.parquet`.
    A folder whose files name no split at all is taken as that split's files."""
    def tokens(f: str) -> list[str]:
        rel = Path(f).relative_to(path)
        return [p.lower() for p in rel.parts[:-1]] + [rel.name.split("-")[0].split(".")[0].lower()]

    if config:
        in_config = [f for f in files if config.lower() in tokens(f)[:-1]]
        files = in_config or files
    chosen = [f for f in files if split.lower() in tokens(f)]
    if chosen:
        return chosen
    named = sorted({t for f in files for t in tokens(f) if t in SPLIT_NAMES})
    if named:
        raise EvalkitError(f"--data {path}: has parquet files for split(s) {named}, not {split!r}; "
                           f"give the folder or file of the {split!r} split")
    return files


def _parquet_rows(files: list[str]) -> int | None:
    """Rows in the parquet files by their footers, or None when a footer cannot be read (the
    loader then reports the damage)."""
    import pyarrow.parquet as pq

    try:
        return sum(pq.read_metadata(f).num_rows for f in files)
    except Exception:
        return None


def load_local(path: Path, split: str, config: str | None = None, *, copy: bool = True):
    """The rows of a local dataset. With `copy` false, parquet files are read into memory
    instead of through `datasets.load_dataset`, which writes an Arrow copy of them under the
    user's datasets cache (~/.cache/huggingface/datasets), outside every folder evalkit names."""
    import datasets

    if not path.exists():
        raise EvalkitError(f"--data {path}: no such file or directory; give a save_to_disk "
                           f"folder, a folder of parquet files, a .parquet file, or '{HUB}'")
    try:
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise EvalkitError(f"--data {path}: has splits {sorted(ds)}, not {split!r}")
                ds = ds[split]
            return ds
        files = [str(path)] if path.is_file() else sorted(str(p) for p in path.rglob("*.parquet"))
        if path.is_file() and path.suffix in (".jsonl", ".json"):
            return datasets.load_dataset("json", data_files=files, split="train")
        if not files or not all(f.endswith(".parquet") for f in files):
            raise EvalkitError(f"--data {path}: found no dataset; expected a save_to_disk folder, "
                               f"parquet files, or a .jsonl file")
        if path.is_dir():
            files = _select_parquet(path, files, split, config)
        if _parquet_rows(files) == 0:  # datasets would only say 'Instruction "train" corresponds to no data'
            raise EvalkitError(f"--data {path}: holds 0 rows; give parquet files with at least one row")
        if not copy:
            import pyarrow as pa
            import pyarrow.parquet as pq

            # the features (Image columns) travel in the files' schema metadata
            return datasets.Dataset(pa.concat_tables([pq.read_table(f) for f in files]))
        return datasets.load_dataset("parquet", data_files=files, split="train")
    except EvalkitError:
        raise
    except Exception as e:  # corrupt parquet, bad arrow file, ...
        raise EvalkitError(f"--data {path}: could not be read as a dataset ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None


# What a column holds, coarsely: enough to tell a question stored as a number or an answer
# list stored as one string (which str() would turn into a wrong prompt or a list of
# characters) from harmless variations (an int id, a label as text, an all-null column).
_ACCEPTED_KINDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "number": ("number",),
    "bool": ("bool", "number"),
    "list": ("list",),
    "struct": ("struct",),
    "label": ("label", "number", "text"),
    "image": ("image", "struct", "text", "binary"),
}
_KIND_WORDS = {"text": "text (string)", "number": "numbers", "bool": "booleans", "list": "lists",
               "struct": "structs", "label": "class labels", "image": "images", "binary": "bytes",
               "null": "nulls only"}


def column_kind(feature) -> str:
    """'text', 'number', 'bool', 'list', 'struct', 'label', 'image', 'binary', 'null' or 'other'."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return "label"
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, (datasets.List, datasets.LargeList, list)):
        return "list"
    if isinstance(feature, dict):
        return "struct"
    if isinstance(feature, datasets.Value):
        dtype = feature.dtype
        if dtype in ("string", "large_string"):
            return "text"
        if dtype in ("binary", "large_binary"):
            return "binary"
        if dtype in ("null", "bool"):
            return dtype
        if dtype.startswith(("int", "uint", "float")):
            return "number"
    return "other"


def reference_features(task: Task):
    """The column types of the task's shipped sample, which is written in the hub schema;
    None when the sample is absent."""
    import datasets
    import pyarrow.parquet as pq

    files = sorted(task.sample_path().glob("*.parquet")) if task.sample_path().exists() else []
    if not files:
        return None
    return datasets.Features.from_arrow_schema(pq.read_schema(files[0]))


def check_column_types(task: Task, features, source: str) -> None:
    """Raise EvalkitError when a required column holds the wrong kind of value (a question
    stored as a number, answers as one string instead of a list). The reference is the
    shipped sample's schema; ids may be text or numbers (they are compared as text), a
    column of nulls passes (its rows are handled per sample), and a task can widen a
    column's accepted kinds with an `accepted_column_kinds` mapping."""
    reference = reference_features(task)
    if reference is None:
        return
    widened = getattr(task, "accepted_column_kinds", {})
    for col in task.required_columns:
        if col not in reference or col not in features:
            continue
        want = column_kind(reference[col])
        if want == "other":
            continue
        got = column_kind(features[col])
        accepted = widened.get(col) or _ACCEPTED_KINDS.get(want, (want,))
        if col == task.id_field:
            accepted = ("text", "number")
        if got == "null" or got in accepted:
            continue
        raise EvalkitError(
            f"{source}: column {col!r} holds {_KIND_WORDS.get(got, str(features[col]))}, but task "
            f"{task.name!r} needs {' or '.join(_KIND_WORDS.get(k, k) for k in accepted)} there, as in the "
            f"{task.hub_id} schema")


def check_utf8(ds, where: str) -> None:
    """Refuse text columns holding bytes that are not UTF-8 (parquet does not check them), with
    the column and the first bad row, instead of a decoding traceback halfway through a run.
    Image bytes are binary, not text, and are not affected."""
    import pyarrow as pa

    table = ds.with_format("arrow")[:]
    for name in table.column_names:
        column = table.column(name)
        try:
            column.validate(full=True)
        except pa.ArrowInvalid as e:
            if "utf8" not in str(e).lower() and "utf-8" not in str(e).lower():
                raise EvalkitError(f"{where}: column {name!r} is damaged ({str(e).splitlines()[0]})") from None
            row = _first_invalid_row(column)
            raise EvalkitError(f"{where}: column {name!r} holds text that is not valid UTF-8"
                               f"{f' (first at row {row})' if row is not None else ''}; re-encode the "
                               f"dataset's text as UTF-8") from None


def _first_invalid_row(column) -> int | None:
    """Row of the first value failing full validation, by halving the column (each half is
    validated in C++, so this costs a few passes, not a Python loop over every row)."""
    import pyarrow as pa

    def bad(lo: int, hi: int) -> bool:
        try:
            column.slice(lo, hi - lo).validate(full=True)
            return False
        except pa.ArrowInvalid:
            return True

    lo, hi = 0, len(column)
    if not bad(lo, hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bad(lo, mid):
            hi = mid
        else:
            lo = mid
    return lo


def load_task_data(task: Task, data: str | None = None, limit: int | None = None, *,
                   copy: bool = True) -> LoadedData:
    """Rows for `task`: shipped sample when `data` is None, the hub when it is 'hub', else a path
    (parquet read without an Arrow copy in the datasets cache when `copy` is false)."""
    import datasets

    if data is None:
        path = task.sample_path()
        ds = load_local(path, task.split, task.hub_config)
        source = "shipped sample"
    elif data == HUB:
        try:
            ds = datasets.load_dataset(task.hub_id, task.hub_config, split=task.split)
        except Exception as e:
            raise EvalkitError(f"could not load {task.hub_id} ({task.hub_config}/{task.split}) from the "
                               f"hub: {type(e).__name__}; without network, pass --data PATH to a local copy") from None
        source = HUB
    else:
        path = Path(data)
        ds = load_local(path, task.split, task.hub_config, copy=copy)
        source = str(path)
    missing = [c for c in task.required_columns if c not in ds.column_names]
    if missing:
        raise EvalkitError(f"data for task {task.name!r} lacks column(s) {missing}; it has "
                           f"{ds.column_names}; expected the {task.hub_id} schema with {list(task.required_columns)}")
    if source != "shipped sample":
        check_column_types(task, ds.features, source if source == HUB else f"--data {source}")
    for col in task.image_columns:
        if col in ds.column_names and isinstance(ds.features[col], datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    n_total = len(ds)
    where = "shipped sample" if source == "shipped sample" else f"--data {source}"
    if n_total == 0:
        raise EvalkitError(f"{where}: holds 0 rows; give a dataset with at least one row in the "
                           f"{task.hub_id} schema ({', '.join(task.required_columns)})")
    if limit is not None:
        ds = ds.select(range(min(limit, n_total)))
    check_utf8(ds, where)
    desc = f"{task.hub_id}" + (f" / {task.hub_config}" if task.hub_config else "") + f" / {task.split}"
    return LoadedData(ds, source, desc, n_total, tuple(task.image_columns))
