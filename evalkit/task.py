"""The task plugin interface. A plugin module in tasks/ subclasses `Task` and registers it.

A task never calls the model: it turns a dataset row into Requests, and a Response (or a
prediction made elsewhere) into a Score. Aggregation defaults to the bootstrap mean of the
per-sample headline value, overall and per group axis.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from .errors import EvalkitError, SampleError
from .pipeline.images import image_key
from .resources import module_package, shipped_path
from .analyses.stats import bootstrap_mean
from .types import Count, GenConfig, MetricValue, Request, Response, Rule, SampleRecord, Score

# The short-answer post-prompt lmms-eval uses for VQAv2, TextVQA and DocVQA.
SHORT_ANSWER_PROMPT = "\nAnswer the question using a single word or phrase."
# The multiple-choice post-prompt lmms-eval uses for MMMU; families that were evaluated with
# another one map this text to theirs (evalkit.models.families), so it lives here once.
MC_PROMPT = "Answer with the option's letter from the given choices directly."
# A judge as scoring sees it: (the question the judge was shown, the response) -> the extraction.
Judge = Callable[[str, str], str]


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


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """What a benchmark is, declared once in its plugin: `spec = TaskSpec(...)`. The plugin then
    implements only what differs from the defaults (a prompt other than question + post-prompt,
    gold answers in another shape, the scorer, breakdown axes). Published reference numbers are
    not part of a task: they live in evalkit/references.toml, keyed by model, task and setting."""

    name: str  # the registry name: `@TASKS.register` reads it from here, so it is written once
    title: str = ""
    # --- data source ---
    hub_id: str
    hub_config: str | None = None
    split: str = "validation"
    id_field: str  # the column that identifies a sample in predictions files
    required_columns: tuple[str, ...] = ()
    image_columns: tuple[str, ...] = ("image",)
    # What a sample shares with others, so intervals and tests resample whole clusters
    # (evalkit.analyses.stats): a column (DocVQA's page `docId`), IMAGE_CLUSTER (a digest of the first
    # image's bytes, also the fallback when the column is missing), or None (every sample alone).
    cluster_by: str | None = IMAGE_CLUSTER
    # Columns whose local copies may hold another kind than the hub's (e.g. {"options": ("text", "list")}).
    accepted_column_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sample_note: str = ""  # what the shipped sample is (synthetic, rendered, ...)
    # --- prompt and generation ---
    post_prompt: str = ""  # appended to the question by the default build_requests
    max_new_tokens: int = 32
    # --- metric ---
    metric: str  # name of the headline metric, e.g. "anls"
    # The scorer rule behind the headline metric (script and version), and the other widely
    # used rules, each stored per sample in extras["variants"][rule.name] (evalkit.analyses.sensitivity).
    headline_rule: Rule | None = None
    variant_rules: tuple[Rule, ...] = ()
    # Whether `evalkit score` may pass an already extracted answer (see Task.score_extraction).
    accepts_extraction: bool = False
    # Which judge extraction prompt (name and version) the task writes; "" = `--judge` does not apply.
    judge_prompt_name: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip() or any(c in self.name for c in " /\\"):
            raise EvalkitError(f"task name {self.name!r} must be a non-empty name without spaces or slashes, "
                               f"since it names run folders and the registry entry")


# The spec fields, also readable as class attributes of every plugin (TASKS.get(name).metric) for
# the code that reads a task's facts; a plugin written before TaskSpec sets them directly.
_SPEC_FIELDS = tuple(f.name for f in fields(TaskSpec))


class Task:
    """A benchmark plugin: `spec` (what it is) plus the methods below (what it does). Each spec
    field is also a class attribute of the plugin, and `judges` says whether a judge applies."""

    spec: ClassVar[TaskSpec]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if not isinstance(spec, TaskSpec):
            if "spec" in cls.__dict__ or not all(hasattr(cls, n) for n in ("name", "hub_id", "id_field", "metric")):
                return  # an intermediate base class, or a plugin that fails registration with its own message
            # A plugin that sets its facts as attributes (before TaskSpec) still gets a spec.
            spec = cls.spec = TaskSpec(**{n: getattr(cls, n) for n in _SPEC_FIELDS if hasattr(cls, n)})
        judges = cls.__dict__.get("judges")
        for name in _SPEC_FIELDS:
            setattr(cls, name, getattr(spec, name))
        cls.judges = bool(spec.judge_prompt_name) if judges is None else bool(judges)

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
        """Default: one request, the question then the spec's post-prompt, with the first image column."""
        return question_request(uid, row.get("question"), row[self.image_columns[0]], self.max_new_tokens,
                                self.post_prompt)

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
        """Score a free-text prediction (from the model or a predictions file). A task with a
        judge step (judge_prompt_name set) takes a keyword `judge` too: see Judge."""
        raise NotImplementedError

    def score_extraction(self, row: dict, prediction: str | None, extraction: Any) -> Score:
        """Score an answer already extracted from a response (the predictions file's
        `extraction` field); `prediction` is the raw response when the file has one too. A
        task with a judge step takes a keyword `judge` here as well."""
        raise EvalkitError(f"task {self.name} does not read an `extraction` field; give the answer as "
                           f"`prediction` (only tasks with an answer-extraction step accept `extraction`)")

    def judge_query(self, row: dict) -> str | None:
        """The question a judge sees beside the response (with the options for multiple choice);
        None: this row has no extraction step."""
        return None

    def judge_prompt(self, query: str, response: str) -> str:
        """The judge's whole prompt for one response (tasks with `judges = True` write it)."""
        raise NotImplementedError

    # --- multiple-choice option order (evalkit.pipeline.circular); tasks without options keep these ---
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

    def score(self, row: dict, responses: list[Response], judge: Judge | None = None) -> tuple[str | None, Score]:
        """Turn this row's responses into (prediction text, Score). One-request tasks use score_text.
        `judge`: the extraction a judge model made (evalkit.pipeline.judging), handed to tasks that have a
        judge step; None scores by the task's own rules."""
        text = responses[0].text or ""
        if judge is None:
            return text, self.score_text(row, text)
        return text, self.score_text(row, text, judge=judge)

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
        }
