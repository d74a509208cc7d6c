"""Controls: image ablation (blank / shuffle) and circular option rotation (evalkit.pipeline.ablation,
evalkit.pipeline.circular, evalkit.analyses.controls). End-to-end runs use a scripted backend that records what
reaches the model, so the checks are on the requests the backend really received."""
from __future__ import annotations

import hashlib
import io
import random
import re
from pathlib import Path

import pytest

from evalkit.pipeline import ablation, circular
from evalkit.pipeline.cache import request_key
from evalkit.pipeline.data import load_task_data
from evalkit.errors import EvalkitError
from evalkit.pipeline.images import decode_image
from evalkit.models.base import Backend, Prepared
from evalkit.registry import TASKS
from evalkit.results.schema import read_run
from evalkit.pipeline.runner import EvalConfig, build_requests, run_eval
from evalkit.types import IMAGE_PLACEHOLDER, Response

from tests.helpers.htmldom import by_id, parse

OPTION_LINE = re.compile(r"^\(?([A-Z])[.)] (.*)$")


def option_lines(request) -> tuple[str, list[tuple[str, str]]]:
    """(the prompt before the first option line, [(letter, option content)]) of an MMMU or
    MathVista request; an option that is an image (MMMU's '<image 2>' options) reads as that
    image's pixel digest, so options are told apart by what the model is shown."""
    digests = [hashlib.sha256(decode_image(ref).tobytes()).hexdigest()[:12] for ref in request.images]
    lines = request.text.split("\n")
    first = next((i for i, l in enumerate(lines) if OPTION_LINE.match(l)), len(lines))
    seen = "\n".join(lines[:first]).count(IMAGE_PLACEHOLDER)
    opts = []
    for line in lines[first:]:
        m = OPTION_LINE.match(line)
        if not m:
            continue
        letter, text = m.groups()
        while IMAGE_PLACEHOLDER in text:
            text = text.replace(IMAGE_PLACEHOLDER, f"[img {digests[seen]}]", 1)
            seen += 1
        opts.append((letter, text))
    return "\n".join(lines[:first]), opts


class ScriptedBackend(Backend):
    """Answers each request with `answer(request)`; records every request that reaches it with
    the sizes and pixel digests of its decoded images."""

    name = "scripted"

    def __init__(self, answer, key="scripted-v1"):
        self.answer, self.key = answer, key
        self.seen: list[dict] = []

    def estimate_length(self, request):
        return len(request.text)

    def prepare(self, request):
        imgs = [decode_image(ref) for ref in request.images]
        return Prepared(request, {"sizes": [i.size for i in imgs],
                                  "pixels": [hashlib.sha256(i.tobytes()).hexdigest() for i in imgs],
                                  "white": [i.getextrema() == ((255, 255),) * 3 for i in imgs]}, 1, 1)

    def generate(self, batch):
        out = []
        for p in batch:
            self.seen.append({"uid": p.request.uid, "text": p.request.text, **p.inputs})
            out.append(Response(uid=p.request.uid, text=self.answer(p.request), n_input_tokens=1, n_output_tokens=1))
        return out

    def loglikelihood(self, batch):
        raise EvalkitError("scripted backend: generate only")

    def cache_key(self):
        return self.key

    def describe(self):
        return {"name": "scripted", "model_id": self.key, "pipeline_check": False, "image_tokens_per_image": None}

    def reset_peak_memory(self):
        pass

    def peak_memory(self):
        return {"device": "cpu", "peak_bytes": None, "kind": None}


def run(task, tmp_path, backend, name, limit=None, **controls):
    cfg = EvalConfig(task=task, limit=limit, run_name=name, runs_dir=tmp_path, progress=False, thumbnails=0,
                     batch_size=16, **controls)
    return run_eval(cfg, backend=backend)


def by_uid(seen):
    return {s["uid"]: s for s in seen}


# ------------------------------------------------------------------ image ablation: requests
@pytest.fixture(scope="module")
def docvqa_runs(tmp_path_factory):
    """The first 24 questions of the shipped DocVQA sample (on 15 pages) asked for real, blank and shuffled."""
    tmp = tmp_path_factory.mktemp("ablation")
    seen = {}
    for mode in (None, "blank", "shuffle"):
        b = ScriptedBackend(lambda r: "yes")
        run("docvqa", tmp, b, f"docvqa-{mode or 'real'}", limit=24, image_ablation=mode)
        seen[mode] = by_uid(b.seen)
    return tmp, seen


def test_blank_keeps_sizes_and_prompts_and_whitens_every_image(docvqa_runs):
    _, seen = docvqa_runs
    real, blank = seen[None], seen["blank"]
    assert set(real) == set(blank) and len(real) == 24
    for uid, r in real.items():
        b = blank[uid]
        assert b["text"] == r["text"]
        assert b["sizes"] == r["sizes"]  # the image token budget (and splitting) sees the same picture size
        assert all(b["white"]) and not any(r["white"])


def test_shuffle_deranges_images_across_pictures_and_keeps_prompts(docvqa_runs):
    _, seen = docvqa_runs
    real, shuf = seen[None], seen["shuffle"]
    assert set(real) == set(shuf)
    assert len({r["pixels"][0] for r in real.values()}) == 15  # rows share pages: the case to get right
    for uid, r in real.items():
        assert shuf[uid]["text"] == r["text"]
        # never its own page, even when another row asks about that page
        assert shuf[uid]["pixels"] != r["pixels"]
    # a permutation of the slots: the same pictures, as often as in the real run
    assert sorted(s["pixels"][0] for s in shuf.values()) == sorted(r["pixels"][0] for r in real.values())


def test_control_runs_are_marked_and_real_runs_are_not(docvqa_runs):
    tmp, _ = docvqa_runs
    real, _ = read_run(tmp / "docvqa-real")
    blank, _ = read_run(tmp / "docvqa-blank")
    shuf, _ = read_run(tmp / "docvqa-shuffle")
    assert real.controls == {}
    assert blank.controls["image_ablation"] == {"mode": "blank", "seed": None, "n_images": 24, "n_replaced": 24}
    assert shuf.controls["image_ablation"] == {"mode": "shuffle", "seed": 0, "n_images": 24, "n_replaced": 24}


def test_ablated_requests_get_their_own_cache_keys(docvqa_rows):
    task = TASKS.get("docvqa")()
    built = build_requests(task, load_task_data(task, None, 20))
    real = [request_key("m", r) for r in built.requests]
    for mode in ablation.MODES:
        done = ablation.ablate(built.requests, built.owners, mode)
        assert [r.text for r in done.requests] == [r.text for r in built.requests]
        # each ablated request differs from its own real one by the image bytes alone (a shuffled
        # image may make it equal to another row's real request when two pages share a question
        # text: then it is that same request, and the control keeps its own run folder anyway)
        assert all(request_key("m", d) != k for d, k in zip(done.requests, real))


def test_shuffle_at_scale_with_skewed_groups():
    """A DocVQA-sized layout: 1,286 pages with 1 to 15 questions each (skewed), some pages stored
    twice under different rows; no slot may get its own sample's or its own picture's image."""
    rng = random.Random(3)
    owners, keys = [], []
    sample = 0
    for page in range(1286):
        for _ in range(min(15, int(rng.paretovariate(1.5)))):
            owners.append(sample)
            keys.append(f"page{page if page % 50 else page - 1}".encode())  # every 50th page repeats the one before
            sample += 1
    groups = ablation.slot_groups(owners, keys)
    source = ablation.group_derangement(groups, seed=7)
    assert sorted(source) == list(range(len(keys)))
    assert all(keys[source[i]] != keys[i] and owners[source[i]] != owners[i] for i in range(len(keys)))
    assert source != ablation.group_derangement(groups, seed=8)
    assert source == ablation.group_derangement(groups, seed=7)


def test_shuffle_refused_when_one_picture_is_most_of_the_images():
    with pytest.raises(EvalkitError, match=r"3 of the 4 images .* --image-ablation blank"):
        ablation.group_derangement(ablation.slot_groups([0, 1, 2, 3], [b"x", b"x", b"x", b"y"]), seed=0)


# ------------------------------------------------------------------ image ablation: report and compare
def test_real_run_report_and_compare_show_score_without_the_right_image(tmp_path):
    """MathVista, 12 questions (5 multiple choice). The scripted model answers right when the image
    is the real one and 'A' otherwise, so the control scores exactly the questions whose answer
    is option A or 'A'-like: the numbers are fixed by the data."""
    task = TASKS.get("mathvista")()
    data = load_task_data(task, None, 12)
    rows = list(data.iter_rows())
    real_pixels = {}
    for row in rows:
        img = decode_image(row["decoded_image"])
        real_pixels[hashlib.sha256(img.tobytes()).hexdigest(), row["query"]] = row

    def answer(request):
        row = real_pixels.get((hashlib.sha256(decode_image(request.images[0]).tobytes()).hexdigest(), request.text))
        return "A" if row is None else str(row["answer"])

    run("mathvista", tmp_path, ScriptedBackend(answer), "mv-real", limit=12)
    run("mathvista", tmp_path, ScriptedBackend(answer), "mv-blank", limit=12, image_ablation="blank")
    real_res, real_recs = read_run(tmp_path / "mv-real")
    ctrl_res, ctrl_recs = read_run(tmp_path / "mv-blank")
    assert real_res.metrics["mathvista_acc"]["value"] == 100.0
    mc = [r for r in rows if r["question_type"] == "multi_choice"]
    gold_is_a = [r for r in mc if r["answer"] == list(r["choices"])[0]]
    expected = 100.0 * len(gold_is_a) / len(rows)  # free-form answers "A" are wrong
    assert ctrl_res.metrics["mathvista_acc"]["value"] == pytest.approx(expected)
    chance = 100.0 * sum(1 / len(r["choices"]) for r in mc) / len(mc)
    assert ctrl_res.controls["image_ablation"]["chance"] == {"rate": pytest.approx(chance), "n_questions": len(mc)}

    from evalkit.reports.run_report import render_run_report

    page = parse(render_run_report(tmp_path / "mv-real").read_text(encoding="utf-8"))
    row = by_id(page, "ablation").one("tr", cls="ablation", data_mode="blank")
    assert row.attrs["data-control-run"] == "mv-blank"
    assert row.one("td", cls="real").text() == "100.0"
    assert row.one("td", cls="without-image").text() == f"{expected:.1f}"
    assert row.one("td", cls="delta").text() == f"{expected - 100.0:.1f}"
    assert row.one("td", cls="n").text() == "12"
    assert row.one("td", cls="mc-n").text() == str(len(mc))
    assert row.one("td", cls="mc-without-image").text() == f"{100.0 * len(gold_is_a) / len(mc):.1f}"
    assert row.one("td", cls="chance").text() == f"{chance:.1f}"
    ctrl_page = parse(render_run_report(tmp_path / "mv-blank").read_text(encoding="utf-8"))
    assert by_id(ctrl_page, "banner-control").attrs["data-mode"] == "blank"
    from evalkit.reports.index import render_index

    index = parse(render_index(tmp_path).read_text(encoding="utf-8"))
    assert index.one("tr", cls="run", data_run="mv-blank").one("span", cls="control").attrs["data-control"] == "blank"
    assert index.one("tr", cls="run", data_run="mv-real").find_all("span", cls="control") == []

    from evalkit.analyses.compare import build_comparison
    from evalkit.reports.compare_report import render_compare_report

    comp = build_comparison([tmp_path / "mv-real", tmp_path / "mv-blank"], n_resamples=200)
    (c,) = comp.controls
    assert c["delta"]["delta"] == pytest.approx(expected - 100.0) and c["delta"]["n"] == 12
    assert c["delta"]["ci_high"] < 0  # every question lost or kept: the drop is certain here
    cpage = parse(render_compare_report(comp, tmp_path / "cmp").read_text(encoding="utf-8"))
    crow = by_id(cpage, "ablation").one("tr", cls="ablation", data_mode="blank")
    assert crow.one("td", cls="without-image").text() == f"{expected:.1f}"


def test_old_run_folders_read_without_controls(tmp_path):
    import json

    run("vqav2", tmp_path, ScriptedBackend(lambda r: "2"), "old", limit=3)
    path = tmp_path / "old" / "results.json"
    d = json.loads(path.read_text())
    del d["controls"]  # as every run written before controls existed
    path.write_text(json.dumps(d))
    res, _ = read_run(tmp_path / "old")
    assert res.controls == {}
    from evalkit.analyses.controls import find_partners

    assert find_partners(tmp_path / "old") == []


# ------------------------------------------------------------------ circular
@pytest.mark.parametrize("name", ["mmmu", "mathvista"])
def test_rotations_put_the_gold_option_once_at_every_position(name):
    task = TASKS.get(name)()
    data = load_task_data(task, None, None)
    n_checked = 0
    for row in data.iter_rows():
        n = task.option_count(row)
        if n is None:
            continue
        (orig,) = task.build_requests(row, "x")
        prefix, opts = option_lines(orig)
        gold = dict(opts)[str(row["answer"])] if name == "mmmu" else str(row["answer"])
        positions = []
        for k in range(n):
            rotated_row = task.rotate_options(row, k) if k else row
            (req,) = task.build_requests(rotated_row, "x")
            p, rotated = option_lines(req)
            assert p == prefix and len(rotated) == n
            assert [t for _, t in rotated] == circular.rotate_list([t for _, t in opts], k)
            positions.append([t for _, t in rotated].index(gold))
            # the rotated row scores its own gold letter right
            assert task.score_text(rotated_row, rotated[positions[-1]][0]).value == 1.0
        assert sorted(positions) == list(range(n))
        n_checked += 1
    assert n_checked == {"mmmu": 17, "mathvista": 9}[name]


def gold_answerer(task_name, rows):
    """A scripted model that always names the gold option's letter, wherever it stands."""
    task = TASKS.get(task_name)()
    gold = {}
    for row in rows:
        if task.option_count(row):
            (req,) = task.build_requests(row, "x")
            prefix, opts = option_lines(req)
            gold[prefix] = dict(opts)[str(row["answer"])] if task_name == "mmmu" else str(row["answer"])

    def answer(request):
        prefix, opts = option_lines(request)
        return next((letter for letter, text in opts if text == gold.get(prefix)), "42")

    return answer


@pytest.mark.parametrize("name,n_mc", [("mmmu", 17), ("mathvista", 9)])
def test_position_biased_model_is_flagged_and_a_reader_is_not(tmp_path, name, n_mc):
    task = TASKS.get(name)()
    rows = list(load_task_data(task, None, None).iter_rows())
    run(name, tmp_path, ScriptedBackend(lambda r: "A"), "always-a", circular=True)
    res, recs = read_run(tmp_path / "always-a")
    c = res.controls["circular"]
    mc = [r for r in rows if task.option_count(r)]
    assert c["n_questions"] == n_mc == len(mc) and c["n_incomplete"] == 0
    first = [r for r in mc if (r["answer"] == "A" if name == "mmmu" else r["answer"] == list(r["choices"])[0])]
    assert c["standard"]["value"] == pytest.approx(100.0 * len(first) / len(mc))
    assert c["circular"]["value"] == 0.0  # "A" is right in exactly one rotation of each question
    assert c["fixed_letter"]["value"] == 100.0  # flagged: the same letter whatever stands there
    assert c["same_option"]["value"] == 0.0
    assert c["delta"]["delta"] == pytest.approx(-c["standard"]["value"])
    assert c["n_rotations"] == sum(task.option_count(r) for r in mc)
    # the headline stays the benchmark's own score (rotation 0 only)
    one = [r for r in recs if "circular" in r.extras][0]
    assert one.extras["circular"]["chosen"] == [0] * len(one.extras["circular"]["chosen"])

    run(name, tmp_path, ScriptedBackend(gold_answerer(name, rows)), "reader", circular=True)
    c = read_run(tmp_path / "reader")[0].controls["circular"]
    assert (c["standard"]["value"], c["circular"]["value"], c["fixed_letter"]["value"],
            c["same_option"]["value"]) == (100.0, 100.0, 0.0, 100.0)
    assert c["delta"]["delta"] == 0.0


def test_circular_report_shows_the_numbers(tmp_path):
    run("mmmu", tmp_path, ScriptedBackend(lambda r: "A"), "always-a", circular=True)
    res, _ = read_run(tmp_path / "always-a")
    from evalkit.reports.run_report import render_run_report

    page = parse(render_run_report(tmp_path / "always-a").read_text(encoding="utf-8"))
    table = by_id(page, "circular-table")
    c = res.controls["circular"]
    for key in ("standard", "circular", "fixed_letter", "same_option"):
        assert table.one("tr", data_key=key).one("td", cls="value").text() == f"{c[key]['value']:.1f}"
    assert table.one("tr", data_key="fixed_letter").one("td", cls="value").text() == "100.0"
    assert table.one("tr", data_key="delta").one("td", cls="value").text() == f"{c['delta']['delta']:.1f}"
    assert by_id(page, "circular-n-questions").text() == "17"


def test_resumed_circular_run_answers_every_rotation_from_the_cache(tmp_path):
    first = ScriptedBackend(lambda r: "B")
    run("mmmu", tmp_path, first, "circ", limit=10, circular=True)
    n = len(first.seen)
    task = TASKS.get("mmmu")()
    rows = list(load_task_data(task, None, 10).iter_rows())
    assert n == 10 + sum(task.option_count(r) - 1 for r in rows if task.option_count(r))
    again = ScriptedBackend(lambda r: "B")
    run("mmmu", tmp_path, again, "circ", limit=10, circular=True)
    assert again.seen == []
    res, _ = read_run(tmp_path / "circ")
    assert res.timing.n_cached == n
    # and every rotation is its own request: no two share a cache key
    built = build_requests(task, load_task_data(task, None, 10))
    rots, _ = circular.plan(task, built.records, built.rows)
    keys = [request_key("m", r) for r in built.requests + circular.flat_requests(rots)]
    assert len(set(keys)) == len(keys) == n


def test_circular_refused_for_a_task_without_options(tmp_path, capsys):
    from evalkit.cli.commands import main

    assert main(["eval", "--task", "vqav2", "--circular", "--limit", "1", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--circular: task vqav2 has no multiple-choice options" in err
    assert "mathvista, mmmu" in err and not list(tmp_path.iterdir())


def test_circular_with_a_judge_is_refused_before_any_request(tmp_path):
    from evalkit.models import ModelSpec

    b = ScriptedBackend(lambda r: "A")
    with pytest.raises(EvalkitError, match="--circular with --judge"):
        run("mathvista", tmp_path, b, "judged", limit=3, circular=True,
            judge=ModelSpec(name="openai", model_id="judge", base_url="http://127.0.0.1:9"))
    assert b.seen == []


def test_cli_runs_both_controls_on_the_tiny_model(tmp_path, tiny_cache, capsys):
    """The real path end to end: the tiny Idefics2 through `evalkit eval`, 4 MMMU questions."""
    from evalkit.cli.commands import main

    common = ["eval", "--task", "mmmu", "--limit", "4", "--runs-dir", str(tmp_path), "--cache-dir",
              str(tiny_cache), "--no-progress", "--batch-size", "4"]
    assert main(common + ["--circular"]) == 0
    assert main(common + ["--image-ablation", "blank"]) == 0
    out = capsys.readouterr().out
    real, control = tmp_path / "mmmu-tiny-idefics2-nosplit", tmp_path / "mmmu-tiny-idefics2-nosplit-blank-images"
    res, _ = read_run(real)
    task = TASKS.get("mmmu")()
    mc = [r for r in load_task_data(task, None, 4).iter_rows() if task.option_count(r)]
    assert res.controls["circular"]["n_questions"] + res.controls["circular"]["n_incomplete"] == len(mc) > 0
    assert res.timing.n_cached == 0 and "circular: " in out
    n_images = read_run(control)[0].controls["image_ablation"]["n_images"]
    assert n_images >= 4 and f"control: every image blank ({n_images} of {n_images} replaced)" in out
    # the control's run redrew the real run's page with its numbers
    page = parse((real / "report.html").read_text(encoding="utf-8"))
    row = by_id(page, "ablation").one("tr", cls="ablation", data_mode="blank")
    assert row.attrs["data-control-run"] == control.name
    assert row.one("td", cls="n").text() == str(read_run(control)[0].counts.n_scored)
