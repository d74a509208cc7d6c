"""The known-answer model's architecture and processor: tiny-idefics2's, with a larger image.

At tiny-idefics2's 112 px longest edge a DocVQA page is a grey smear of 8 x 6 patches and the
shipped pages come out of a random vision tower nearly alike; the model must tell them apart
to answer from the image. So its processor resizes to a 224 px longest edge (16 x 16 patches
of 14 px) and its vision tower is wider. Everything else (tokenizer, chat template, perceiver
with 8 latents = 8 image tokens per image, text model) is tiny-idefics2's; the processor is
the real Idefics2 one, so splitting (4 crops + the full image) works as for idefics2-8b.
"""
from __future__ import annotations

IMAGE_SIZE = 224  # vision tower input and the processor's longest edge
PATCH = 14
LATENTS = 8  # perceiver latents = image tokens per image
VISION_HIDDEN = 64


def build_processor():
    from transformers import Idefics2Processor
    try:  # transformers' PIL image processor: no torchvision needed
        from transformers.models.idefics2.image_processing_pil_idefics2 import \
            Idefics2ImageProcessorPil as ImageProcessor
    except ImportError:  # versions before the torchvision/PIL split
        from transformers import Idefics2ImageProcessor as ImageProcessor

    from ..tiny.idefics2 import CHAT_TEMPLATE, build_tokenizer

    image_processor = ImageProcessor(
        do_image_splitting=False, size={"longest_edge": IMAGE_SIZE, "shortest_edge": IMAGE_SIZE // 2})
    return Idefics2Processor(image_processor=image_processor, tokenizer=build_tokenizer(), image_seq_len=LATENTS,
                             chat_template=CHAT_TEMPLATE)


def build_config(tok):
    from transformers import Idefics2Config

    from ..tiny.build import tiny_text_config

    return Idefics2Config(
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_config=dict(hidden_size=VISION_HIDDEN, intermediate_size=2 * VISION_HIDDEN, num_hidden_layers=2,
                           num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=PATCH),
        perceiver_config=dict(hidden_size=64, resampler_n_latents=LATENTS, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=16, num_key_value_heads=1),
        text_config=tiny_text_config(tok, model_type="mistral"),
    )
