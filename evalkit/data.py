"""Loading a task's rows: the shipped sample, the hub, or a local copy in the hub's schema.

Image columns are cast to undecoded form ({"bytes", "path"}) so that decoding happens per
sample in the generator, where a corrupt image becomes an error record, not a crash.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import EvalkitError
from .images import LazyImage
from .task import Task

HUB = "hub"


@dataclass
class LoadedData:
    rows: "object"  # a datasets.Dataset
    source: str  # "shipped sample", "hub", or the local path
    description: str  # hub id / config / split, for results
    n_total: int
    image_columns: tuple[str, ...] = ()

    def iter_rows(self) -> Iterator[dict]:
        """Rows with each non-empty image cell as a LazyImage; empty cells stay None."""
        cols = [c for c in self.image_columns if c in self.rows.column_names]
        if not cols:
            yield from self.rows
            return
        table = self.rows.with_format("arrow")[:]
        present = {c: table.column(c).is_valid().to_pylist() for c in cols}
        images = self.rows.select_columns(cols)
        for index, row in enumerate(self.rows.remove_columns(cols)):
            for c in cols:
                row[c] = LazyImage(images, index, c) if present[c][index] else None
            yield row


def _parquet_files(path: Path) -> list[str]:
    files = sorted(str(p) for p in path.rglob("*.parquet"))
    return files


def load_local(path: Path, split: str):
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
        files = [str(path)] if path.is_file() else _parquet_files(path)
        if path.is_file() and path.suffix in (".jsonl", ".json"):
            return datasets.load_dataset("json", data_files=files, split="train")
        if not files or not all(f.endswith(".parquet") for f in files):
            raise EvalkitError(f"--data {path}: found no dataset; expected a save_to_disk folder, "
                               f"parquet files, or a .jsonl file")
        split_files = [f for f in files if Path(f).name.startswith(split)] or files
        return datasets.load_dataset("parquet", data_files=split_files, split="train")
    except EvalkitError:
        raise
    except Exception as e:  # corrupt parquet, bad arrow file, ...
        raise EvalkitError(f"--data {path}: could not be read as a dataset ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None


def load_task_data(task: Task, data: str | None = None, limit: int | None = None) -> LoadedData:
    """Rows for `task`: shipped sample when `data` is None, the hub when it is 'hub', else a path."""
    import datasets

    if data is None:
        path = task.sample_path()
        ds = load_local(path, task.split)
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
        ds = load_local(path, task.split)
        source = str(path)
    missing = [c for c in task.required_columns if c not in ds.column_names]
    if missing:
        raise EvalkitError(f"data for task {task.name!r} lacks column(s) {missing}; it has "
                           f"{ds.column_names}; expected the {task.hub_id} schema with {list(task.required_columns)}")
    for col in task.image_columns:
        if col in ds.column_names and isinstance(ds.features[col], datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    n_total = len(ds)
    if limit is not None:
        ds = ds.select(range(min(limit, n_total)))
    desc = f"{task.hub_id}" + (f" / {task.hub_config}" if task.hub_config else "") + f" / {task.split}"
    return LoadedData(ds, source, desc, n_total, tuple(task.image_columns))
