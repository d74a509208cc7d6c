"""Published reference numbers (model cards, papers, release posts): one table, read from
references.toml beside this module, keyed by model, task, setting and metric.

A run is compared only with the numbers of its own model: `match_model` finds the table's model
by the run's model id (a hub id, or a local folder named like the checkpoint); a pipeline check
(random weights) matches nothing.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import EvalkitError
from ..results.schema import ModelInfo

TABLE_FILE = Path(__file__).with_name("references.toml")
SETTINGS = ("no_split", "split", "single")
KINDS = ("card", "paper", "blog")
SETTING_LABELS = {"no_split": "without image splitting", "split": "with image splitting",
                  "single": "the published setting"}


@dataclass(frozen=True)
class RefModel:
    key: str
    label: str
    kind: str  # "card" | "paper" | "blog": what publishes its numbers
    hub_ids: tuple[str, ...]


@dataclass(frozen=True)
class RefNumber:
    model: str  # RefModel.key
    task: str
    metric: str
    setting: str  # "no_split" | "split" | "single"
    value: float
    split: str  # the data split it was measured on, or "not stated"
    source: str
    note: str = ""


@dataclass(frozen=True)
class ReferenceTable:
    models: tuple[RefModel, ...]
    numbers: tuple[RefNumber, ...]

    def model(self, key: str) -> RefModel:
        for m in self.models:
            if m.key == key:
                return m
        raise EvalkitError(f"unknown reference model {key!r}; known: {', '.join(m.key for m in self.models)}")

    def match_model(self, model: ModelInfo) -> RefModel | None:
        """The table's model that this run ran, or None (a pipeline check never matches)."""
        if model.pipeline_check or not model.model_id:
            return None
        run_id = str(model.model_id).strip().rstrip("/").lower()
        # A local checkpoint folder counts when it is named like the repository.
        run_tail = run_id.replace("\\", "/").rsplit("/", 1)[-1]
        for m in self.models:
            for hub_id in m.hub_ids:
                hub = hub_id.lower()
                if run_id == hub or run_tail == hub.rsplit("/", 1)[-1]:
                    return m
        return None

    def rows(self, model_key: str, task: str, metric: str | None = None) -> list[RefNumber]:
        return [n for n in self.numbers if n.model == model_key and n.task == task
                and (metric is None or n.metric == metric)]


def _parse(data: dict, where: str) -> ReferenceTable:
    def need(entry: dict, field: str, kind: type, what: str):
        value = entry.get(field)
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            raise EvalkitError(f"{where}: {what} lacks `{field}` ({kind.__name__}); every {what} needs one")
        return value

    models = []
    for m in data.get("model", []):
        kind = need(m, "kind", str, "model")
        if kind not in KINDS:
            raise EvalkitError(f"{where}: model {m.get('key')!r} has kind {kind!r}; valid: {', '.join(KINDS)}")
        models.append(RefModel(need(m, "key", str, "model"), need(m, "label", str, "model"), kind,
                               tuple(need(m, "hub_ids", list, "model"))))
    keys = {m.key for m in models}
    numbers = []
    for n in data.get("number", []):
        what = f"number ({n.get('model')}, {n.get('task')}, {n.get('setting')}, {n.get('metric')})"
        setting = need(n, "setting", str, what)
        if setting not in SETTINGS:
            raise EvalkitError(f"{where}: {what} has setting {setting!r}; valid: {', '.join(SETTINGS)}")
        if need(n, "model", str, what) not in keys:
            raise EvalkitError(f"{where}: {what} names model {n['model']!r}, which has no [[model]] entry")
        value = n.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvalkitError(f"{where}: {what} lacks a numeric `value`")
        numbers.append(RefNumber(n["model"], need(n, "task", str, what), need(n, "metric", str, what), setting,
                                 float(value), need(n, "split", str, what), need(n, "source", str, what),
                                 str(n.get("note", ""))))
    seen: set[tuple] = set()
    for n in numbers:
        key = (n.model, n.task, n.metric, n.setting)
        if key in seen:
            raise EvalkitError(f"{where}: two numbers for {key}; keep one row per model, task, metric and setting")
        seen.add(key)
    return ReferenceTable(tuple(models), tuple(numbers))


def read_table(path: Path) -> ReferenceTable:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise EvalkitError(f"{path}: not valid TOML ({e})") from None
    return _parse(data, str(path))


@lru_cache(maxsize=1)
def reference_table() -> ReferenceTable:
    """evalkit's own table (read once; it is package data and does not change while running)."""
    return read_table(TABLE_FILE)
