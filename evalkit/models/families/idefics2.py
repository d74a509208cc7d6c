"""Idefics2 (HuggingFaceM4/idefics2-8b and its -base/-chatty variants).

Everything is the `Family` default: images first in the user turn through the processor's
chat template, `<end_of_utterance>` ends the assistant turn (it is in idefics2-8b's
generation_config eos ids too), perceiver latents (64 per image) as `<image>` tokens
between `<fake_token_around_image>`, any number of images per prompt (the model was trained
on interleaved documents), left padding for text and zero padding for pixels. The tasks'
prompts (lmms-eval's short-answer post-prompts) are the ones the harness reproduces the
model card with, so no post-prompt override.
"""
from .base import Family

FAMILY = Family(
    name="idefics2",
    model_types=("idefics2",),
    stop_tokens=("<end_of_utterance>",),
    sources=("HuggingFaceM4/idefics2-8b model card and processor config",),
)
