"""`tiny-llava-next`: a real LlavaNextForConditionalGeneration (CLIP vision tower, Mistral text model)
with a tiny config and random weights.

Real LlavaNextProcessor and PIL image processor with "any resolution" grids scaled down
(28 px patches, grids up to 56x56 px), so the image-token count varies with aspect ratio as
with llava-v1.6; the llava-v1.6-mistral chat template; a SentencePiece-style BPE tokenizer
trained offline with Mistral's <unk>/<s>/</s> and llava-hf's added `<image>` and `<pad>`.
Outputs are noise: a pipeline check.
"""
from __future__ import annotations

from pathlib import Path

from .build import TinyBuild, register_tiny, save_random_model, tiny_text_config, train_bpe_tokenizer

VERSION = "v1"
PATCH_PX = 28  # CLIP input and anyres patch (336 in llava-v1.6)
VIT_PATCH = 14
# llava-v1.6's pinpoints are 336 x {1,2,3} grids; the same shapes at 28 px, up to 2x2.
GRID_PINPOINTS = [[28, 56], [56, 28], [56, 56]]

# llava-hf/llava-v1.6-mistral-7b-hf's chat template, user and assistant turns: "[INST] ", every
# image as "<image>\n", then the text, then " [/INST]".
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{ ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
    "{% endif %}{% endfor %}"
)
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<image>", "<pad>")


def build_tokenizer():
    """Mistral-style: '▁' word prefixes, BOS <s> added to every encoding, pad <pad>, left padding."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    raw = train_bpe_tokenizer(SPECIAL_TOKENS, vocab_size=600)
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", raw.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", additional_special_tokens=["<image>"], padding_side="left")


def _write(folder: Path) -> None:
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    tok = build_tokenizer()
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": PATCH_PX}, crop_size={"height": PATCH_PX, "width": PATCH_PX},
        image_grid_pinpoints=GRID_PINPOINTS)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tok, patch_size=VIT_PATCH,
                                   vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                                   num_additional_image_tokens=1)  # CLIP's CLS token
    config = LlavaNextConfig(
        image_token_index=tok.convert_tokens_to_ids("<image>"), image_grid_pinpoints=GRID_PINPOINTS,
        vision_feature_select_strategy="default", vision_feature_layer=-2,
        image_seq_length=(PATCH_PX // VIT_PATCH) ** 2,
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, image_size=PATCH_PX, patch_size=VIT_PATCH,
                           projection_dim=32),
        text_config=tiny_text_config(tok, model_type="mistral"),
    )
    save_random_model(folder, LlavaNextForConditionalGeneration, config, processor, BUILD.seed)


BUILD = TinyBuild(name="tiny-llava-next", version=VERSION, build=_write,
                  description="Embedded LLaVA-NeXT (Mistral) with random weights, offline BPE tokenizer "
                              "(pipeline check only).")
load_tiny_llava_next = register_tiny(BUILD)
