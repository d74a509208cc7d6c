"""The embedded tiny model speaks with Idefics2's real tokenizer (Mistral v0.1's SentencePiece model
from mistral-common plus Idefics2's three added tokens), and log-likelihood choices are tokenized
jointly with the prompt, the way the model sees them."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from evalkit.pipeline.data import load_task_data
from evalkit.errors import SampleError
from evalkit.pipeline.images import decode_image
from evalkit.models.backends.continuation import common_prefix_len, split_continuations
from evalkit.models.spec import ModelSpec
from evalkit.models.tiny.idefics2 import VERSION, load_tiny, spm_model_path
from evalkit.types import GenConfig, Request
from evalkit.tasks.fairface import ATTRIBUTES, FairFace


@pytest.fixture(scope="module")
def sp():
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(spm_model_path()))


def pieces(tok, ids):
    return tok.convert_ids_to_tokens(list(ids))


def test_vocabulary_and_special_tokens_are_idefics2s(tiny_backend, sp):
    tok = tiny_backend.tokenizer
    assert len(tok) == 32003 and sp.get_piece_size() == 32000
    # the 32,000 pieces are Mistral's, id for id
    assert tok.convert_ids_to_tokens(list(range(32000))) == [sp.id_to_piece(i) for i in range(32000)]
    assert tok.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<fake_token_around_image>", "<image>",
                                      "<end_of_utterance>"]) == [0, 1, 2, 32000, 32001, 32002]
    assert (tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token) == ("<unk>", "<s>", "</s>", "<unk>")
    assert tok.pad_token_id == tiny_backend.pad_id == 0 and tok.padding_side == "left"
    assert tiny_backend.image_token_id == 32001 and tiny_backend.stop_ids == [2, 32002]
    text = tiny_backend.model.config.text_config
    assert text.vocab_size == 32003 and text.hidden_size == 64
    assert tiny_backend.model.get_output_embeddings().weight.shape == (32003, 64)
    # the cache key names the build, so answers cached with an older tiny model are never reused
    assert tiny_backend.spec.model_id == f"tiny-idefics2-{VERSION}" == "tiny-idefics2-v2"
    assert tiny_backend.spec.cache_key() != ModelSpec(device="cpu").cache_key()


@pytest.mark.parametrize("text", [
    "What is the total amount due on this invoice?", "Question: How old is the person in this image? "
    "Answer with one of: 0-2, 3-9, 10-19, 20-29, 30-39, 40-49, 50-59, 60-69, more than 70 years old.",
    "Latino/Hispanic, Southeast Asian. Résumé naïve 東京 ☃", "line one\nline two\ttab"])
def test_plain_text_encodes_as_sentencepiece_does(tiny_backend, sp, text):
    """Mistral's own tokenizer (SentencePiece) is the reference for text without special tokens,
    byte fallback for characters outside the vocabulary included."""
    assert tiny_backend.tokenizer(text, add_special_tokens=False)["input_ids"] == sp.encode(text)


def test_rendered_one_image_prompt_pieces(tiny_backend, docvqa_rows):
    image = docvqa_rows[0]["image"]
    req = Request(uid="a", text="What is written here?", images=[image])
    assert tiny_backend.render_prompt(req) == "User:<image>What is written here?<end_of_utterance>\nAssistant:"
    p = tiny_backend.prepare(req)
    assert pieces(tiny_backend.tokenizer, p.inputs["input_ids"][0]) == (
        ["<s>", "▁User", ":", "<fake_token_around_image>"] + ["<image>"] * 8 + ["<fake_token_around_image>",
         "▁What", "▁is", "▁written", "▁here", "?", "<end_of_utterance>", "▁", "<0x0A>", "Ass", "istant", ":"])
    assert (p.n_input_tokens, p.n_image_tokens) == (24, 8)
    # Idefics2's template writes 'User: ' (with a space) when the turn starts with text
    req = Request(uid="b", text="Read it: <image>", images=[image])
    assert tiny_backend.render_prompt(req) == "User: Read it: <image><end_of_utterance>\nAssistant:"
    ids = tiny_backend.prepare(req).inputs["input_ids"][0]
    assert pieces(tiny_backend.tokenizer, ids[:8]) == ["<s>", "▁User", ":", "▁Read", "▁it", ":", "▁",
                                                        "<fake_token_around_image>"]


def test_every_fairface_choice_is_tokenized_as_after_the_prompt(tiny_backend):
    task = FairFace()
    row = next(iter(load_task_data(task, None, 1).rows))
    requests = task.build_requests(row, "0")
    assert [r.choices for r in requests] == [a.choices() for a in ATTRIBUTES]
    tok, proc = tiny_backend.tokenizer, tiny_backend.processor
    for req in requests:
        p = tiny_backend.prepare(req)
        prompt = tiny_backend.render_prompt(req)
        images = [[decode_image(ref) for ref in req.images]]
        context = p.inputs["input_ids"][0].tolist()
        assert context == proc(text=[prompt], images=images, return_tensors="pt")["input_ids"][0].tolist()  # nothing dropped
        for choice, ids in zip(req.choices, p.choice_ids):
            joint = proc(text=[prompt + " " + choice], images=images, return_tensors="pt")["input_ids"][0].tolist()
            assert context + ids == joint, choice
    by_choice = {c: pieces(tok, ids) for req in requests for c, ids in
                 zip(req.choices, tiny_backend.prepare(req).choice_ids)}
    assert len(by_choice) == 2 + 7 + 9
    assert by_choice["This person is male."] == ["▁This", "▁person", "▁is", "▁male", "."]
    assert by_choice["This person is Latino/Hispanic."] == ["▁This", "▁person", "▁is", "▁Lat", "ino", "/",
                                                             "His", "panic", "."]
    assert by_choice["This person is more than 70 years old."] == [
        "▁This", "▁person", "▁is", "▁more", "▁than", "▁", "7", "0", "▁years", "▁old", "."]


def test_alone_a_choice_gets_a_spurious_word_start_with_mistrals_tokenizer(sp):
    """The bug joint tokenization avoids: SentencePiece gives ' Male' alone an extra '▁' piece."""
    def encode(text):
        return sp.encode(text)
    assert [sp.id_to_piece(i) for i in sp.encode(" Male")] == ["▁", "▁Male"]
    split = split_continuations(encode, "Assistant:", [" Male", " Female"])
    assert split.n_dropped == 0
    assert [[sp.id_to_piece(i) for i in c] for c in split.choice_ids] == [["▁Male"], ["▁Fem", "ale"]]


def test_a_merge_across_the_boundary_scores_every_choice_from_the_same_point(tiny_backend):
    tok = tiny_backend.tokenizer

    def encode(text):
        return tok(text, add_special_tokens=False)["input_ids"]
    split = split_continuations(encode, "Answer: ha", ["ppy", "rd", " day"])
    assert pieces(tok, split.context_ids) == ["▁Answer", ":", "▁ha"] and split.n_dropped == 1
    assert [pieces(tok, c) for c in split.choice_ids] == [["▁happy"], ["▁hard"], ["▁ha", "▁day"]]
    assert split_continuations(encode, "Answer:", [" yes", " no"]).n_dropped == 0
    assert common_prefix_len([1, 2, 3], [1, 2]) == 2 and common_prefix_len([], [5]) == 0


def _plain_forward_logprobs(backend, request, prompt):
    """Full forward passes over the processor's encoding of prompt + choice, no KV cache, each choice
    scored from where the encodings of all choices first part from the prompt's."""
    images = [[decode_image(ref) for ref in request.images]]
    context = backend.processor(text=[prompt], images=images, return_tensors="pt")["input_ids"][0].tolist()
    fulls = [backend.processor(text=[prompt + " " + c], images=images, return_tensors="pt") for c in request.choices]
    start = min(common_prefix_len(context, f["input_ids"][0].tolist()) for f in fulls)
    out = []
    for f in fulls:
        with torch.inference_mode():
            logits = backend.model(**f).logits[0].float()
        logp = F.log_softmax(logits, -1)
        ids = f["input_ids"][0]
        out.append(float(sum(logp[j - 1, ids[j]] for j in range(start, len(ids)))))
    return start, out


def test_loglikelihood_with_a_boundary_merge_equals_a_plain_forward(tiny_cache, docvqa_rows):
    # The base prompt style puts no template after the text, so a trailing space in the prompt
    # meets the choice's leading space: '▁' + '▁' merge into '▁▁'.
    backend = load_tiny(ModelSpec(prompt_style="base", device="cpu"), tiny_cache)
    req = Request(uid="m", text="The answer is ", images=[docvqa_rows[0]["image"]], kind="loglikelihood",
                  choices=["happy", "sad"])
    prompt = backend.render_prompt(req)
    p = backend.prepare(req)
    full_context = backend.processor(text=[prompt], images=[[decode_image(req.images[0])]], return_tensors="pt")["input_ids"][0].tolist()
    assert pieces(backend.tokenizer, full_context[-4:]) == ["▁The", "▁answer", "▁is", "▁"]
    assert p.inputs["input_ids"][0].tolist() == full_context[:-1] and p.n_input_tokens == len(full_context) - 1
    assert [pieces(backend.tokenizer, c) for c in p.choice_ids] == [["▁▁", "h", "appy"], ["▁▁", "s", "ad"]]
    (resp,) = backend.loglikelihood([p])
    start, direct = _plain_forward_logprobs(backend, req, prompt)
    assert start == len(full_context) - 1
    assert resp.error is None and resp.choice_n_tokens == [3, 3]
    assert resp.logprobs == pytest.approx(direct, abs=1e-3)
    # Where the processor's tokens for the prompt do not end as the tokenizer's do, the cut
    # context could not be trusted: one clear per-sample error instead of a wrong score.
    real = backend._encode_text
    backend._encode_text = lambda text: real(text)[:-1] + [0] if text == prompt else real(text)
    with pytest.raises(SampleError, match="end differently from the tokenizer's; cannot score"):
        backend.prepare(req)


def test_loglikelihood_equals_a_plain_forward_over_prompt_and_choice(tiny_backend):
    task = FairFace()
    row = next(iter(load_task_data(task, None, 1).rows))
    for req in task.build_requests(row, "0"):
        (resp,) = tiny_backend.loglikelihood([tiny_backend.prepare(req)])
        start, direct = _plain_forward_logprobs(tiny_backend, req, tiny_backend.render_prompt(req))
        assert resp.logprobs == pytest.approx(direct, abs=1e-3)
        assert resp.choice_n_tokens == [len(c) for c in tiny_backend.prepare(req).choice_ids]


def test_generation_stops_at_end_of_utterance(tiny_backend, docvqa_rows):
    """The model is made to emit <end_of_utterance> as its third token: generation stops there (no
    fourth step runs) and the answer is the two tokens before it."""
    req = Request(uid="g", text="What is written here?", images=[docvqa_rows[0]["image"]],
                  gen=GenConfig(max_new_tokens=10))
    free = tiny_backend.generate([tiny_backend.prepare(req)])[0]
    assert free.n_output_tokens == 10  # unforced, the random model runs to the limit
    eou = tiny_backend.tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    calls = []

    def force_eou_third(module, args, output):
        calls.append(1)
        if len(calls) == 3:
            output = output.clone()
            output[:, -1, eou] = output.max() + 100.0
        return output
    handle = tiny_backend.model.get_output_embeddings().register_forward_hook(force_eou_third)
    try:
        forced = tiny_backend.generate([tiny_backend.prepare(req)])[0]
    finally:
        handle.remove()
    assert len(calls) == 3 and forced.n_output_tokens == 2
    with torch.inference_mode():
        p = tiny_backend.prepare(req)
        out = tiny_backend.model.generate(**tiny_backend._collate([p]), max_new_tokens=2, do_sample=False,
                                          eos_token_id=tiny_backend.stop_ids, pad_token_id=0)
    first_two = out[0, p.n_input_tokens:].tolist()
    assert eou not in first_two
    assert forced.text == tiny_backend.tokenizer.decode(first_two, skip_special_tokens=True).strip()


def test_batches_are_left_padded_with_unk(tiny_backend, docvqa_rows):
    short = tiny_backend.prepare(Request(uid="s", text="Who?", images=[docvqa_rows[0]["image"]]))
    long = tiny_backend.prepare(Request(uid="l", text="Who signed the letter at the bottom?",
                                        images=[docvqa_rows[1]["image"]]))
    batch = tiny_backend._collate([short, long])
    gap = long.n_input_tokens - short.n_input_tokens
    assert gap > 0
    assert batch["input_ids"][0, :gap].tolist() == [0] * gap
    assert batch["attention_mask"][0].tolist() == [0] * gap + [1] * short.n_input_tokens
    assert batch["input_ids"][0, gap:].tolist() == short.inputs["input_ids"][0].tolist()
    assert batch["input_ids"][0, gap].item() == 1  # BOS right after the padding
