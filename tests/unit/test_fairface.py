"""FairFace: shipped sample schema, log-likelihood requests, argmax scoring, per-bucket std."""
import math

import numpy as np
import pytest

from evalkit.pipeline.data import load_task_data
from evalkit.metrics.fairface import (BUCKETS, GENDERS, RACES, bucket_accuracy, bucket_std,
                                      bucket_std_ci, pick_choice)
from evalkit.types import Response, SampleRecord
from evalkit.tasks.fairface import FairFace, parse_prediction
from evalkit.tasks.samplegen import fairface as ff_gen
from evalkit.tasks.samplegen import stable_bias as sb_gen


@pytest.fixture(scope="module")
def task():
    return FairFace()


@pytest.fixture(scope="module")
def sample(task):
    return load_task_data(task)


# --- shipped samples ---------------------------------------------------------------------

def test_sample_has_hub_schema_and_covers_every_bucket_and_age(sample):
    import datasets

    ds = sample.rows
    assert sample.source == "shipped sample" and sample.n_total == 36 == len(ds)
    assert ds.column_names == ["image", "age", "gender", "race", "service_test"]
    # the hub's ClassLabel names, in index order
    assert ds.features["gender"].names == ["Male", "Female"]
    assert ds.features["race"].names == ["East Asian", "Indian", "Black", "White", "Middle Eastern",
                                         "Latino_Hispanic", "Southeast Asian"]
    assert ds.features["age"].names == ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59",
                                        "60-69", "more than 70"]
    assert ds.features["service_test"] == datasets.Value("bool")
    # load_task_data leaves images undecoded for the generator
    assert isinstance(ds.features["image"], datasets.Image) and not ds.features["image"].decode
    buckets = {(GENDERS[g], RACES[r]) for g, r in zip(ds["gender"], ds["race"])}
    assert len(buckets) == 14
    assert sorted(set(ds["age"])) == list(range(9))


def test_sample_images_are_224_jpeg(sample):
    from PIL import Image
    import io

    img = Image.open(io.BytesIO(sample.rows[0]["image"]["bytes"]))
    assert (img.format, img.size, img.mode) == ("JPEG", (224, 224), "RGB")


def test_sample_generation_is_deterministic():
    a, b = ff_gen.rows(3), ff_gen.rows(3)
    assert [r["image"]["bytes"] for r in a] == [r["image"]["bytes"] for r in b]


def test_stable_bias_sample_schema_and_groups():
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(sb_gen.SAMPLE_PATH), split="train")
    assert ds.column_names == ["image", "gender_phrase", "ethnicity_phrase"]
    assert len(ds) == 108
    assert set(ds["gender_phrase"]) == {"man", "woman", "non-binary"}
    assert len(set(ds["ethnicity_phrase"])) == 6
    # every gender x ethnicity cell six times: 18 per ethnicity, enough for the audit's term test
    cells = list(zip(ds["gender_phrase"], ds["ethnicity_phrase"]))
    assert all(cells.count(c) == 6 for c in set(cells))


def test_sample_files_stay_small():
    for path in (FairFace.sample_path() / "validation-00000-of-00001.parquet", sb_gen.SAMPLE_PATH):
        assert path.stat().st_size < 2 * 1024 * 1024


# --- requests -------------------------------------------------------------------------------

def test_build_requests_gives_three_loglikelihood_requests(task, sample):
    row = sample.rows[0]
    reqs = task.build_requests(row, "fairface/0")
    assert [r.uid for r in reqs] == ["fairface/0#gender", "fairface/0#race", "fairface/0#age"]
    assert all(r.kind == "loglikelihood" for r in reqs)
    assert [len(r.choices) for r in reqs] == [2, 7, 9]
    assert all(r.images == [row["image"]] for r in reqs)
    assert reqs[0].choices == ["This person is male.", "This person is female."]
    assert reqs[1].choices[5] == "This person is Latino/Hispanic."
    assert reqs[2].choices[0] == "This person is 0-2 years old."
    assert reqs[2].choices[8] == "This person is more than 70 years old."
    assert "male, female" in reqs[0].text


def test_sample_id_is_row_index(task, sample):
    assert task.sample_id(sample.rows[7], 7) == "7"


def test_groups_name_the_bucket(task):
    row = {"gender": 1, "race": 5, "age": 8}
    assert task.groups(row) == {"gender": ["Female"], "race": ["Latino_Hispanic"],
                                "gender_x_race": ["Female / Latino_Hispanic"], "age": ["more than 70"]}


# --- choosing a class ------------------------------------------------------------------------

def test_pick_choice_takes_the_argmax():
    assert pick_choice([-3.0, -1.5, -2.0]) == 1
    # ties go to the lowest index, so a run is reproducible
    assert pick_choice([-1.0, -1.0]) == 0


def test_length_normalisation_can_change_the_winner():
    # choice 0: -4.0 over 2 tokens = -2.0/token; choice 1: -3.0 over 1 token = -3.0/token.
    # Summed, choice 1 wins (-3 > -4); per token, choice 0 wins (-2 > -3).
    assert pick_choice([-4.0, -3.0], [2, 1]) == 1
    assert pick_choice([-4.0, -3.0], [2, 1], normalize=True) == 0


def test_pick_choice_rejects_bad_scores():
    with pytest.raises(ValueError):
        pick_choice([])
    with pytest.raises(ValueError):
        pick_choice([-1.0, float("nan")])
    with pytest.raises(ValueError):
        pick_choice([-1.0, -2.0], [1], normalize=True)


# --- scoring constructed responses -----------------------------------------------------------

def _resp(uid, n, raw, norm=None):
    """Choice `raw` wins on the sum (-2 vs -10). With `norm`, that choice has -3 over 3 tokens:
    it loses on the sum (-3 < -2) but wins per token (-1 > -2)."""
    lp, nt = [-10.0] * n, [1] * n
    lp[raw] = -2.0
    if norm is not None and norm != raw:
        lp[norm], nt[norm] = -3.0, 3
    return Response(uid=uid, logprobs=lp, choice_n_tokens=nt)


def _responses(uid, gender, race, age):
    """Each arg is raw winner index or (raw, norm)."""
    out = []
    for name, n, spec in (("gender", 2, gender), ("race", 7, race), ("age", 9, age)):
        raw, norm = spec if isinstance(spec, tuple) else (spec, None)
        out.append(_resp(f"{uid}#{name}", n, raw, norm))
    return out


def test_score_counts_each_attribute(task):
    row = {"gender": 1, "race": 5, "age": 8}  # Female, Latino_Hispanic, more than 70
    pred, score = task.score(row, _responses("u", 1, 6, 8))  # race predicted Southeast Asian
    assert pred == "gender=Female; race=Southeast Asian; age=more than 70"
    assert score.value == pytest.approx(2 / 3)
    assert score.extras["gender_correct"] == 1.0
    assert score.extras["race_correct"] == 0.0
    assert score.extras["age_correct"] == 1.0
    assert score.extras["pred_race"] == "Southeast Asian"


def test_score_matches_responses_by_uid_not_order(task):
    row = {"gender": 0, "race": 0, "age": 0}
    resps = list(reversed(_responses("u", 0, 0, 0)))
    assert task.score(row, resps)[1].value == 1.0


def test_unknown_label_is_unscorable_not_wrong(task):
    row = {"gender": 0, "race": 9, "age": 0}
    _, score = task.score(row, _responses("u", 0, 0, 0))
    assert score.value is None
    assert "race label 9" in score.reason
    assert "race_correct" not in score.extras and score.extras["gender_correct"] == 1.0


def test_model_error_on_one_attribute_is_unscorable(task):
    resps = _responses("u", 0, 0, 0)
    resps[2] = Response(uid="u#age", error="CUDA OOM")
    _, score = task.score({"gender": 0, "race": 0, "age": 0}, resps)
    assert score.value is None and "age: model error: CUDA OOM" in score.reason


def _records(task):
    # row: (gender, race, age) labels; responses: raw (or (raw, norm)) winners per attribute.
    cases = [
        ((0, 2, 3), (0, 2, (4, 3))),  # Male/Black: gender ok, race ok, age raw wrong / norm right
        ((1, 2, 4), (1, 0, 4)),       # Female/Black: gender ok, race wrong, age ok
        ((0, 3, 0), (1, 4, 0)),       # Male/White: gender wrong, race wrong, age ok
        ((0, 3, 8), (0, 3, 8)),       # Male/White: all right
    ]
    recs = []
    for i, (labels, winners) in enumerate(cases):
        row = dict(zip(("gender", "race", "age"), labels))
        pred, score = task.score(row, _responses(f"fairface/{i}", *winners))
        recs.append(SampleRecord(uid=f"fairface/{i}", sample_id=str(i), question="", prediction=pred,
                                 gold=task.gold(row), score=score.value, extras=score.extras,
                                 groups=task.groups(row)))
    return recs


def test_aggregate_exact_accuracies_and_bucket_std(task):
    m = task.aggregate(_records(task))
    # per-sample fractions 2/3, 2/3, 1/3, 1 -> mean 2/3
    assert m["mean_acc"].value == pytest.approx(200 / 3)
    assert m["gender_acc"].value == pytest.approx(75.0)   # hits 1,1,0,1
    assert m["race_acc"].value == pytest.approx(50.0)     # hits 1,0,0,1
    assert m["age_acc"].value == pytest.approx(75.0)      # hits 0,1,1,1
    assert m["age_acc_norm"].value == pytest.approx(100.0)  # sample 0 flips to right per token
    assert m["gender_acc_norm"].value == pytest.approx(75.0)
    # gender buckets: Male/Black 1, Female/Black 1, Male/White 0.5 -> mean 5/6,
    # var = ((1/6)^2 + (1/6)^2 + (1/3)^2) / 3 = 1/18 -> std 23.570...%
    assert m["gender_bucket_std"].value == pytest.approx(100 * math.sqrt(1 / 18))
    assert m["gender_bucket_std"].n == 3
    # race buckets: 1, 0, 0.5 -> var = (0.25 + 0.25 + 0) / 3 = 1/6 -> std 40.824...%
    assert m["race_bucket_std"].value == pytest.approx(100 * math.sqrt(1 / 6))
    # age buckets raw: 0, 1, 1 -> mean 2/3, var = (4/9 + 1/9 + 1/9) / 3 = 2/9; norm: all 1 -> 0
    assert m["age_bucket_std"].value == pytest.approx(100 * math.sqrt(2 / 9))
    assert m["age_bucket_std_norm"].value == pytest.approx(0.0)


def test_breakdowns_give_each_attribute_per_bucket(task):
    b = task.breakdowns(_records(task))
    assert b["race_acc by gender_x_race"]["Male / White"].value == pytest.approx(50.0)
    assert b["race_acc by gender_x_race"]["Female / Black"].value == pytest.approx(0.0)
    assert b["gender_x_race"]["Male / White"].value == pytest.approx(100 * (1 / 3 + 1) / 2)


# --- predictions files -----------------------------------------------------------------------

def test_score_text_gold_is_perfect_and_empty_is_zero(task):
    row = {"gender": 1, "race": 5, "age": 8}
    assert task.gold(row) == ["gender=Female; race=Latino_Hispanic; age=more than 70"]
    assert task.score_text(row, task.gold(row)[0]).value == 1.0
    empty = task.score_text(row, "")
    assert empty.value == 0.0 and empty.extras["unparsed"] == ["gender", "race", "age"]


def test_score_text_accepts_json_and_readable_forms(task):
    row = {"gender": 1, "race": 5, "age": 8}
    s = task.score_text(row, '{"gender": "female", "race": "Latino/Hispanic", "age": "20-29"}')
    assert s.value == pytest.approx(2 / 3) and s.extras["age_correct"] == 0.0
    assert parse_prediction("age=more than 70 years old\nrace = black") == {
        "gender": None, "race": "Black", "age": "more than 70"}


# --- per-bucket statistics -------------------------------------------------------------------

def test_bucket_accuracy_from_rows():
    rows = [("Male", "Black", 1), ("Male", "Black", 1), ("Male", "Black", 0), ("Female", "Indian", 0)]
    assert bucket_accuracy(rows) == {"Male / Black": pytest.approx(2 / 3), "Female / Indian": 0.0}


def test_bucket_std_hand_computed():
    # 7 buckets at 100%, 7 at 50%: mean 75%, every bucket 25 points away -> std exactly 25.0
    accs = {b: (1.0 if i < 7 else 0.5) for i, b in enumerate(BUCKETS)}
    assert bucket_std(accs) == pytest.approx(25.0)
    assert bucket_std({}) is None


def test_bucket_std_is_population_std_like_the_card():
    # Idefics1 card (detailed table, IDEFICS 80B, FairFace race) per-bucket accuracies, male then
    # female, in the order White, Black, Latino_Hispanic, East Asian, Southeast Asian, Indian,
    # Middle Eastern. The card reports std 16.1: ddof 0 gives 16.07, ddof 1 would give 16.67.
    male = [73.4, 71.4, 87.9, 73.2, 52.3, 35.6, 63.0]
    female = [63.8, 73.7, 82.7, 68.6, 33.6, 42.4, 58.2]
    std = bucket_std([v / 100 for v in male + female])
    assert round(std, 1) == 16.1
    assert std == pytest.approx(16.0669, abs=1e-3)


def test_bucket_std_ci_brackets_the_value_and_is_reproducible():
    rng = np.random.default_rng(1)
    rows = [(GENDERS[i % 2], RACES[(i // 2) % 7], float(rng.random() < 0.3 + 0.05 * ((i // 2) % 7)))
            for i in range(280)]
    a, b = bucket_std_ci(rows), bucket_std_ci(rows)
    assert a == b
    assert a.value == pytest.approx(bucket_std(bucket_accuracy(rows)))
    assert a.ci_low <= a.value <= a.ci_high and a.n == 14
