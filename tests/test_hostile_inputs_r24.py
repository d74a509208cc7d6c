"""Hostile inputs, round two (issue 24, everything but the served backend): config files that
nest, expand or are not files; numbers Python will not parse; lone surrogates; full disks;
figures that must print plain numbers; audit robustness. Each case ends as one clear
`evalkit: error:` line or as a counted per-sample record, never a traceback.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from evalkit.cli import build_parser, main
from evalkit.config_file import apply, subcommand

from test_bad_inputs import _one_line_error


def _resolve(argv):
    parser = build_parser()
    args = parser.parse_args(["eval", *argv])
    return apply(subcommand(parser, "eval"), argv, args, args.config)


def _config_error(tmp_path, capsys, name, content: bytes | str) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    start = time.monotonic()
    err = _one_line_error(capsys, main(["eval", "--config", str(path)]))
    assert time.monotonic() - start < 20
    assert len(err) < 800, err[:900]  # bounded (the valid keys listed), whatever the file holds
    return err


# ---------------------------------------------------------------- 9, 10, 11, 14: config files

@pytest.mark.parametrize("name,content,message", [
    ("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000, "not valid TOML: nested too deeply"),
    ("deep.yaml", "a: " + "[" * 100_000 + "]" * 100_000, "not valid YAML: nested too deeply"),
])
def test_deeply_nested_config_is_one_line(tmp_path, capsys, name, content, message):
    assert _config_error(tmp_path, capsys, name, content) == \
        f"evalkit: error: --config {tmp_path / name}: {message}"


def test_yaml_alias_bomb_is_refused_by_counting_values(tmp_path, capsys):
    # 285 bytes of anchors stand for 9**8 = 43 million strings; the repr of them was a 580 MB line
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdef", "bcdefg"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("task: [" + ",".join(["*g"] * 9) + "]")
    err = _config_error(tmp_path, capsys, "bomb.yaml", "\n".join(lines) + "\n")
    assert err.endswith("bomb.yaml: more than 10,000 values (counting each use of a YAML alias); "
                        "a settings file holds a few `key = value` lines")


def test_huge_values_are_shown_cut_short(tmp_path, capsys):
    err = _config_error(tmp_path, capsys, "s.toml", 'limit = "' + "9x" * 200_000 + '"\n')
    assert err.startswith(f"evalkit: error: --config {tmp_path / 's.toml'}: limit = '9x9x9x")
    assert "..." in err and err.endswith("': use a positive integer")
    err = _config_error(tmp_path, capsys, "t.toml", 'task = "' + "x" * 500_000 + '"\n')
    assert "(500,000 characters); valid tasks: docvqa, fairface" in err
    err = _config_error(tmp_path, capsys, "big.toml", "# " + "x" * (2 << 20) + "\n")
    assert err.endswith("big.toml: larger than 1024 KiB; a settings file holds a few `key = value` lines")
    err = _config_error(tmp_path, capsys, "k.toml", '"' + "k" * 100_000 + '" = 1\n')
    assert "unknown key 'kkkk" in err and "valid keys: " in err


def test_config_that_is_not_a_regular_file_says_what_it_is(tmp_path, capsys):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO (named pipe)"), ("/dev/zero", "a character device"), (tmp_path, "a folder")):
        start = time.monotonic()
        err = _one_line_error(capsys, main(["eval", "--config", str(path)]))
        assert time.monotonic() - start < 10  # a FIFO is never opened (it would block)
        assert err == f"evalkit: error: --config {path}: is {kind}; give a TOML or YAML settings file"
    err = _one_line_error(capsys, main(["eval", "--config", str(tmp_path / "none.toml")]))
    assert err.endswith("none.toml: no such file")


def test_bom_and_float_timeout_in_toml_are_accepted(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_bytes(b'\xef\xbb\xbftask = "docvqa"\ntimeout = 2.5\nlimit = 3\n')
    args = _resolve(["--config", str(cfg)])
    assert (args.task, args.timeout, args.limit) == ("docvqa", 2.5, 3)
    cfg.write_text("limit = 2.5\n")  # an integer flag still refuses a fraction, as on the command line
    with pytest.raises(Exception, match=r"limit = 2.5: use a positive integer$"):
        _resolve(["--config", str(cfg)])


@pytest.mark.parametrize("line,message", [
    ('dtype = "fp8"', "dtype: dtype 'fp8' is not valid; use one of fp32, bf16, fp16"),
    ("longest-edge = 1000", "longest-edge: longest edge 1000 is not valid; use a positive multiple of 14 (e.g. 980)"),
    ('prompt_style = "chatty"', "prompt_style: prompt style 'chatty' is not valid; use one of instruct, base"),
])
def test_bad_model_settings_in_config_name_file_and_key(tmp_path, capsys, line, message):
    err = _config_error(tmp_path, capsys, "m.toml", f'task = "docvqa"\n{line}\n')
    assert err == f"evalkit: error: --config {tmp_path / 'm.toml'}: {message}"
