"""A full-size Idefics2 (the 8B shapes) with random weights, for timing on a GPU without the weights.

Shapes are idefics2-8b's config.json: a SigLIP-SO400M/14 vision tower at 980 px (hidden 1152,
27 layers, 16 heads, MLP 4304), the perceiver resampler (64 latents, 3 layers, 16 heads of 96,
4 key-value heads) and Mistral-7B as the language model with the 3 added tokens (vocabulary
32,003). transformers' Idefics2Config() defaults are NOT these shapes for the vision tower
(they give 768 hidden, 12 layers, 224 px, patch 32), so every size is set here. The result
has 8,402,768,112 parameters, the 8.4B of the hub page (tests/test_bench_grid.py checks it).

The model is built directly on the GPU (constructed under `torch.device("cuda")`): no copy of
the weights ever sits in CPU memory, and buffers such as rotary frequencies are computed as
usual (an empty-then-fill build from the meta device would leave them uninitialised).
The text side uses the embedded tiny model's tokenizer (no hub access needed); its ids all
fall inside the 32,003-token vocabulary, and the prompt is a few tokens shorter than with
Mistral's tokenizer, which is small beside the 128-640 image tokens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

IMAGE_SEQ_LEN = 64  # perceiver latents = tokens per image (x5 with splitting)
LONGEST_EDGE, SHORTEST_EDGE = 980, 378
N_PARAMETERS_8B = 8_402_768_112


def full_size_config(image_token_id: int, pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2):
    from transformers import Idefics2Config

    return Idefics2Config(
        image_token_id=image_token_id, tie_word_embeddings=False,
        vision_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                           image_size=LONGEST_EDGE, patch_size=14),
        perceiver_config=dict(hidden_size=4096, resampler_n_latents=IMAGE_SEQ_LEN, resampler_depth=3,
                              resampler_n_heads=16, resampler_head_dim=96, num_key_value_heads=4),
        text_config=dict(model_type="mistral", vocab_size=32003, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         max_position_embeddings=32768, sliding_window=4096, rms_norm_eps=1e-5,
                         pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id),
    )


def full_size_processor(cache_dir: Path | None, do_image_splitting: bool):
    """Idefics2's real image processing (980 / 378 px, 64 tokens per image) with the tiny tokenizer."""
    from transformers import AutoTokenizer, Idefics2Processor
    from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

    from evalkit.models.tiny.idefics2 import CHAT_TEMPLATE, tiny_path

    tokenizer = AutoTokenizer.from_pretrained(tiny_path(cache_dir))
    image_processor = Idefics2ImageProcessorPil(
        do_image_splitting=do_image_splitting, size={"longest_edge": LONGEST_EDGE, "shortest_edge": SHORTEST_EDGE})
    return Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=IMAGE_SEQ_LEN,
                             chat_template=CHAT_TEMPLATE)


def random_model(config, *, dtype: str, attn_implementation: str, device: str, seed: int = 0):
    """Idefics2ForConditionalGeneration(config) with random weights, built on `device`."""
    import torch
    from transformers import Idefics2ForConditionalGeneration

    torch.manual_seed(seed)
    with torch.device(device):
        model = Idefics2ForConditionalGeneration._from_config(
            config, dtype=getattr(torch, dtype), attn_implementation=attn_implementation)
    return model.eval()


def quantize_4bit_(model, compute_dtype: str = "float16", skip: tuple[str, ...] = ("lm_head",)) -> int:
    """Replace every nn.Linear (but `skip`) with a bitsandbytes NF4 layer, double-quantized, as the
    card's BitsAndBytesConfig does for "the entire model"; returns how many layers changed.

    Layers are quantized one at a time from their GPU weights, so the peak during the swap is
    the half-precision model plus one layer.
    """
    import bitsandbytes as bnb
    import torch

    compute = getattr(torch, compute_dtype)
    swaps: list[tuple[Any, str, Any]] = []
    for parent_name, parent in model.named_modules():
        for name, child in parent.named_children():
            full = f"{parent_name}.{name}" if parent_name else name
            if isinstance(child, torch.nn.Linear) and not any(full == s or full.endswith("." + s) for s in skip):
                swaps.append((parent, name, child))
    for parent, name, child in swaps:
        device = child.weight.device
        q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                              compute_dtype=compute, compress_statistics=True, quant_type="nf4", device="meta")
        q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=True,
                                     quant_type="nf4").to(device)
        if child.bias is not None:
            q.bias = torch.nn.Parameter(child.bias.data.to(compute), requires_grad=False)
        setattr(parent, name, q)
        del child
    torch.cuda.empty_cache()
    return len(swaps)
