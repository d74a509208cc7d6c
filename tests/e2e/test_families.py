"""The family interface: discovery by model type, the generic fallback, post-prompt conventions,
the images-per-prompt limit, the default collation, and the shared tiny-build machinery."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from evalkit.errors import SampleError
from evalkit.models.families import GENERIC, Family, all_families, family_for, family_named
from evalkit.models.tiny.build import TinyBuild, seeded, train_bpe_tokenizer
from evalkit.types import Request

SHORT = "\nAnswer the question using a single word or phrase."


def test_families_found_by_model_type_and_unknown_types_get_generic():
    assert [family_for(SimpleNamespace(model_type=t)).name for t in ("idefics2", "idefics3", "smolvlm", "llava_next")] \
        == ["idefics2", "idefics3", "idefics3", "llava-next"]
    assert family_for(SimpleNamespace(model_type="no-such-model")) is GENERIC
    names = [f.name for f in all_families()]
    assert "idefics2" in names and len(names) == len(set(names))
    claimed = [mt for f in all_families() for mt in f.model_types]
    assert len(claimed) == len(set(claimed))  # no model type claimed twice
    with pytest.raises(Exception, match="unknown model family 'nope'; known families: .*idefics2"):
        family_named("nope")


def test_post_prompt_convention_replaces_only_the_shared_suffix():
    fam = Family(name="x", model_types=(), post_prompts={SHORT: " Answer:"})
    assert fam.apply_post_prompt("What is it?" + SHORT) == "What is it? Answer:"
    assert fam.apply_post_prompt("What is it?") == "What is it?"
    assert fam.apply_post_prompt(SHORT + " trailing") == SHORT + " trailing"
    assert fam.convention_key() == f"x:{SHORT!r}->' Answer:'"
    assert GENERIC.convention_key() == ""


class _Template:
    """A processor stand-in that shows the messages the template received (render_prompt's input)."""

    chat_template = "x"

    @staticmethod
    def apply_chat_template(messages, add_generation_prompt):
        return repr(messages)


def test_render_prompt_applies_convention_and_image_limit():
    fam = Family(name="one-image", model_types=(), max_images=1, post_prompts={SHORT: " Answer:"})
    req = Request("u", text="Q?" + SHORT, images=[b"a"])
    assert "'Q? Answer:'" in fam.render_prompt(_Template, req, "instruct", "m")
    # The base prompt style is raw text: no convention applied.
    assert fam.render_prompt(_Template, req, "base", "m") == "<image>Q?" + SHORT
    with pytest.raises(SampleError, match="2 images in one prompt, but the one-image family takes at most 1"):
        fam.render_prompt(_Template, Request("u", text="Q", images=[b"a", b"b"]), "instruct", "m")


def test_default_collation_pads_text_left_and_pixels_with_zeros():
    a = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
         "pixel_values": torch.ones(1, 1, 3, 2, 2)}
    b = {"input_ids": torch.tensor([[8]]), "attention_mask": torch.ones(1, 1, dtype=torch.long),
         "pixel_values": torch.full((1, 2, 3, 2, 2), 2.0)}
    out = Family(name="x", model_types=()).collate([a, b], pad_id=0)
    assert out["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert out["pixel_values"].shape == (2, 2, 3, 2, 2)
    assert out["pixel_values"][0, 1].abs().sum() == 0 and out["pixel_values"][1].min() == 2.0


def test_stop_ids_take_eos_generation_config_and_present_family_tokens(tiny_backend):
    tok = tiny_backend.tokenizer
    fam = dataclasses.replace(GENERIC, stop_tokens=("<end_of_utterance>", "<not-a-token>"))
    assert fam.stop_token_ids(tok, SimpleNamespace(eos_token_id=[2, 7])) == [2, 7, 32002]
    assert tiny_backend.stop_ids == [2, 32002]
    assert tiny_backend.family.name == "idefics2"
    assert tiny_backend.describe()["family"] == "idefics2"


def test_tiny_build_builds_once_into_its_versioned_folder(tmp_path):
    calls = []

    def write(folder: Path) -> None:
        calls.append(folder)
        (folder / "config.json").write_text("{}")

    build = TinyBuild(name="tiny-x", version="v9", build=write)
    assert build.path(tmp_path) == tmp_path / "tiny-x-v9"
    assert build.path(tmp_path) == tmp_path / "tiny-x-v9"
    assert len(calls) == 1 and calls[0] != tmp_path / "tiny-x-v9"  # written elsewhere, then moved
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-x-v9"]


def test_offline_bpe_is_deterministic_and_keeps_special_tokens_whole():
    specials = ["<unk>", "<s>", "</s>", "<image>"]
    a = train_bpe_tokenizer(specials, vocab_size=300)
    b = train_bpe_tokenizer(specials, vocab_size=300)
    assert a.to_str() == b.to_str()
    assert [a.token_to_id(t) for t in specials] == [0, 1, 2, 3]
    enc = a.encode("<image>What is the title of the chart?")
    assert enc.tokens[0] == "<image>" and a.decode(enc.ids) == "What is the title of the chart?"
    byte = train_bpe_tokenizer(["<|endoftext|>"], vocab_size=400, byte_level=True)
    assert byte.decode(byte.encode("naïve café 42").ids) == "naïve café 42"  # bytes cover any text


def test_seeded_restores_the_global_generator():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    with seeded(99):
        torch.rand(5)
    assert torch.rand(1) == expected


def test_a_family_post_prompt_reaches_the_prompt_and_the_cache_key(tiny_cache, tiny_backend):
    """Through a real backend: the family's convention rewrites the rendered prompt, and the
    response-cache key changes with it (answers cached under the tasks' prompt are not reused)."""
    from evalkit.models import ModelSpec, load_backend

    backend = load_backend(ModelSpec(name="tiny-idefics2", device="cpu"), cache_dir=tiny_cache)
    req = Request("u", text="What is it?" + SHORT, images=[b"unused"])
    assert backend.render_prompt(req) == "User:<image>What is it?" + SHORT + "<end_of_utterance>\nAssistant:"
    assert backend.cache_key() == tiny_backend.cache_key()
    backend.family = dataclasses.replace(backend.family, post_prompts={SHORT: " Answer:"})
    assert backend.render_prompt(req) == "User:<image>What is it? Answer:<end_of_utterance>\nAssistant:"
    assert backend.cache_key() == tiny_backend.cache_key() + f"|idefics2:{SHORT!r}->' Answer:'"
    assert backend.describe()["family_conventions"]["post_prompts"] == {SHORT: " Answer:"}
