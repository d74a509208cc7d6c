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

from evalkit.cli.commands import build_parser, main
from evalkit.cli.config_file import apply, subcommand

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


@pytest.mark.parametrize("name,content", [
    ("long.yaml", "limit: " + "1" * 5000), ("long.toml", "limit = " + "1" * 5000)])
def test_integer_over_4300_digits_in_config_is_one_line(tmp_path, capsys, name, content):
    assert _config_error(tmp_path, capsys, name, content) == (
        f"evalkit: error: --config {tmp_path / name}: holds an integer of more than 4,300 digits, which is not "
        f"read; no setting takes one")


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


# ---------------------------------------------------------------- 13: figures print plain numbers

_PLAIN_NUMBER = r"^[−-]?\d+(\.\d+)?(e[−+-]?\d+)?$"


@pytest.fixture
def drawn_figures(monkeypatch):
    """Every figure the report modules draw, kept after it is drawn (tick texts exist then)."""
    from evalkit.audits import figures as audit_figures
    from evalkit.reports import compare_report, figures as run_figures, html

    drawn = []
    real = html.fig_to_data_uri

    def keep(fig, *args, **kwargs):
        uri = real(fig, *args, **kwargs)
        drawn.append(fig)
        return uri

    for module in (audit_figures, run_figures, compare_report):
        monkeypatch.setattr(module, "fig_to_data_uri", keep)
    return drawn


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def _assert_plain(fig):
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        assert "$" not in text.get_text() and "\\" not in text.get_text(), text.get_text()


def test_every_figure_kind_draws_plain_tick_labels_offsets_and_sci_notation(drawn_figures):
    import re

    from evalkit.audits import figures as af
    from evalkit.reports import figures as rf
    from evalkit.reports.html import fig_to_data_uri, new_figure

    terms = [{"term": f"t{i}", "score": 1e-4 * (i + 1), "significant": i % 2 == 0, "lean_group": "a"}
             for i in range(5)]
    assert af.term_bars(terms, ["a", "b"], "score")
    assert af.toxicity_bars([{"group": g, "mean": {"value": v, "ci_low": v / 2, "ci_high": v * 1.5}}
                             for g, v in (("a", 0.2), ("b", 0.3))])
    assert af.bucket_heatmaps({"gender": [[50.0, 60.0], [70.0, None]]}, ["M", "F"], ["x", "y"])
    assert rf.length_histogram([1, 10**7, 5 * 10**6])
    assert rf.group_bars([rf.GroupStat("a", 50, 40, 60, 10), rf.GroupStat("b", 70, 60, 80, 10)], "acc")
    term, tox, heat, hist, bars = drawn_figures[:5]
    for fig in drawn_figures:
        _assert_plain(fig)
    ax = term.axes[0]  # scores of 1e-4: a shared scientific offset
    assert _tick_texts(ax.xaxis) == ["0.0", "1.5", "3.0", "4.5", "6.0"]
    assert ax.xaxis.get_offset_text().get_text() == "1e−4"
    assert _tick_texts(tox.axes[0].xaxis)[:3] == ["0.0", "0.1", "0.2"]
    colorbar = heat.axes[1]
    assert _tick_texts(colorbar.yaxis) == ["0", "25", "50", "75", "100"]
    ax = hist.axes[0]  # lengths of 10 million words: offset 1e7
    assert ax.xaxis.get_offset_text().get_text() == "1e7"
    assert all(re.match(_PLAIN_NUMBER, t) for t in _tick_texts(ax.xaxis)), _tick_texts(ax.xaxis)
    assert _tick_texts(bars.axes[0].xaxis) == ["0", "20", "40", "60", "80", "100"]
    # the compare page's figure (a duck-typed Comparison: the fields metric_figure reads)
    from types import SimpleNamespace

    from evalkit.reports.compare_report import metric_figure

    runs = [SimpleNamespace(label=n, headline={"value": v, "ci_low": v - 2, "ci_high": v + 2})
            for n, v in (("split", 71.0), ("nosplit", 68.5))]
    comp = SimpleNamespace(runs=runs, metric="anls", comparisons=[
        SimpleNamespace(delta=-2.5, ci_low=-4.0, ci_high=-1.0)])
    assert metric_figure(comp)
    left, right = drawn_figures[-1].axes
    _assert_plain(drawn_figures[-1])
    for axis, expected in ((left.xaxis, {"0", "40", "100"}), (right.xaxis, {"−4", "−2", "0", "2", "4"})):
        texts = _tick_texts(axis)
        assert all(re.match(_PLAIN_NUMBER, t) for t in texts) and expected <= set(texts), texts
    # any other figure: log axes (mathtext formatters by default) and scientific offsets too
    fig = new_figure(4, 3)
    ax = fig.add_subplot()
    ax.plot([1e-5, 1e3], [1e-6, 3e-6])
    ax.set_xscale("log")
    fig_to_data_uri(fig)
    _assert_plain(fig)
    assert _tick_texts(ax.xaxis)[:3] == ["1e−06", "1e−05", "0.0001"] or \
        all(re.match(_PLAIN_NUMBER, t) for t in _tick_texts(ax.xaxis)), _tick_texts(ax.xaxis)
    assert ax.yaxis.get_offset_text().get_text() == "1e−6"


# ---------------------------------------------------------------- 5, 9, 14: evalkit score

def _docvqa_ids(n):
    from test_bad_inputs import _rows

    return [r["questionId"] for r in _rows("docvqa", n)]


def _score(tmp_path, preds, name, *extra):
    return main(["score", "--task", "docvqa", "--predictions", str(preds), "--run-name", name,
                 "--runs-dir", str(tmp_path / "runs"), "--allow-missing", *extra])


def test_lone_surrogate_prediction_is_stored_escaped_and_reads_back(tmp_path, capsys):
    from evalkit.results.schema import read_run

    qid = _docvqa_ids(1)[0]
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": qid, "prediction": "a\ud800b"}) + "\n")  # valid JSON: "a\ud800b"
    assert _score(tmp_path, preds, "s") == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "s"
    raw = (run / "samples.jsonl").read_bytes()
    assert b'"a\\ud800b"' in raw  # the JSON escape, in a file that is valid UTF-8
    raw.decode("utf-8")
    _, records = read_run(run)
    assert [r.prediction for r in records if r.sample_id == qid] == ["a\ud800b"]
    assert "a\\ud800b" in (run / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("line", [
    '{"id": 1, "prediction": ' + "7" * 5000 + "}",
    '{"id": ' + "1" * 5000 + ', "prediction": "x"}',
])
def test_integer_over_4300_digits_in_predictions_is_one_line(tmp_path, capsys, line):
    preds = tmp_path / "p.jsonl"
    preds.write_text(line + "\n")
    err = _one_line_error(capsys, _score(tmp_path, preds, "s"))
    assert err.startswith(f"evalkit: error: {preds}:1: holds an integer of more than 4,300 digits, which is "
                          f"not read; write long ids or numbers as strings; give a JSONL file")


def test_unknown_prediction_ids_are_listed_up_to_a_bound_with_the_full_count(tmp_path, capsys):
    from evalkit.pipeline.records import MAX_LISTED_EXTRA
    from evalkit.results.schema import read_results
    from tests.helpers.htmldom import by_id, parse

    qid = _docvqa_ids(1)[0]
    n_extra = 100_000  # the defect: 1.96 million unknown ids made a 45 MB results.json
    preds = tmp_path / "p.jsonl"
    with preds.open("w") as f:
        f.write(json.dumps({"id": qid, "prediction": "x"}) + "\n")
        for i in range(n_extra):
            f.write(f'{{"id": "u{i:06d}", "prediction": "x"}}\n')
    assert _score(tmp_path, preds, "s") == 0
    out = capsys.readouterr().out
    assert f"{n_extra} predictions for ids not in the data" in out
    run = tmp_path / "runs" / "s"
    res = read_results(run)
    assert res.counts.n_extra_predictions == n_extra
    assert res.extra_predictions == [f"u{i:06d}" for i in range(MAX_LISTED_EXTRA)]
    assert (run / "results.json").stat().st_size < 200_000
    section = by_id(parse((run / "report.html").read_text()), "extra-predictions")
    assert section.one("h3").text() == "Predictions for unknown ids (100,000)"


# ---------------------------------------------------------------- 5, 9, 14: evalkit audit

def _generation_rows(path, race=("Black", "White"), generation_suffix=""):
    words = "doctor nurse engineer teacher lawyer pilot chef artist farmer banker".split()
    rows = [{"example_id": str(i), "prompt_id": p, "dataset": "fairface", "model": "m",
             "gender": ["Male", "Female"][i % 2], "race": race[(i // 2) % 2],
             "generation": " ".join(words[(i * 3 + j + k) % 10] for k in range(6)) + generation_suffix}
            for i in range(8) for j, p in enumerate(("resume", "dating", "arrest"))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _audit(tmp_path, gens, *extra):
    return main(["audit", "--generations", str(gens), "--dataset", "fairface", "--runs-dir", str(tmp_path / "runs"),
                 "--name", "a", "--permutations", "20", "--no-progress", *extra])


def test_audit_of_generations_with_lone_surrogates_in_text_and_labels(tmp_path, capsys):
    gens = _generation_rows(tmp_path / "g.jsonl", race=("Black\ud800", "White"), generation_suffix=" x\udc80y")
    assert _audit(tmp_path, gens, "--toxicity", "none") == 0, capsys.readouterr().err
    out = tmp_path / "runs" / "audit-a"
    audit = json.loads((out / "audit.json").read_bytes().decode("utf-8"))
    groups = {g for t in audit["analysis"]["tfidf"] for g in t["groups"]}
    assert groups >= {"Black\ud800", "White", "Male", "Female"}  # read back as given
    html = (out / "audit.html").read_text(encoding="utf-8")
    assert "Black\\ud800" in html


def test_audit_group_labels_are_cut_to_2000_characters_in_the_page(tmp_path):
    from tests.helpers.htmldom import parse

    label = "B" * 100_000
    assert _audit(tmp_path, _generation_rows(tmp_path / "g.jsonl", race=(label, "White")), "--toxicity", "none") == 0
    out = tmp_path / "runs" / "audit-a"
    html = (out / "audit.html").read_text()
    assert len(html) < 1_000_000  # was 15 MB
    root = parse(html)
    cells = [n.text() for n in root.find_all("td") if n.text().startswith("BBB")]
    assert cells and all(c == "B" * 2000 + "… [98,000 more characters]" for c in cells)
    imgs = [n.attrs["src"] for n in root.find_all("img")]
    assert imgs and all(s.startswith("data:image/png;base64,") and "…" not in s for s in imgs)
    audit = json.loads((out / "audit.json").read_text())
    assert any(label in t["groups"] for t in audit["analysis"]["tfidf"])  # the analysis keeps it whole


def test_audit_seed_must_not_be_negative(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--seed", "-1"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == "evalkit: error: argument --seed: '-1': use 0 or a positive integer\n"


def test_wilson_interval_always_holds_its_share():
    import numpy as np

    from evalkit.audits.significance import wilson

    n = np.arange(1, 3000)
    for k in (np.zeros_like(n), n, n // 3):
        lo, hi = wilson(k, n)
        share = k / n
        assert (lo <= share).all() and (hi >= share).all()
    lo, hi = wilson(0, 3)  # rounding once gave 5.6e-17 here: a ci_low above the 0% share
    assert float(lo) == 0.0 and float(hi) == pytest.approx(0.5614970317550454)


def test_a_crashing_audit_rerun_keeps_the_old_config_beside_the_old_files(tmp_path, monkeypatch):
    from evalkit.audits import runner

    gens = _generation_rows(tmp_path / "g.jsonl")
    assert _audit(tmp_path, gens, "--toxicity", "none") == 0
    out = tmp_path / "runs" / "audit-a"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}
    assert json.loads(before["config.json"])["seed"] == 0

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash in the analysis")

    monkeypatch.setattr(runner, "analyze", crash)
    with pytest.raises(RuntimeError):
        _audit(tmp_path, gens, "--toxicity", "none", "--seed", "7")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}
    assert after == before


# ---------------------------------------------------------------- 5, 9: eval, caches, disks, builds

def _eval(tmp_path, cache_dir, name, *extra, limit=4):
    return main(["eval", "--task", "docvqa", "--run-name", name, "--limit", str(limit), "--batch-size", "2",
                 "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(cache_dir), "--no-progress",
                 "--device", "cpu", "--workers", "1", *extra])


def test_a_cached_lone_surrogate_does_not_break_reruns(tmp_path, tiny_cache, capsys):
    from evalkit.results.schema import read_run

    assert _eval(tmp_path, tiny_cache, "r", limit=2) == 0
    cache = tmp_path / "runs" / "r" / "cache.jsonl"
    lines = [json.loads(x) for x in cache.read_text().splitlines()]
    for entry in lines:  # as a served model's answer "a\ud800b" would have been cached
        entry["response"]["text"] = "a\ud800b"
    cache.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert _eval(tmp_path, tiny_cache, "r", limit=2) == 0, capsys.readouterr().err
    _, records = read_run(tmp_path / "runs" / "r")
    assert [r.prediction for r in records] == ["a\ud800b", "a\ud800b"]


class _FullDisk:
    """A file whose write stores a few bytes and then fails as a full disk does."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def tell(self):
        return self.f.tell()

    def write(self, data):
        import errno

        self.f.write(data[:10])
        self.f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_caching_says_so_and_keeps_what_is_cached(tmp_path, tiny_cache, capsys, monkeypatch):
    from pathlib import Path

    from evalkit.pipeline.cache import ResponseCache

    real_open = Path.open
    appends = []

    def open_(self, mode="r", *args, **kwargs):
        f = real_open(self, mode, *args, **kwargs)
        if self.name == "cache.jsonl" and "a" in mode:
            appends.append(self)
            return _FullDisk(f) if len(appends) == 2 else f  # the second batch finds the disk full
        return f

    monkeypatch.setattr(Path, "open", open_)
    err = _one_line_error(capsys, _eval(tmp_path, tiny_cache, "full", "--batch-size", "1", limit=2))
    cache = tmp_path / "runs" / "full" / "cache.jsonl"
    assert err == (f"evalkit: error: cannot write the response cache {cache}: no space left on the device (disk "
                   f"or quota full); the answers cached before are kept: free space (or fix the folder) and rerun "
                   f"the same command to resume")
    kept = ResponseCache(cache)
    assert (len(kept), kept.n_corrupt_lines) == (1, 1)  # the first batch, and the cut line
    monkeypatch.setattr(Path, "open", real_open)
    assert _eval(tmp_path, tiny_cache, "full", "--batch-size", "1", limit=2) == 0
    assert len(ResponseCache(cache)) == 2


def test_disk_full_while_writing_results_keeps_the_previous_files(tmp_path, capsys, monkeypatch):
    import errno

    # score mode writes results through the same atomic writer as eval, without a model to load
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "prediction": "x"}) + "\n" for i in _docvqa_ids(2)))
    assert _score(tmp_path, preds, "res") == 0
    run = tmp_path / "runs" / "res"
    before = {n: (run / n).read_bytes() for n in ("results.json", "samples.jsonl", "report.html")}
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".samples.jsonl."):
            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    err = _one_line_error(capsys, _score(tmp_path, preds, "res"))
    assert err == (f"evalkit: error: cannot write {run / 'samples.jsonl'}: no space left on the device (disk or "
                   f"quota full); the previous samples.jsonl (if any) is kept: free space (or fix the folder) and "
                   f"run the same command again")
    assert {n: (run / n).read_bytes() for n in before} == before
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_cache_dir_that_is_a_file_or_not_writable(tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    a_file = tmp_path / "afile"
    a_file.write_text("x")
    err = _one_line_error(capsys, _eval(tmp_path, a_file, "c"))
    assert err == f"evalkit: error: --cache-dir {a_file}: is a file, not a folder; give --cache-dir a writable folder"
    err = _one_line_error(capsys, _eval(tmp_path, a_file / "sub", "c"))
    assert err == (f"evalkit: error: --cache-dir {a_file / 'sub'}: cannot build tiny-idefics2-v2 there (Not a "
                   f"directory); give --cache-dir a writable folder")

    def read_only(*args, **kwargs):  # tests run as root, which a chmod would not stop
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    err = _one_line_error(capsys, _eval(tmp_path, tmp_path / "ro", "c"))
    assert err == (f"evalkit: error: --cache-dir {tmp_path / 'ro'}: cannot build tiny-idefics2-v2 there "
                   f"(Read-only file system); give --cache-dir a writable folder")
    assert not (tmp_path / "runs" / "c").exists()


def test_half_written_safetensors_with_model_hf(tmp_path, tiny_cache, capsys):
    import shutil

    from evalkit.models.tiny.idefics2 import tiny_path

    folder = tmp_path / "half"
    shutil.copytree(tiny_path(tiny_cache), folder)
    weights = folder / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)  # an interrupted download or copy
    err = _one_line_error(capsys, _eval(tmp_path, tiny_cache, "h", "--model", "hf", "--model-id", str(folder)))
    assert err.startswith(f"evalkit: error: could not load model '{folder}': a .safetensors weight file is "
                          f"damaged or incomplete (")
    assert err.endswith("); download or copy it again")


def test_leftover_build_folders_of_killed_builds_are_removed(tmp_path):
    import subprocess
    import sys

    from evalkit.models.tiny.build import STALE_SECONDS, remove_stale_builds, save_atomically

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a pid that has exited
    killed = tmp_path / f".tiny-{dead}-abc"
    live = tmp_path / f".tiny-{os.getpid()}-def"  # a build in progress (this process)
    old_unknown, new_unknown = tmp_path / ".tiny-q1w2e3", tmp_path / ".tiny-r4t5y6"  # older versions' names
    for d in (killed, live, old_unknown, new_unknown):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "model.safetensors").write_bytes(b"x" * 100)
    t = time.time() - STALE_SECONDS - 60
    os.utime(old_unknown, (t, t))
    assert sorted(remove_stale_builds(tmp_path)) == sorted([killed, old_unknown])
    assert live.exists() and new_unknown.exists()
    # a build cleans up before it starts
    dead_again = tmp_path / f".tiny-{dead}-ghi"
    dead_again.mkdir()
    save_atomically(tmp_path / "tiny-x-v1", lambda folder: (folder / "config.json").write_text("{}"))
    assert not dead_again.exists() and (tmp_path / "tiny-x-v1" / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, new_unknown.name, "tiny-x-v1"])


def test_score_data_parquet_leaves_no_arrow_copy_in_the_datasets_cache(tmp_path, monkeypatch):
    import datasets

    from evalkit.results.schema import read_run
    from test_bad_inputs import _features, _parquet, _rows

    rows = _rows("docvqa", 4)
    data = _parquet(tmp_path, "docvqa", rows, _features("docvqa"))
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": r["questionId"], "prediction": r["answers"][0]}) + "\n"
                             for r in rows))
    hf_cache = tmp_path / "hf-datasets"  # from here on, where datasets would write its Arrow copies
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", hf_cache)
    assert main(["score", "--task", "docvqa", "--predictions", str(preds), "--data", data, "--run-name", "d",
                 "--runs-dir", str(tmp_path / "runs")]) == 0
    assert not hf_cache.exists() or not any(hf_cache.rglob("*.arrow"))
    results, records = read_run(tmp_path / "runs" / "d")
    assert results.counts.n_scored == 4 and [r.score for r in records] == [1.0] * 4
    assert all(r.thumb and r.thumb.startswith("data:image/") for r in records)  # images still read
