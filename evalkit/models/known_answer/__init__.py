"""`known-answer-idefics2`: tiny-idefics2's architecture trained by evalkit on its own shipped
samples, so that its answers, and every task's score, are known before it runs.

A positive control for the whole chain (image -> processor -> model -> decoding -> scoring ->
aggregation -> report): about 70% of each generation task's samples are answered right and the
rest with a stated wrong answer, FairFace's choices are right except in one planted bucket, and
a blank or another sample's image gets "unknown" (how close the fit comes to the plan is in
docs/models.md). The plan, the answers the trained model gives (greedy, fp32, CPU) and each
task's expected score are in `weights/manifest.json`; the
weights (fp16, a few MB) ship beside it. It was trained with image splitting off only, so a run
with splitting on answers differently. Its numbers check the pipeline, not a model.

Retrain with `python -m evalkit.audits.known_answer_train --out evalkit/models/known_answer/weights`
(the audit's part of the plan lives in the audit package, which hands it to train.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from ...errors import EvalkitError
from ...registry import MODELS
from ..spec import ModelSpec
from ..tiny.build import TinyBackend, TinyBuild

NAME = "known-answer-idefics2"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


@lru_cache(maxsize=4)
def read_manifest(folder: Path = WEIGHTS_DIR) -> dict:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise EvalkitError(f"{NAME}: no {path}; reinstall evalkit, or train the model with "
                           f"`python -m evalkit.audits.known_answer_train --out {folder}`")
    return json.loads(path.read_text(encoding="utf-8"))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _build(folder: Path) -> None:
    from .train import assemble_model_folder

    assemble_model_folder(WEIGHTS_DIR, folder)


def known_answer_build() -> TinyBuild:
    """The cache folder is named by the weights' hash, so new weights never reuse answers cached
    for old ones; weights that do not match the manifest are refused."""
    manifest = read_manifest()
    sha = file_sha256(WEIGHTS_DIR / WEIGHTS_FILE)
    if sha != manifest["weights_sha256"]:
        raise EvalkitError(f"{NAME}: {WEIGHTS_DIR / WEIGHTS_FILE} has sha256 {sha[:12]}..., the manifest says "
                           f"{manifest['weights_sha256'][:12]}...; reinstall evalkit or retrain both together")
    return TinyBuild(name=NAME, version=f"w{sha[:12]}", build=_build)


class KnownAnswerBackend(TinyBackend):
    """A pipeline check whose answers are known: `random_weights` stays True (its score is not a
    model's), and describe() says which manifest the run can be checked against."""

    def describe(self) -> dict[str, Any]:
        manifest = read_manifest()
        return {**super().describe(), "known_answer": {
            "weights_sha256": manifest["weights_sha256"], "trained_with_splitting": manifest["image_splitting"]}}


@MODELS.register(NAME)
def load_known_answer(spec: ModelSpec, cache_dir: Path | None = None) -> KnownAnswerBackend:
    """Embedded Idefics2 trained on the shipped samples: answers and scores known in advance."""
    build = known_answer_build()
    return KnownAnswerBackend(spec, model_path=str(build.path(cache_dir)), build=build)


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a run of the known-answer model should score, or why no number applies."""

    value: float | None  # 0-100, over the run's samples; None when `reason` says why not
    n_samples: int
    reason: str = ""


def expected_score(task: str, sample_ids: Iterable[str], splitting: bool | None) -> Expected:
    """The manifest's expected headline score over these samples (the mean of their per-sample
    scores as the trained model answers them, splitting off)."""
    ids = [str(s) for s in sample_ids]
    entry = read_manifest()["tasks"].get(task)
    if entry is None:
        return Expected(None, len(ids), f"the model was not trained on {task}")
    if splitting:
        return Expected(None, len(ids), "it was trained with image splitting off; with splitting on its answers "
                                        "are expected to differ")
    scores = entry["sample_scores"]
    unknown = [s for s in ids if s not in scores]
    if unknown or not ids:
        return Expected(None, len(ids), f"{len(unknown)} of the run's samples are not in the shipped sample it "
                                        f"was trained on")
    drawn = set(entry.get("random_fallback", [])) & set(ids)
    if drawn and set(ids) != set(scores):
        return Expected(None, len(ids), f"{len(drawn)} of the run's answers are unparseable, and the official rule "
                                        f"scores them by a seeded random option that follows the run's order; only "
                                        f"a run of the whole sample has an expected score")
    values = [scores[s] for s in ids]
    if any(v is None for v in values):
        return Expected(None, len(ids), "some samples have no planned score")
    return Expected(100.0 * sum(values) / len(values), len(ids))
