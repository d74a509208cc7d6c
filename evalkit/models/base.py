"""The backend contract: what every model backend implements, and all the engine may use.

The generator, the runner, the audit and the reports reach a model only through `Backend`:
no `hasattr` probing for optional capabilities and no checks on a backend's name. A backend
that cannot do something (log-likelihood over a server without prompt logprobs) still
implements the method and raises one clear `EvalkitError` from it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from ..types import Request, Response


@dataclass
class Prepared:
    """One request after image decoding and processor work, ready to be collated into a batch."""

    request: Request
    inputs: dict[str, Any]  # backend-specific: tensors with a leading batch dim of 1 for local models
    n_input_tokens: int
    n_image_tokens: int | None  # None: the backend cannot know before the model runs (a server expands images)
    choice_ids: list[list[int]] | None = None  # log-likelihood requests: each choice's tokens


def cut_at_stops(text: str, stops) -> str:
    """The generated text up to the stop strings: decoding (or a server) may keep them."""
    for s in stops:
        if s and s in text:
            text = text[:text.index(s)]
    return text


class Backend(ABC):
    """A loaded model. Subclasses set `name` and, for random weights, `random_weights = True`."""

    name: str = ""  # the registered name (--model)
    # Random weights: every score is a pipeline check, never a model score, and reports say so.
    random_weights: bool = False
    # Tokens one image costs in the prompt, measured by the backend; None when it cannot be
    # known ahead (a served model expands images itself; Qwen2-VL's count varies per image).
    image_tokens_per_image: int | None = None
    # A backend whose batch is a set of concurrent server requests sizes its own batches (from
    # --concurrency); the generator then ignores --batch-size. None: --batch-size decides.
    batch_size: int | None = None
    # The ModelSpec options this backend reads, each declared once (evalkit.models.options): its
    # flag, config key and docs row come from the declaration. None: the local-model options.
    options: tuple | None = None

    @abstractmethod
    def estimate_length(self, request: Request) -> int:
        """A cheap estimate of the request's input tokens, used only to order batches."""

    @abstractmethod
    def prepare(self, request: Request) -> Prepared:
        """Decode images and build inputs for one request (runs in worker threads).
        Raises SampleError for a problem with this sample alone."""

    @abstractmethod
    def generate(self, batch: list[Prepared]) -> list[Response]:
        """Greedy generation for a batch sharing one GenerationSettings. Raises OutOfMemory
        when the batch does not fit, so the generator can halve it."""

    @abstractmethod
    def loglikelihood(self, batch: list[Prepared]) -> list[Response]:
        """The summed log-probability of each choice after the prompt (Response.logprobs)."""

    @abstractmethod
    def cache_key(self) -> str:
        """Identity of the outputs: every setting that changes them plus what the weights hold
        (a fingerprint of the files, a served model's revision), never a secret."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The model section of results.json (name, model_id, dtype, ...); must include
        `pipeline_check` (= random_weights) and `image_tokens_per_image` (int or None)."""

    @abstractmethod
    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window (called before generation)."""

    @abstractmethod
    def peak_memory(self) -> dict[str, Any]:
        """Peak memory since the last reset, as {"device", "peak_bytes", "kind"}."""

    def close(self) -> None:
        """Release what the backend holds (servers' connection pools, engines). Optional."""
