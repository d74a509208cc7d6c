"""`tiny-idefics3`: a real Idefics3ForConditionalGeneration with a tiny config and random weights.

Real Idefics3Processor and PIL image processor (splitting into 56 px crops + the global image
when --do-image-splitting is on, so the image-token count varies per image as with the real
model), the Idefics3 chat template, and a byte-level BPE tokenizer trained offline (Llama 3's
tokenizer kind) carrying Idefics3's special tokens. Outputs are noise: a pipeline check.
"""
from __future__ import annotations

from pathlib import Path

from .build import TinyBuild, register_tiny, save_random_model, tiny_text_config, train_bpe_tokenizer

VERSION = "v1"
CROP = 56  # vision tower input = one crop (364 in Idefics3-8B)
PATCH = 14
SCALE = 2  # pixel-shuffle factor: (56/14)^2 / 2^2 = 4 image tokens per crop (169 in Idefics3-8B)
IMAGE_SEQ_LEN = (CROP // PATCH) ** 2 // SCALE ** 2
LONGEST_EDGE = 2 * CROP  # images resized to at most 2x2 crops (4x4 of 364 in Idefics3-8B)

# Idefics3-8B-Llama3's chat template (its chat_template.json): Idefics2's, behind <|begin_of_text|>.
CHAT_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# Llama 3's BOS/EOS and padding token, then the tokens Idefics3's processor looks up: the image
# wrapper, the image token, the turn end, the global-image tag and the 6x6 crop position tags.
SPECIAL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
                  *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)))


def build_tokenizer():
    """Byte-level BPE (as Llama 3's), no BOS added by the tokenizer: the chat template writes
    <|begin_of_text|> itself, as Idefics3's does, so prompts start with exactly one BOS."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=train_bpe_tokenizer(SPECIAL_TOKENS, vocab_size=700, byte_level=True),
        bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>", pad_token="<|reserved_special_token_0|>",
        additional_special_tokens=list(SPECIAL_TOKENS[3:]), padding_side="left")
    return tok


def _write(folder: Path) -> None:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tok = build_tokenizer()
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=True, size={"longest_edge": LONGEST_EDGE}, max_image_size={"longest_edge": CROP})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=IMAGE_SEQ_LEN,
                                  chat_template=CHAT_TEMPLATE)
    config = Idefics3Config(
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=SCALE,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=CROP, patch_size=PATCH),
        text_config=tiny_text_config(tok, model_type="llama"),
    )
    save_random_model(folder, Idefics3ForConditionalGeneration, config, processor, BUILD.seed)


BUILD = TinyBuild(name="tiny-idefics3", version=VERSION, build=_write,
                  description="Embedded Idefics3 (SmolVLM family) with random weights, offline BPE tokenizer "
                              "(pipeline check only).")
load_tiny_idefics3 = register_tiny(BUILD)
