"""`tiny-idefics2`: a real Idefics2ForConditionalGeneration with a tiny config and random weights.

It exercises the real processor (image splitting included: 4 crops + the full image), the
real chat template and the real generate path, so the whole pipeline can be checked offline
in seconds. Its outputs are noise: every report made with it says so. Its tokenizer is
Idefics2's real one (Mistral v0.1's SentencePiece model from the mistral-common package plus
Idefics2's three added tokens), so tokenization behaves as with idefics2-8b.

The model is built on first use from a fixed seed and saved under the cache folder; the
same version string always gives the same weights and tokenizer.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import EvalkitError
from .build import SEED, TinyBuild, register_tiny, save_random_model, tiny_text_config

VERSION = "v2"  # v2: Idefics2's real tokenizer (Mistral v0.1 SentencePiece + 3 added tokens, 32,003)
IMAGE_SIZE = 112  # vision tower input; the processor's longest edge
PATCH = 14
LATENTS = 8  # perceiver latents = image tokens per image (64 in idefics2-8b)

# Idefics2's chat template (HuggingFaceM4/idefics2-8b): the role, then ':' directly before an
# image but ': ' before text, the parts, <end_of_utterance> and a newline; then 'Assistant:'.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Idefics2 appends these to Mistral's 32,000 pieces, in this order: ids 32000, 32001, 32002.
ADDED_TOKENS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>")
# Mistral-7B-v0.1's SentencePiece model (the one Idefics2's tokenizer is built from), as shipped
# on PyPI inside mistral-common; its 32,000 pieces start <unk>=0, <s>=1, </s>=2.
SPM_PACKAGE, SPM_FILE = "mistral_common", "data/tokenizer.model.v1"


def spm_model_path() -> Path:
    from importlib import resources

    try:
        path = resources.files(SPM_PACKAGE).joinpath(SPM_FILE)
    except ModuleNotFoundError:
        raise EvalkitError("tiny-idefics2 needs the mistral-common package (it ships Mistral's tokenizer "
                           "model): run `make setup`, or `pip install mistral-common`") from None
    if not path.is_file():
        raise EvalkitError(f"mistral-common has no {SPM_FILE}; install a version that ships it "
                           f"(pip install 'mistral-common>=1.13')")
    return Path(str(path))


def build_tokenizer():
    """Idefics2's tokenizer: Mistral v0.1's SentencePiece model as a fast Llama tokenizer, legacy
    prefixing (every text chunk between special tokens starts a new word, as in Mistral v0.1's
    and Idefics2's tokenizers), BOS added, pad = <unk> (id 0) on the left, plus the three tokens."""
    import shutil
    import tempfile

    from transformers import LlamaTokenizer

    with tempfile.TemporaryDirectory() as d:  # from_pretrained wants the file named tokenizer.model
        shutil.copyfile(spm_model_path(), Path(d) / "tokenizer.model")
        tok = LlamaTokenizer.from_pretrained(d, legacy=True, add_bos_token=True, add_eos_token=False,
                                             unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": list(ADDED_TOKENS)})
    tok.padding_side = "left"
    # from_pretrained consumes `legacy` without recording it; unrecorded, the saved tokenizer
    # would reload with legacy=False, and text right after a special token would lose its '▁'.
    tok.init_kwargs["legacy"] = True
    ids = tok.convert_tokens_to_ids(["<unk>", "<s>", "</s>", *ADDED_TOKENS])
    if ids != [0, 1, 2, 32000, 32001, 32002] or len(tok) != 32003:
        raise EvalkitError(f"tokenizer build gave ids {ids} and {len(tok)} tokens; expected Idefics2's "
                           f"[0, 1, 2, 32000, 32001, 32002] and 32003")
    return tok


def build_processor():
    """tiny-idefics2's processor: Idefics2's tokenizer and chat template, images resized to 112 px,
    splitting off (the backend switches it per run)."""
    from transformers import Idefics2Processor
    try:  # transformers' PIL image processor: no torchvision needed
        from transformers.models.idefics2.image_processing_pil_idefics2 import \
            Idefics2ImageProcessorPil as ImageProcessor
    except ImportError:  # versions before the torchvision/PIL split
        from transformers import Idefics2ImageProcessor as ImageProcessor

    tok = build_tokenizer()
    image_processor = ImageProcessor(
        do_image_splitting=False, size={"longest_edge": IMAGE_SIZE, "shortest_edge": IMAGE_SIZE // 2})
    return Idefics2Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=LATENTS,
                             chat_template=CHAT_TEMPLATE)


def build_config(tok):
    """tiny-idefics2's architecture (also the known-answer model's, evalkit.models.known_answer)."""
    from transformers import Idefics2Config

    return Idefics2Config(
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=PATCH),
        perceiver_config=dict(hidden_size=64, resampler_n_latents=LATENTS, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=16, num_key_value_heads=1),
        text_config=tiny_text_config(tok, model_type="mistral"),
    )


def _write_tiny_idefics2(folder: Path) -> None:
    from transformers import Idefics2ForConditionalGeneration

    processor = build_processor()
    save_random_model(folder, Idefics2ForConditionalGeneration, build_config(processor.tokenizer), processor, SEED)


BUILD = TinyBuild(name="tiny-idefics2", version=VERSION, build=_write_tiny_idefics2, seed=SEED,
                  description="Embedded Idefics2 with random weights, built offline (pipeline check only).")


def tiny_path(cache_dir: Path | None = None) -> Path:
    return BUILD.path(cache_dir)


load_tiny = register_tiny(BUILD)
