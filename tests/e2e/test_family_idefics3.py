"""Idefics3 / SmolVLM family on tiny-idefics3 (issue 14 item 3)."""
from __future__ import annotations

import pytest

from evalkit.pipeline.generator import Generator
from evalkit.models import ModelSpec, load_backend
from tests.helpers.family_checks import (assert_loglikelihood_matches_forward, batched_and_single, fairface_requests, mmmu_request,
                           processor_image_tokens, same_answers_through_hf, varied_requests)


@pytest.fixture(scope="module")
def idefics3(tiny_cache):
    return load_backend(ModelSpec(name="tiny-idefics3", device="cpu"), cache_dir=tiny_cache)


@pytest.fixture(scope="module")
def idefics3_split(tiny_cache):
    return load_backend(ModelSpec(name="tiny-idefics3", device="cpu", do_image_splitting=True), cache_dir=tiny_cache)


def test_loaded_as_idefics3_family_and_pipeline_check(idefics3):
    d = idefics3.describe()
    assert (d["family"], d["architecture"], d["pipeline_check"]) == ("idefics3", "Idefics3ForConditionalGeneration", True)
    assert idefics3.render_prompt(varied_requests()[0]) == \
        "<|begin_of_text|>User:<image>What is it?<end_of_utterance>\nAssistant:"
    tok = idefics3.tokenizer
    assert idefics3.stop_ids == sorted({tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_utterance>")})


def test_batched_left_padded_generation_equals_one_at_a_time(idefics3_split):
    # With splitting the four images give 3, 5, 3 and 5 crops: the batch pads crops too.
    batched, single = batched_and_single(idefics3_split, varied_requests())
    assert batched == single
    assert any(batched)


def test_image_tokens_per_sample_as_the_processor_writes_them(idefics3, idefics3_split):
    reqs = varied_requests()
    # Without splitting every image is one 56 px crop: (56/14)^2 patches / 2^2 pixel shuffle = 4.
    # With splitting an image is resized to <= 112 px, cut into 56 px crops, plus the global image:
    # 200x100 -> 2 crops + 1 = 12 tokens, 100x100 -> 2x2 + 1 = 20, 64x256 -> 2 + 1 = 12, 300x300 -> 20.
    for backend, expected in ((idefics3, [4, 4, 4, 4]), (idefics3_split, [12, 20, 12, 20])):
        got = [r.n_image_tokens for r in Generator(backend, batch_size=4, progress=False).run(reqs)]
        assert got == expected == [processor_image_tokens(backend, r) for r in reqs]
    # Per image only where it is fixed: with splitting the count follows the shape, so None.
    assert (idefics3.image_tokens_per_image, idefics3_split.image_tokens_per_image) == (4, None)
    assert idefics3_split.describe()["image_tokens_per_image"] is None


def test_loglikelihood_equals_per_choice_forward(idefics3):
    requests = fairface_requests(1)  # gender, race, age: 2, 7 and 9 choices
    assert_loglikelihood_matches_forward(idefics3, requests)


def test_multi_image_mmmu_question_keeps_every_image_in_place(idefics3):
    req = mmmu_request("validation_Art_Theory_2")  # three palettes as options A, B, C
    prompt = idefics3.render_prompt(req)
    assert "A. <image>\nB. <image>\nC. <image>\n" in prompt
    resp = Generator(idefics3, batch_size=1, progress=False).run([req])[0]
    assert resp.error is None and resp.n_image_tokens == 3 * 4
    ids = idefics3.prepare(req).inputs["input_ids"][0].tolist()
    assert ids.count(idefics3.tokenizer.convert_tokens_to_ids("<global-img>")) == 3


def test_local_folder_through_hf_backend(idefics3, tiny_cache):
    same_answers_through_hf(idefics3, "tiny-idefics3", tiny_cache)


def test_smolvlm_checkpoint_is_this_family(idefics3, tiny_cache, tmp_path):
    """A SmolVLM folder (the tiny Idefics3 weights relabelled: the same architecture with
    SmolVLM's processor classes) loads as the idefics3 family; SmolVLM's processor builds a video
    processor that needs torchvision, so without it the load is one clear line naming it."""
    import importlib.util
    import json
    import shutil

    from evalkit.errors import EvalkitError
    from evalkit.models.tiny.build import tiny_build_of

    folder = tmp_path / "smolvlm"
    shutil.copytree(tiny_build_of("tiny-idefics3").path(tiny_cache), folder)
    proc = json.loads((folder / "processor_config.json").read_text())
    proc["processor_class"] = "SmolVLMProcessor"
    proc["image_processor"]["image_processor_type"] = "SmolVLMImageProcessor"
    proc["video_processor"] = {"video_processor_type": "SmolVLMVideoProcessor"}
    (folder / "processor_config.json").write_text(json.dumps(proc))
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="smolvlm", architectures=["SmolVLMForConditionalGeneration"])
    (folder / "config.json").write_text(json.dumps(config))
    spec = ModelSpec(name="hf", model_id=str(folder), device="cpu")
    if importlib.util.find_spec("torchvision") and importlib.util.find_spec("num2words"):
        assert load_backend(spec).family.name == "idefics3"
    else:
        with pytest.raises(EvalkitError) as err:
            load_backend(spec)
        assert "\n" not in str(err.value) and "needs a package that is not installed" in str(err.value)
        assert "Torchvision" in str(err.value) or "num2words" in str(err.value)
