"""`evalkit eval --config FILE`: settings from a file, explicit flags winning, one-line errors."""
from __future__ import annotations

import json

import pytest

from evalkit.cli.commands import build_parser, main
from evalkit.cli.config_file import apply, subcommand


def _write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _resolve(argv):
    """What `evalkit eval ARGV` resolves to, without running anything."""
    parser = build_parser()
    args = parser.parse_args(["eval", *argv])
    return apply(subcommand(parser, "eval"), argv, args, args.config)


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evalkit: error: ")  # one line, no traceback
    return err


def test_file_only_run_writes_the_resolved_config(tmp_path, tiny_cache, capsys):
    runs = tmp_path / "runs"
    cfg = _write(tmp_path, f'task = "docvqa"\nlimit = 3\nbatch_size = 2\nrun-name = "from-file"\n'
                           f'runs_dir = "{runs}"\ncache-dir = "{tiny_cache}"\ndevice = "cpu"\n'
                           f'no_progress = true\nsplit-images = true\n')
    assert main(["eval", "--config", str(cfg)]) == 0
    written = json.loads((runs / "from-file" / "config.json").read_text())
    assert written["task"] == "docvqa" and written["limit"] == 3 and written["batch_size"] == 2
    assert written["progress"] is False and written["model"]["do_image_splitting"] is True
    assert written["model"]["device"] == "cpu" and written["config_file"] == str(cfg)
    results = json.loads((runs / "from-file" / "results.json").read_text())
    assert results["counts"]["n_samples"] == 3


def test_explicit_flags_override_the_file_and_defaults_do_not(tmp_path):
    cfg = _write(tmp_path, 'task = "docvqa"\nlimit = 3\nbatch-size = "auto"\nworkers = 4\ndtype = "bf16"\n')
    args = _resolve(["--config", str(cfg), "--limit", "7", "--dtype=fp16", "--work", "1"])
    assert (args.limit, args.dtype, args.workers) == (7, "fp16", 1)  # the flags, abbreviated --work too
    assert args.batch_size == "auto" and args.task == "docvqa"  # from the file
    assert args.model == "tiny-idefics2" and args.runs_dir.name == "runs"  # in neither: defaults
    # a flag given with its default value still wins over the file
    assert _resolve(["--config", str(cfg), "--batch-size", "8"]).batch_size == 8


def test_option_names_map_to_their_settings(tmp_path):
    cfg = _write(tmp_path, 'task = "mmmu"\nattn = "sdpa"\nsplit_images = true\nload-in-4bit = false\n'
                           'launcher = "torchrun"\nthreads = 2\n')
    args = _resolve(["--config", str(cfg)])
    assert args.attn_implementation == "sdpa" and args.do_image_splitting is True
    assert args.load_in_4bit is False and args.launcher == "torchrun" and args.threads == 2


def test_unknown_key_names_it_and_the_valid_keys(tmp_path, capsys):
    cfg = _write(tmp_path, 'task = "docvqa"\nbatchsize = 4\n')
    err = _error(capsys, ["eval", "--config", str(cfg)])
    assert "unknown key 'batchsize'" in err and str(cfg) in err
    assert "valid keys: api-key-env, attn, base-url, batch-size, cache-dir," in err and "workers" in err
    assert "config," not in err and "help" not in err  # not settings


@pytest.mark.parametrize("line, expect", [
    ("limit = \"ten\"", "limit = 'ten': use a positive integer"),
    ("limit = 0", "limit = 0: use a positive integer"),
    ("limit = true", "limit = True: expected"),
    ("batch_size = 2.5", "batch_size = 2.5: use a positive integer or 'auto'"),
    ("split-images = \"yes\"", "split-images = 'yes': use true or false"),
    ("dtype = 16", "dtype = 16: expected a string"),
    ("launcher = \"slurm\"", "launcher = 'slurm': use one of torchrun, accelerate"),
    ("[model]\nname = \"hf\"", "model is a table; write every setting as a top-level `key = value` line"),
    ("[eval]\nlimit = 2", "unknown key 'eval'"),
])
def test_wrong_types_are_one_line_errors_naming_the_key(tmp_path, capsys, line, expect):
    cfg = _write(tmp_path, f'task = "docvqa"\n{line}\n')
    assert expect in _error(capsys, ["eval", "--config", str(cfg)])


def test_same_setting_twice_is_an_error(tmp_path, capsys):
    cfg = _write(tmp_path, 'task = "docvqa"\nbatch-size = 2\nbatch_size = 4\n')
    assert "'batch_size' and 'batch-size' are the same setting" in _error(capsys, ["eval", "--config", str(cfg)])


def test_missing_file(tmp_path, capsys):
    err = _error(capsys, ["eval", "--config", str(tmp_path / "nope.toml")])
    assert err == f"evalkit: error: --config {tmp_path / 'nope.toml'}: no such file\n"


def test_malformed_toml(tmp_path, capsys):
    cfg = _write(tmp_path, 'task = "docvqa"\nlimit = = 3\n')
    err = _error(capsys, ["eval", "--config", str(cfg)])
    assert f"--config {cfg}: not valid TOML: " in err and "line 2" in err


def test_task_is_required_from_one_place_or_the_other(tmp_path, capsys):
    cfg = _write(tmp_path, "limit = 2\n")
    assert "required: --task" in _error(capsys, ["eval", "--config", str(cfg)])
    assert "required: --task" in _error(capsys, ["eval"])


def test_yaml_file(tmp_path, capsys):
    pytest.importorskip("yaml")
    cfg = _write(tmp_path, "task: docvqa\nbatch-size: auto\nlimit: 5\n", name="run.yaml")
    args = _resolve(["--config", str(cfg), "--limit", "2"])
    assert (args.task, args.batch_size, args.limit) == ("docvqa", "auto", 2)
    bad = _write(tmp_path, "task: [docvqa\n", name="bad.yml")
    assert f"--config {bad}: not valid YAML" in _error(capsys, ["eval", "--config", str(bad)])
