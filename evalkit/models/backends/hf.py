"""The transformers backend: AutoModelForImageTextToText and the family's processor (AutoProcessor
unless the family loads its own), from a hub id or a folder.

Each request is prepared alone (decode, chat template, processor) in a worker thread so its
exact token count and any per-sample error are known; batches are then collated. What differs
between architectures (prompt rendering, stop tokens, the image token, collation, the
log-likelihood choice pass, images per prompt) is asked of the model's `Family`
(evalkit.models.families), chosen from the loaded config's model_type.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from ...errors import EvalkitError, OutOfMemory, SampleError
from ...pipeline.images import decode_image, image_key
from ...pipeline.memory import PeakMemory
from ...registry import MODELS
from ...types import Request, Response
from ..base import Backend, Prepared, cut_at_stops
from .continuation import split_continuations
from ..families import family_for
from .fingerprint import model_fingerprint
from .image_memo import KEY as IMAGE_KEY
from .image_memo import MemoImageProcessor, SharedMemo
from ..options import LONGEST_EDGE, Option, one_of, with_options
from ..spec import ModelSpec

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
ATTN = ("eager", "sdpa", "flash_attention_2")

# The model card's knobs, read by every local transformers model (hf, the tiny builds, vllm).
DTYPE = Option("dtype", "fp32", "fp32, bf16 or fp16", check=one_of("dtype", TORCH_DTYPES))
ATTN_IMPLEMENTATION = Option("attn_implementation", None,
                             "eager, sdpa or flash_attention_2 (flash-attention 2 untested: needs a GPU check); "
                             "default: the library's", flag="--attn",
                             check=one_of("attention implementation", ATTN, allow_none=True))
SPLIT_IMAGES = Option("do_image_splitting", False, "image splitting on: 4 crops + the full image (320 image "
                      "tokens for idefics2-8b)", flag="--split-images", switch=True)
LOAD_IN_4BIT = Option("load_in_4bit", False, "4-bit weights through bitsandbytes (CUDA; untested: needs a GPU check)",
                      switch=True)
# the same weights give the same greedy text on any device, so the device is not in the cache key
DEVICE = Option("device", "auto", "auto, cpu, cuda, cuda:1 ... (auto: cuda when present)", in_cache_key=False)
LOCAL_OPTIONS = (DTYPE, ATTN_IMPLEMENTATION, SPLIT_IMAGES, LONGEST_EDGE, LOAD_IN_4BIT, DEVICE)


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _set_longest_edge(image_processor, longest: int) -> None:
    """Resize target: `size` is a dict in older transformers and a SizeDict dataclass in newer
    ones; the shortest edge (378 for Idefics2) is capped so it never exceeds the longest."""
    size = getattr(image_processor, "size", None)
    if size is None:
        raise EvalkitError("--longest-edge: this model's image processor has no resize size to set")
    get = size.get if isinstance(size, dict) else (lambda k: getattr(size, k, None))
    if get("longest_edge") is None:
        raise EvalkitError(f"--longest-edge: this model's image processor resizes by {size}, not by longest edge")
    update = {"longest_edge": longest}
    if get("shortest_edge"):
        update["shortest_edge"] = min(get("shortest_edge"), longest)
    if isinstance(size, dict):
        image_processor.size = {**size, **update}
    else:
        image_processor.size = dataclasses.replace(size, **update)


def resolve_device(device: str) -> str:
    """'auto' -> cuda when present, else cpu; anything else checked against this machine."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise EvalkitError(f"device {device!r} is not valid; use auto, cpu, cuda or cuda:N") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise EvalkitError(f"device {device!r}: this machine has no CUDA GPU; use --device cpu (or auto)")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise EvalkitError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                               f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif d.type != "cpu":
        raise EvalkitError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return str(d)


class HFBackend(Backend):
    name = "hf"
    options = LOCAL_OPTIONS

    def __init__(self, spec: ModelSpec, model_path: str | None = None):
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText

        self.spec = spec
        path = model_path or spec.model_id
        if not path:
            raise EvalkitError("model 'hf' needs --model-id: a hub id (e.g. HuggingFaceM4/idefics2-8b) "
                               "or a local folder holding the model and processor")
        self.model_path = path
        self.device = resolve_device(spec.device)
        self.memory = PeakMemory(self.device)
        kwargs: dict[str, Any] = {"dtype": getattr(torch, TORCH_DTYPES[spec.dtype])}
        if spec.attn_implementation:
            kwargs["attn_implementation"] = spec.attn_implementation
        if spec.load_in_4bit:
            if self.device != "cuda":
                raise EvalkitError("--load-in-4bit needs a CUDA GPU (bitsandbytes); drop it on CPU")
            from transformers import BitsAndBytesConfig
            # The model card's 4-bit setting: NF4 weights with double quantization.
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=kwargs["dtype"])
        try:
            # The family comes first: some load their processor their own way (Qwen2-VL's
            # without the torchvision-only video processor).
            config = AutoConfig.from_pretrained(path)
            self.family = family_for(config)
            self.processor = self.family.load_processor(path, config)
            self.model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        except OSError as e:
            raise EvalkitError(f"could not load model {path!r}: {str(e).splitlines()[0]}; give a local folder "
                               f"with config.json, weights and processor files, or a reachable hub id") from None
        except ImportError as e:
            # transformers' messages run over several lines with install instructions: keep the first sentence.
            first = " ".join(str(e).split()).split(". ")[0]
            raise EvalkitError(f"model {path!r} needs a package that is not installed: {first}") from None
        except (ValueError, RuntimeError) as e:  # e.g. flash_attention_2 without CUDA or flash_attn
            raise EvalkitError(f"could not load model {path!r} with dtype={spec.dtype}, attention="
                               f"{spec.attn_implementation or 'default'}: {str(e).splitlines()[0]}") from None
        except Exception as e:
            # safetensors' own error type (a weight file cut short by an interrupted download or
            # copy) derives from Exception alone; it is named here without importing safetensors.
            if type(e).__name__ != "SafetensorError":
                raise
            raise EvalkitError(f"could not load model {path!r}: a .safetensors weight file is damaged or "
                               f"incomplete ({str(e).splitlines()[0]}); download or copy it again") from None
        if not spec.load_in_4bit:
            self.model.to(self.device)
        self.model.eval()
        ip = getattr(self.processor, "image_processor", None)
        if ip is not None and hasattr(ip, "do_image_splitting"):
            ip.do_image_splitting = spec.do_image_splitting
        elif spec.do_image_splitting:  # recorded as on but without effect would mislabel every result
            raise EvalkitError(f"--split-images: {type(self.model).__name__} ({self.family.name} family) has no "
                               f"image splitting switch; drop the flag (its processor decides the image layout)")
        if ip is not None and spec.longest_edge is not None:
            if self.family.longest_edge_unsupported:
                raise EvalkitError(f"--longest-edge: {self.family.longest_edge_unsupported}; drop --longest-edge")
            _set_longest_edge(ip, spec.longest_edge)
        if ip is not None:
            self.processor.image_processor = MemoImageProcessor(ip)
        self._decode_memo = SharedMemo(max_entries=8)
        tok = self.processor.tokenizer
        self.tokenizer = tok
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.image_token_id = self.family.image_token_id(self.model.config, tok)
        self.stop_ids = self.family.stop_token_ids(tok, getattr(self.model, "generation_config", None))
        text_cfg = getattr(self.model.config, "text_config", self.model.config)
        self.max_context = getattr(text_cfg, "max_position_embeddings", None)
        # Per image when it is the same for every image; None when it follows the image's shape
        # (LLaVA-NeXT grids, Idefics3 crops, Qwen2-VL): then only per-sample counts are reported,
        # and the square image's count still orders batches.
        square, wide = self._measure_tokens_per_image((448, 448)), self._measure_tokens_per_image((448, 224))
        self._length_tokens_per_image = square or 0
        self.image_tokens_per_image = square if square == wide else None
        # transformers renamed `past_key_values` to `cache`; use whichever this version takes.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        # The prompt pass of log-likelihood needs the last position's logits only; with a 32k
        # vocabulary the others would cost more than the tiny model's layers.
        self._last_logits_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    # ----- preparation -----
    def _measure_tokens_per_image(self, size: tuple[int, int]) -> int | None:
        """Image tokens the processor inserts for one image of `size`, measured rather than assumed
        (None when the probe fails: reports then say unknown rather than a guess)."""
        from PIL import Image

        try:
            p = self.prepare(Request(uid="probe", text="x", images=[Image.new("RGB", size, "white")]))
            return p.n_image_tokens
        except Exception:
            return None

    def render_prompt(self, request: Request) -> str:
        return self.family.render_prompt(self.processor, request, self.spec.prompt_style, self.model_path)

    def _decoded(self, ref):
        """Decode once per distinct image (requests for one image arrive together); the
        digest in `info` lets the processor's image memo recognise the image too. The decoded
        image is shared, so nothing downstream may modify it in place (the processor does not)."""
        key = image_key(ref)

        def decode():
            img = decode_image(ref)
            img.info[IMAGE_KEY] = key
            return img
        return self._decode_memo.get_or_compute(key, decode)

    def estimate_length(self, request: Request) -> int:
        n_text = len(self.tokenizer(request.text, add_special_tokens=False)["input_ids"])
        return n_text + len(request.images) * self._length_tokens_per_image

    def prepare(self, request: Request) -> Prepared:
        images = [self._decoded(ref) for ref in request.images]
        prompt = self.render_prompt(request)
        try:
            inputs = self.processor(text=[prompt], images=[images] if images else None, return_tensors="pt")
        except SampleError:
            raise
        except Exception as e:
            sizes = ", ".join(f"{im.width}x{im.height}" for im in images) or "no image"
            raise SampleError(f"the processor could not prepare this sample (image {sizes}): "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        inputs = self.family.model_inputs(dict(inputs))
        choice_ids = None
        if request.kind == "loglikelihood":
            inputs, choice_ids = self._choice_tokens(request, prompt, inputs)
        ids = inputs["input_ids"][0]
        n_in = int(ids.shape[0])
        n_img = int((ids == self.image_token_id).sum()) if self.image_token_id is not None else 0
        extra = max(map(len, choice_ids)) if choice_ids else request.gen.max_new_tokens
        budget = n_in + extra
        if self.max_context and budget > self.max_context:
            raise SampleError(f"prompt too long: {n_in} input tokens + {budget - n_in} to generate/score "
                              f"exceeds the model's context of {self.max_context}")
        return Prepared(request, inputs, n_in, n_img, choice_ids)

    def _encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _choice_tokens(self, request: Request, prompt: str, inputs: dict[str, Any]) -> tuple[dict[str, Any], list[list[int]]]:
        """Each choice's tokens as the model sees them after the prompt (see continuation.py); when
        the tokenizer merges across the prompt/choice boundary, the prompt's merged tail is cut from
        the context here and scored as the start of every choice."""
        if not request.choices:
            raise SampleError("log-likelihood request without choices")
        sep = self.family.choice_separator
        split = split_continuations(self._encode_text, self.family.continuation_context(prompt),
                                    [sep + c for c in request.choices])
        if any(len(c) == 0 for c in split.choice_ids):
            raise SampleError("a choice tokenizes to nothing after the prompt")
        d = split.n_dropped
        if d:
            ids = inputs["input_ids"][0].tolist()
            if ids[-d:] != split.context_ids[-d:]:
                raise SampleError(f"the prompt's last {d} token(s) merge with the choices, and the processor's "
                                  f"tokens for the prompt end differently from the tokenizer's; cannot score")
            inputs = {**inputs, **{k: inputs[k][:, :-d] for k in self.family.per_token_keys if k in inputs}}
        return inputs, split.choice_ids

    # ----- collation -----
    def _collate(self, batch: list[Prepared]) -> dict[str, Any]:
        out = self.family.collate([p.inputs for p in batch], self.pad_id)
        return {k: v.to(self.device) for k, v in out.items()}

    # ----- request kinds -----
    def generate(self, batch: list[Prepared]) -> list[Response]:
        import torch

        gen = batch[0].request.gen
        inputs = self._collate(batch)
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=gen.max_new_tokens, do_sample=gen.do_sample,
                                          eos_token_id=self.stop_ids, pad_token_id=self.pad_id)
        except Exception as e:
            if is_oom(e):
                raise OutOfMemory(str(e)) from None
            raise
        new = out[:, inputs["input_ids"].shape[1]:]
        responses = []
        for p, row in zip(batch, new):
            ids = row.tolist()
            n_out = next((i for i, t in enumerate(ids) if t in self.stop_ids or t == self.pad_id), len(ids))
            text = cut_at_stops(self.tokenizer.decode(ids[:n_out], skip_special_tokens=True), gen.stop)
            responses.append(Response(uid=p.request.uid, text=text.strip(), n_input_tokens=p.n_input_tokens,
                                      n_image_tokens=p.n_image_tokens, n_output_tokens=n_out))
        return responses

    def loglikelihood(self, batch: list[Prepared]) -> list[Response]:
        """Each request's prompt (and image) runs once; its KV cache is then shared by all choices."""
        out = []
        for p in batch:
            try:
                out.append(self._loglikelihood_one(p))
            except SampleError as e:  # one sample's problem stays that sample's record
                out.append(Response(uid=p.request.uid, error=str(e)))
        return out

    def _loglikelihood_one(self, p: Prepared) -> Response:
        import torch
        import torch.nn.functional as F

        cont = p.choice_ids
        inputs = {k: v.to(self.device) for k, v in p.inputs.items() if hasattr(v, "to")}
        try:
            with torch.inference_mode():
                prefix = self.model(**inputs, use_cache=True, **self._last_logits_only)
                cache = getattr(prefix, "cache", None) or prefix.past_key_values
                first_logp = F.log_softmax(prefix.logits[0, -1].float(), -1)
                n = len(cont)
                longest = max(len(c) for c in cont)
                ids = torch.full((n, longest), self.pad_id, dtype=torch.long, device=self.device)
                for i, c in enumerate(cont):
                    ids[i, :len(c)] = torch.tensor(c)
                cache.batch_repeat_interleave(n)
                # Padding sits after each choice's last token, so causal attention keeps it out of the scores.
                mask = torch.ones((n, inputs["input_ids"].shape[1] + longest), dtype=torch.long, device=self.device)
                extra = self.family.continuation_inputs(self.model, inputs, ids)
                out = self.model(input_ids=ids, attention_mask=mask, use_cache=True, **{self._cache_kwarg: cache},
                                 **extra)
                logp = F.log_softmax(out.logits.float(), -1)
        except Exception as e:
            if is_oom(e):
                raise OutOfMemory(str(e)) from None
            raise
        totals = []
        for i, c in enumerate(cont):
            s = float(first_logp[c[0]])
            for j in range(1, len(c)):
                s += float(logp[i, j - 1, c[j]])
            totals.append(s)
        return Response(uid=p.request.uid, logprobs=totals, choice_n_tokens=[len(c) for c in cont],
                        n_input_tokens=p.n_input_tokens, n_image_tokens=p.n_image_tokens)

    def cache_key(self) -> str:
        key = f"{self.spec.cache_key()}|{model_fingerprint(self.model_path)}"
        # Only a family with its own post-prompts changes outputs beyond spec and weights.
        convention = self.family.convention_key()
        return f"{key}|{convention}" if convention else key

    # ----- reporting -----
    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "model_id": self.model_path, "dtype": self.spec.dtype,
            "attn_implementation": self.spec.attn_implementation or getattr(self.model.config, "_attn_implementation", None),
            "do_image_splitting": self.spec.do_image_splitting,
            "longest_edge": self._longest_edge(),
            "load_in_4bit": self.spec.load_in_4bit, "device": self.device,
            "prompt_style": self.spec.prompt_style, "image_tokens_per_image": self.image_tokens_per_image,
            "n_parameters": self.model.num_parameters(),  # counts 4-bit weights unpacked
            "architecture": type(self.model).__name__, "pipeline_check": self.random_weights,
            "family": self.family.name, "family_conventions": self.family.describe(),
        }

    def _longest_edge(self) -> int | None:
        if self.family.longest_edge_unsupported:  # its size fields mean something else (pixel counts)
            return None
        size = getattr(getattr(self.processor, "image_processor", None), "size", None)
        return size.get("longest_edge") if isinstance(size, dict) else getattr(size, "longest_edge", None)

    def reset_peak_memory(self) -> None:
        self.memory.reset()

    def peak_memory(self) -> dict[str, Any]:
        return self.memory.describe()


@MODELS.register("hf")
@with_options(*LOCAL_OPTIONS)
def load_hf(spec: ModelSpec, cache_dir=None) -> HFBackend:
    """transformers AutoModelForImageTextToText from --model-id (hub id or local folder)."""
    return HFBackend(spec)
