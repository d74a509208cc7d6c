"""PaliGemma family on tiny-paligemma (issue 14 item 3)."""
from __future__ import annotations

import pytest

from evalkit.pipeline.generator import Generator
from evalkit.models import ModelSpec, load_backend
from evalkit.types import Request
from tests.helpers.family_checks import (assert_loglikelihood_matches_forward, batched_and_single, fairface_requests, mmmu_request,
                           processor_image_tokens, same_answers_through_hf, varied_requests)


@pytest.fixture(scope="module")
def pali(tiny_cache):
    return load_backend(ModelSpec(name="tiny-paligemma", device="cpu"), cache_dir=tiny_cache)


def test_loaded_as_paligemma_family_with_its_prefix_format(pali, tiny_cache):
    d = pali.describe()
    assert (d["family"], d["architecture"], d["pipeline_check"]) == \
        ("paligemma", "PaliGemmaForConditionalGeneration", True)
    assert pali.stop_ids == [pali.tokenizer.convert_tokens_to_ids("<eos>")] == [1]
    # The VQA task prefix replaces the tasks' short-answer post-prompt; the processor then
    # writes the image tokens, <bos> and the "\n" that ends the prefix.
    req = Request("u", text="What is it?\nAnswer the question using a single word or phrase.",
                  images=varied_requests()[0].images)
    assert pali.render_prompt(req) == "<image>answer en What is it?"
    prepared = pali.prepare(req)
    text = pali.tokenizer.decode(prepared.inputs["input_ids"][0])
    assert text == "<image>" * 16 + "<bos>answer en What is it?\n"
    assert prepared.inputs["token_type_ids"].tolist() == [[0] * prepared.n_input_tokens]  # all prefix
    assert "labels" not in prepared.inputs  # the processor's training labels never reach the model
    base = load_backend(ModelSpec(name="tiny-paligemma", device="cpu", prompt_style="base"), cache_dir=tiny_cache)
    assert base.render_prompt(req) == "<image>What is it?\nAnswer the question using a single word or phrase."


def test_batched_left_padded_generation_equals_one_at_a_time(pali):
    reqs = varied_requests()
    batched, single = batched_and_single(pali, reqs)
    assert batched == single
    assert len(set(batched)) == len(batched)  # the outputs depend on the input
    # token_type_ids makes the image and prefix attend both ways; a batch that lost it would
    # run the prefix causally and answer differently.
    inputs = pali._collate([pali.prepare(r) for r in reqs])

    def greedy(x):
        return pali.model.generate(**x, max_new_tokens=8, do_sample=False)[:, x["input_ids"].shape[1]:].tolist()
    assert greedy(inputs) != greedy({k: v for k, v in inputs.items() if k != "token_type_ids"})


def test_image_tokens_fixed_per_image_as_the_processor_writes_them(pali):
    reqs = varied_requests()
    # Every image is resized to 56x56: (56/14)^2 = 16 tokens whatever its size.
    got = [r.n_image_tokens for r in Generator(pali, batch_size=4, progress=False).run(reqs)]
    assert got == [16] * 4 == [processor_image_tokens(pali, r) for r in reqs]
    assert pali.image_tokens_per_image == 16


def test_loglikelihood_equals_per_choice_forward(pali):
    # The choices are the suffix: right after the prefix's "\n", causal (token_type_ids 1),
    # while the prompt pass attends over the image and prefix in both directions.
    requests = fairface_requests(1)[:2]  # gender and race: 2 and 7 choices
    # The tiny tokenizer has the pieces "\nthe" and "\nis": these choices merge with the
    # prefix's final "\n", which is then cut from the prompt (token_type_ids with it) and scored
    # as the start of every choice.
    merging = Request("m", text="Who is it?", images=varied_requests()[0].images, kind="loglikelihood",
                      choices=["the person", "is", "nobody"])
    prepared = pali.prepare(merging)
    full = pali.processor(text=[pali.render_prompt(merging)], images=[merging.images], return_tensors="pt")
    assert prepared.n_input_tokens == full["input_ids"].shape[1] - 1
    assert prepared.inputs["token_type_ids"].shape == prepared.inputs["input_ids"].shape
    assert [pali.tokenizer.convert_ids_to_tokens(c)[0] for c in prepared.choice_ids] == ["\nthe", "\nis", "\n"]
    requests.append(merging)
    assert_loglikelihood_matches_forward(pali, requests)


def test_multi_image_mmmu_question_is_a_per_sample_error_and_one_image_is_asked(pali):
    multi = mmmu_request("validation_Art_Theory_2")  # three palettes
    single = mmmu_request("validation_Math_2")  # "What is the area of the rectangle in <image 1>?"
    no_image = Request("t", text="What is it?")
    out = Generator(pali, batch_size=4, progress=False).run([multi, single, no_image])
    assert out[0].error == ("3 images in one prompt, but the paligemma family takes at most 1 (its checkpoints "
                            "are trained on single images); this sample cannot be asked of it")
    assert out[2].error == "the paligemma family needs one image per prompt; this sample has none"
    assert out[1].error is None and out[1].n_image_tokens == 16
    # The image goes first; its inline reference leaves the question.
    assert pali.render_prompt(single).startswith("<image>answer en What is the area of the rectangle in ?")


def test_listed_by_evalkit_models(capsys):
    from evalkit.cli.commands import main

    assert main(["models"]) == 0
    assert "tiny-paligemma   Embedded PaliGemma with random weights" in capsys.readouterr().out


def test_local_folder_through_hf_backend(pali, tiny_cache):
    same_answers_through_hf(pali, "tiny-paligemma", tiny_cache)


def test_tiny_build_is_deterministic(tmp_path):
    from evalkit.models.tiny.paligemma import BUILD

    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        BUILD.build(folder)
    for name in ("model.safetensors", "tokenizer.json", "processor_config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
