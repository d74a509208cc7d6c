"""Dataclasses at the module boundaries: what a task asks of a model and what comes back.

Data flows one way: dataset row -> Task.build_requests -> Request -> Generator -> Response
-> Task.score -> SampleRecord -> Task.aggregate -> metrics -> Results (results/schema.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

# Raw image as a task hands it over: encoded bytes, a file path, or a `datasets` Image
# dict ({"bytes": ..., "path": ...}), or an already decoded PIL image. Decoding happens in
# the generator's worker threads (evalkit.pipeline.images.decode_image) so a corrupt file becomes a
# per-sample error instead of stopping the run.
ImageRef = Union[bytes, str, dict, Any]

# The placeholder a task may put in Request.text to say where an image goes. Without
# any, images are placed before the text (how Idefics2's chat template is usually fed).
IMAGE_PLACEHOLDER = "<image>"

RequestKind = Literal["generate", "loglikelihood"]


@dataclass(frozen=True)
class Rule:
    """One scoring rule: what it does and where it comes from (script and version); a task's spec
    names the rule of its headline metric and its variants (evalkit.analyses.sensitivity)."""

    name: str
    description: str
    source: str = ""


@dataclass(frozen=True)
class GenConfig:
    """Generation settings of one request; greedy by default, as every reference number is."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("<end_of_utterance>",)
    do_sample: bool = False

    def to_dict(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "stop": list(self.stop), "do_sample": self.do_sample}


@dataclass
class Request:
    """One question to the model.

    `text` is the user turn; `IMAGE_PLACEHOLDER`s in it mark where `images` go (in order).
    For kind "loglikelihood", `choices` are continuations of the assistant turn whose
    log-probabilities are wanted; the image is encoded once for all of them.
    """

    uid: str
    text: str
    images: list[ImageRef] = field(default_factory=list)
    kind: RequestKind = "generate"
    gen: GenConfig = field(default_factory=GenConfig)
    choices: list[str] | None = None


@dataclass
class Response:
    """What the model gave for one Request; `error` set means no usable output."""

    uid: str
    text: str | None = None
    logprobs: list[float] | None = None  # per choice: sum of token log-probs
    choice_n_tokens: list[int] | None = None  # per choice: tokens scored (for length normalisation)
    n_input_tokens: int = 0
    n_image_tokens: int = 0
    n_output_tokens: int = 0
    error: str | None = None
    cached: bool = False
    latency_s: float | None = None  # a served request's time from first attempt to answer; None for local models

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "uid", "text", "logprobs", "choice_n_tokens", "n_input_tokens",
            "n_image_tokens", "n_output_tokens", "error")}
        if self.latency_s is not None:  # local models' cache lines stay as they were
            d["latency_s"] = self.latency_s
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Response":
        latency = d.get("latency_s")
        return cls(**{k: d.get(k) for k in (
            "uid", "text", "logprobs", "choice_n_tokens", "error")},
            n_input_tokens=d.get("n_input_tokens", 0) or 0,
            n_image_tokens=d.get("n_image_tokens", 0) or 0,
            n_output_tokens=d.get("n_output_tokens", 0) or 0,
            latency_s=float(latency) if isinstance(latency, (int, float)) and not isinstance(latency, bool) else None)


@dataclass
class Score:
    """A task's verdict on one sample.

    `value` is the headline per-sample metric in [0, 1], or None when the sample cannot be
    scored (no gold answer, unknown label); `reason` then says why. `extras` holds other
    per-sample metrics (e.g. MMMU "parsed_ok", FairFace per-attribute hits).
    """

    value: float | None
    extras: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class SampleRecord:
    """One line of samples.jsonl: everything the report and comparisons need about a sample."""

    uid: str
    sample_id: str  # the task's id field (questionId for DocVQA)
    question: str
    prediction: str | None
    gold: list[str]
    score: float | None
    extras: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # axis -> labels, for breakdowns
    error: str | None = None
    n_input_tokens: int = 0
    n_image_tokens: int = 0
    n_output_tokens: int = 0
    latency_s: float | None = None  # served models: the sample's requests' summed latency (seconds)
    thumb: str | None = None  # small JPEG as a data URI, for the report's sample browser
    # What the sample shares with others (its page, its image): intervals and tests resample
    # whole clusters. None: its own cluster (also every record written before clusters existed).
    cluster: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "SampleRecord":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class MetricValue:
    """An aggregate on the 0-100 scale with its 95% bootstrap interval."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0

    def to_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


@dataclass
class Count:
    """A task's count of samples and what it is out of (n_unparseable: 3 of the 10 samples the
    answer parser applies to). A count, never a 0-100 score: it has no interval."""

    count: int
    of: int
