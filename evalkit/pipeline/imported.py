"""What an importer (evalkit.pipeline.import_lmms_eval, evalkit.pipeline.import_vlmevalkit) hands
to the scoring stage it shares with `evalkit score`: the responses another harness made, keyed
by the task's id, and what its files say about how they were made.

The source harness's own per-sample metric rides along so the run's scoring-sensitivity panel
shows it beside evalkit's rules, as a variant named for the harness and its metric.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvalkitError
from ..types import Rule


def fold(text) -> str:
    """Text compared across harnesses: whitespace runs as one space, lower case."""
    return " ".join(str(text).split()).lower()


def read_text(path: Path, writer: str, encoding: str = "utf-8") -> str:
    """A harness's output file as text; bytes that are not UTF-8 end as one error naming the
    line, the byte, and `writer` (what wrote the file in UTF-8)."""
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise EvalkitError(f"{path}:{line}: not UTF-8 text (byte {e.start}: {e.reason}); {writer}: give the file "
                           f"as it wrote it") from None


@dataclass
class SourceRun:
    """results.json's `imported` section: the harness and settings as far as its files say
    (None where they say nothing)."""

    harness: str  # "lmms-eval" | "VLMEvalKit"
    version: str | None = None
    task: str | None = None  # the harness's own task or dataset name
    model: str | None = None  # its model name (lmms-eval's --model, VLMEvalKit's file prefix)
    model_args: str | None = None
    generation_kwargs: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    n_lines: int = 0  # samples in the source file
    log_format: str | None = None  # the file layout's version where the file records none itself
    matched_by: str = ""  # how lines were matched to the data's rows
    raw_responses: bool = False  # whether the source logged unfiltered responses beside the filtered ones
    unmatched: list[str] = field(default_factory=list)  # source rows that match no data row (first 50)
    n_unmatched: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_args_folder(self) -> str | None:
        """The checkpoint named in lmms-eval's model arguments (pretrained=...), for the run's name."""
        for part in (self.model_args or "").split(","):
            key, _, value = part.partition("=")
            if key.strip() == "pretrained" and value.strip():
                return value.strip()
        return None


@dataclass
class Imported:
    """The responses of another harness's run, ready for evalkit's scorer."""

    source: SourceRun
    predictions: dict[str, str]  # task id -> the response to score (the harness's filtered one)
    raw: dict[str, str] = field(default_factory=dict)  # task id -> the unfiltered response, where it differs
    rule: Rule | None = None  # the harness's per-sample metric, as a sensitivity variant
    scores: dict[str, float] = field(default_factory=dict)  # task id -> that metric, 0-1
    # task id -> the answer the harness itself extracted from the response (lmms-eval's MathVista
    # extraction, its MMMU parsed_pred), to set beside evalkit's own extraction
    answers: dict[str, str] = field(default_factory=dict)
