"""Prompt rendering shared by every backend that applies a processor's chat template, so the
hf, vllm and served backends ask a model the same question."""
from __future__ import annotations

from ..errors import EvalkitError, SampleError
from ..types import IMAGE_PLACEHOLDER, Request


def chat_messages(request: Request) -> list[dict]:
    """The request as one user turn: text pieces and {"type": "image"} parts in prompt order.
    Without placeholders in the text, the images come first (Idefics2's training format)."""
    n_ph = request.text.count(IMAGE_PLACEHOLDER)
    if n_ph and n_ph != len(request.images):
        raise SampleError(f"prompt has {n_ph} image placeholders but {len(request.images)} images")
    pieces = request.text.split(IMAGE_PLACEHOLDER) if n_ph else [request.text]
    content: list[dict] = []
    if not n_ph:
        content += [{"type": "image"} for _ in request.images]
    for i, piece in enumerate(pieces):
        if i > 0:
            content.append({"type": "image"})
        if piece:
            content.append({"type": "text", "text": piece})
    return [{"role": "user", "content": content}]


def render_prompt(processor, request: Request, prompt_style: str, model_label: str) -> str:
    """The prompt text for `request`: the processor's chat template ("instruct"), or the raw
    text with one image placeholder per image ("base", for models without a template)."""
    if prompt_style == "base":
        chat_messages(request)  # the placeholder count check
        if IMAGE_PLACEHOLDER in request.text:
            return request.text
        return IMAGE_PLACEHOLDER * len(request.images) + request.text
    messages = chat_messages(request)
    if getattr(processor, "chat_template", None) is None:
        raise EvalkitError(f"model {model_label!r} has no chat template; use --prompt-style base")
    return processor.apply_chat_template(messages, add_generation_prompt=True)
