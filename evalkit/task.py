"""The task plugin interface. A plugin module in tasks/ subclasses `Task` and registers it.

A task never calls the model: it turns a dataset row into Requests, and a Response (or a
prediction made elsewhere) into a Score. Aggregation defaults to the bootstrap mean of the
per-sample headline value, overall and per group axis.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

from .errors import EvalkitError, SampleError
from .images import image_key
from .resources import module_package, shipped_path
from .sensitivity import Rule
from .stats import bootstrap_mean
from .types import Count, GenConfig, MetricValue, Request, Response, SampleRecord, Score

# The short-answer post-prompt lmms-eval uses for VQAv2, TextVQA and DocVQA.
SHORT_ANSWER_PROMPT = "\nAnswer the question using a single word or phrase."
# The multiple-choice post-prompt lmms-eval uses for MMMU; families that were evaluated with
# another one map this text to theirs (evalkit.models.families), so it lives here once.
MC_PROMPT = "Answer with the option's letter from the given choices directly."


def question_request(uid: str, question, image, max_new_tokens: int,
                     suffix: str = SHORT_ANSWER_PROMPT) -> list[Request]:
    """The one request of a one-image, one-question task; an empty question is a sample error."""
    question = str(question or "").strip()
    if not question:
        raise SampleError("empty question")
    return [Request(uid, text=question + suffix, images=[image], gen=GenConfig(max_new_tokens=max_new_tokens))]


def official_and_strict(metric: str, records: list[SampleRecord]) -> dict[str, MetricValue]:
    """For benchmarks whose official rule decides unparseable answers (MMMU's random option,
    MathVista's closest choice): the official score and the score with those answers counted
    wrong (`<metric>_strict`), so a reader sees how much the number leans on the rule (with
    `unparseable_count` beside them). Per-sample extras: "parsed" (bool) and "strict" (the 0/1
    strict score)."""
    scored = [r for r in records if r.error is None and r.score is not None]
    clusters = [r.cluster for r in scored]
    return {metric: bootstrap_mean([r.score for r in scored], clusters=clusters),
            f"{metric}_strict": bootstrap_mean([r.extras.get("strict", r.score) for r in scored], clusters=clusters)}


def unparseable_count(records: list[SampleRecord],
                      parse_applies: Callable[[SampleRecord], bool] = lambda r: True) -> dict[str, Count]:
    """`n_unparseable`: the scored samples whose answer the official parser could not read, out
    of those it applies to."""
    pool = [r for r in records if r.error is None and r.score is not None and parse_applies(r)]
    return {"n_unparseable": Count(sum(1 for r in pool if not r.extras.get("parsed", True)), len(pool))}


IMAGE_CLUSTER = "image"  # cluster_by value: samples sharing an image's bytes form a cluster


class Task:
    # --- the benchmark's spec; every plugin fills these in ---
    name: ClassVar[str]
    title: ClassVar[str] = ""
    hub_id: ClassVar[str]
    hub_config: ClassVar[str | None] = None
    split: ClassVar[str] = "validation"
    id_field: ClassVar[str]  # the column that identifies a sample in predictions files
    required_columns: ClassVar[tuple[str, ...]] = ()
    image_columns: ClassVar[tuple[str, ...]] = ("image",)
    # What a sample shares with others, so intervals and tests resample whole clusters
    # (evalkit.stats): a column (DocVQA's page `docId`), IMAGE_CLUSTER (a digest of the first
    # image's bytes, also the fallback when the column is missing), or None (every sample alone).
    cluster_by: ClassVar[str | None] = IMAGE_CLUSTER
    metric: ClassVar[str]  # name of the headline metric, e.g. "anls"
    # The scorer rule behind the headline metric (script and version), and the other widely
    # used rules, each stored per sample in extras["variants"][rule.name] (evalkit.sensitivity).
    headline_rule: ClassVar[Rule | None] = None
    variant_rules: ClassVar[tuple[Rule, ...]] = ()
    # Whether `evalkit score` may pass an already extracted answer (see score_extraction).
    accepts_extraction: ClassVar[bool] = False
    max_new_tokens: ClassVar[int] = 32
    # The Idefics2 model card's number for this benchmark: without / with image splitting.
    reference: ClassVar[dict[str, float | None]] = {"no_split": None, "split": None}
    reference_note: ClassVar[str] = ""
    reference_split: ClassVar[str | None] = None  # the split the card scored, when not `split`
    sample_note: ClassVar[str] = ""  # what the shipped sample is (synthetic, rendered, ...)
    # --- judge-based answer extraction (evalkit.judging) ---
    judges: ClassVar[bool] = False  # whether `--judge` can extract this task's answers
    judge_prompt_name: ClassVar[str] = ""  # which extraction prompt (name and version), for results.json
    judge: Callable[[str, str], str] | None = None  # (query, response) -> extraction; set by evalkit.judging

    # --- data ---
    @classmethod
    def sample_path(cls) -> Path:
        """Where the shipped sample lives: samples/<name>/ (parquet files in the hub schema) in
        the package that defines the task, so a plugin package ships its own."""
        return shipped_path(module_package(cls.__module__), "samples", cls.name)

    def sample_id(self, row: dict, index: int) -> str:
        return str(row[self.id_field])

    def cluster(self, row: dict) -> str | None:
        """The row's cluster label: `<column>=<value>`, `image:<digest>`, or None (its own)."""
        if self.cluster_by is None:
            return None
        if self.cluster_by != IMAGE_CLUSTER:
            value = row.get(self.cluster_by)
            if value is not None and value != "":
                return f"{self.cluster_by}={value}"
        for col in self.image_columns:
            ref = row.get(col)
            if ref:
                return f"image:{image_key(ref).hex()[:20]}"
        return None

    # --- requests ---
    def build_requests(self, row: dict, uid: str) -> list[Request]:
        raise NotImplementedError

    # --- scoring ---
    def question(self, row: dict) -> str:
        return str(row.get("question", ""))

    def gold(self, row: dict) -> list[str]:
        # A null answer is no answer: str(None) would make "None" a gold string that the
        # prediction "none" matches.
        return [str(a) for a in (row.get("answers") or []) if a is not None]

    def groups(self, row: dict) -> dict[str, list[str]]:
        """Axes to break the metric down by, e.g. {"question_type": ["table/list"]}."""
        return {}

    def score_text(self, row: dict, prediction: str) -> Score:
        """Score a free-text prediction (from the model or a predictions file)."""
        raise NotImplementedError

    def score_extraction(self, row: dict, prediction: str | None, extraction: Any) -> Score:
        """Score an answer already extracted from a response (the predictions file's
        `extraction` field); `prediction` is the raw response when the file has one too."""
        raise EvalkitError(f"task {self.name} does not read an `extraction` field; give the answer as "
                           f"`prediction` (only tasks with an answer-extraction step accept `extraction`)")

    def judge_query(self, row: dict) -> str | None:
        """The question a judge sees beside the response (with the options for multiple choice);
        None: this row has no extraction step."""
        return None

    def judge_prompt(self, query: str, response: str) -> str:
        """The judge's whole prompt for one response (tasks with `judges = True` write it)."""
        raise NotImplementedError

    # --- multiple-choice option order (evalkit.circular); tasks without options keep these ---
    def option_count(self, row: dict) -> int | None:
        """How many options this row's multiple-choice question shows; None: not multiple choice."""
        return None

    def rotate_options(self, row: dict, shift: int) -> dict:
        """The row with its options rotated `shift` places (options[shift:] + options[:shift]),
        the prompt and the gold answer following them. SampleError when it cannot be done."""
        raise SampleError(f"task {self.name} has no options to rotate")

    def chosen_option(self, row: dict, score: Score) -> int | None:
        """The position (0 = A) of the option a scored answer chose; None when it chose none."""
        return None

    def finalize(self, records: list[SampleRecord]) -> None:
        """Set-level scoring step run once over all records before aggregation, for official
        rules that depend on the whole run (MMMU's random fallback sequence). Default: nothing."""

    def score(self, row: dict, responses: list[Response]) -> tuple[str | None, Score]:
        """Turn this row's responses into (prediction text, Score). One-request tasks use score_text."""
        text = responses[0].text or ""
        return text, self.score_text(row, text)

    # --- aggregation ---
    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        """Headline metric and any extra metrics, each with a 95% bootstrap CI."""
        scored = [r for r in records if r.error is None and r.score is not None]
        return {self.metric: bootstrap_mean([r.score for r in scored], clusters=[r.cluster for r in scored])}

    def counts(self, records: list[SampleRecord]) -> dict[str, Count]:
        """The task's own counts of samples, beside the run's (results counts.task_counts)."""
        return {}

    def breakdowns(self, records: list[SampleRecord]) -> dict[str, dict[str, MetricValue]]:
        """Headline metric per group on every axis that `groups` names."""
        by_axis: dict[str, dict[str, list[SampleRecord]]] = {}
        for r in records:
            if r.error is not None or r.score is None:
                continue
            for axis, labels in r.groups.items():
                for label in labels:
                    by_axis.setdefault(axis, {}).setdefault(label, []).append(r)
        return {axis: {g: bootstrap_mean([r.score for r in v], clusters=[r.cluster for r in v])
                       for g, v in sorted(groups.items())}
                for axis, groups in by_axis.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "hub_id": self.hub_id,
            "hub_config": self.hub_config, "split": self.split, "id_field": self.id_field,
            "metric": self.metric, "max_new_tokens": self.max_new_tokens,
            "metric_rule": ({"rule": self.headline_rule.description, "source": self.headline_rule.source}
                            if self.headline_rule else None),
            "reference": dict(self.reference), "reference_note": self.reference_note,
            "reference_split": self.reference_split or self.split,
        }
