"""The known-answer trainer's check that half-precision storage changes no answer (the shipped
manifest's result is checked in tests/slow/test_known_answer.py)."""
from __future__ import annotations

import pytest

from evalkit.models.known_answer.train import half_precision_check
from evalkit.types import Response


def test_half_precision_check_names_each_changed_answer():
    fp32 = {"docvqa": [Response("0", text="Carol Moore"), Response("1", text="18-24")],
            "fairface": [Response("0#gender", logprobs=[-0.1, -2.0]), Response("0#race", logprobs=[-3.0, -0.5, -4.0])],
            "audit:blank": [Response("fairface:0:resume", text="unknown")]}
    stored = {"docvqa": [Response("0", text="Carol Moore"), Response("1", text="18-25")],
              # the gender choice's log-probabilities move but its best choice stays: no change
              "fairface": [Response("0#gender", logprobs=[-0.2, -1.9]), Response("0#race", logprobs=[-0.4, -0.5, -4.0])],
              "audit:blank": [Response("fairface:0:resume", text="unknown")]}
    hp = half_precision_check(fp32, stored)
    assert (hp["n_compared"], hp["n_changed"], hp["stored_as"]) == (5, 2, "float16")
    assert hp["changed"] == [{"part": "docvqa", "uid": "1", "fp32": "18-24", "stored": "18-25"},
                             {"part": "fairface", "uid": "0#race", "fp32": 1, "stored": 0}]


def test_half_precision_check_without_fp32_answers_and_with_missing_ones():
    stored = {"docvqa": [Response("0", text="x")]}
    assert half_precision_check(None, stored)["n_compared"] == 0
    assert half_precision_check(None, stored)["stored_as"] == "float32"
    with pytest.raises(ValueError):  # a part answered fewer times in fp32 is an error, not a shorter comparison
        half_precision_check({"docvqa": []}, stored)
