"""`vllm`: generation through a vLLM engine, for users who have vllm (CUDA) installed.

Registering the name imports nothing heavy: vllm is imported when the backend is built, and
its absence is one clear error. Requests map to vLLM's multimodal prompt API, one dict per
request: {"prompt": <the chat-template text with one <image> per image>, "multi_modal_data":
{"image": [PIL images]}}, greedy SamplingParams with the request's max_new_tokens and stop
strings. The prompt is rendered exactly as the hf backend renders it (same chat template),
so the two backends ask the same question.

Model support is vLLM's: Idefics3 and SmolVLM are native there; Idefics2 runs where the
installed vLLM falls back to its transformers model implementation. Image splitting and the
longest edge go to the HF processor inside vLLM through `mm_processor_kwargs`.
`tensor_parallel_size` shards one model over several GPUs (vLLM starts its own workers); for
data parallelism over more GPUs than one model needs, use `--launcher torchrun` instead.

Not tested in CI (vllm is not installed there) beyond the import guard.
"""
from __future__ import annotations

from typing import Any

from ...errors import EvalkitError, SampleError
from ...pipeline.images import decode_image
from ...registry import MODELS
from ...types import Request, Response
from ..base import Backend, Prepared
from .fingerprint import model_fingerprint
from .hf import LOCAL_OPTIONS, TORCH_DTYPES
from ..options import Option, positive_int, with_options
from ..prompt import render_prompt
from ..spec import ModelSpec

def _check_tensor_parallel(n) -> None:
    if not isinstance(n, int) or n < 1:
        raise EvalkitError(f"tensor parallel size {n!r} is not valid; use a positive integer")


# GPUs one model is sharded over; the same weights give the same text, so not in the cache key
TENSOR_PARALLEL_SIZE = Option("tensor_parallel_size", 1, "GPUs to shard one model over (--model vllm; untested: "
                              "needs a GPU check)", parse=positive_int, in_cache_key=False,
                              check=_check_tensor_parallel)


MAX_IMAGES_PER_PROMPT = 8  # MMMU has up to 7 images per question
INSTALL_HINT = ("model 'vllm' needs the vllm package, which is not installed: install vllm "
                "(`pip install vllm`, on a CUDA machine) or use --model hf")


class VLLMBackend(Backend):
    name = "vllm"
    options = LOCAL_OPTIONS + (TENSOR_PARALLEL_SIZE,)

    def __init__(self, spec: ModelSpec, tensor_parallel_size: int | None = None, **engine_kwargs: Any):
        try:
            import vllm
        except ImportError:
            raise EvalkitError(INSTALL_HINT) from None
        if not spec.model_id:
            raise EvalkitError("model 'vllm' needs --model-id: a hub id or a local folder vLLM can load")
        if spec.load_in_4bit:
            raise EvalkitError("--load-in-4bit is a bitsandbytes option of the hf backend; give vLLM a checkpoint "
                               "quantized ahead (AWQ, GPTQ) instead")
        if spec.attn_implementation:
            raise EvalkitError("--attn is a transformers option; vLLM picks its own attention kernels, drop --attn")
        from transformers import AutoProcessor

        self.spec = spec
        self.model_path = spec.model_id
        self.tensor_parallel_size = int(tensor_parallel_size or spec.tensor_parallel_size)
        self.processor = AutoProcessor.from_pretrained(spec.model_id)
        self.tokenizer = self.processor.tokenizer
        mm_kwargs: dict[str, Any] = {"do_image_splitting": spec.do_image_splitting}
        if spec.longest_edge is not None:
            mm_kwargs["size"] = {"longest_edge": spec.longest_edge}
        self._vllm = vllm
        try:
            self.llm = vllm.LLM(model=spec.model_id, dtype=TORCH_DTYPES[spec.dtype],
                                tensor_parallel_size=self.tensor_parallel_size,
                                limit_mm_per_prompt={"image": MAX_IMAGES_PER_PROMPT},
                                mm_processor_kwargs=mm_kwargs, seed=0, **engine_kwargs)
        except (ValueError, RuntimeError) as e:
            raise EvalkitError(f"vLLM could not load {spec.model_id!r}: {str(e).splitlines()[0]}") from None
        image_token = getattr(self.processor, "image_token", None)
        image_token = getattr(image_token, "content", image_token) or "<image>"
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(image_token)
        # vLLM expands images itself: the count is taken from each output (Response.n_image_tokens),
        # and per image it stays unknown rather than guessed from the processor's settings.
        self.image_tokens_per_image = None

    # ----- preparation -----
    def render_prompt(self, request: Request) -> str:
        # The same chat template and placeholder handling as the hf backend.
        return render_prompt(self.processor, request, self.spec.prompt_style, self.model_path)

    def estimate_length(self, request: Request) -> int:
        return len(self.tokenizer(request.text, add_special_tokens=False)["input_ids"]) + 64 * len(request.images)

    def prepare(self, request: Request) -> Prepared:
        images = [decode_image(ref) for ref in request.images]
        if len(images) > MAX_IMAGES_PER_PROMPT:
            raise SampleError(f"{len(images)} images; the vllm backend allows {MAX_IMAGES_PER_PROMPT} per prompt")
        prompt = self.render_prompt(request)
        n_text = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        # vLLM expands the image placeholders itself; the real counts come back with the output.
        return Prepared(request, {"prompt": prompt, "images": images}, n_text, None)

    # ----- request kinds -----
    def _params(self, request: Request):
        gen = request.gen
        return self._vllm.SamplingParams(temperature=0.0, max_tokens=gen.max_new_tokens,
                                         stop=[s for s in gen.stop if s], skip_special_tokens=True)

    def _prompt(self, p: Prepared) -> dict[str, Any]:
        d: dict[str, Any] = {"prompt": p.inputs["prompt"]}
        if p.inputs["images"]:
            d["multi_modal_data"] = {"image": p.inputs["images"]}
        return d

    def generate(self, batch: list[Prepared]) -> list[Response]:
        try:
            outputs = self.llm.generate([self._prompt(p) for p in batch], [self._params(p.request) for p in batch],
                                        use_tqdm=False)
        except Exception as e:
            if len(batch) == 1:
                return [Response(uid=batch[0].request.uid, error=f"vLLM: {type(e).__name__}: {e}")]
            # One bad prompt fails the whole call: run them one by one to find it.
            return [r for p in batch for r in self.generate([p])]
        responses = []
        for p, out in zip(batch, outputs):
            completion = out.outputs[0]
            ids = list(out.prompt_token_ids or [])
            responses.append(Response(
                uid=p.request.uid, text=completion.text.strip(), n_input_tokens=len(ids) or p.n_input_tokens,
                n_image_tokens=sum(1 for t in ids if t == self.image_token_id),
                n_output_tokens=len(completion.token_ids)))
        return responses

    def loglikelihood(self, batch: list[Prepared]) -> list[Response]:
        raise EvalkitError("the vllm backend generates text only; run log-likelihood tasks (fairface) "
                           "with --model hf")

    # ----- reporting -----
    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model_id": self.model_path, "dtype": self.spec.dtype,
                "do_image_splitting": self.spec.do_image_splitting, "longest_edge": self.spec.longest_edge,
                "tensor_parallel_size": self.tensor_parallel_size, "prompt_style": self.spec.prompt_style,
                "image_tokens_per_image": None, "engine": f"vllm {self._vllm.__version__}",
                "pipeline_check": self.random_weights}

    def cache_key(self) -> str:
        return f"{self.spec.cache_key()}|{model_fingerprint(self.model_path)}"

    def reset_peak_memory(self) -> None:
        pass  # nothing to reset: see peak_memory

    def peak_memory(self) -> dict[str, Any]:
        # vLLM reserves a fixed share of each GPU up front (gpu_memory_utilization), in worker
        # processes this process cannot see into; a peak from here would mislead.
        return {"device": "cuda", "peak_bytes": None,
                "kind": "not measured: vLLM preallocates gpu_memory_utilization of each GPU"}


@MODELS.register("vllm")
@with_options(*VLLMBackend.options)
def load_vllm(spec: ModelSpec, cache_dir=None) -> VLLMBackend:
    """vLLM engine for --model-id (needs vllm installed; tensor parallel; untested: needs a GPU check)."""
    return VLLMBackend(spec)
