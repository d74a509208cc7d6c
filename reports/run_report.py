"""The HTML report of one run: runs/<run>/report.html, built from results.json + samples.jsonl.

Hooks other report writers and the tests rely on (reuse them in reports that extend
base.html.j2, so one vocabulary reads across pages):

  page       #page-title                      the <h1>
  banners    #banner-pipeline-check           .banner.warn; random-weights model
             #banner-known-answer             .banner.warn; the known-answer model, in its place:
             #known-answer-expected #known-answer-measured (absent when no expected score applies)
             #banner-data-source              .banner.info; shipped sample, with its note
  headline   #headline-metric #headline-value #headline-ci-low #headline-ci-high #headline-n
             #reference-no-split #reference-split   the model card's numbers
             .ref-row.match                   the reference row comparable to this run
  metrics    table#metrics  tr[data-metric=NAME] > td.value td.ci-low td.ci-high td.n
             tr.headline-row                  the headline metric's row
  scoring    section#scoring-sensitivity  #headline-rule  table#variants
             tr.variant[data-variant=NAME] > td.value td.ci-low td.ci-high td.n td.diff
             td.diff-ci-low td.diff-ci-high td.n-disagree; details.disagree[data-variant=NAME] li
  clusters   #headline-clusters (only when results.json has statistics) > #n-clusters #mean-cluster-size
             #max-cluster-size #design-effect #icc #half-width #clusters-for-1pt; section#reading-statistics
  card       #card-verdict[data-status=equivalent|not_equivalent|settings_differ|not_applicable]
             li.difference
  breakdown  section#breakdowns  table.breakdown[data-axis=AXIS]
             tr[data-group=LABEL] > td.value td.ci-low td.ci-high td.n
  figures    img[data-figure="breakdown-AXIS"]  img[data-figure="length-histogram"]
  metadata   table#run-metadata  tr[data-key=KEY] > td
  counts     table#counts  tr[data-count=KEY] > td.num  (a task's counts read "k of n")
  errors     #error-count (= number of errors listed)  table#errors tr.error-row
  unscored   #unscored-count  table#unscored
  score mode #missing-predictions #extra-predictions (only when non-empty)
  samples    table#samples  tr.sample[data-sample-id][data-status=error|unscored|zero|partial|full]
             > td.thumb td.sample-id td.question td.prediction td.gold td.score td.error
             .filter-bar[data-filter-for=samples]  (hidden until its script runs)
Numbers on the 0-100 scale are shown with 1 decimal; per-sample scores (0-1) with 2.
Tables use td.num for right-aligned numbers; classes are styled in base.html.j2.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.analyses.references import SETTING_LABELS, SETTINGS, ReferenceTable, RefNumber, reference_table
from evalkit.results.schema import DataInfo, Generation, ModelInfo, Results, read_run
from evalkit.types import SampleRecord
from evalkit.analyses.verdict import card_verdict

from .figures import MAX_BARS, GroupStat, group_bars, length_histogram
from .html import fmt_bytes, fmt_duration, fmt_num, fmt_value, inline_image, load_script, make_env, render_page

REPORT_FILE = "report.html"
# A sample table beyond this many rows makes a page too heavy to open (thumbnails are
# inline); the full set stays in samples.jsonl.
MAX_SAMPLE_ROWS = 5000
MAX_LIST_ROWS = 1000  # errors, unscored, missing/extra ids
MAX_CELL_CHARS = 2000  # a sample's prediction, question, gold answer or error, as the page shows it
FOLD_AFTER = 20  # longer error / unscored lists start collapsed


@dataclass
class Stat:
    """A metric row: value and 95% CI on the 0-100 scale."""

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    is_headline: bool = False


@dataclass
class Reference:
    key: str  # the setting ("no_split" | "split" | "single") for the headline metric, else the metric's name
    label: str
    value: float | None
    matches_run: bool  # the headline metric at this run's image-splitting setting (or the only one published)
    split: str = ""  # the data split the number was measured on


@dataclass
class Breakdown:
    axis: str
    rows: list[Stat]
    figure: str | None
    metric: str = ""  # the metric its values are of (the axis may name its own: "race_acc by gender_x_race")


@dataclass
class SampleRow:
    sample_id: str
    status: str
    question: str
    prediction: str | None
    gold: list[str]
    score: str
    error: str | None
    thumb: str | None
    tags: list[str] = field(default_factory=list)


def render_run_report(run_dir: Path, *, max_sample_rows: int = MAX_SAMPLE_ROWS) -> Path:
    """Write run_dir/report.html from the run's result files and return its path."""
    run_dir = Path(run_dir)
    results, records = read_run(run_dir)
    context = build_context(results, records, max_sample_rows=max_sample_rows,
                            ablations=control_partners(run_dir, results, records))
    return render_page(make_env(), "run.html.j2", run_dir / REPORT_FILE,
                       scripts=[load_script("table_filter.js")], **context)


def render_new_run_report(run_dir: Path) -> Path:
    """The report of a run just written. Its results.json and samples.jsonl are already on disk,
    so a report that fails here costs no work: the error says how to draw it again."""
    try:
        return render_run_report(run_dir)
    except EvalkitError:
        raise
    except Exception as e:
        raise EvalkitError(f"{run_dir}: results.json and samples.jsonl are written, but the report failed "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                           f"`evalkit report {run_dir}` retries it") from None


def control_partners(run_dir: Path, results: Results, records: list[SampleRecord]) -> list[dict[str, Any]]:
    """Image-ablation summaries for this run's page: for a real run, each control of the same
    task, model and data found beside it; for a control, the real run(s) it controls."""
    from evalkit.analyses.controls import ablation_of, ablation_vs_real, find_partners

    out = []
    for other in find_partners(run_dir):
        o_results, o_records = read_run(other)
        if ablation_of(results) is None:
            out.append(ablation_vs_real(results, records, o_results, o_records))
        else:
            out.append(ablation_vs_real(o_results, o_records, results, records))
    return out


def build_context(results: Results, records: list[SampleRecord], *,
                  max_sample_rows: int = MAX_SAMPLE_ROWS, ablations: list[dict[str, Any]] = ()) -> dict[str, Any]:
    task, model = results.task, results.model
    metric_name = task.get("metric") or results.headline
    lengths = [len(str(r.prediction).split()) for r in records if r.error is None and r.prediction is not None]
    shown = records[:max_sample_rows]
    return {
        "title": f"{task.get('title') or task.get('name') or 'task'} — {results.run_name}",
        "r": results,
        "pipeline_check": model.pipeline_check,
        "known_answer": known_answer(results, records),
        "model_name": model.name or model.model_id or "the model",
        "shipped_sample": results.data.source == "shipped sample",
        "headline": _stat(results.headline, results.metrics.get(results.headline), True),
        **reference_context(task, model),
        "metrics": [_stat(k, v, k == results.headline) for k, v in results.metrics.items()],
        "sensitivity": results.scoring_sensitivity or {},
        "statistics": results.statistics or {},  # empty for runs written before clusters existed
        "control": (results.controls or {}).get("image_ablation"),
        "ablations": list(ablations),
        "circular": (results.controls or {}).get("circular"),
        "judge": results.generation.judge,
        "max_disagree_shown": MAX_LIST_ROWS,
        "verdict": card_verdict(task, model, results.data, results.metrics.get(results.headline),
                                from_predictions_file=results.generation.source == "predictions file"),
        "breakdowns": breakdowns(results.breakdowns, metric_name, results.metrics),
        "max_bars": MAX_BARS,
        "length_figure": length_histogram(lengths),
        "length_stats": {"n": len(lengths), "mean": sum(lengths) / len(lengths) if lengths else None,
                         "median": median(lengths) if lengths else None},
        "metadata": metadata(results),
        "counts": count_rows(results),
        "task_counts": results.counts.task_counts,
        "errors": results.errors[:MAX_LIST_ROWS],
        "unscored": results.unscored[:MAX_LIST_ROWS],
        "missing": results.missing_predictions[:MAX_LIST_ROWS],
        "extra": results.extra_predictions[:MAX_LIST_ROWS],
        "max_list_rows": MAX_LIST_ROWS,
        "fold_after": FOLD_AFTER,
        "samples": [sample_row(r) for r in shown],
        "n_records": len(records),
        "raw_json": json.dumps({k: v for k, v in results.to_dict().items() if k in (
            "task", "data", "model", "generation", "tokens", "timing", "memory", "environment")},
            indent=2, ensure_ascii=False, default=str),
    }


def known_answer(results: Results, records: list[SampleRecord]) -> dict[str, Any] | None:
    """For a run of the known-answer model: the score its manifest expects on these samples
    beside the measured one, or why none applies (other data, splitting on)."""
    if not isinstance(results.model.extra.get("known_answer"), dict):
        return None
    from evalkit.models.known_answer import expected_score

    exp = expected_score(str(results.task.get("name")), [r.sample_id for r in records],
                         results.model.do_image_splitting)
    measured = (results.metrics.get(results.headline) or {}).get("value")
    return {"expected": exp.value, "measured": measured, "reason": exp.reason,
            "matches": exp.value is not None and measured is not None and abs(exp.value - measured) < 1e-6}


def _stat(name: str, m: dict[str, Any] | None, is_headline: bool = False) -> Stat:
    m = m or {}
    return Stat(name, m.get("value"), m.get("ci_low"), m.get("ci_high"), m.get("n"), is_headline)


def count_rows(results: Results) -> list[tuple[str, str]]:
    """(key, text) rows of the counts table: the run's counts that apply (score mode adds the
    predictions file's), then the task's own as "k of n"."""
    c = results.counts
    rows = [("n_samples", c.n_samples), ("n_scored", c.n_scored), ("n_errors", c.n_errors),
            ("n_unscored", c.n_unscored)]
    if results.generation.source == "predictions file":
        rows += [("n_missing_predictions", c.n_missing_predictions), ("n_extra_predictions", c.n_extra_predictions)]
    out = [(k, f"{v:,}") for k, v in rows]
    return out + [(k, f"{v.count:,} of {v.of:,}") for k, v in c.task_counts.items()]


def reference_context(task: dict[str, Any], model: ModelInfo, table: ReferenceTable | None = None) -> dict[str, Any]:
    """The published numbers of this run's own model for this task (evalkit.analyses.references): the
    table's model (None: no row matches, and the page says so), its numbers, and their sources."""
    table = table or reference_table()
    ref_model = table.match_model(model)
    if ref_model is None:
        return {"reference_model": None, "reference_kind": None, "references": [], "reference_note": ""}
    rows = table.rows(ref_model.key, str(task.get("name")))
    return {"reference_model": ref_model.label, "reference_kind": ref_model.kind,
            "references": references(rows, str(task.get("metric")), model.do_image_splitting),
            # each source and each note once, however many rows share them
            "reference_note": " ".join([*dict.fromkeys(f"{r.source}: measured on the {r.split} split." for r in rows),
                                        *dict.fromkeys(r.note for r in rows if r.note)])}


def references(rows: list[RefNumber], metric: str, splitting: bool | None) -> list[Reference]:
    """The headline metric's numbers first (no split, split, or the single one), then any other metric's."""
    order = {s: i for i, s in enumerate(SETTINGS)}
    head = sorted((r for r in rows if r.metric == metric), key=lambda r: order[r.setting])
    out = [Reference(r.setting, SETTING_LABELS[r.setting], r.value,
                     r.setting == "single" or (splitting is not None and r.setting == ("split" if splitting
                                                                                       else "no_split")), r.split)
           for r in head]
    return out + [Reference(r.metric, r.metric if r.setting == "single" else f"{r.metric}, {SETTING_LABELS[r.setting]}",
                            r.value, False, r.split) for r in rows if r.metric != metric]


def breakdowns(raw: dict[str, dict[str, dict[str, Any]]], metric: str,
               metrics: dict[str, Any] | None = None) -> list[Breakdown]:
    out = []
    for axis, groups in raw.items():
        axis_metric = _axis_metric(axis, metric, metrics or {})
        rows = [_stat(g, groups[g]) for g in _group_order(list(groups))]
        fig = group_bars([GroupStat(s.name, s.value, s.ci_low, s.ci_high, s.n or 0) for s in rows], axis_metric)
        out.append(Breakdown(axis, rows, fig, axis_metric))
    return out


def _axis_metric(axis: str, metric: str, metrics: dict[str, Any]) -> str:
    """An axis named "<metric> by <groups>" holds that metric, not the task's headline."""
    m = re.match(r"^(\S+) by ", axis)
    return m.group(1) if m and m.group(1) in metrics else metric


def _natural_key(label: str) -> list[tuple[int, Any]]:
    # re.split with a group alternates text and digits, starting with text, so positions compare like with like
    return [(0, int(p)) if i % 2 else (1, p) for i, p in enumerate(re.split(r"(\d+)", label))]


def _group_order(labels: list[str]) -> list[str]:
    """Groups a task left in plain string order are shown in natural order, so age bins read
    0-2, 3-9, 10-19 rather than 0-2, 10-19, 3-9; any other order is the task's choice and kept."""
    return sorted(labels, key=_natural_key) if labels == sorted(labels) else labels


def metadata(r: Results) -> list[tuple[str, str, str]]:
    """(key, label, text) rows of the run metadata table; the key is the row's data-key.
    Optional settings a run did not record are left out; results.json keeps everything."""
    m, g, t, tok, env, d, mem = r.model, r.generation, r.timing, r.tokens, r.environment, r.data, r.memory
    peak = fmt_bytes(mem.peak_bytes)
    if mem.device and mem.peak_bytes is not None:
        peak += f" ({mem.device})"
    batch = fmt_value(g.batch_size)
    if g.final_batch_size not in (None, g.batch_size):
        batch += f" (ran at {fmt_value(g.final_batch_size)})"
    padding = t.padding_fraction
    dataset = " / ".join(str(x) for x in (r.task.get("hub_id"), r.task.get("hub_config"), r.task.get("split")) if x)
    rows = [
        ("model_name", "Model", fmt_value(m.name), True),
        ("model_id", "Model id", fmt_value(m.model_id), True),
        ("architecture", "Architecture", fmt_value(m.architecture), False),
        ("n_parameters", "Parameters", fmt_value(m.n_parameters), False),
        ("dtype", "dtype", fmt_value(m.dtype), True),
        ("load_in_4bit", "4-bit weights", fmt_value(m.load_in_4bit) if m.load_in_4bit else "—", False),
        ("attn_implementation", "Attention", fmt_value(m.attn_implementation), False),
        ("device", "Device", fmt_value(m.device), False),
        ("do_image_splitting", "Image splitting", fmt_value(m.do_image_splitting), True),
        ("longest_edge", "Longest image edge (px)", fmt_value(m.longest_edge), False),
        ("image_tokens_per_image", "Image tokens per image", fmt_value(tok.image_tokens_per_image), False),
        ("image_tokens_per_sample", "Image tokens per sample", fmt_value(tok.image_tokens_per_sample), True),
        ("input_tokens_mean", "Input tokens per sample", fmt_num(tok.input_tokens_mean, 1), False),
        ("output_tokens_total", "Output tokens (total)", fmt_value(tok.output_tokens_total), False),
        ("prompt_style", "Prompt style", fmt_value(g.prompt_style), True),
        ("batch_size", "Batch size", batch, True),
        ("largest_batch", "Largest batch run", fmt_value(g.largest_batch), False),
        ("requests", "Requests sent", requests_text(g), True),
        ("max_new_tokens", "Max new tokens", ", ".join(map(str, g.max_new_tokens)) or "—", True),
        ("do_sample", "Decoding", "greedy" if g.do_sample is False else "sampling" if g.do_sample else "—", False),
        ("samples_per_s", "Samples / s", _rate_text(fmt_num(t.samples_per_s, 2), r), True),
        ("tokens_per_s", "Output tokens / s", "— (no tokens generated)" if tok.output_tokens_total == 0
         else _rate_text(fmt_num(t.tokens_per_s, 1), r), True),
        ("wall_s", "Wall time", fmt_duration(t.wall_s), True),
        ("generation_s", "Generation time", fmt_duration(t.generation_s), False),
        ("n_cached", "Responses from cache", fmt_value(t.n_cached), False),
        ("padding_fraction", "Padding in batches", f"{padding * 100:.1f}%" if isinstance(padding, (int, float)) else "—", False),
        ("oom_halvings", "Batch halvings on OOM", fmt_value(t.oom_halvings), False),
        ("peak_memory", "Peak memory", peak, True),
        ("dataset", "Dataset", dataset or "—", True),
        ("data_source", "Data source", fmt_value(d.source), True),
        ("n_rows", "Rows evaluated", _rows_text(d), True),
        ("versions", "Versions", fmt_value(env.get("versions")), True),
        ("git_commit", "Git commit", fmt_value(env.get("git_commit")), True),
        ("host", "Host", fmt_value(env.get("host")), False),
        ("start", "Start", fmt_value(t.start), True),
        ("end", "End", fmt_value(t.end), True),
    ]
    # Always-shown rows say "—" when absent (a reader should see it is unknown); optional
    # knobs that this run did not record would only add dashes.
    return [(key, label, text) for key, label, text, always in rows if always or text != "—"]


def _rate_text(text: str, r: Results) -> str:
    """A throughput says little when responses came from the cache: say so beside it.
    n_cached counts requests (a sample may make several), so no share of samples is claimed."""
    cached = r.timing.n_cached
    if not cached:
        return text
    if r.timing.n_batches == 0:  # nothing was run on the model
        return "— (all responses from cache)"
    return text if text == "—" else f"{text} ({cached:,} responses from cache)"


def requests_text(g: Generation) -> str:
    """The settings of the requests a run sent, e.g. "24 generate (max 32 new tokens, greedy,
    stop <end_of_utterance>); 6 loglikelihood"."""
    if g.source == "predictions file":
        return "— (predictions made elsewhere)"
    parts = []
    for s in g.requests:
        head = f"{s.n_requests:,} {s.kind}" if s.n_requests is not None else (s.kind or "not recorded")
        if s.kind == "loglikelihood":
            parts.append(head)
            continue
        opts = [f"max {s.max_new_tokens} new tokens" if s.max_new_tokens is not None else None,
                {True: "sampling", False: "greedy"}.get(s.do_sample),
                f"stop {', '.join(s.stop)}" if s.stop else None]
        opts = [o for o in opts if o]
        parts.append(head + (f" ({', '.join(opts)})" if opts else ""))
    return "; ".join(parts) or "—"


def _rows_text(d: DataInfo) -> str:
    n, total = d.n_rows, d.n_total
    if n is None:
        return "—"
    return f"{n:,} of {total:,}" if isinstance(total, int) and total != n else f"{n:,}"


def sample_status(r: SampleRecord) -> str:
    if r.error is not None:
        return "error"
    if r.score is None:
        return "unscored"
    return "zero" if r.score <= 0 else "full" if r.score >= 1 else "partial"


def _gold_list(gold: list[str]) -> list[str]:
    """Distinct gold answers in order, with a count where annotators repeat one (VQA has 10)."""
    counts = Counter(str(a) for a in gold)
    return [a if c == 1 else f"{a} (×{c})" for a, c in counts.items()]


def clip_text(text: str | None, limit: int = MAX_CELL_CHARS) -> str | None:
    """`text` cut to `limit` characters, saying how much was left out: one 50 MB prediction
    must not become a 50 MB page (samples.jsonl keeps it whole)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters in samples.jsonl]"


def sample_row(r: SampleRecord) -> SampleRow:
    thumb = inline_image(r.thumb)
    tags = [f"{axis}: {label}" for axis, labels in r.groups.items() for label in labels]
    return SampleRow(
        sample_id=clip_text(str(r.sample_id)), status=sample_status(r), question=clip_text(r.question or ""),
        prediction=clip_text(r.prediction), gold=[clip_text(g) for g in _gold_list(r.gold or [])],
        score=fmt_num(r.score, 2), error=clip_text(r.error), thumb=thumb, tags=tags)
