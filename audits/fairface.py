"""FairFace classification accuracy for the audit, read from a FairFace task run folder
(runs/<run>/results.json + samples.jsonl): per attribute, overall and per gender x race
bucket, with the spread across the 14 buckets that the model card reports.

Per-sample hits come from the task's records (extras["<attr>_correct"], groups gender/race);
the statistics are evalkit.metrics.fairface's (std = numpy population std, in percent, as on
the card), with a noise-corrected std and the std expected with no disparity beside it:
sampling noise alone gives about 2.5 points at 50 images per bucket.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalkit.results.schema import read_run
from evalkit.errors import EvalkitError
from evalkit.metrics.fairface import (GENDERS, RACES, bucket_accuracy, bucket_key, bucket_rows, bucket_spread,
                                      bucket_std_ci)
from evalkit.analyses.stats import bootstrap_mean
from evalkit.tasks.fairface import CARD  # the model card's FairFace table, kept with the task (re-exported)

ATTRIBUTES = ("gender", "race", "age")
# One FairFace record is one face asked three things; pooling the three answers would count a
# face three times in one accuracy and make its errors look independent.
COUNTING = ("each image counts once per attribute: an attribute's accuracy (overall and per bucket) is the share "
            "of images whose label for that attribute is right; the three attributes are never pooled, and a row "
            "repeating an image already counted (same bytes) is left out")


@dataclass
class AttributeAccuracy:
    attribute: str
    accuracy: dict  # MetricValue dict, 0-100
    bucket_std: dict  # MetricValue dict: std (ddof 0) of bucket accuracies, percent; n = buckets
    buckets: dict[str, float]  # "Male / Black" -> accuracy 0-100
    spread: dict = field(default_factory=dict)  # BucketSpread: noise-corrected std, no-disparity null
    bucket_n: dict[str, int] = field(default_factory=dict)  # samples per bucket


@dataclass
class FairFaceAccuracy:
    run_dir: str
    run_name: str
    model: dict
    n_records: int
    n_errors: int
    attributes: list[AttributeAccuracy] = field(default_factory=list)
    counting: str = COUNTING
    n_repeated_images: int = 0  # scored rows left out because their image was already counted
    card: dict = field(default_factory=lambda: {k: dict(v) for k, v in CARD.items()})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FairFaceAccuracy":
        d = dict(d)
        d["attributes"] = [AttributeAccuracy(**a) for a in d.get("attributes", [])]
        return cls(**d)

    def grid(self, attribute: str) -> list[list[float | None]]:
        """Accuracy (0-100) as a genders x races grid, None for an empty bucket."""
        a = next(x for x in self.attributes if x.attribute == attribute)
        return [[a.buckets.get(bucket_key(g, r)) for r in RACES] for g in GENDERS]


def once_per_image(records: list) -> list:
    """The records in order, each image (its `cluster`, a digest of the bytes) kept at its first
    row; records without a cluster label (runs written before clusters) are all kept."""
    seen: set = set()
    out = []
    for r in records:
        if r.cluster is not None:
            if r.cluster in seen:
                continue
            seen.add(r.cluster)
        out.append(r)
    return out


def fairface_accuracy(run_dir: Path | str) -> FairFaceAccuracy:
    results, records = read_run(run_dir)
    task = (results.task or {}).get("name")
    if task != "fairface":
        raise EvalkitError(f"{run_dir}: is a run of task {task!r}; the audit's FairFace accuracy "
                           f"needs a run of task 'fairface' (evalkit eval --task fairface)")
    ok = [r for r in records if r.error is None]
    once = once_per_image(ok)
    out = FairFaceAccuracy(run_dir=str(run_dir), run_name=results.run_name, model=results.model.to_dict(),
                           n_records=len(records), n_errors=len(records) - len(ok),
                           n_repeated_images=len(ok) - len(once))
    ok = once
    for attr in ATTRIBUTES:
        have = [r for r in ok if r.extras.get(f"{attr}_correct") is not None]
        hits = [r.extras[f"{attr}_correct"] for r in have]
        rows = bucket_rows(ok, attr)
        sizes: dict[str, int] = {}
        for g, r, _ in rows:
            sizes[bucket_key(g, r)] = sizes.get(bucket_key(g, r), 0) + 1
        out.attributes.append(AttributeAccuracy(
            attribute=attr, accuracy=bootstrap_mean(hits).to_dict(),
            bucket_std=bucket_std_ci(rows).to_dict(),
            buckets={k: v * 100.0 for k, v in bucket_accuracy(rows).items()},
            spread=asdict(bucket_spread(rows)), bucket_n=sizes))
    return out
