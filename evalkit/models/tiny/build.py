"""Shared machinery for the embedded tiny builds (`tiny-idefics2`, `tiny-idefics3`, ...).

A tiny build is a real transformers model class with a tiny config and seeded random weights,
its real processor class, and a tokenizer (a family's real one where a package ships it,
else a small BPE trained offline here with the family's special tokens). It is built on first
use into `<cache>/<name>-<version>` and reused after; the version string names everything
that changes the files, so a new version is a new folder and never reuses answers cached for
an older one. Its scores are noise: the backend has `random_weights = True`, and every report
says "pipeline check".

A family's tiny module is then a few lines:

    BUILD = TinyBuild(name="tiny-foo", version="v1", build=_build)   # _build(folder) saves model + processor
    register_tiny(BUILD)

where `_build` makes the tokenizer (e.g. `train_bpe_tokenizer(...)`), the processor and the
model under `seeded(BUILD.seed)`, calls `sharpen_output_head(model)` and `save_pretrained`s
both into the folder it is given (the write is made atomic here).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import string
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ...errors import EvalkitError
from ...registry import MODELS
from ..backends.hf import HFBackend
from ..spec import ModelSpec

SEED = 1234
# Random init gives near-uniform logits, where the greedy choice would hinge on float noise (and
# batched vs single runs could disagree). A larger output layer makes the argmax clear.
HEAD_SCALE = 40.0

# Training text for the offline BPE tokenizers: the words the shipped tasks ask with (short-answer
# VQA, document, chart and multiple-choice questions) so that prompts tokenize into few, real
# sub-words rather than single characters. Fixed text: the same merges on every machine.
CORPUS = """\
What is the name of the company in this document? What is the title of the chart? What is written
on the sign? How many people are in the picture? What color is the car? Is there a dog in the image?
What is the total amount on the invoice? What is the date on the letter? Which year has the highest
value? What is the value of x in the figure? Answer the question using a single word or phrase.
Answer with the option's letter from the given choices directly. Question: What is the gender of the
person in this image? Answer with one of: male, female. What is the race of the person in this image?
East Asian, Indian, Black, White, Middle Eastern, Latino Hispanic, Southeast Asian. How old is the
person in this image? 0-2, 3-9, 10-19, 20-29, 30-39, 40-49, 50-59, 60-69, more than 70 years old.
The image shows a table with numbers and a line plot. The answer is yes. The answer is no. A B C D E
F G H I. Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at
the end. Choices: (A) red (B) blue (C) green (D) yellow. Find the area of the triangle in the diagram.
The user asks the assistant about the picture, and the assistant gives helpful, short answers.
User: What is shown? Assistant: A chart. USER: Describe the image. ASSISTANT: A document. [INST] What
is in the picture? [/INST] A person.
"""


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "evalkit"


@contextlib.contextmanager
def seeded(seed: int = SEED) -> Iterator[None]:
    """Seed torch for a model build and restore the global generator state afterwards, so a
    build inside a run does not shift anything else's random draws."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def sharpen_output_head(model, scale: float = HEAD_SCALE) -> None:
    """Scale the output embedding so greedy argmax is clear (see HEAD_SCALE). The input
    embeddings are untouched, also when the model ties them (then they scale together)."""
    import torch

    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(scale)


def tiny_text_config(tok, **overrides) -> dict:
    """The language model every tiny build shares (2 layers, width 64, 4 heads over 2 KV heads),
    sized to `tok` and using its special ids; `overrides` set what a family's model needs
    (its model_type, head_dim, rope parameters, ...)."""
    return {"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
            **overrides}


def save_random_model(folder: Path, model_class, config, processor, seed: int, *, sharpen: bool = True,
                      adjust: Callable | None = None):
    """Build `model_class(config)` from `seed`, sharpen its output head (unless the family has its
    own way to a clear argmax: `sharpen=False` plus `adjust`), apply `adjust(model)`, and save the
    model and `processor` into `folder`. Returns the model."""
    with seeded(seed):
        model = model_class(config)
    if sharpen:
        sharpen_output_head(model)
    if adjust is not None:
        adjust(model)
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model


def train_bpe_tokenizer(special_tokens: Sequence[str], *, vocab_size: int = 600, byte_level: bool = False,
                        corpus: str = CORPUS):
    """A small BPE trained on `corpus`, with `special_tokens` first (ids 0..n-1 in order, never
    split). `byte_level=False` gives SentencePiece-style '▁' word prefixes (Llama/Mistral
    tokenizers), `True` GPT-2 byte-level pieces (Llama 3, SmolLM, Qwen tokenizers).
    Returns a `tokenizers.Tokenizer`; wrap it with `PreTrainedTokenizerFast(tokenizer_object=...)`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if byte_level:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok = Tokenizer(models.BPE(unk_token=special_tokens[0] if special_tokens else None))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        # Every printable ASCII character (newline included) is a piece, so ASCII text never
        # hits <unk>; other characters do (Mistral's real tokenizer falls back to bytes there).
        alphabet = list(string.printable)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  initial_alphabet=alphabet, show_progress=False)
    # Paragraph by paragraph with the newlines kept, so "\n" is learnt as text does use it.
    tok.train_from_iterator(corpus.split("\n\n"), trainer=trainer)
    return tok


def bpe_vocab_merges(special_tokens: Sequence[str], **train) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary and merge list of `train_bpe_tokenizer(special_tokens, **train)`, as the
    slow-tokenizer classes (GemmaTokenizer, Qwen2Tokenizer) take them."""
    model = json.loads(train_bpe_tokenizer(special_tokens, **train).to_str())["model"]
    # tokenizers writes a merge as a pair, or in older versions as "a b"
    return model["vocab"], [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]


TMP_PREFIX = ".tiny-"
# A temporary build folder without a live builder is a leftover of a killed build; one whose
# builder cannot be told (a folder from an older version, a build on another host sharing the
# cache) counts as a leftover once it is this old: a tiny build takes seconds.
STALE_SECONDS = 6 * 3600


def save_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp_folder)` and move the folder to `path` only when it finished, so an
    interrupted build never leaves a half-written model that later runs would load. A build
    killed before it could clean up leaves its temporary folder; the next build removes it."""
    if path.parent.exists() and not path.parent.is_dir():
        raise EvalkitError(f"--cache-dir {path.parent}: is a file, not a folder; give --cache-dir a writable folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_builds(path.parent)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    except OSError as e:
        raise EvalkitError(f"--cache-dir {path.parent}: cannot build {path.name} there ({e.strerror or e}); "
                           f"give --cache-dir a writable folder") from None
    try:
        write(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def remove_stale_builds(folder: Path, now: float | None = None) -> list[Path]:
    """Remove the `.tiny-<pid>-*` folders in `folder` whose process is gone (and older
    `.tiny-*` folders of unknown owner); returns what was removed."""
    now = time.time() if now is None else now
    removed = []
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        if not tmp.is_dir():
            continue
        pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        try:
            stale = now - tmp.stat().st_mtime > STALE_SECONDS or (pid.isdigit() and not _alive(int(pid)))
        except OSError:
            continue  # removed meanwhile by another build
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


@dataclass(frozen=True)
class TinyBuild:
    """One embedded tiny model: its registered name, the version of its files and the
    function that writes model + processor into a folder (deterministic for a version)."""

    name: str  # the model name users pass to --model, e.g. "tiny-llava-next"
    version: str  # bump whenever `build` would write different files
    build: Callable[[Path], None]
    description: str = ""  # one line for `evalkit models`
    seed: int = SEED

    def folder(self, cache_dir: Path | None = None) -> Path:
        return (cache_dir or default_cache_dir()) / f"{self.name}-{self.version}"

    def path(self, cache_dir: Path | None = None) -> Path:
        """The built folder, building it first if it is not there yet."""
        folder = self.folder(cache_dir)
        if not (folder / "config.json").exists():
            save_atomically(folder, self.build)
        return folder


class TinyBackend(HFBackend):
    """The hf backend over a tiny build's folder: random weights, so every report is a
    pipeline check; the build version goes into the spec so the response cache never mixes
    answers of two builds."""

    random_weights = True

    def __init__(self, spec: ModelSpec, model_path: str, build: TinyBuild):
        super().__init__(spec, model_path=model_path)
        self.name = build.name
        if spec.model_id is None:
            self.spec = dataclasses.replace(spec, model_id=f"{build.name}-{build.version}")


def register_tiny(build: TinyBuild) -> Callable:
    """Register `build.name` as a model: loading builds it (once) and opens it as a TinyBackend.
    The loader carries the build as `.tiny_build` (for `evalkit models` and tests)."""

    def load(spec: ModelSpec, cache_dir: Path | None = None) -> TinyBackend:
        return TinyBackend(spec, model_path=str(build.path(cache_dir)), build=build)

    load.tiny_build = build
    load.options = TinyBackend.options
    load.__doc__ = build.description  # `evalkit models` shows a factory's docstring
    return MODELS.register(build.name)(load)


def tiny_build_of(name: str) -> TinyBuild | None:
    """The tiny build registered as model `name`, or None for other backends."""
    return getattr(MODELS.get(name), "tiny_build", None)
