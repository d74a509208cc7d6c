"""Qwen2-VL and Qwen2.5-VL (Qwen/Qwen2-VL-2B/7B/72B-Instruct, Qwen/Qwen2.5-VL-3B/7B/72B-Instruct):
a ViT with 2D rotary positions over 14 px patches, 2x2 patch merging, and a Qwen2 language
model with multimodal rotary positions (M-RoPE). Both go through one code path here: the same
processor layout, chat template, image tokens and position scheme (Qwen2.5-VL's window
attention and time-aligned video positions are inside the model).

Facts (Wang et al., "Qwen2-VL", arXiv:2409.12191, model architecture section; the checkpoints' processor
configs and chat templates; transformers' Qwen2VLProcessor):
- Dynamic resolution: each image is resized to multiples of 28 px with its pixel count kept in
  [min_pixels, max_pixels] (56x56 .. 28x28x1280 by default) and becomes (h/28)x(w/28)
  `<|image_pad|>` tokens between `<|vision_start|>` and `<|vision_end|>`, so the count varies
  per image: it is recorded per sample, and no per-image figure is claimed.
- Pixel values are one flat list of patch rows for all images of a batch, split back per image
  by `image_grid_thw`: concatenating samples' lists is the batch layout (no padding).
- `mm_token_type_ids` (1 on image tokens) place the image tokens on the M-RoPE grid; it is a
  per-token input, so it is left-padded with the text. After an image, text positions run
  `max grid position + 1` on, not the token index: the log-likelihood choice pass must be given
  those positions (the prompt's rope delta), since the model can only recompute them from a
  full prompt.
- ChatML template with a default system turn; the answer follows "<|im_start|>assistant\\n"
  (so a choice starts the line: no separating space) and ends with `<|im_end|>`; the
  checkpoints' generation_config also stops on `<|endoftext|>`.
- Short-answer prompts: VLMEvalKit's Qwen2-VL prompt builder (vlmeval/vlm/qwen2_vl/prompt.py,
  `_build_vqa_prompt` and `_build_mcq_prompt`/`_build_mmmu_prompt`) appends "\\nPlease try to
  answer the question with short words or phrases if possible." to VQA questions and "Please
  select the correct answer from the options above." to multiple-choice ones.
- Images stay where the question places them: the chat template interleaves images and text.
  (VLMEvalKit's MMMU prompt for Qwen2-VL moves all images before the text instead, keeping the
  "<image k>" references as text; the shared MMMU task replaces those references by the images.)
- The processor has a video processor that exists only with torchvision; this harness asks
  about images, so the processor is loaded without it (the same class, its image processor and
  tokenizer from the checkpoint), which works with or without torchvision installed.
- `--longest-edge` does not apply: the processor's size is a pixel-count range.
- The base prompt style (raw text, no template) writes each image as the template does,
  "<|vision_start|><|image_pad|><|vision_end|>", which is what the processor expands.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

from ...task import MC_PROMPT, SHORT_ANSWER_PROMPT
from ...types import IMAGE_PLACEHOLDER, Request
from .base import Family

VISION_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"

# transformers' processor class per model type.
PROCESSOR_CLASSES = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}


@functools.cache
def image_only_processor_class(name: str):
    """`name` (a transformers processor class) without its video processor: the same prompt
    expansion and image handling, built from the checkpoint's image processor and tokenizer."""
    import transformers

    base = getattr(transformers, name)

    class ImageOnly(base):
        # ProcessorMixin takes its sub-processors from this signature: without
        # `video_processor` here, none is loaded (nor needs torchvision).
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template,
                             **kwargs)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"{name}ImagesOnly"
    return ImageOnly


@dataclass(frozen=True)
class Qwen2VLFamily(Family):
    def render_prompt(self, processor, request: Request, prompt_style: str, model_label: str) -> str:
        prompt = super().render_prompt(processor, request, prompt_style, model_label)
        return prompt.replace(IMAGE_PLACEHOLDER, VISION_BLOCK) if prompt_style == "base" else prompt

    def load_processor(self, path: str, config):
        cls = image_only_processor_class(PROCESSOR_CLASSES[config.model_type])
        return cls.from_pretrained(path)

    def continuation_inputs(self, model, prefix_inputs: dict[str, Any], choice_ids) -> dict[str, Any]:
        """M-RoPE positions of the choice tokens: the prompt's length plus its rope delta (0 for
        a text-only prompt), the same on all three axes as for any text token."""
        import torch

        n, longest = choice_ids.shape
        length = prefix_inputs["input_ids"].shape[1]
        delta = 0
        grid = prefix_inputs.get("image_grid_thw")
        if grid is not None:
            rope_index = model.model.get_rope_index
            kwargs = {k: prefix_inputs.get(k) for k in ("mm_token_type_ids", "attention_mask")
                      if k in inspect.signature(rope_index).parameters}
            _, deltas = rope_index(prefix_inputs["input_ids"], image_grid_thw=grid, **kwargs)
            delta = int(deltas.flatten()[0])
        positions = torch.arange(length, length + longest, device=choice_ids.device) + delta
        return {"position_ids": positions.view(1, 1, -1).expand(3, n, -1)}


FAMILY = Qwen2VLFamily(
    name="qwen2-vl",
    model_types=tuple(PROCESSOR_CLASSES),
    stop_tokens=("<|im_end|>", "<|endoftext|>"),
    image_token="<|image_pad|>",
    post_prompts={
        SHORT_ANSWER_PROMPT: "\nPlease try to answer the question with short words or phrases if possible.",
        MC_PROMPT: "Please select the correct answer from the options above.",
    },
    sources=("arXiv:2409.12191 (Qwen2-VL): naive dynamic resolution, M-RoPE",
             "VLMEvalKit vlmeval/vlm/qwen2_vl/prompt.py: VQA and multiple-choice post-prompts",
             "Qwen/Qwen2-VL-7B-Instruct chat template and generation_config (eos <|im_end|>, <|endoftext|>)"),
    token_inputs={"mm_token_type_ids": 0},
    choice_separator="",
    longest_edge_unsupported="Qwen2-VL resizes each image into a pixel-count range (min_pixels/max_pixels in "
                             "its preprocessor config), not by its longest edge",
)
