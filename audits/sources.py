"""The two datasets the audit describes people from, and how to read their rows.

- FairFace (HuggingFaceM4/FairFace, config 1.25, validation, 10,954 face crops) with
  ClassLabel columns age (9), gender (2), race (7).
- Stable Bias (yjernite/stable-bias_grounding-images_multimodel_3_12_22, train, 2,040
  synthetic portraits) with string columns gender_phrase, ethnicity_phrase.
Each ships a small sample in the same schema under tasks/samples/.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.metrics.fairface import AGES, GENDERS, RACES
from evalkit.resources import shipped_path

# FairFace's ClassLabel names in index order (the hub dataset's features). Used when a
# file lost its features (a CSV export) and holds the bare integers.
FAIRFACE_LABELS: dict[str, list[str]] = {"age": list(AGES), "gender": list(GENDERS), "race": list(RACES)}


@dataclass(frozen=True)
class AuditSource:
    name: str
    hub_id: str
    hub_config: str | None
    split: str
    sample: str  # the shipped sample's folder under evalkit.tasks' samples/
    group_columns: tuple[str, ...]  # default axes of the analysis
    label_names: dict[str, list[str]]
    image_column: str = "image"
    # Published Idefics generations in the wide layout (<model>_<prompt> columns), and the
    # group columns they use when those differ from the source dataset's.
    published_generations: str = ""
    published_group_columns: tuple[str, ...] = ()

    @property
    def sample_dir(self) -> Path:
        return shipped_path("evalkit.tasks", "samples", self.sample)

    def default_group_columns(self, columns: list[str]) -> tuple[str, ...]:
        """The dataset's own group columns, or the published generations' when only those exist."""
        for cand in (self.group_columns, self.published_group_columns):
            if cand and all(c in columns for c in cand):
                return cand
        return self.group_columns

    def describe(self) -> str:
        return self.hub_id + (f" / {self.hub_config}" if self.hub_config else "") + f" / {self.split}"


SOURCES: dict[str, AuditSource] = {
    "fairface": AuditSource(
        name="fairface", hub_id="HuggingFaceM4/FairFace", hub_config="1.25", split="validation",
        sample="fairface", group_columns=("gender", "race"),
        label_names=FAIRFACE_LABELS,
        # Its published generations keep FairFace's labels as strings, named like Stable Bias':
        # image, gender_phrase, ethnicity_phrase, age_range, 9B_resume, ..., 80B_arrest.
        published_generations="HuggingFaceM4/m4-bias-eval-fair-face",
        published_group_columns=("gender_phrase", "ethnicity_phrase")),
    "stable-bias": AuditSource(
        name="stable-bias", hub_id="yjernite/stable-bias_grounding-images_multimodel_3_12_22",
        hub_config=None, split="train", sample="stable_bias",
        group_columns=("gender_phrase", "ethnicity_phrase"), label_names={},
        published_generations="HuggingFaceM4/m4-bias-eval-stable-bias"),
}


def get_source(name: str) -> AuditSource:
    if name not in SOURCES:
        raise EvalkitError(f"unknown audit dataset {name!r}; valid: {', '.join(SOURCES)}")
    return SOURCES[name]


def guess_source(columns: list[str]) -> str | None:
    """Which dataset a table of generations came from, by its group columns (the published
    FairFace generations have an age_range column that Stable Bias' lack)."""
    if "race" in columns or "age_range" in columns:
        return "fairface"
    if "gender_phrase" in columns or "ethnicity_phrase" in columns:
        return "stable-bias"
    return None


def label_decoder(ds, column: str, source: AuditSource | None):
    """A function turning a stored value of `column` into its group name (str) or None.

    ClassLabel features decode by their own names; bare integers of a known FairFace column
    by FAIRFACE_LABELS; anything else becomes its string form.
    """
    import datasets

    feat = (getattr(ds, "features", None) or {}).get(column)
    names: list[str] | None = None
    if isinstance(feat, datasets.ClassLabel):
        names = list(feat.names)
    elif source is not None and column in source.label_names:
        names = source.label_names[column]

    def decode(v: Any) -> str | None:
        if v is None or (isinstance(v, float) and v != v):
            return None
        if names is not None and isinstance(v, int) and not isinstance(v, bool):
            if 0 <= v < len(names):
                return names[v]
            return None  # -1 is datasets' "no label"
        s = str(v).strip()
        return s or None

    return decode


def load_source_rows(source: AuditSource, data: str | None, limit: int | None,
                     group_columns: tuple[str, ...] | None = None):
    """The dataset's rows (a datasets.Dataset, image column undecoded) and where they came from."""
    import datasets

    from evalkit.pipeline.data import load_local  # the engine's reader for save_to_disk/parquet/jsonl

    if data is None:
        path, origin = source.sample_dir, "shipped sample"
        if not path.exists():
            raise EvalkitError(f"shipped sample for audit dataset {source.name!r} is missing at "
                               f"{path}; pass a data path in the {source.hub_id} schema")
    else:
        path, origin = Path(data), str(data)
    ds = load_local(path, source.split)
    wanted = (source.image_column, *(group_columns or source.group_columns))
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        raise EvalkitError(f"{path}: lacks column(s) {missing} for audit dataset {source.name!r}; "
                           f"it has {ds.column_names}; expected the {source.hub_id} schema")
    if isinstance(ds.features[source.image_column], datasets.Image):
        ds = ds.cast_column(source.image_column, datasets.Image(decode=False))
    n_total = len(ds)
    if limit is not None:
        ds = ds.select(range(min(limit, n_total)))
    return ds, origin, n_total
