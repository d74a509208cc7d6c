"""What the `hf` backend needs to know about one model family, in one object.

A family is everything that differs between architectures once transformers has loaded them
through `AutoModelForImageTextToText`: how its processor is loaded, how a request becomes
prompt text, which tokens end an answer, which token id stands for an image, which processor
outputs are per-token, how single prepared samples are stacked into a batch, how a
log-likelihood choice joins the prompt and what its pass needs besides the KV cache, how many
images one prompt may carry, and the short-answer prompts the family was evaluated with. The
defaults are Idefics2's behaviour; a family module overrides only what differs, either with
field values or, for behaviour, by subclassing and overriding a method.

Families are plain frozen dataclasses with no state: the backend asks them, they never hold
the model. A new family is one module in this package defining `FAMILY` (see __init__.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ...errors import SampleError
from ...types import Request
from ..prompt import render_prompt


@dataclass(frozen=True)
class Family:
    """One model family's facts. The method defaults are Idefics2's behaviour (the idefics2
    module only adds its stop token); fields default to "nothing family-specific"."""

    name: str  # short name shown in results.json ("idefics2", "llava-next", ...)
    # transformers `config.model_type` values this family handles (the top-level config's).
    model_types: tuple[str, ...]
    # Special tokens that end an answer besides the tokenizer's EOS and the model's
    # generation_config EOS ids; looked up in the tokenizer, skipped when absent.
    stop_tokens: tuple[str, ...] = ()
    # The token the processor repeats once per image feature; used when the model config
    # names no image token id (config.image_token_id / image_token_index come first).
    image_token: str = "<image>"
    # Images one prompt may hold; None = any number. A request with more is a per-sample
    # error naming this limit, never a silently truncated prompt.
    max_images: int | None = None
    # Short-answer post-prompt conventions this family was evaluated with: the tasks' shared
    # post-prompt text (e.g. "\nAnswer the question using a single word or phrase.") mapped to
    # this family's. Applied to the end of a request's text for the instruct prompt style.
    # Empty = the tasks' own prompts (lmms-eval's defaults) are the family's convention.
    post_prompts: Mapping[str, str] = field(default_factory=dict)
    # Where the facts above come from (papers, model cards, peer task configs); shown in
    # `describe()` so a report says what convention a score was made under.
    sources: tuple[str, ...] = ()
    # Per-token processor outputs besides input_ids and attention_mask (Qwen2-VL's
    # mm_token_type_ids, PaliGemma's token_type_ids), each with the value a token appended after
    # the prompt takes. They are left-padded with zeros like the attention mask and cut with the
    # prompt's tail when a choice merges into it. The choice pass continues on the prompt's KV
    # cache and needs none of them; the value is what a whole-sequence forward (the tests'
    # reference for log-likelihood) gives the choice's tokens.
    token_inputs: Mapping[str, int] = field(default_factory=dict)
    # What joins the prompt and a log-likelihood choice: a space after "Assistant:" (Idefics2),
    # nothing where the prompt ends in a newline and the answer starts the line (Qwen2-VL's
    # "assistant\n", PaliGemma's prefix).
    choice_separator: str = " "
    # Why --longest-edge cannot be applied, for processors that resize by something else
    # (Qwen2-VL: a pixel-count range); empty = the processor resizes by its longest edge.
    longest_edge_unsupported: str = ""

    # ------------------------------------------------------------------ prompts
    def apply_post_prompt(self, text: str) -> str:
        """The request text with the shared post-prompt replaced by this family's, if any."""
        for shared, own in self.post_prompts.items():
            if shared and text.endswith(shared):
                return text[: len(text) - len(shared)] + own
        return text

    def render_prompt(self, processor, request: Request, prompt_style: str, model_label: str) -> str:
        """The prompt text given to the processor. Default: the processor's chat template
        through the shared renderer, after the family's post-prompt convention."""
        if self.max_images is not None and len(request.images) > self.max_images:
            raise SampleError(f"{len(request.images)} images in one prompt, but the {self.name} family takes at "
                              f"most {self.max_images}; this sample cannot be asked of this model")
        if prompt_style == "instruct" and self.post_prompts:
            request = dataclasses.replace(request, text=self.apply_post_prompt(request.text))
        return render_prompt(processor, request, prompt_style, model_label)

    def continuation_context(self, prompt: str) -> str:
        """The prompt text as the processor tokenizes it before the answer, for splitting the
        log-likelihood choices off it. Default: the rendered prompt itself."""
        return prompt

    # ------------------------------------------------------------------ loading
    def load_processor(self, path: str, config):
        """The processor for a checkpoint folder or hub id whose config is `config`.
        Default: AutoProcessor."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(path)

    def model_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The processor's output for one sample, less what the model must not be given.
        Default: all of it."""
        return inputs

    # ------------------------------------------------------------------ tokens
    def image_token_id(self, config, tokenizer) -> int | None:
        """The id whose count in input_ids is the sample's image tokens."""
        for attr in ("image_token_id", "image_token_index"):
            value = getattr(config, attr, None)
            if isinstance(value, int):
                return value
        tid = tokenizer.convert_tokens_to_ids(self.image_token)
        return None if tid is None or tid == tokenizer.unk_token_id else tid

    def stop_token_ids(self, tokenizer, generation_config=None) -> list[int]:
        """Token ids that end generation: EOS, the generation config's EOS ids, and this
        family's stop tokens present in the tokenizer."""
        ids = {tokenizer.eos_token_id}
        eos = getattr(generation_config, "eos_token_id", None)
        ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
        for tok in self.stop_tokens:
            tid = tokenizer.convert_tokens_to_ids(tok)
            if tid is not None and tid != tokenizer.unk_token_id:
                ids.add(tid)
        return sorted(i for i in ids if i is not None)

    # ------------------------------------------------------------------ batching
    @property
    def per_token_keys(self) -> tuple[str, ...]:
        """The processor outputs with one value per token, padded and cut with the text."""
        return ("input_ids", "attention_mask", *self.token_inputs)

    def collate(self, inputs: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
        """Stack single-sample processor outputs (batch dim 1 each) into one batch.

        Default: input_ids, attention_mask and the family's `token_inputs` padded on the left
        (generation continues from the last column); every other tensor concatenated on dim 0
        after zero-padding its other dims to the largest. That is what these processors do
        themselves for a batch: Idefics2/3 drop all-zero padding images, LLaVA-NeXT slices each
        image's patches by its `image_sizes` entry, Qwen2-VL's flat patch rows (all one width)
        are split back per image by `image_grid_thw`."""
        import torch
        import torch.nn.functional as F

        out: dict[str, Any] = {}
        max_len = max(x["input_ids"].shape[1] for x in inputs)
        for key in self.per_token_keys:
            if key not in inputs[0]:
                continue
            fill = pad_id if key == "input_ids" else 0
            rows = [F.pad(x[key], (max_len - x[key].shape[1], 0), value=fill) for x in inputs]
            out[key] = torch.cat(rows, 0)
        for key in inputs[0]:
            if key in out:
                continue
            tensors = [x[key] for x in inputs]
            if not all(isinstance(t, torch.Tensor) for t in tensors):
                continue
            shape = [max(t.shape[d] for t in tensors) for d in range(tensors[0].dim())]
            padded = []
            for t in tensors:
                pad = []
                for d in reversed(range(1, t.dim())):
                    pad += [0, shape[d] - t.shape[d]]
                padded.append(F.pad(t, pad, value=0) if any(pad) else t)
            out[key] = torch.cat(padded, 0)
        return out

    def continuation_inputs(self, model, prefix_inputs: dict[str, Any], choice_ids) -> dict[str, Any]:
        """Extra keyword inputs for the log-likelihood choice pass, which runs the choices'
        tokens (`choice_ids`, n_choices x longest) on the prompt's repeated KV cache
        (input_ids, attention_mask and the cache are given by the backend). Default: none —
        the text positions simply continue. Families with multimodal position ids (Qwen2-VL's
        M-RoPE) return them here."""
        return {}

    # ------------------------------------------------------------------ reporting
    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model_types": list(self.model_types), "max_images": self.max_images,
                "post_prompts": dict(self.post_prompts), "sources": list(self.sources)}

    def convention_key(self) -> str:
        """The part of the family that changes outputs beyond the weights and the spec (the
        post-prompts), for the response cache key; empty when the tasks' prompts are used."""
        if not self.post_prompts:
            return ""
        return f"{self.name}:" + "|".join(f"{k!r}->{v!r}" for k, v in sorted(self.post_prompts.items()))
