"""`tiny-paligemma`: a real PaliGemmaForConditionalGeneration (SigLIP vision tower, Gemma text
model) with a tiny config and random weights.

The real PaliGemmaProcessor (prefix format, token_type_ids, `<image>` plus its 1,024 `<locNNNN>`
and 128 `<segNNN>` tokens) and the real PIL SigLIP image processor at 56 px (16 image tokens;
224 px and 256 in paligemma-3b-*-224); a BPE trained offline, wrapped as the real GemmaTokenizer
(byte fallback, Gemma's <pad>=0, <eos>=1, <bos>=2, <unk>=3, <mask>=4 and the 256 byte pieces).
Outputs are noise: a pipeline check.
"""
from __future__ import annotations

from pathlib import Path

from .build import CORPUS, TinyBuild, register_tiny, save_random_model, tiny_text_config, bpe_vocab_merges

VERSION = "v1"
IMAGE_SIZE = 56
PATCH = 14
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<0x{i:02X}>" for i in range(256)))
# A wider random init than transformers' 0.02 and a x10 final norm. With 0.02 the residual
# stream stays close to the last input token's embedding, and with tied input/output embeddings
# (as in PaliGemma) greedy decoding then repeats the prompt's last token ("\n") whatever the
# image or question: batched-vs-single checks would pass vacuously. The tied head cannot be
# scaled alone (that scales the input embeddings too), so the final norm sharpens the argmax.
INIT_STD = 0.3
FINAL_NORM_SCALE = 10.0

PALIGEMMA_CORPUS = CORPUS + """
answer en What is in the image? caption en ocr detect segment question
"""


def build_tokenizer():
    from transformers import GemmaTokenizer

    vocab, merges = bpe_vocab_merges(SPECIAL_TOKENS, vocab_size=700, corpus=PALIGEMMA_CORPUS)
    return GemmaTokenizer(vocab=vocab, merges=merges, padding_side="left")


def _write(folder: Path) -> None:
    import torch
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tok = build_tokenizer()
    n_image_tokens = (IMAGE_SIZE // PATCH) ** 2
    image_processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    image_processor.image_seq_length = n_image_tokens  # what PaliGemmaProcessor repeats <image> by
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)  # adds <image>, <loc>, <seg>
    config = PaliGemmaConfig(
        image_token_index=processor.image_token_id, vocab_size=len(tok), projection_dim=64, hidden_size=64,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=PATCH, vision_use_head=False, projection_dim=64),
        text_config=tiny_text_config(tok, num_key_value_heads=1, head_dim=16, initializer_range=INIT_STD),
    )
    def widen_final_norm(model):
        with torch.no_grad():  # Gemma's RMSNorm scales by (1 + weight)
            model.model.language_model.norm.weight.fill_(FINAL_NORM_SCALE - 1)

    save_random_model(folder, PaliGemmaForConditionalGeneration, config, processor, BUILD.seed, sharpen=False,
                      adjust=widen_final_norm)


BUILD = TinyBuild(name="tiny-paligemma", version=VERSION, build=_write,
                  description="Embedded PaliGemma with random weights, offline BPE tokenizer (pipeline check only).")
load_tiny_paligemma = register_tiny(BUILD)
