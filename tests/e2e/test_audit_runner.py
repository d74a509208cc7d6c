"""The audit's generation path on the embedded tiny model (few tokens, few images), its
resumable cache, and the `evalkit audit` command."""
import json

import pytest

from evalkit.audits.prompts import PROMPTS
from evalkit.audits.runner import AuditConfig, run_audit
from evalkit.cli.commands import main
from evalkit.errors import EvalkitError
from evalkit.models import ModelSpec


def test_generation_rows_from_the_tiny_model_then_resume_from_cache(tmp_path, tiny_cache):
    cfg = AuditConfig(dataset="stable-bias", model=ModelSpec("tiny-idefics2"), limit=2, max_new_tokens=4,
                      permutations=10, toxicity=[], out_dir=tmp_path / "a", cache_dir=tiny_cache,
                      progress=False)
    report = run_audit(cfg)
    rows = [json.loads(line) for line in (tmp_path / "a" / "generations.jsonl").read_text().splitlines()]
    # 2 images x 3 prompts, in image order then the card's prompt order.
    assert [(r["example_id"], r["prompt_id"]) for r in rows] == \
        [("0", "resume"), ("0", "dating"), ("0", "arrest"), ("1", "resume"), ("1", "dating"), ("1", "arrest")]
    assert all(set(r) >= {"dataset", "model", "gender_phrase", "ethnicity_phrase", "generation"} for r in rows)
    assert {r["model"] for r in rows} == {"tiny-idefics2"} and {r["dataset"] for r in rows} == {"stable-bias"}
    assert all(r["pipeline_check"] is True for r in rows)  # the backend's random_weights, kept with the rows
    cache = [json.loads(line) for line in (tmp_path / "a" / "cache.jsonl").read_text().splitlines()]
    assert len(cache) == 6
    html = report.read_text()
    assert 'id="banner-pipeline-check"' in html and 'id="banner-data-source"' in html

    # A second run with the same config answers every request from the cache.
    run_audit(cfg)
    meta = json.loads((tmp_path / "a" / "audit.json").read_text())["meta"]
    assert meta["generator"]["n_cached"] == 6
    again = [json.loads(line) for line in (tmp_path / "a" / "generations.jsonl").read_text().splitlines()]
    assert again == rows


def test_the_prompt_text_is_sent_verbatim(tmp_path, tiny_cache, monkeypatch):
    seen = []
    from evalkit.pipeline import generator as gen_mod

    def fake_run(self, requests):
        from evalkit.types import Response
        seen.extend(requests)
        return [Response(uid=r.uid, text="ok") if r.kind == "generate"
                else Response(uid=r.uid, logprobs=[0.0] * len(r.choices), choice_n_tokens=[1] * len(r.choices))
                for r in requests]

    monkeypatch.setattr(gen_mod.Generator, "run", fake_run)
    run_audit(AuditConfig(dataset="fairface", limit=1, max_new_tokens=3, permutations=0, toxicity=[],
                          out_dir=tmp_path / "b", cache_dir=tiny_cache, progress=False))
    generated = [r for r in seen if r.kind == "generate"]
    assert [r.text for r in generated] == [PROMPTS["resume"], PROMPTS["dating"], PROMPTS["arrest"]]
    assert all(r.gen.max_new_tokens == 3 and len(r.images) == 1 for r in generated)
    # FairFace in the audit also runs the classification task on the same images (3 attributes)
    assert [r.uid for r in seen if r.kind == "loglikelihood"] == ["0#gender", "0#race", "0#age"]
    assert (tmp_path / "b" / "fairface-classification" / "results.json").exists()


def test_cli_audit_from_a_generations_file(tmp_path, capsys):
    gens = tmp_path / "g.jsonl"
    gens.write_text("".join(json.dumps({"example_id": str(i), "prompt_id": "resume", "dataset": "fairface",
                                        "model": "m", "gender": "Male" if i % 2 else "Female", "race": "Black",
                                        "generation": f"word{i % 3} common text"}) + "\n" for i in range(8)))
    rc = main(["audit", "--generations", str(gens), "--dataset", "fairface", "--permutations", "20",
               "--toxicity", "none", "--out-dir", str(tmp_path / "out"), "--groups", "gender"])
    assert rc == 0
    assert "audit report:" in capsys.readouterr().out
    data = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert {t["axis"] for t in data["analysis"]["tfidf"]} == {"gender"}


def test_bad_config_is_one_clear_error():
    with pytest.raises(EvalkitError, match="fairface, stable-bias, both"):
        AuditConfig(dataset="celeba").validate()
    with pytest.raises(EvalkitError, match="permutations"):
        AuditConfig(permutations=-1).validate()
    with pytest.raises(EvalkitError, match="min_docs 0: use a positive number"):
        AuditConfig(min_docs=0).validate()
    assert main(["audit", "--generations", "/nonexistent.jsonl", "--toxicity", "none"]) == 2


def test_groups_for_an_unknown_dataset_is_one_clear_error(tmp_path, capsys):
    # "foo=gender" names no audit dataset; it used to be dropped without a word, leaving the
    # default axes in place. Now the command stops and names the valid datasets.
    gens = tmp_path / "g.jsonl"
    gens.write_text(json.dumps({"example_id": "0", "prompt_id": "resume", "dataset": "fairface", "model": "m",
                                "gender": "Male", "race": "Black", "generation": "text"}) + "\n")
    rc = main(["audit", "--generations", str(gens), "--dataset", "fairface", "--toxicity", "none",
               "--runs-dir", str(tmp_path), "--run-name", "out", "--groups", "foo=gender"])
    assert rc == 2
    assert capsys.readouterr().err == ("evalkit: error: --groups 'foo=gender': unknown dataset 'foo'; "
                                       "valid: fairface, stable-bias\n")
    assert not (tmp_path / "out").exists()  # refused before any work
