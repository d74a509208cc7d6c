"""The backend interface: one method per request kind, over a batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..types import Request, Response


@dataclass
class Prepared:
    """One request after image decoding and processor work, ready to be collated into a batch."""

    request: Request
    inputs: dict[str, Any]  # tensors with a leading batch dim of 1
    n_input_tokens: int
    n_image_tokens: int
    choice_ids: list[list[int]] | None = None  # log-likelihood requests: each choice's tokens


class Backend(Protocol):
    name: str
    pipeline_check: bool  # True for random-weight models: reports must say scores mean nothing

    def estimate_length(self, request: Request) -> int: ...

    def prepare(self, request: Request) -> Prepared: ...

    def generate(self, batch: list[Prepared]) -> list[Response]: ...

    def loglikelihood(self, batch: list[Prepared]) -> list[Response]: ...

    def describe(self) -> dict[str, Any]: ...

    def peak_memory(self) -> dict[str, Any]: ...
