"""One output convention: every command that writes takes --runs-dir (parent) and --run-name
(the folder under it) and writes exactly there; each old spelling (audit --name / --out-dir,
compare / invariance / the benchmarks' --out) still works with its old meaning and prints one
deprecation line on stderr."""
from __future__ import annotations

import json

import pytest

from evalkit.cli.commands import main

NOTICE = "evalkit: warning:"


def _notices(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(NOTICE)]


@pytest.fixture(scope="module")
def scored_runs(tmp_path_factory, docvqa_rows):
    """Two `evalkit score` runs written with the new pair: all gold answers, and all empty."""
    root = tmp_path_factory.mktemp("outflags")
    for name, pred in (("gold", lambda r: r["answers"][0]), ("empty", lambda r: "")):
        p = root / f"{name}.jsonl"
        p.write_text("".join(json.dumps({"id": r["questionId"], "prediction": pred(r)}) + "\n" for r in docvqa_rows))
        assert main(["score", "--task", "docvqa", "--predictions", str(p), "--runs-dir", str(root / "runs"),
                     "--run-name", name]) == 0
    return root / "runs"


def test_score_writes_under_runs_dir_run_name(scored_runs, docvqa_rows):
    res = json.loads((scored_runs / "gold" / "results.json").read_text())
    assert res["run_name"] == "gold" and res["metrics"]["anls"]["value"] == 100.0
    assert res["counts"]["n_samples"] == len(docvqa_rows)
    assert json.loads((scored_runs / "empty" / "results.json").read_text())["metrics"]["anls"]["value"] == 0.0


def test_eval_writes_under_runs_dir_run_name(tmp_path, tiny_cache, capsys):
    assert main(["eval", "--task", "docvqa", "--limit", "1", "--runs-dir", str(tmp_path / "p"), "--run-name", "e",
                 "--cache-dir", str(tiny_cache), "--no-progress", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "p" / "e" / "results.json").read_text())["counts"]["n_samples"] == 1
    assert _notices(capsys.readouterr().err) == []


def test_compare_new_pair_and_default(scored_runs, tmp_path, capsys):
    a, b = scored_runs / "gold", scored_runs / "empty"
    assert main(["compare", str(a), str(b), "--runs-dir", str(tmp_path / "p"), "--run-name", "c"]) == 0
    assert _notices(capsys.readouterr().err) == []
    comp = json.loads((tmp_path / "p" / "c" / "compare.json").read_text())
    assert comp["comparisons"][0]["delta"] == -100.0
    assert (tmp_path / "p" / "c" / "compare.html").is_file()
    # without --runs-dir the parent stays the folder of the first run, as before
    assert main(["compare", str(a), str(b), "--run-name", "c2"]) == 0
    assert (scored_runs / "c2" / "compare.json").is_file()


def test_compare_old_out_still_works_with_one_notice(scored_runs, tmp_path, capsys):
    out = tmp_path / "exact"
    assert main(["compare", str(scored_runs / "gold"), str(scored_runs / "empty"), "--out", str(out)]) == 0
    notices = _notices(capsys.readouterr().err)
    assert notices == [f"{NOTICE} --out DIR is deprecated and will be removed in the next release; "
                       f"use --runs-dir {tmp_path} --run-name exact"]
    assert (out / "compare.json").is_file()


def test_compare_old_and_new_names_together_are_refused(scored_runs, tmp_path, capsys):
    assert main(["compare", str(scored_runs / "gold"), str(scored_runs / "empty"), "--out", str(tmp_path / "x"),
                 "--run-name", "y"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "--run-name" in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", ["../up", "a/b", ".."])
def test_bad_run_name_is_one_line(scored_runs, tmp_path, capsys, bad):
    assert main(["compare", str(scored_runs / "gold"), str(scored_runs / "empty"), "--runs-dir", str(tmp_path),
                 "--run-name", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evalkit: error: --run-name") and "one folder name" in err[0]


@pytest.fixture(scope="module")
def generations(tmp_path_factory):
    path = tmp_path_factory.mktemp("gens") / "g.jsonl"
    path.write_text("".join(json.dumps({"example_id": str(i), "prompt_id": "resume", "dataset": "fairface",
                                        "model": "m", "gender": "Male" if i % 2 else "Female", "race": "Black",
                                        "generation": f"word{i % 3} common text"}) + "\n" for i in range(8)))
    return path


def _audit(generations, *out_flags):
    return main(["audit", "--generations", str(generations), "--dataset", "fairface", "--permutations", "0",
                 "--toxicity", "none", "--groups", "gender", "--no-progress", *out_flags])


def test_audit_new_pair(generations, tmp_path, capsys):
    assert _audit(generations, "--runs-dir", str(tmp_path / "p"), "--run-name", "au") == 0
    assert _notices(capsys.readouterr().err) == []
    assert (tmp_path / "p" / "au" / "audit.json").is_file() and (tmp_path / "p" / "au" / "audit.html").is_file()
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["au"]


def test_audit_default_folder_unchanged(generations, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _audit(generations) == 0
    assert (tmp_path / "runs" / "audit-g" / "audit.json").is_file()


@pytest.mark.parametrize("flags, where, new", [
    (("--name", "old"), "p/audit-old", "--run-name audit-old"),
    (("--out-dir", "{tmp}/exact"), "exact", "--runs-dir {tmp} --run-name exact"),
])
def test_audit_old_spellings_keep_their_meaning_with_one_notice(generations, tmp_path, capsys, flags, where, new):
    flags = [f.format(tmp=tmp_path) for f in flags]
    assert _audit(generations, "--runs-dir", str(tmp_path / "p"), *flags) == 0
    notices = _notices(capsys.readouterr().err)
    assert notices == [f"{NOTICE} {flags[0]} {'NAME' if flags[0] == '--name' else 'DIR'} is deprecated and will "
                       f"be removed in the next release; use {new.format(tmp=tmp_path)}"]
    assert (tmp_path / where / "audit.json").is_file()


def test_audit_run_name_with_an_old_spelling_is_refused(generations, tmp_path, capsys):
    assert _audit(generations, "--run-name", "a", "--name", "b", "--runs-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--run-name and --name" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_invariance_new_pair_and_old_out(tmp_path, capsys):
    # the served pair is recorded as not configured without running a model: a fast plumbing check
    args = ["invariance", "--task", "docvqa", "--pairs", "served", "--limit", "2"]
    assert main([*args, "--runs-dir", str(tmp_path / "p"), "--run-name", "inv"]) == 0
    assert _notices(capsys.readouterr().err) == []
    assert json.loads((tmp_path / "p" / "inv" / "invariance.json").read_text())["pairs"][0]["pair"] == "served"
    assert main([*args, "--out", str(tmp_path / "old")]) == 0
    assert len(_notices(capsys.readouterr().err)) == 1
    assert (tmp_path / "old" / "invariance.html").is_file()


def test_invariance_accepts_runs_dir_the_issue_tried(tmp_path):
    from evalkit.cli.commands import build_parser

    args = build_parser().parse_args(["invariance", "--task", "docvqa", "--runs-dir", str(tmp_path)])
    assert args.runs_dir == tmp_path and args.run_name is None and args.out is None


def test_bench_resolves_the_pair_and_the_old_out(tmp_path, capsys):
    from benchmarks.run import build_parser, out_dir

    ap = build_parser()
    assert out_dir(ap, ap.parse_args([])) == tmp_path.__class__("runs") / "bench"
    assert out_dir(ap, ap.parse_args(["--runs-dir", str(tmp_path), "--run-name", "b"])) == tmp_path / "b"
    assert _notices(capsys.readouterr().err) == []
    assert out_dir(ap, ap.parse_args(["--out", str(tmp_path / "o")])) == tmp_path / "o"
    assert len(_notices(capsys.readouterr().err)) == 1
    with pytest.raises(SystemExit) as e:
        out_dir(ap, ap.parse_args(["--run-name", "../x"]))
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("benchmarks.run: error: --run-name '../x' is a path")


def test_bench_grid_old_out_writes_there_with_one_notice(tmp_path, capsys):
    """Every cell skipped on a CPU (flash-attention 2), so the grid writes its files at once."""
    from benchmarks.grid import main as grid_main

    argv = ["--device", "cpu", "--in-process", "--splits", "off", "--dtypes", "bf16", "--attn",
            "flash_attention_2", "--quant", "none", "--generations", "1", "--new-tokens", "1"]
    assert grid_main([*argv, "--out", str(tmp_path / "old")]) == 0
    assert len(_notices(capsys.readouterr().err)) == 1
    assert json.loads((tmp_path / "old" / "grid.json").read_text())["cells"][0]["status"] == "skipped"
    assert grid_main([*argv, "--runs-dir", str(tmp_path), "--run-name", "new"]) == 0
    assert _notices(capsys.readouterr().err) == []
    assert (tmp_path / "new" / "grid.html").is_file()
