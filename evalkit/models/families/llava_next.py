"""LLaVA-NeXT / LLaVA-1.6 (llava-hf/llava-v1.6-mistral-7b-hf, llava-hf/llava-v1.6-vicuna-7b-hf and
-13b): a CLIP ViT-L/336 tower, an MLP projector and a Mistral or Vicuna language model.

Facts (Liu et al., "LLaVA-NeXT: Improved reasoning, OCR, and world knowledge", 2024 blog; the
llava-hf checkpoints' processor configs and chat templates): "any resolution" input — the image
is resized and zero-padded to the best grid in `image_grid_pinpoints`, cut into 336 px patches
plus a downscaled whole image, and the processor writes one `<image>` token per visual feature
after removing the padding's features, plus one newline feature per grid row, so the count
varies with the image's aspect ratio (2,000-2,900 per image for the 7B checkpoints). The chat
template comes with the checkpoint: Mistral's "[INST] <image>\\n{text} [/INST]" or Vicuna's
"USER: <image>\\n{text} ASSISTANT:", images written first, each as "<image>\\n" (the LLaVA
training format), so a multi-image question is asked with all its images before the text;
the model's EOS `</s>` ends the answer (no extra stop token). Collation: pixel tensors are
(images, patches, 3, H, W); zero-padding the patch dim is what the processor does for a batch,
and the model slices each image's patches back by its `image_sizes` row. Short-answer prompts:
LLaVA-1.5's response-format prompts ("Answer the question using a single word or phrase.",
"Answer with the option's letter from the given choices directly.", Liu et al. 2023,
arXiv:2310.03744, Table 7), which are lmms-eval's defaults and the tasks' own, so no override.
"""
from .base import Family

FAMILY = Family(
    name="llava-next",
    model_types=("llava_next",),
    sources=("LLaVA-NeXT blog (2024-01-30)", "arXiv:2310.03744 Table 7 (response-format prompts)",
             "llava-hf/llava-v1.6-mistral-7b-hf processor config and chat template"),
)
