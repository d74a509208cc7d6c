"""LLaVA-NeXT family on tiny-llava-next (issue 14 item 3)."""
from __future__ import annotations

import pytest

from evalkit.pipeline.generator import Generator
from evalkit.models import ModelSpec, load_backend
from tests.helpers.family_checks import (assert_loglikelihood_matches_forward, batched_and_single, fairface_requests, mmmu_request,
                           processor_image_tokens, same_answers_through_hf, varied_requests)


@pytest.fixture(scope="module")
def llava(tiny_cache):
    return load_backend(ModelSpec(name="tiny-llava-next", device="cpu"), cache_dir=tiny_cache)


def test_loaded_as_llava_next_family_and_pipeline_check(llava):
    d = llava.describe()
    assert (d["family"], d["architecture"], d["pipeline_check"]) == \
        ("llava-next", "LlavaNextForConditionalGeneration", True)
    assert llava.render_prompt(varied_requests()[0]) == "[INST] <image>\nWhat is it? [/INST]"
    assert llava.stop_ids == [llava.tokenizer.eos_token_id]


def test_batched_left_padded_generation_equals_one_at_a_time(llava):
    # The images get 3, 5, 3 and 5 any-resolution patches: the batch zero-pads the patch dim
    # and the model takes each image's own patches back by its image_sizes row.
    batched, single = batched_and_single(llava, varied_requests())
    assert batched == single
    assert any(batched)


def test_image_tokens_per_sample_as_the_processor_writes_them(llava):
    reqs = varied_requests()
    # 2x2 features of the downscaled whole image (4), plus the best grid's features after
    # removing padding, plus one newline feature per grid row:
    # 200x100 -> 28x56 grid, 2x4 features + 2 newlines = 10, total 14;
    # 100x100 and 300x300 -> 56x56 grid, 4x4 + 4 = 20, total 24;
    # 64x256 -> 56x28 grid, 4x2 + 4 = 12, total 16.
    got = [r.n_image_tokens for r in Generator(llava, batch_size=4, progress=False).run(reqs)]
    assert got == [14, 24, 16, 24] == [processor_image_tokens(llava, r) for r in reqs]
    assert llava.image_tokens_per_image is None  # varies with the shape: per-sample counts only


def test_loglikelihood_equals_per_choice_forward(llava):
    requests = fairface_requests(1)  # gender, race, age: 2, 7 and 9 choices
    assert_loglikelihood_matches_forward(llava, requests)


def test_multi_image_mmmu_question_puts_every_image_first(llava):
    req = mmmu_request("validation_Art_Theory_2")  # three 240x128 palettes as options A, B, C
    prompt = llava.render_prompt(req)
    # The checkpoint's template writes each image as "<image>\n" before the text (LLaVA's format).
    assert prompt.startswith("[INST] <image>\n<image>\n<image>\nWhich of the following palettes")
    assert prompt.endswith("given choices directly. [/INST]")
    prepared = llava.prepare(req)
    assert prepared.inputs["image_sizes"].tolist() == [[128, 240]] * 3
    resp = Generator(llava, batch_size=1, progress=False).run([req])[0]
    # Each 240x128 image: 28x56 grid, 2x4 features less 0 padding + 2 newlines + 4 base = 14.
    assert resp.error is None and resp.n_image_tokens == 3 * 14 == processor_image_tokens(llava, req)


def test_local_folder_through_hf_backend(llava, tiny_cache):
    same_answers_through_hf(llava, "tiny-llava-next", tiny_cache)


def test_split_images_flag_is_refused_where_the_processor_has_no_switch(tiny_cache):
    from evalkit.errors import EvalkitError

    with pytest.raises(EvalkitError, match=r"^--split-images: LlavaNextForConditionalGeneration \(llava-next family\) "
                                           r"has no image splitting switch; drop the flag"):
        load_backend(ModelSpec(name="tiny-llava-next", device="cpu", do_image_splitting=True), cache_dir=tiny_cache)


def test_tiny_build_is_deterministic(llava, tiny_cache, tmp_path):
    """A second build from scratch writes the same weights, tokenizer and processor files."""
    from evalkit.models.tiny.build import tiny_build_of

    build = tiny_build_of("tiny-llava-next")
    first, second = build.path(tiny_cache), build.path(tmp_path)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and "model.safetensors" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
