"""`tiny-qwen2-vl` and `tiny-qwen2.5-vl`: a real Qwen2VLForConditionalGeneration /
Qwen2_5_VLForConditionalGeneration with a tiny config and random weights.

The real processor class (loaded as the qwen2-vl family loads any checkpoint: without the
video processor) and the real PIL image processor with its dynamic resolution, capped at 64
image tokens (28x28x64 pixels) instead of 1,280; the Qwen2-VL-Instruct chat template; a
byte-level BPE trained offline, wrapped as the real Qwen2Tokenizer (Qwen2's pre-tokenizer
regex) with Qwen2-VL's special tokens appended in the checkpoint's order. Outputs are noise:
a pipeline check.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..families.qwen2_vl import PROCESSOR_CLASSES, image_only_processor_class
from .build import CORPUS, TinyBuild, register_tiny, save_random_model, tiny_text_config, bpe_vocab_merges

VERSION = "v1"
MIN_PIXELS = 56 * 56  # the checkpoints' default: at least 4 image tokens
MAX_PIXELS = 28 * 28 * 64  # at most 64 image tokens (1,280 in the checkpoints)

# Qwen2-VL's tokenizer appends these after its 151,643 BPE pieces, in this order (ids 151643...).
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")

# Qwen/Qwen2-VL-7B-Instruct's chat template (Qwen2.5-VL's is the same): a default system turn,
# ChatML turns, each image as <|vision_start|><|image_pad|><|vision_end|> where it occurs.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The words of Qwen2-VL's template and post-prompts, so they tokenize into sub-words too.
QWEN_CORPUS = CORPUS + """
system You are a helpful assistant. user assistant
Please try to answer the question with short words or phrases if possible.
Please select the correct answer from the options above.
"""


def build_tokenizer():
    """Qwen2Tokenizer over an offline byte-level BPE; eos and pad <|endoftext|> as in the
    checkpoints' tokenizer (the Instruct generation_config adds <|im_end|> as a stop id)."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = bpe_vocab_merges((), vocab_size=600, byte_level=True, corpus=QWEN_CORPUS)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, padding_side="left")
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True) for t in SPECIAL_TOKENS[1:]]})
    return tok


def _writer(model_type: str):
    def write(folder: Path) -> None:
        import transformers
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        tok = build_tokenizer()
        ids = tok.convert_tokens_to_ids
        image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        processor = image_only_processor_class(PROCESSOR_CLASSES[model_type])(
            image_processor=image_processor, tokenizer=tok, chat_template=CHAT_TEMPLATE)
        text = tiny_text_config(tok, max_position_embeddings=4096,
                                # head_dim 16: M-RoPE splits its 8 frequencies over time, height and width
                                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                                bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
        if model_type == "qwen2_vl":
            vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2)
            config_class, model_class = transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration
        else:  # window attention over 56 px windows, the last block full attention
            vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                          window_size=56, fullatt_block_indexes=[1])
            config_class, model_class = transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration
        config = config_class(image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                              vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
                              vision_config=vision, text_config=text)
        def stop_at_turn_end(model):
            model.generation_config.eos_token_id = [ids("<|im_end|>"), ids("<|endoftext|>")]

        save_random_model(folder, model_class, config, processor, BUILDS[model_type].seed, adjust=stop_at_turn_end)
        # Saved under the real class name, so the folder is laid out as a hub checkpoint is.
        config_file = folder / "processor_config.json"
        saved = json.loads(config_file.read_text())
        saved["processor_class"] = PROCESSOR_CLASSES[model_type]
        config_file.write_text(json.dumps(saved, indent=2))
    return write


BUILDS = {
    "qwen2_vl": TinyBuild(name="tiny-qwen2-vl", version=VERSION, build=_writer("qwen2_vl"),
                          description="Embedded Qwen2-VL with random weights, offline BPE tokenizer "
                                      "(pipeline check only)."),
    "qwen2_5_vl": TinyBuild(name="tiny-qwen2.5-vl", version=VERSION, build=_writer("qwen2_5_vl"),
                            description="Embedded Qwen2.5-VL with random weights, offline BPE tokenizer "
                                        "(pipeline check only)."),
}
load_tiny_qwen2_vl = register_tiny(BUILDS["qwen2_vl"])
load_tiny_qwen2_5_vl = register_tiny(BUILDS["qwen2_5_vl"])
