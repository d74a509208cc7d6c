"""Qwen2-VL / Qwen2.5-VL family on tiny-qwen2-vl and tiny-qwen2.5-vl (issue 14 item 3)."""
from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from evalkit.errors import EvalkitError
from evalkit.pipeline.generator import Generator
from evalkit.models import ModelSpec, load_backend
from evalkit.types import Request
from tests.helpers.family_checks import (assert_loglikelihood_matches_forward, batched_and_single, fairface_requests, mmmu_request,
                           per_choice_forward, processor_image_tokens, same_answers_through_hf, varied_requests)

VISION = "<|vision_start|><|image_pad|><|vision_end|>"
HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
TAIL = "<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def qwen(tiny_cache):
    return load_backend(ModelSpec(name="tiny-qwen2-vl", device="cpu"), cache_dir=tiny_cache)


@pytest.fixture(scope="module")
def qwen25(tiny_cache):
    return load_backend(ModelSpec(name="tiny-qwen2.5-vl", device="cpu"), cache_dir=tiny_cache)


def test_loaded_as_qwen2_vl_family_with_its_template_stops_and_post_prompt(qwen):
    d = qwen.describe()
    assert (d["family"], d["architecture"], d["pipeline_check"]) == \
        ("qwen2-vl", "Qwen2VLForConditionalGeneration", True)
    assert d["image_tokens_per_image"] is None and d["longest_edge"] is None  # varies per image
    # The real processor class less its video processor (which exists only with torchvision).
    assert type(qwen.processor).__mro__[1].__name__ == "Qwen2VLProcessor"
    assert not hasattr(qwen.processor, "video_processor")
    assert qwen.render_prompt(varied_requests()[0]) == HEAD + VISION + "What is it?" + TAIL
    # The tasks' short-answer post-prompt becomes Qwen2-VL's (VLMEvalKit's VQA prompt).
    req = Request("u", text="What is it?\nAnswer the question using a single word or phrase.", images=[b""])
    assert qwen.render_prompt(req) == (HEAD + VISION + "What is it?\nPlease try to answer the question with short "
                                       "words or phrases if possible." + TAIL)
    tok = qwen.tokenizer
    assert qwen.stop_ids == sorted(tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))
    # Special tokens follow the trained pieces in the checkpoints' order.
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|image_pad|>"]) == \
        [len(tok) - 14, len(tok) - 13, len(tok) - 2]


def test_batched_left_padded_generation_equals_one_at_a_time(qwen, monkeypatch):
    reqs = varied_requests()
    batched, single = batched_and_single(qwen, reqs)
    assert batched == single
    assert len(set(batched)) == len(batched)  # the outputs depend on the input
    # mm_token_type_ids places the image tokens on the M-RoPE grid: padded on the right like
    # the pixels (the family default without it as a per-token input) it shifts every
    # position of the shorter prompts, and the batch answers differently.
    monkeypatch.setattr(qwen, "family", dataclasses.replace(qwen.family, token_inputs={}))
    wrong = [r.text for r in Generator(qwen, batch_size=len(reqs), progress=False).run(reqs)]
    assert wrong != single


def test_image_tokens_vary_with_image_size_as_the_processor_writes_them(qwen):
    reqs = varied_requests()
    # Each side rounded to a multiple of 28 px, the area kept in [56x56, 28x28x64], then one
    # token per 28x28: 200x100 -> 196x112 = 7x4 = 28; 100x100 -> 112x112 = 16;
    # 64x256 -> 56x252 = 2x9 = 18; 300x300 -> 308x308 is over 50,176 px, so each side is
    # divided by sqrt(300*300/50176) and floored to 28 px: 300/1.339.../28 is 7.999... in floating
    # point, so 196x196 = 7x7 = 49 (the processor's own arithmetic, not 224x224 = 64).
    got = [r.n_image_tokens for r in Generator(qwen, batch_size=4, progress=False).run(reqs)]
    assert got == [28, 16, 18, 49] == [processor_image_tokens(qwen, r) for r in reqs]
    assert [qwen.prepare(r).inputs["image_grid_thw"].tolist() for r in reqs[:2]] == [[[1, 8, 14]], [[1, 8, 8]]]


def test_loglikelihood_equals_per_choice_forward(qwen):
    # After the image the text's M-RoPE positions jump back to the grid's end: the choice pass
    # must be given them; a text-only prompt (no image) checks the plain-position case. FairFace's
    # gender and race questions: 2 and 7 choices.
    requests = fairface_requests(1)[:2] + [Request("text-only", text="Which colour?", kind="loglikelihood",
                                               choices=["red", "dark blue"])]
    assert_loglikelihood_matches_forward(qwen, requests)


def test_multi_image_mmmu_question_keeps_each_image_in_place(qwen):
    req = mmmu_request("validation_Art_Theory_2")  # three 240x128 palettes as options A, B, C
    prompt = qwen.render_prompt(req)
    assert prompt.count(VISION) == 3 and prompt.startswith(HEAD + "Which of the following palettes")
    assert prompt.endswith("Please select the correct answer from the options above." + TAIL)
    resp = Generator(qwen, batch_size=1, progress=False).run([req])[0]
    # 240x128 -> 252x140 = 9x5 = 45 tokens per image.
    assert resp.error is None and resp.n_image_tokens == 3 * 45 == processor_image_tokens(qwen, req)


def test_base_prompt_style_writes_images_as_vision_blocks(tiny_cache):
    base = load_backend(ModelSpec(name="tiny-qwen2-vl", device="cpu", prompt_style="base"), cache_dir=tiny_cache)
    req = varied_requests()[1]
    assert base.render_prompt(req) == VISION + "What is the title of the chart in this image?"
    resp = Generator(base, batch_size=1, progress=False).run([req])[0]
    assert resp.error is None and resp.n_image_tokens == 16


def test_longest_edge_is_refused_with_the_reason(tiny_cache):
    with pytest.raises(EvalkitError, match="--longest-edge: Qwen2-VL resizes each image into a pixel-count range"):
        load_backend(ModelSpec(name="tiny-qwen2-vl", device="cpu", longest_edge=980), cache_dir=tiny_cache)


def test_qwen2_5_vl_takes_the_same_path(qwen25):
    assert (qwen25.family.name, qwen25.describe()["architecture"]) == ("qwen2-vl", "Qwen2_5_VLForConditionalGeneration")
    reqs = varied_requests()
    batched, single = batched_and_single(qwen25, reqs)
    assert batched == single and len(set(batched)) == len(batched)
    assert [qwen25.prepare(r).n_image_tokens for r in reqs] == [28, 16, 18, 49]  # the same processor
    req = Request("ll", text="Which colour?", images=[Image.new("RGB", (120, 90), "red")], kind="loglikelihood",
                  choices=["red", "dark blue", "green"])
    resp = Generator(qwen25, batch_size=1, progress=False).run([req])[0]
    assert resp.logprobs == pytest.approx(per_choice_forward(qwen25, req), abs=1e-3)


def test_the_tiny_folder_loads_through_hf_as_a_checkpoint_would(qwen, tiny_cache, capsys):
    import json
    from pathlib import Path

    from evalkit.cli.commands import main

    folder = Path(qwen.model_path)
    # Laid out as Qwen/Qwen2-VL-*: the real processor class named, no video processor config.
    assert json.loads((folder / "processor_config.json").read_text())["processor_class"] == "Qwen2VLProcessor"
    assert not (folder / "video_preprocessor_config.json").exists()
    same_answers_through_hf(qwen, "tiny-qwen2-vl", tiny_cache)
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "tiny-qwen2-vl " in listed and "tiny-qwen2.5-vl " in listed and "Embedded Qwen2-VL" in listed


def test_tiny_build_is_deterministic(tmp_path):
    from evalkit.models.tiny.qwen2_vl import BUILDS

    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        BUILDS["qwen2_vl"].build(folder)
    for name in ("model.safetensors", "tokenizer.json", "processor_config.json", "chat_template.jinja"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
