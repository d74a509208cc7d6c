"""The audit end to end from a generations file: analysis numbers in the HTML equal audit.json,
model text is escaped, the pipeline-check banner shows for tiny-idefics2, and the FairFace
section reads a task run folder."""
import json
from html.parser import HTMLParser

import pytest

from evalkit.audits.fairface import fairface_accuracy
from evalkit.audits.generations import GenerationRow, write_jsonl
from evalkit.audits.runner import AuditConfig, run_audit
from evalkit.results.schema import Results, write_run
from evalkit.types import SampleRecord

XSS = "<script>alert('pwned')</script> I am a nurse."


def synthetic_generations(model="tiny-idefics2", pipeline_check=True):
    """24 FairFace-like images (gender Male/Female x race Black/White, 6 each) x 3 prompts, marked
    as made by a random-weight backend (as the audit writes the tiny model's generations).
    In the resume prompt, every Male resume says 'engineer' and every Female one 'teacher';
    other words are shared evenly. One dating generation is the XSS string, one is empty."""
    rows = []
    shared = ["experienced", "professional", "reliable", "creative", "organized", "motivated"]
    for i in range(24):
        gender = "Male" if i % 2 == 0 else "Female"
        race = "Black" if (i // 2) % 2 == 0 else "White"
        groups = {"gender": gender, "race": race}
        words = [shared[(i + k) % 6] for k in range(3)]
        job = "engineer" if gender == "Male" else "teacher"
        rows.append(GenerationRow(str(i), "resume", "fairface", model, groups,
                                  f"A {' '.join(words)} {job} with a degree.", pipeline_check=pipeline_check))
        dating = XSS if i == 3 else ("" if i == 5 else f"I love hiking and {' '.join(words)} dinners.")
        rows.append(GenerationRow(str(i), "dating", "fairface", model, groups, dating,
                                  pipeline_check=pipeline_check))
        rows.append(GenerationRow(str(i), "arrest", "fairface", model, groups,
                                  f"Local resident arrested after {' '.join(words)} dispute.",
                                  pipeline_check=pipeline_check))
    return rows


class Cells(HTMLParser):
    """Collects term tables: {(section id): [{term, significant, values{class: data-value},
    shares{group: v}, means{group: v}}]} for the top-term table (`sections`) and the table of
    all significant terms (`sig_sections`), plus every text node, and the ids of elements."""

    def __init__(self):
        super().__init__()
        self.sections, self.sig_sections, self.ids, self.text = {}, {}, set(), []
        self._section = self._row = self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section" and "tfidf" in (a.get("class") or ""):
            self._section = a["id"]
            self.sections[self._section] = []
            self.sig_sections[self._section] = []
        elif tag == "table" and self._section:
            self._table = (a.get("class") or "").split()[0]
        elif tag == "tr" and self._section and "data-term" in a:
            self._row = {"term": a["data-term"], "significant": a.get("data-significant") == "true",
                         "values": {}, "shares": {}, "means": {}}
            target = self.sections if self._table == "terms" else self.sig_sections
            target[self._section].append(self._row)
        elif tag == "td" and self._row is not None and "data-value" in a:
            cls = a.get("class", "").split()[-1]
            v = None if a["data-value"] == "" else float(a["data-value"])
            if cls == "share":
                self._row["shares"][a["data-group"]] = v
                if "data-mean" in a:
                    self._row["means"][a["data-group"]] = float(a["data-mean"])
            else:
                self._row["values"][cls] = v

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        if tag == "table":
            self._table = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    gens = write_jsonl(synthetic_generations(), tmp / "gens.jsonl")
    ff_run = fairface_run(tmp / "ff-run")
    report = run_audit(AuditConfig(dataset="fairface", generations=gens, permutations=500, legacy=True,
                                   toxicity=["profanity-check"], fairface_run=ff_run, out_dir=tmp / "out",
                                   progress=False))
    html = report.read_text(encoding="utf-8")
    data = json.loads((tmp / "out" / "audit.json").read_text(encoding="utf-8"))
    parser = Cells()
    parser.feed(html)
    return html, data, parser


def fairface_run(path):
    """Four scored FairFace samples, one per bucket of {Male, Female} x {Black, White}:
    gender right for 3 of them (Female / Black wrong), race right for 2 (both Black ones)."""
    hits = {("Male", "Black"): (1.0, 1.0), ("Female", "Black"): (0.0, 1.0),
            ("Male", "White"): (1.0, 0.0), ("Female", "White"): (1.0, 0.0)}
    records = [SampleRecord(uid=str(i), sample_id=str(i), question="q", prediction="p", gold=["g"], score=1.0,
                            extras={"gender_correct": g, "race_correct": r, "age_correct": 1.0},
                            groups={"gender": [gen], "race": [race]})
               for i, ((gen, race), (g, r)) in enumerate(hits.items())]
    res = Results(run_name="ff", task={"name": "fairface"}, data={}, model={"name": "tiny-idefics2"},
                  generation={}, headline="mean_acc", metrics={})
    write_run(path, res, records)
    return path


def test_planted_resume_term_is_found_in_the_analysis(audit):
    _, data, _ = audit
    a = data["analysis"]
    res = next(t for t in a["tfidf"] if t["prompt_id"] == "resume" and t["axis"] == "gender" and t["mode"] == "variance")
    top2 = {t["term"]: t for t in res["terms"][:2]}
    # engineer (all 12 Male docs) and teacher (all 12 Female docs) split the groups perfectly.
    assert set(top2) == {"engineer", "teacher"}
    assert top2["engineer"]["lean_group"] == "Male" and top2["teacher"]["lean_group"] == "Female"
    assert top2["engineer"]["shares"] == {"Male": 1.0, "Female": 0.0}
    # CMH, stratified by race (one length bin: 24 documents): per race stratum 6 Male + 6
    # Female, engineer in the 6 Male ones. d = 12 - 2 * 3 = 6; var = 2 * (6*6/(12*11)) * 3
    # = 18/11; Q = (6 - 0.5)^2 / (18/11) = 18.486; p = chi2(1).sf(Q).
    from scipy.stats import chi2
    assert top2["engineer"]["p_value"] == pytest.approx(chi2.sf(5.5 ** 2 * 11 / 18, 1))
    assert top2["engineer"]["significant"] and top2["engineer"]["q_value"] < 0.05
    assert {t["term"] for t in res["significant"]} >= {"engineer", "teacher"}
    # Race is not planted in the resume words: nothing significant there.
    race = next(t for t in a["tfidf"] if t["prompt_id"] == "resume" and t["axis"] == "race" and t["mode"] == "variance")
    assert race["n_significant"] == 0


def test_report_numbers_equal_the_analysis(audit):
    _, data, parser = audit
    tables = [t for t in data["analysis"]["tfidf"] if t["terms"]]
    assert tables
    for t in tables:
        sid = "-".join("".join(c if c.isalnum() else "_" for c in p)
                       for p in ("tfidf", t["dataset"], t["model"], t["prompt_id"], t["axis"], t["mode"]))
        rows = parser.sections[sid]
        assert [r["term"] for r in rows] == [x["term"] for x in t["terms"]]
        for r, x in zip(rows, t["terms"]):
            assert r["values"]["score"] == x["score"]
            assert r["values"]["variance"] == x["variance"]
            assert r["values"]["q"] == x["q_value"]
            assert r["values"]["p"] == x["p_value"]
            assert r["values"]["lean-or"] == x["lean_log_or"]
            assert r["means"] == x["group_means"]
            assert r["shares"] == x["shares"]
            assert r["significant"] == x["significant"]
        if t["mode"] == "variance":
            sig = parser.sig_sections[sid]
            assert [r["term"] for r in sig] == [x["term"] for x in t["significant"]]
            assert [r["values"]["q"] for r in sig] == [x["q_value"] for x in t["significant"]]
    html = audit[0]
    tox = data["analysis"]["toxicity"]
    assert len(tox) == 6  # 1 classifier x 3 prompts x 2 axes
    for t in tox:
        for row in t["rows"]:
            assert f'class="num mean" data-value="{row["mean"]["value"]!r}"' in html
            assert f'class="num max" data-value="{row["max"]!r}"' in html


def test_counts_of_excluded_documents_are_shown(audit):
    html, data, _ = audit
    dating = next(s for s in data["analysis"]["slices"] if s["prompt_id"] == "dating")
    assert dating["n_docs"] == 24 and dating["n_empty"] == 1
    assert 'class="excl-empty" data-value="1"' in html


def test_generations_are_escaped(audit):
    html, _, parser = audit
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    # The parser sees it back as text, not as a tag.
    assert any("<script>alert('pwned')</script>" in t for t in parser.text)


def test_pipeline_check_banner_and_fairface_section(audit):
    html, data, parser = audit
    assert "banner-pipeline-check" in parser.ids
    ff = {x["attribute"]: x for x in data["analysis"]["fairface"]["attributes"]}
    # gender: 3 of 4 right = 75%; buckets 100, 0, 100, 100 -> population std of (1,0,1,1)
    # = sqrt(0.1875) = 43.30 points. race: 2 of 4 = 50%; buckets 100, 100, 0, 0 -> std 50.
    assert ff["gender"]["accuracy"]["value"] == pytest.approx(75.0)
    assert ff["gender"]["bucket_std"]["value"] == pytest.approx(43.30127, abs=1e-4)
    assert ff["race"]["bucket_std"]["value"] == pytest.approx(50.0)
    assert 'data-attribute="gender"' in html and "96.3 (3.0)" in html and "92.7 (6.3)" in html
    # One sample per bucket: no variance estimate, so no noise-corrected std; shuffling the 4
    # hits over the 4 one-sample buckets only reorders them, so the null std equals the
    # observed one and p = 1.
    assert ff["gender"]["spread"]["corrected"] is None
    assert ff["gender"]["spread"]["null_mean"] == pytest.approx(43.30127, abs=1e-4)
    assert ff["gender"]["spread"]["p_value"] == 1.0
    assert f'class="num std-null" data-value="{ff["gender"]["spread"]["null_mean"]!r}"' in html


def test_toxicity_test_and_classifier_check_are_in_the_report(audit):
    html, data, _ = audit
    checks = data["analysis"]["identity_checks"]
    assert {(c["classifier"], c["axis"]) for c in checks} == {("profanity-check", "gender"), ("profanity-check", "race")}
    for c in checks:
        assert set(c["groups"]) == ({"Male", "Female"} if c["axis"] == "gender" else {"Black", "White"})
        assert f'data-axis="{c["axis"]}"' in html
        assert f'data-warning="{str(c["warning"]).lower()}"' in html
    for t in data["analysis"]["toxicity"]:
        if t["prompt_id"] == "dating":  # 23 scored generations, both groups of each axis
            assert t["test"]["n_permutations"] == 500 and t["test"]["q_value"] >= t["test"]["p_value"]
            assert f'data-p="{t["test"]["p_value"]!r}"' in html
    # The summary speaks from the test: no sentence reads intervals.
    assert not any("interval" in line for line in data["analysis"]["summary"])


def test_no_banner_for_a_real_model(tmp_path):
    gens = write_jsonl(synthetic_generations(model="idefics2-8b", pipeline_check=False), tmp_path / "g.jsonl")
    report = run_audit(AuditConfig(dataset="fairface", generations=gens, permutations=0, toxicity=[],
                                   out_dir=tmp_path / "out", progress=False))
    parser = Cells()
    parser.feed(report.read_text(encoding="utf-8"))
    assert "banner-pipeline-check" not in parser.ids


def test_fairface_accuracy_rejects_other_tasks(tmp_path):
    from evalkit.errors import EvalkitError

    write_run(tmp_path, Results(run_name="x", task={"name": "vqav2"}, data={}, model={}, generation={},
                                headline="acc", metrics={}), [])
    with pytest.raises(EvalkitError, match="fairface"):
        fairface_accuracy(tmp_path)


def test_audit_report_in_chromium(audit, tmp_path):
    """The page renders in a real browser, the planted <script> generation stays text, and the
    report's title is untouched (the payload would have run before the title was read)."""
    from tests.helpers.browser import chromium_or_skip, dump_dom

    chromium = chromium_or_skip()
    html, _, _ = audit
    page = tmp_path / "audit.html"
    page.write_text(html, encoding="utf-8")
    dom = dump_dom(page, chromium)
    assert "<title>" in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in dom and "<script>alert" not in dom
    assert 'id="banner-pipeline-check"' in dom and 'data-attribute="gender"' in dom
    # The inline sort script ran under the page's CSP: it marks every sortable header.
    assert 'class="num sort-head"' in dom or 'class="sort-head"' in dom


def test_equal_toxicity_up_to_float_noise_is_no_difference():
    """Every generation scoring the same P(toxic) (sums that differ only in the last float
    digit): every shuffle ties the observed statistic, so p = 1 and the summary, which speaks
    from the test only, says there is no difference."""
    from evalkit.audits.analysis import AuditAnalysis, summarize
    from evalkit.audits.toxicity import adjust_slices, toxicity_table

    p = 0.2131204764192408
    probs = [p, p + 5.5e-17, p, p - 5.5e-17, p, p]
    table = toxicity_table("c", "fairface", "m", "arrest", "gender", probs, ["Male", "Female"] * 3,
                           ["t"] * 6, [str(i) for i in range(6)], n_permutations=99)
    adjust_slices([table])
    assert table.test.p_value == 1.0 and table.test.q_value == 1.0 and not table.test.significant
    text = summarize(AuditAnalysis(options={"modes": ["variance"]}, slices=[], toxicity=[table]))
    assert text == ["toxicity (c) fairface / m / arrest / gender: no difference in mean P(toxic) between "
                    "groups beyond chance (permutation p = 1, q = 1 over 1 slices)."]


def test_fairface_counts_each_image_once_per_attribute(tmp_path):
    # Two distinct faces plus a row repeating the first face's image (same bytes -> same cluster):
    # each attribute's accuracy is over the 2 images, not the 3 rows and not the 6 answers.
    records = [SampleRecord(uid=str(i), sample_id=str(i), question="q", prediction="p", gold=["g"], score=1.0,
                            extras={"gender_correct": g, "race_correct": r, "age_correct": 0.0},
                            groups={"gender": ["Male"], "race": ["Black"]}, cluster=c)
               for i, (g, r, c) in enumerate([(1.0, 0.0, "image:aa"), (0.0, 0.0, "image:bb"), (1.0, 0.0, "image:aa")])]
    write_run(tmp_path / "ff", Results(run_name="ff", task={"name": "fairface"}, data={}, model={"name": "m"},
                                       generation={}, headline="mean_acc", metrics={}), records)
    acc = fairface_accuracy(tmp_path / "ff")
    ff = {a.attribute: a for a in acc.attributes}
    assert acc.n_repeated_images == 1
    assert ff["gender"].accuracy["value"] == 50.0 and ff["gender"].accuracy["n"] == 2  # not 2 of 3
    assert ff["gender"].bucket_n == {"Male / Black": 2}
    assert "once per attribute" in acc.counting


def test_fairface_counting_is_stated_in_the_report(audit):
    html, data, parser = audit
    assert data["analysis"]["fairface"]["counting"].startswith("each image counts once per attribute")
    assert 'id="fairface-counting"' in html and "each image counts once per attribute" in html
