"""What the user asked for: which model and how to run it. Maps one to one to the model card's knobs."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from ..errors import EvalkitError
from .backends.http import check_timeout

DTYPES = ("fp32", "bf16", "fp16")
ATTN = ("eager", "sdpa", "flash_attention_2")
PROMPT_STYLES = ("instruct", "base")
# Settings only a served model (--model openai) reads. None of them is in `cache_key`: the
# served backend keys its outputs on the server and model it reached (OpenAIBackend.cache_key),
# and a local model's key stays what it was before these fields existed.
SERVER_FIELDS = ("base_url", "concurrency", "timeout", "max_retries", "api_key_env", "server_stop")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ModelSpec:
    name: str = "tiny-idefics2"  # a registered backend: "tiny-idefics2", "hf", "vllm"
    model_id: str | None = None  # hub id or local directory (for "hf")
    dtype: str = "fp32"
    attn_implementation: str | None = None  # None = the library's default
    do_image_splitting: bool = False
    longest_edge: int | None = None  # None = the processor's default (980 for Idefics2)
    load_in_4bit: bool = False
    device: str = "auto"  # "auto" = cuda if available else cpu
    prompt_style: str = "instruct"
    tensor_parallel_size: int = 1  # GPUs one model is sharded over (the vllm backend)
    # --- a served model (the openai backend) ---
    base_url: str | None = None  # the OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1
    concurrency: int = 8  # requests in flight at once
    timeout: float = 300.0  # seconds one HTTP request may take
    max_retries: int = 5  # retries of a request after a 429, a 5xx or a connection error
    api_key_env: str | None = None  # the NAME of the environment variable holding the key, never the key
    server_stop: bool = True  # send the task's stop strings to the server (always applied to the text too)

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise EvalkitError(f"dtype {self.dtype!r} is not valid; use one of {', '.join(DTYPES)}")
        if self.attn_implementation is not None and self.attn_implementation not in ATTN:
            raise EvalkitError(f"attention implementation {self.attn_implementation!r} is not valid; "
                               f"use one of {', '.join(ATTN)}")
        if self.prompt_style not in PROMPT_STYLES:
            raise EvalkitError(f"prompt style {self.prompt_style!r} is not valid; use one of {', '.join(PROMPT_STYLES)}")
        if not isinstance(self.tensor_parallel_size, int) or self.tensor_parallel_size < 1:
            raise EvalkitError(f"tensor parallel size {self.tensor_parallel_size!r} is not valid; use a positive integer")
        if self.longest_edge is not None and (self.longest_edge <= 0 or self.longest_edge % 14):
            raise EvalkitError(f"longest edge {self.longest_edge} is not valid; use a positive multiple of 14 (e.g. 980)")
        if not isinstance(self.concurrency, int) or isinstance(self.concurrency, bool) or self.concurrency < 1:
            raise EvalkitError(f"concurrency {self.concurrency!r} is not valid; use a positive integer")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise EvalkitError(f"max retries {self.max_retries!r} is not valid; use 0 or a positive integer")
        check_timeout(self.timeout)  # finite and at most a day: inf overflows the socket's timeout
        if self.api_key_env is not None and not _ENV_NAME.fullmatch(self.api_key_env):
            # not echoed: a user who passed the key itself must not see it printed or logged
            raise EvalkitError("--api-key-env is not an environment variable name (letters, digits and _); give "
                               "the variable's name (e.g. OPENAI_API_KEY), never the key itself")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """The model's short name for run folders: the last part of the hub id or folder, else the backend."""
        return (self.model_id or self.name).rstrip("/").split("/")[-1]

    def cache_key(self) -> str:
        """Identity of the outputs this spec produces (device excluded: same weights, same greedy text)."""
        d = self.to_dict()
        d.pop("device")
        d.pop("tensor_parallel_size")
        for k in SERVER_FIELDS:
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def without_credentials(data):
    """`data` (a spec's or config's dict, nested) with the user and password taken out of every
    `base_url`: they are for the connection only, never for a file (see models.backends.http.parse_base_url)."""
    from .backends.http import parse_base_url

    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if k.endswith("base_url") and isinstance(v, str):
                try:
                    v = parse_base_url(v).shown
                except EvalkitError:
                    v = "(not a valid URL; not recorded)"
            out[k] = without_credentials(v)
        return out
    if isinstance(data, list):
        return [without_credentials(v) for v in data]
    return data

