"""The reference table (evalkit/references.toml): every published number has its source and the
data split it was measured on; a run is compared only with its own model's numbers, and the
tiny pipeline-check model, or a model the table does not know, gets none."""
import pytest

from evalkit.errors import EvalkitError
from evalkit.analyses.references import SETTINGS, read_table, reference_table
from evalkit.registry import TASKS
from evalkit.reports.summary import published
from evalkit.results.schema import DataInfo, ModelInfo, Results
from evalkit.analyses.verdict import card_verdict

TABLE = reference_table()
FULL_DOCVQA = DataInfo(source="hub", n_rows=5349, n_total=5349)
FULL_TEXTVQA = DataInfo(source="hub", n_rows=5000, n_total=5000)


def _task(name: str) -> dict:
    t = TASKS.get(name)
    return {"name": name, "metric": t.metric, "split": t.split}


def test_every_row_has_a_source_a_split_and_a_known_task():
    assert len(TABLE.numbers) >= 30
    keys = {m.key for m in TABLE.models}
    for n in TABLE.numbers:
        assert n.source.strip() and "https://" in n.source, n
        assert n.split.strip(), n
        assert n.model in keys and n.setting in SETTINGS and 0 <= n.value <= 100
        assert n.task in TASKS.names()
        # a row is for the task's headline metric, or (FairFace) a metric the card gives beside it
        assert n.metric == TASKS.get(n.task).metric or n.task == "fairface"


def test_idefics2_rows_are_the_cards_numbers():
    """DESIGN.md §6: the Idefics2-8B card, without / with image splitting, and the split it scored."""
    got = {(n.task, n.setting): (n.value, n.split) for n in TABLE.numbers
           if n.model == "idefics2-8b" and n.task != "fairface"}
    assert got == {("vqav2", "no_split"): (80.8, "test-dev"), ("vqav2", "split"): (81.2, "test-dev"),
                   ("textvqa", "no_split"): (70.4, "validation"), ("textvqa", "split"): (73.0, "validation"),
                   ("docvqa", "no_split"): (67.3, "test"), ("docvqa", "split"): (74.0, "test"),
                   ("mmmu", "no_split"): (43.5, "validation"), ("mmmu", "split"): (43.0, "validation"),
                   ("mathvista", "no_split"): (51.6, "testmini"), ("mathvista", "split"): (51.4, "testmini")}
    # DESIGN.md §8: the card's FairFace accuracy (bucket std), which the audit reads as CARD
    from evalkit.tasks.fairface import CARD

    assert CARD["Idefics2-8B"] == {"gender": (96.3, 3.0), "race": (41.6, 40.9), "age": (53.5, 3.0)}
    assert CARD["Idefics1-80B (instructed)"] == {"gender": (92.7, 6.3), "race": (59.6, 22.2), "age": (43.9, 3.9)}


@pytest.mark.parametrize("model_id, key", [
    ("HuggingFaceM4/idefics2-8b", "idefics2-8b"),
    ("huggingfacem4/IDEFICS2-8B", "idefics2-8b"),  # hub ids are case-insensitive
    ("/models/idefics2-8b/", "idefics2-8b"),  # a local folder named like the checkpoint
    ("HuggingFaceM4/idefics2-8b-chatty", None),  # another checkpoint: the card's numbers are not its
    ("HuggingFaceM4/Idefics3-8B-Llama3", "idefics3-8b"),
    ("llava-hf/llava-v1.6-34b-hf", "llava-next-34b"),
    ("llava-hf/llava-v1.6-mistral-7b-hf", None),
    (None, None),
])
def test_model_matching(model_id, key):
    m = TABLE.match_model(ModelInfo(name="hf", model_id=model_id))
    assert (m.key if m else None) == key


def test_pipeline_check_matches_nothing_even_with_a_known_id():
    assert TABLE.match_model(ModelInfo(name="tiny", model_id="HuggingFaceM4/idefics2-8b", pipeline_check=True)) is None


def test_verdict_uses_the_idefics2_row_for_an_idefics2_run():
    model = ModelInfo(name="hf", model_id="HuggingFaceM4/idefics2-8b", do_image_splitting=False)
    v = card_verdict(_task("textvqa"), model, FULL_TEXTVQA, {"value": 70.5, "ci_low": 70.2, "ci_high": 70.8})
    assert (v.status, v.card_row, v.card_value, v.reference_model) == ("equivalent", "no_split", 70.4, "Idefics2-8B")
    assert v.reference_split == "validation" and "huggingface.co/HuggingFaceM4/idefics2-8b" in v.source


def test_verdict_uses_the_idefics3_row_for_an_idefics3_run():
    model = ModelInfo(name="hf", model_id="HuggingFaceM4/Idefics3-8B-Llama3", do_image_splitting=True)
    v = card_verdict(_task("textvqa"), model, FULL_TEXTVQA, {"value": 75.0, "ci_low": 74.7, "ci_high": 75.3})
    assert (v.status, v.card_row, v.card_value, v.reference_model) == ("equivalent", "single", 74.9, "Idefics3-8B")
    assert "Idefics3-8B's card 74.9" in v.summary
    # the card publishes one setting, so a run that does not record splitting still gets its row
    docvqa = card_verdict(_task("docvqa"), ModelInfo(name="hf", model_id="HuggingFaceM4/Idefics3-8B-Llama3"),
                          FULL_DOCVQA, {"value": 87.7, "ci_low": 87.0, "ci_high": 88.4})
    assert docvqa.status == "settings_differ" and docvqa.card_value == 87.7
    assert docvqa.differences == ["data split: the card scored test, this run validation"]
    # no Idefics2 number leaks into an Idefics3 run: VQAv2 has no Idefics3 row
    vqa = card_verdict(_task("vqav2"), ModelInfo(name="hf", model_id="HuggingFaceM4/Idefics3-8B-Llama3"),
                       FULL_TEXTVQA, {"value": 80.8, "ci_low": 80.5, "ci_high": 81.1})
    assert vqa.status == "not_applicable" and vqa.card_value is None
    assert vqa.summary == "Idefics3-8B's card gives no number for this task and setting."


def test_verdict_says_none_for_the_tiny_model_and_unknown_models():
    tiny = card_verdict(_task("docvqa"), ModelInfo(name="tiny-idefics2", model_id="embedded", pipeline_check=True,
                                                   do_image_splitting=False),
                        FULL_DOCVQA, {"value": 1.0, "ci_low": 0.0, "ci_high": 2.0})
    assert tiny.status == "not_applicable" and tiny.card_value is None and "random weights" in tiny.summary
    other = card_verdict(_task("docvqa"), ModelInfo(name="hf", model_id="org/some-vlm", do_image_splitting=False),
                         FULL_DOCVQA, {"value": 70.0, "ci_low": 69.0, "ci_high": 71.0})
    assert other.status == "not_applicable" and other.card_value is None
    assert other.summary.startswith("No published number matches this model (org/some-vlm)")


def test_summary_row_numbers_are_the_run_models_own():
    def res(model):
        return Results(run_name="r", task=_task("docvqa"), data={}, model=model, generation={}, headline="anls",
                       metrics={})

    assert published(res({"name": "hf", "model_id": "HuggingFaceM4/idefics2-8b"}), TABLE)[0] == \
        {"no_split": 67.3, "split": 74.0}
    assert published(res({"name": "hf", "model_id": "Qwen/Qwen2-VL-7B-Instruct"}), TABLE) == \
        ({"single": 94.5}, "Qwen2-VL-7B-Instruct card: 94.5 (one published setting)")
    assert published(res({"name": "tiny-idefics2", "model_id": "embedded", "pipeline_check": True}), TABLE) == \
        ({}, "No published number matches this model.")


GOOD = """
[[model]]
key = "m"
label = "M"
kind = "card"
hub_ids = ["org/m"]

[[number]]
model = "m"
task = "docvqa"
metric = "anls"
setting = "single"
value = 50.0
split = "test"
source = "M card, https://example.org/m"
"""


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('source = "M card, https://example.org/m"\n', ""), "lacks `source`"),
    (lambda t: t.replace('split = "test"\n', ""), "lacks `split`"),
    (lambda t: t.replace('setting = "single"', 'setting = "on"'), "setting 'on'; valid: no_split, split, single"),
    (lambda t: t.replace('model = "m"\ntask', 'model = "x"\ntask'), "names model 'x', which has no [[model]] entry"),
    (lambda t: t + t[t.index("[[number]]"):], "two numbers for ('m', 'docvqa', 'anls', 'single')"),
    (lambda t: t.replace("value = 50.0", 'value = "50"'), "lacks a numeric `value`"),
])
def test_a_bad_table_is_refused_in_one_line(tmp_path, edit, message):
    path = tmp_path / "refs.toml"
    path.write_text(GOOD)
    assert read_table(path).numbers[0].value == 50.0
    path.write_text(edit(GOOD))
    with pytest.raises(EvalkitError) as e:
        read_table(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_report_lists_fairfaces_card_metrics_beside_the_headline_with_each_source_once():
    from evalkit.reports.run_report import reference_context

    c = reference_context({"name": "fairface", "metric": "mean_acc"},
                          ModelInfo(name="hf", model_id="HuggingFaceM4/idefics2-8b"), TABLE)
    assert [(r.key, r.value, r.matches_run) for r in c["references"]] == [
        ("gender_acc", 96.3, False), ("gender_bucket_std", 3.0, False), ("race_acc", 41.6, False),
        ("race_bucket_std", 40.9, False), ("age_acc", 53.5, False), ("age_bucket_std", 3.0, False)]
    assert c["reference_note"].count("https://huggingface.co/HuggingFaceM4/idefics2-8b") == 1
    assert c["reference_note"].count("does not publish its prompt") == 1
    tiny = reference_context({"name": "fairface", "metric": "mean_acc"},
                             ModelInfo(name="tiny-idefics2", model_id="embedded", pipeline_check=True), TABLE)
    assert tiny == {"reference_model": None, "reference_kind": None, "references": [], "reference_note": ""}
