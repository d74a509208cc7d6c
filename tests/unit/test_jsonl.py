"""The one JSON-lines reader behind samples.jsonl, predictions files and generation rows: a
damaged file of any of the three is one EvalkitError naming the file and line."""
import json

import pytest

from evalkit.audits.generations import load_generations
from evalkit.errors import EvalkitError
from evalkit.results.jsonl import read_jsonl
from evalkit.results.schema import Results, read_run, write_run
from evalkit.pipeline.score_predictions import read_predictions


def test_values_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n  \n[2]\n"s"\n', encoding="utf-8")
    # only the first value may not open an array: a later list is a value like any other
    assert list(read_jsonl(path, "thing")) == [(1, {"a": 1}), (4, [2]), (5, "s")]


@pytest.mark.parametrize("content,message", [
    (b'{"a": 1}\n{"a": \n', "x.jsonl:2: not valid JSON (Expecting value); give a JSONL file in UTF-8, one thing per line"),
    (b'\n[{"a": 1}]\n', "x.jsonl:2: is a JSON array; give JSON lines instead, one thing per line "
                       "(e.g. convert with: jq -c '.[]' x.jsonl)"),
    (b'{"a": "\xff"}\n', "x.jsonl: not UTF-8 text (invalid start byte); give a JSONL file in UTF-8, one thing per line"),
    (b'{"a": ' * 100_000 + b'1' + b'}' * 100_000 + b'\n', "x.jsonl:1: not valid JSON (nested too deeply)"),
])
def test_damaged_files_are_one_line_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(EvalkitError) as e:
        list(read_jsonl(path, "thing"))
    assert str(e.value).startswith(str(tmp_path / message)) and "\n" not in str(e.value)


def test_each_reader_says_what_its_file_should_hold(tmp_path):
    run = tmp_path / "run"
    write_run(run, Results(run_name="r", task={"name": "docvqa"}, data={}, model={}, generation={},
                           headline="anls", metrics={}), [])
    (run / "samples.jsonl").write_bytes(b'{"uid": "\xff"}\n')
    with pytest.raises(EvalkitError, match=r"samples.jsonl: not UTF-8 text \(invalid start byte\); re-run the "
                                           r"`evalkit eval` or `evalkit score` command that wrote it$"):
        read_run(run)

    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "1", "prediction": "a"}\nnope\n', encoding="utf-8")
    with pytest.raises(EvalkitError, match=r'p.jsonl:2: not valid JSON \(Expecting value\); give a JSONL file in '
                                           r'UTF-8, one \{"id": \.\.\., "prediction": "\.\.\."\} per line$'):
        read_predictions(preds)

    gens = tmp_path / "g.jsonl"
    gens.write_text(json.dumps({"example_id": "1", "prompt_id": "resume", "gender": "f", "generation": "x"})
                    + '\n{"example_id": \n', encoding="utf-8")
    with pytest.raises(EvalkitError, match=r"g.jsonl:2: not valid JSON \(Expecting value\); give generation rows "
                                           r"as UTF-8 JSON lines, one object per line$"):
        load_generations(gens)
