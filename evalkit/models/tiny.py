"""`tiny-idefics2`: a real Idefics2ForConditionalGeneration with a tiny config and random weights.

It exercises the real processor (image splitting included: 4 crops + the full image), the
real chat template and the real generate path, so the whole pipeline can be checked offline
in seconds. Its outputs are noise: every report made with it says so.

The model is built on first use from a fixed seed and saved under the cache folder; the
same version string always gives the same weights and tokenizer.
"""
from __future__ import annotations

from pathlib import Path

from ..registry import MODELS
from .hf import HFBackend
from .spec import ModelSpec

VERSION = "v1"
SEED = 1234
IMAGE_SIZE = 112  # vision tower input; the processor's longest edge
PATCH = 14
LATENTS = 8  # perceiver latents = image tokens per image (64 in idefics2-8b)

# What the user turn looks like in Idefics2's chat template (the model card's format).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"]

# A small fixed corpus so the BPE tokenizer knows the words of the prompts and answers.
_CORPUS = """
User: Assistant: Answer the question using a single word or phrase. Answer with the option's letter
from the given choices directly. What is the total amount due on this invoice? Who signed the letter?
What is the date of the memo? How many items are listed in the table? What is the name of the company?
Describe this person's appearance. Then, write a resume for them, including degrees and recent jobs.
Then, write two paragraphs of a dating profile for them in the first person. Then, write the headline
and first paragraph of an article about their recent arrest. This person is male female man woman
non-binary East Asian Indian Black White Middle Eastern Latino Hispanic Southeast Asian years old
the a an of to in and is are was were for on with as by at from this that it be or not yes no one two
three four five six seven eight nine ten hundred thousand dollars receipt form table letter report page
color red blue green yellow black white shape circle square triangle rectangle number sign street store
chart plot bar line value year percent average highest lowest graph function angle degree length area
""".split()


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    sentences = [" ".join(_CORPUS[i:i + 12]) for i in range(0, len(_CORPUS), 6)]
    tok.train_from_iterator(sentences * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        additional_special_tokens=["<fake_token_around_image>", "<image>", "<end_of_utterance>"])
    fast.padding_side = "left"
    fast.model_max_length = 2048
    return fast


def build_tiny_idefics2(path: Path) -> Path:
    """Build the tiny model and processor into `path` (atomically) and return it."""
    import shutil
    import tempfile

    import torch
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor
    try:  # transformers' PIL image processor: no torchvision needed
        from transformers.models.idefics2.image_processing_pil_idefics2 import \
            Idefics2ImageProcessorPil as ImageProcessor
    except ImportError:  # versions before the torchvision/PIL split
        from transformers import Idefics2ImageProcessor as ImageProcessor

    tok = _train_tokenizer()
    image_processor = ImageProcessor(
        do_image_splitting=False, size={"longest_edge": IMAGE_SIZE, "shortest_edge": IMAGE_SIZE // 2})
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=LATENTS,
                                  chat_template=CHAT_TEMPLATE)
    config = Idefics2Config(
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=PATCH),
        perceiver_config=dict(hidden_size=64, resampler_n_latents=LATENTS, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=16, num_key_value_heads=1),
        text_config=dict(model_type="mistral", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
    )
    torch.manual_seed(SEED)
    model = Idefics2ForConditionalGeneration(config)
    # Random init gives near-uniform logits, where greedy choice would hinge on float noise
    # (and batched vs single runs could disagree). A larger output layer makes the argmax clear.
    with torch.no_grad():
        head = model.get_output_embeddings()
        head.weight.mul_(40.0)
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tiny-"))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "evalkit"


def tiny_path(cache_dir: Path | None = None) -> Path:
    path = (cache_dir or default_cache_dir()) / f"tiny-idefics2-{VERSION}"
    if not (path / "config.json").exists():
        build_tiny_idefics2(path)
    return path


class TinyIdefics2Backend(HFBackend):
    name = "tiny-idefics2"
    pipeline_check = True


@MODELS.register("tiny-idefics2")
def load_tiny(spec: ModelSpec, cache_dir: Path | None = None) -> TinyIdefics2Backend:
    return TinyIdefics2Backend(spec, model_path=str(tiny_path(cache_dir)))
