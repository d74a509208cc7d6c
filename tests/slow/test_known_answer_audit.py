"""The known-answer model's planted audit effects (evalkit.audits.known_answer_plan): the audit
of what the model generates from the shipped images must find exactly what was planted and
nothing else (the whole chain: image -> model -> generations -> TF-IDF / term test / toxicity ->
report). The shipped weights say every planned text exactly, so this is also the audit of the
plan itself.

Planted, per dataset: the resume prompt's hobby terms for one gender (36-72 generations per
gender); on Stable Bias, club terms for one ethnicity (18 generations per ethnicity: testable;
FairFace's 5-6 per race are too few for the Mantel-Fleiss rule, so none are planted there); the
dating prompt's text said twice by one gender (length only); the arrest prompt's toxic phrase
for one ethnicity. A blank picture gets "unknown" for every prompt."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from evalkit.audits.known_answer_plan import (AUDIT_MAX_NEW_TOKENS, ETHNICITY_TERMS, GENDER_TERMS, TOXIC_PHRASE,
                                              plan_audit)
from evalkit.cli.commands import main
from evalkit.models.known_answer import NAME, read_manifest

from tests.helpers.htmldom import parse  # noqa: E402

PERMUTATIONS = 500  # toxicity label shuffles: p reaches 0.002, ample for a planted 0.9 difference


def _audit(out: Path, *args: str) -> Path:
    assert main(["audit", "--dataset", "both", "--permutations", str(PERMUTATIONS), "--runs-dir", str(out),
                 "--run-name", "ka", "--no-progress", *args]) == 0
    return out / "ka"


@pytest.fixture(scope="module")
def plan():
    planted, _, info = plan_audit()
    return planted, info


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ka-cache")


@pytest.fixture(scope="module")
def audit(tmp_path_factory, model_cache):
    """One audit per module: the known-answer model generating from the shipped images."""
    out = tmp_path_factory.mktemp("audit")
    folder = _audit(out, "--model", NAME, "--device", "cpu", "--max-new-tokens", str(AUDIT_MAX_NEW_TOKENS),
                    "--batch-size", "72",  # 432 short generations: fewer, fuller batches run faster on the CPU
                    "--cache-dir", str(model_cache))
    analysis = json.loads((folder / "audit.json").read_text(encoding="utf-8"))["analysis"]
    html = parse((folder / "audit.html").read_text(encoding="utf-8"))
    return folder, analysis, html


def _axes(info, dataset):
    p = info["planted"][dataset]
    return p["gender_column"], p["ethnicity_column"], p


def _slice(analysis, dataset, prompt, axis):
    (s,) = [t for t in analysis["tfidf"] if (t["dataset"], t["prompt_id"], t["axis"]) == (dataset, prompt, axis)]
    return s


def test_the_model_generates_the_planned_texts(audit, plan):
    """The audit's batched generations are the manifest's (one request at a time when trained), and
    every one is the planned text: the analysis below is the plan's."""
    folder, analysis, _ = audit
    manifest = read_manifest()["audit"]
    given = {(s["dataset"], s["example_id"], s["prompt_id"]): s["given"] for s in manifest["samples"]}
    planned = {(p.dataset, p.example_id, p.prompt_id): p.text for p in plan[0]}
    rows = [json.loads(line) for line in (folder / "generations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(planned) == len(given) == (36 + 108) * 3
    assert {(r["dataset"], r["example_id"], r["prompt_id"]): r["generation"] for r in rows} == given == planned
    assert manifest["n_as_planted"] == len(planned)
    per_slice = {}
    for key in planned:
        per_slice[key[0], key[2]] = per_slice.get((key[0], key[2]), 0) + 1
    assert {(s["dataset"], s["prompt_id"]): s["n_docs"] for s in analysis["slices"]} == per_slice
    assert all(s["n_empty"] == s["n_errors"] == 0 for s in analysis["slices"])


@pytest.mark.parametrize("dataset", ["fairface", "stable-bias"])
def test_exactly_the_planted_gender_terms_are_significant(audit, plan, dataset):
    _, analysis, _ = audit
    gcol, _, p = _axes(plan[1], dataset)
    for prompt in ("resume", "dating", "arrest"):
        s = _slice(analysis, dataset, prompt, gcol)
        sig = {t["term"]: t for t in s["terms"] if t["significant"]}
        if prompt == "resume":
            assert set(sig) == set(GENDER_TERMS), (prompt, sorted(sig))
            assert all(t["lean_group"] == p["gender"] and t["shares"][p["gender"]] == 1.0 for t in sig.values())
            # terms used evenly across genders were tested and not found: the shared pool's words
            # (FairFace: one length bin), the other axis' planted terms (Stable Bias)
            unfound = {t["term"] for t in s["terms"] if t["tested"] and not t["significant"]}
            if dataset == "stable-bias":
                assert unfound >= set(ETHNICITY_TERMS)
            else:
                assert len(unfound) >= 10
        else:
            assert sig == {}, (prompt, sorted(sig))


def test_exactly_the_planted_ethnicity_terms_are_significant(audit, plan):
    """Stable Bias, 18 portraits per ethnicity: the club terms (every planted-ethnicity resume,
    a third of the others) are tested and significant, leaning to the planted group; the gender
    terms are spread evenly over ethnicities; no other prompt has any term."""
    _, analysis, _ = audit
    _, ecol, p = _axes(plan[1], "stable-bias")
    s = _slice(analysis, "stable-bias", "resume", ecol)
    sig = {t["term"]: t for t in s["terms"] if t["significant"]}
    assert set(sig) == set(ETHNICITY_TERMS), sorted(sig)
    for t in sig.values():
        assert t["lean_group"] == p["ethnicity"] and t["q_value"] < 0.01
        assert t["shares"][p["ethnicity"]] == 1.0
        assert all(v == pytest.approx(1 / 3) for g, v in t["shares"].items() if g != p["ethnicity"])
    # the gender terms, in the same share of every ethnicity's resumes (untestable here: within
    # the gender strata the planted gender always uses them)
    for t in s["terms"]:
        if t["term"] in GENDER_TERMS:
            assert len(set(t["shares"].values())) == 1 and not t["tested"], t
    for prompt in ("dating", "arrest"):
        assert _slice(analysis, "stable-bias", prompt, ecol)["n_significant"] == 0


@pytest.mark.parametrize("dataset", ["fairface", "stable-bias"])
def test_toxic_words_top_the_ethnicity_ranking_untested(audit, plan, dataset):
    """The toxic phrase is in every article about one ethnicity and no other: too few documents
    for the term test (5-18 per group), so the report must say none was tested; the TF-IDF
    ranking still puts its words first, leaning to that group. FairFace has no planted ethnicity
    term, and none is found on its ethnicity axis."""
    _, analysis, _ = audit
    _, ecol, p = _axes(plan[1], dataset)
    words = {w for w in TOXIC_PHRASE.split() if len(w) > 1}
    s = _slice(analysis, dataset, "arrest", ecol)
    assert s["n_tested"] == 0 and s["n_significant"] == 0
    top = s["terms"][:len(words)]
    assert {t["term"] for t in top} == words and all(t["lean_group"] == p["toxic_ethnicity"] for t in top)
    # far ahead of the next term (the shared pool's words, balanced across groups)
    assert s["terms"][len(words)]["variance"] < 0.1 * top[-1]["variance"]
    if dataset == "fairface":
        assert all(_slice(analysis, dataset, prompt, ecol)["n_significant"] == 0
                   for prompt in ("resume", "dating", "arrest"))


@pytest.mark.parametrize("dataset", ["fairface", "stable-bias"])
def test_length_only_prompt_yields_no_term_and_a_length_difference(audit, plan, dataset):
    _, analysis, html = audit
    gcol, _, p = _axes(plan[1], dataset)
    s = _slice(analysis, dataset, "dating", gcol)
    assert s["n_significant"] == 0
    if dataset == "fairface":  # 36 texts: one length bin, so the profile's words are tested and not found
        assert s["n_tested"] >= 10
    else:  # 108 texts, four length bins: each holds one length, so one side; nothing is left to test
        assert s["n_tested"] == 0 and s["strata"][0].startswith("length (4 quantile bins")
    means = {r["group"]: r["mean"] for r in s["lengths"]}
    others = [m for g, m in means.items() if g != p["gender"]]
    assert means[p["gender"]] >= max(others) + 5, means
    # the report's length table shows it
    (section,) = [n for n in html.find_all("section", cls="tfidf")
                  if (n.attrs.get("data-dataset"), n.attrs.get("data-prompt"), n.attrs.get("data-axis"),
                      n.attrs.get("data-mode")) == (dataset, "dating", gcol, "variance")]
    shown = {tr.attrs["data-group"]: float(tr.one("td", cls="len-mean").attrs["data-value"])
             for tr in section.one("table", cls="lengths").find_all("tr", data_group=None)}
    assert shown == pytest.approx(means)
    # and no other prompt differs in length by gender
    for prompt in ("resume", "arrest"):
        lens = [r["mean"] for r in _slice(analysis, dataset, prompt, gcol)["lengths"]]
        assert max(lens) - min(lens) < 1.0, (prompt, lens)


@pytest.mark.parametrize("dataset", ["fairface", "stable-bias"])
def test_toxicity_difference_found_for_the_planted_group(audit, plan, dataset):
    _, analysis, html = audit
    gcol, ecol, p = _axes(plan[1], dataset)
    for t in analysis["toxicity"]:
        if t["dataset"] != dataset:
            continue
        share = {r["group"]: r["share_toxic"]["value"] for r in t["rows"] if r["group"] != "(all)"}
        if (t["prompt_id"], t["axis"]) == ("arrest", ecol):
            assert t["test"]["significant"] and t["test"]["q_value"] < 0.05
            means = {r["group"]: r["mean"]["value"] for r in t["rows"] if r["group"] != "(all)"}
            assert max(means, key=means.get) == p["toxic_ethnicity"]
            assert share[p["toxic_ethnicity"]] == 100.0
            assert all(v == 0.0 for g, v in share.items() if g != p["toxic_ethnicity"])
        elif t["prompt_id"] == "arrest":
            # the same toxic articles by gender: spread over both, no difference within ethnicities
            assert not t["test"]["significant"], (t["axis"], t["test"])
        else:
            # nothing else crosses the classifier's threshold, in any group
            assert all(v == 0.0 for v in share.values()), (t["prompt_id"], t["axis"], share)
            if t["prompt_id"] == "resume":
                # the planted terms are words profanity-check does not know: its scores do not
                # move with them (FairFace's means differ only by the pool's variants, whose
                # shares are uneven in its cells of 2-3 faces)
                assert not t["test"]["significant"], (t["axis"], t["test"])
                if dataset == "stable-bias":
                    means = {r["group"]: r["mean"]["value"] for r in t["rows"]}
                    assert max(means.values()) - min(means.values()) < 1e-9, means
    (section,) = [n for n in html.find_all("section", cls="toxicity")
                  if (n.attrs.get("data-dataset"), n.attrs.get("data-prompt"), n.attrs.get("data-axis")) ==
                  (dataset, "arrest", ecol)]
    assert section.one("p", cls="tox-test").attrs["data-significant"] == "true"


@pytest.mark.parametrize("dataset", ["fairface", "stable-bias"])
def test_report_marks_exactly_the_planted_terms_significant(audit, plan, dataset):
    _, _, html = audit
    gcol, ecol, p = _axes(plan[1], dataset)
    for section in html.find_all("section", cls="tfidf"):
        if section.attrs.get("data-dataset") != dataset or section.attrs.get("data-mode") != "variance":
            continue
        marked = {tr.attrs["data-term"] for tr in section.find_all("tr", data_significant="true")}
        where = (section.attrs["data-prompt"], section.attrs["data-axis"])
        planted = {("resume", gcol): set(GENDER_TERMS), ("resume", ecol): set(ETHNICITY_TERMS) if p["ethnicity"]
                   else set()}.get(where, set())
        assert marked == planted, (section.attrs, marked)


def test_a_blank_picture_gets_unknown_for_every_prompt(tmp_path, model_cache):
    """Trained on one blank request per dataset x prompt: the audit of blank portraits (Stable
    Bias' schema, every gender) says "unknown" to all three prompts, so no planted effect is left."""
    import datasets
    from PIL import Image

    from evalkit.models.known_answer.plan import NO_ANSWER
    from evalkit.tasks.samplegen import write_parquet

    blank = io.BytesIO()
    Image.new("RGB", (256, 256), "white").save(blank, format="JPEG")
    rows = [(g, e) for g in ("man", "woman", "non-binary") for e in ("White", "Black")]
    features = datasets.Features({"image": datasets.Image(), "gender_phrase": datasets.Value("string"),
                                  "ethnicity_phrase": datasets.Value("string")})
    data = write_parquet({"image": [{"bytes": blank.getvalue(), "path": None}] * len(rows),
                          "gender_phrase": [g for g, _ in rows], "ethnicity_phrase": [e for _, e in rows]},
                         features, tmp_path / "blank" / "train-00000-of-00001.parquet")
    assert main(["audit", "--dataset", "stable-bias", "--stable-bias-data", str(data), "--model", NAME,
                 "--device", "cpu", "--max-new-tokens", str(AUDIT_MAX_NEW_TOKENS), "--toxicity", "none",
                 "--permutations", "0", "--runs-dir", str(tmp_path), "--run-name", "blank", "--no-progress",
                 "--cache-dir", str(model_cache)]) == 0
    gens = [json.loads(line) for line in (tmp_path / "blank" / "generations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(gens) == len(rows) * 3 and {g["generation"] for g in gens} == {NO_ANSWER}
    # what the manifest recorded for the blank requests it was trained on
    blanks = read_manifest()["audit"]["blank_image"]
    assert len(blanks) == 6 and all(b["given"] == NO_ANSWER for b in blanks)
