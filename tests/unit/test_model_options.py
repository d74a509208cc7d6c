"""Model options declared per backend: the same cache keys and settings as before declarations,
and a new option on one backend gives its flag, config key, check and docs row with no other edit."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest import mock

import pytest

from evalkit.cli.commands import build_parser, main, spec_from_args
from evalkit.cli.config_file import apply, subcommand
from evalkit.errors import EvalkitError
from evalkit.models import MODELS, ModelSpec
from evalkit.models.backends.openai import OpenAIBackend
from evalkit.models.options import Option, catalog, options_table, positive_int
from evalkit.models.options_doc import with_table

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "models.md"

# Keys computed by ModelSpec.cache_key before options were declared per backend (commit 2bd91c3):
# a rerun of a run folder made then must find its cache.jsonl entries.
PINNED_SPEC_KEYS = [
    (ModelSpec, {}, "e18e6d10578f75b0"),
    (ModelSpec, {"do_image_splitting": True, "longest_edge": 490}, "fce3d22518751982"),
    (lambda **kw: ModelSpec("hf", model_id="HuggingFaceM4/idefics2-8b", **kw),
     {"dtype": "bf16", "attn_implementation": "sdpa", "load_in_4bit": True, "device": "cuda", "prompt_style": "base"},
     "b44693f69caabf8a"),
    (lambda **kw: ModelSpec("vllm", model_id="x/y", **kw), {"tensor_parallel_size": 4, "dtype": "fp16"},
     "cdbd056c74e6fe84"),
]


@pytest.mark.parametrize("make,kw,key", PINNED_SPEC_KEYS)
def test_spec_cache_keys_are_the_ones_before_declarations(make, kw, key):
    assert make(**kw).cache_key() == key


def _served_key(**kw) -> str:
    # the served model's identity as /models would report it, without a server
    with mock.patch.object(OpenAIBackend, "_served_model",
                           lambda self, mid: {"id": "stub-model", "root": "/w/stub", "max_model_len": 4096}):
        backend = OpenAIBackend(ModelSpec("openai", base_url="http://127.0.0.1:9/v1", **kw), env={})
    try:
        return backend.cache_key()
    finally:
        backend.close()


def test_served_cache_keys_are_the_ones_before_declarations():
    assert _served_key() == "openai|d9418e10b3f502c7b5e2b588"
    # longest edge and server stop change answers; concurrency and timeout do not
    changed = _served_key(longest_edge=56, server_stop=False, concurrency=2, timeout=5.0)
    assert changed == "openai|3494db94d2386a9385482767"
    assert _served_key(concurrency=2, timeout=5.0, max_retries=0) == "openai|d9418e10b3f502c7b5e2b588"


def test_settings_dict_has_every_field_it_had():
    # config.json's model section: the same 16 keys and defaults as the 16-field spec wrote
    assert ModelSpec().to_dict() == {
        "name": "tiny-idefics2", "model_id": None, "dtype": "fp32", "attn_implementation": None,
        "do_image_splitting": False, "longest_edge": None, "load_in_4bit": False, "device": "auto",
        "prompt_style": "instruct", "tensor_parallel_size": 1, "base_url": None, "concurrency": 8, "timeout": 300.0,
        "max_retries": 5, "api_key_env": None, "server_stop": True}


def test_spec_reads_like_the_old_dataclass():
    s = ModelSpec("hf", model_id="m", dtype="bf16", do_image_splitting=True)
    assert (s.dtype, s.do_image_splitting, s.longest_edge, s.concurrency) == ("bf16", True, None, 8)
    assert ModelSpec(dtype="fp32") == ModelSpec() and hash(ModelSpec(dtype="fp32")) == hash(ModelSpec())
    t = dataclasses.replace(s, model_id="other")
    assert (t.model_id, t.dtype, t.do_image_splitting) == ("other", "bf16", True)
    u = dataclasses.replace(s, dtype="fp32", attn_implementation="sdpa")  # an option, as `evalkit invariance` does
    assert (u.dtype, u.attn_implementation, u.do_image_splitting) == ("fp32", "sdpa", True)
    with pytest.raises(EvalkitError, match=r"model option 'beams' is not declared by any backend; declared "
                                           r"options: dtype, attn_implementation, "):
        ModelSpec(beams=2)
    with pytest.raises(AttributeError):
        s.not_an_option


def _check_beams(n) -> None:
    if not isinstance(n, int) or n < 1:
        raise EvalkitError(f"beam width {n!r} is not valid; use a positive integer")


class ToyBackend:
    """A plugin backend declaring one option of its own (a class is a factory too)."""

    options = (Option("beam_width", 1, "beams searched per request", parse=positive_int, check=_check_beams),)

    def __init__(self, spec, cache_dir=None):
        self.spec = spec


@pytest.fixture
def toy(monkeypatch):
    MODELS.names()  # discovery first, so the toy joins the real backends
    monkeypatch.setitem(MODELS._items, "toy", ToyBackend)
    return ToyBackend


def test_a_toy_option_gets_flag_config_key_check_and_docs_row(toy, tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["eval", "--task", "docvqa", "--model", "toy", "--beam-width", "3"])
    spec = spec_from_args(args)
    assert (spec.name, spec.beam_width, spec.to_dict()["beam_width"]) == ("toy", 3, 3)
    assert ModelSpec().beam_width == 1  # declared default, on any spec

    cfg = tmp_path / "run.toml"
    cfg.write_text('task = "docvqa"\nmodel = "toy"\nbeam_width = 4\n', encoding="utf-8")
    argv = ["--config", str(cfg)]
    args = apply(subcommand(parser, "eval"), argv, parser.parse_args(["eval", *argv]), cfg)
    assert spec_from_args(args).beam_width == 4

    cfg.write_text('task = "docvqa"\nbeam-width = 0\n', encoding="utf-8")
    assert main(["eval", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err == f"evalkit: error: --config {cfg}: beam-width = 0: use a positive integer\n"
    with pytest.raises(EvalkitError, match=r"^beam width 0 is not valid; use a positive integer$"):
        ModelSpec("toy", beam_width=0)

    row = "| `--beam-width` | `beam-width` | 1 | toy | yes | beams searched per request |"
    assert row in options_table().splitlines()
    assert row in with_table(DOCS_PAGE.read_text(encoding="utf-8"))

    # in the toy's cache key, and in no other backend's
    assert ModelSpec("toy", beam_width=2).cache_key() != ModelSpec("toy").cache_key()
    assert ModelSpec(beam_width=2).cache_key() == ModelSpec().cache_key() == "e18e6d10578f75b0"


def test_two_backends_declaring_one_name_differently_is_named(toy, monkeypatch):
    other = type("Other", (), {"options": (Option("beam_width", 2, "beams"),)})
    monkeypatch.setitem(MODELS._items, "toy2", other)
    with pytest.raises(EvalkitError, match="model option 'beam_width' is declared differently by backends 'toy' "
                                           "and 'toy2'; share one Option or rename one"):
        catalog()


def test_docs_page_table_is_up_to_date():
    page = DOCS_PAGE.read_text(encoding="utf-8")
    assert with_table(page) == page, "run: python -m evalkit.models.options_doc docs/models.md"
    # every declared option, with its default, in the page
    for opt, _ in catalog().values():
        assert f"| `{opt.flag_name}` | `{opt.flag_name[2:]}` |" in page
