"""The local `evaluate` modules give the same numbers as the functions evalkit scores with."""
import evaluate
import pytest

from evalkit.metrics.anls import anls
from evalkit.metrics.hf_evaluate import module_path
from evalkit.metrics.vqa import vqa_accuracy


def test_anls_module():
    m = evaluate.load(module_path("anls"))
    preds, refs = ["Total Due", "$12.5", "nothing"], [["total due"], ["$12.50", "12.50"], ["abc"]]
    # 1.0 (case), 5/6 (one deletion over 6 chars), 0 (far below the threshold): mean 11/18
    assert m.compute(predictions=preds, references=refs)["anls"] == pytest.approx(11 / 18)
    assert m.compute(predictions=preds, references=refs)["anls"] == \
        pytest.approx(sum(anls(p, r) for p, r in zip(preds, refs)) / 3)


def test_vqa_accuracy_module():
    m = evaluate.load(module_path("vqa_accuracy"))
    golds = ["2"] * 2 + ["3"] * 8
    # "two" -> "2" matches 2 of 10 answers: leave-one-out mean 0.6; "3" matches 8: 1.0
    out = m.compute(predictions=["two", "3"], references=[golds, golds])["vqa_accuracy"]
    assert out == pytest.approx((0.6 + 1.0) / 2)
    assert out == pytest.approx((vqa_accuracy("two", golds) + vqa_accuracy("3", golds)) / 2)


def test_unknown_module():
    with pytest.raises(ValueError, match="available: anls, vqa_accuracy"):
        module_path("bleu")
