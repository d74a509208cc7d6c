"""Toxicity classifiers: the toxic class is found by label name, never by index order; the
per-group aggregation counts, averages and ranks as documented."""
import numpy as np
import pytest

from evalkit.audits.toxicity import HFToxicityClassifier, ProfanityCheckClassifier, toxic_label_index, toxicity_table
from evalkit.errors import EvalkitError


@pytest.mark.parametrize("id2label, expected", [
    ({0: "non-toxic", 1: "toxic"}, 1),
    ({0: "toxic", 1: "non-toxic"}, 0),
    ({0: "not_toxic", 1: "TOXICITY"}, 1),
    ({"0": "NON_TOXIC", "1": "Toxic"}, 1),  # string keys, as in a raw config.json
    # Jigsaw-style multi-label: several names contain "toxic"; the exact one wins.
    ({0: "toxic", 1: "severe_toxic", 2: "obscene"}, 0),
])
def test_toxic_label_found_by_name(id2label, expected):
    assert toxic_label_index(id2label) == expected


@pytest.mark.parametrize("id2label", [
    {0: "LABEL_0", 1: "LABEL_1"},
    {0: "non-toxic", 1: "not toxic"},
    {0: "severe_toxic", 1: "identity_toxic"},
])
def test_no_single_toxic_label_is_an_error(id2label):
    with pytest.raises(EvalkitError, match="toxic"):
        toxic_label_index(id2label)


@pytest.fixture(scope="module")
def tiny_reversed_distilbert(tmp_path_factory):
    """A random-init DistilBERT whose label 0 is "toxic" (the reverse of the usual order),
    saved with a tiny word-level tokenizer, as a local model directory."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tox")
    words = ["[PAD]", "[UNK]", "you", "are", "an", "idiot", "she", "has", "a", "degree", "in", "law"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(path)
    cfg = DistilBertConfig(vocab_size=len(words), dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                           max_position_embeddings=32, pad_token_id=0,
                           id2label={0: "toxic", 1: "non-toxic"}, label2id={"toxic": 0, "non-toxic": 1})
    torch.manual_seed(0)
    DistilBertForSequenceClassification(cfg).save_pretrained(path)
    return path


def test_reversed_labels_pick_column_zero(tiny_reversed_distilbert):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["you are an idiot", "she has a degree in law", "idiot"]
    clf = HFToxicityClassifier(str(tiny_reversed_distilbert), batch_size=2)
    assert clf.toxic_index == 0
    assert clf.describe()["toxic_label"] == "toxic"
    got = clf.predict_proba(texts)

    # Direct computation: softmax over the model's logits, column 0 = "toxic".
    tok = AutoTokenizer.from_pretrained(tiny_reversed_distilbert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reversed_distilbert).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits, -1).numpy()
    assert got == pytest.approx(probs[:, 0], abs=1e-6)
    # Random weights still separate the columns: reading column 1 would give other numbers.
    assert not np.allclose(got, probs[:, 1], atol=1e-3)


def test_profanity_check_default_is_offline_and_separates_obvious_cases():
    clf = ProfanityCheckClassifier()
    p = clf.predict_proba(["you are a fucking idiot", "She holds a degree in chemistry."])
    assert p[0] > 0.5 > p[1]
    assert clf.describe()["name"] == "profanity-check"


def test_toxicity_table_aggregates_per_group():
    # 5 generations: one empty (None: not scored). Group A: 0.2, 0.9; group B: 0.1, 0.6.
    probs = [0.2, 0.9, 0.1, None, 0.6]
    labels = ["A", "A", "B", "B", "B"]
    texts = ["a1", "a2", "b1", "", "b3"]
    ids = ["1", "2", "3", "4", "5"]
    t = toxicity_table("clf", "fairface", "m", "arrest", "gender", probs, labels, texts, ids, top_k=2)
    assert t.n_empty == 1
    rows = {r.group: r for r in t.rows}
    assert list(rows) == ["(all)", "A", "B"]
    assert rows["(all)"].n == 4 and rows["(all)"].mean["value"] == pytest.approx(0.45)
    assert rows["A"].mean["value"] == pytest.approx(0.55)
    assert rows["B"].mean["value"] == pytest.approx(0.35)
    # share above 0.5, in percent: A has 0.9 -> 50%; B has 0.6 -> 50%; all: 2 of 4.
    assert rows["A"].share_toxic["value"] == pytest.approx(50.0)
    assert rows["(all)"].share_toxic["value"] == pytest.approx(50.0)
    assert rows["A"].max == pytest.approx(0.9) and rows["B"].max == pytest.approx(0.6)
    assert [e["example_id"] for e in t.top] == ["2", "5"]
    lo, hi = rows["A"].mean["ci_low"], rows["A"].mean["ci_high"]
    assert 0.2 <= lo <= 0.55 <= hi <= 0.9
