"""MathVista: mathematical reasoning in visual contexts (Lu et al., 2023, arXiv:2310.02255).

Measures: math over charts, plots, tables, geometry diagrams, puzzles and natural images;
multiple-choice questions (answer = the choice's text) and free-form ones with an integer,
float (to 1 or 2 decimals) or Python-list answer.
Reference numbers (the Idefics2-8B card's MathVista testmini, and other models' own): evalkit/references.toml.

Source: `AI4Math/MathVista`, split "testmini" (1,000 rows), id field "pid".
Columns: pid, question, image (a path string), decoded_image (the picture), choices (list of
strings, None for free_form), unit (None or e.g. "cm"), precision (1.0 / 2.0 for floats, else
None), answer (always a string: "145°", "4", "1.2", "[2014, 2016]"), question_type
("multi_choice" | "free_form"), answer_type ("text" | "integer" | "float" | "list"),
metadata (category, context, grade, img_height, img_width, language, skills, source, split,
task), query (the prompt the benchmark authors built: "Hint: ...\\nQuestion: ...[\\nChoices:
\\n(A) ...]").

Prompt: the row's `query`, the image before it. max_new_tokens 512 (answers may reason first).

Scoring: evalkit.metrics.mathvista -- the official normalisation and exact match after a
deterministic rule-based extraction that stands in for the official GPT extractor; pass
`judge=` to score_text / score_extraction to use a model instead. An empty extraction on a
multiple-choice question still picks the choice nearest to "" under the official rules (`mathvista_acc`);
`mathvista_acc_strict` counts such samples wrong, and `n_unparseable` (results counts.task_counts)
counts every sample whose extraction came back empty, out of the samples scored.
Answers extracted elsewhere: `evalkit score` reads an `extraction` field beside or instead of
`prediction` (e.g. the official GPT step's, as the MathVista results files store it); such a
sample gets only the official normalisation and match (`metric.score_extracted`), exactly
calculate_score.py. Variants (results.json `scoring_sensitivity`): `rule_extraction` (evalkit's
rules on the raw response, when there is one and the headline used another extraction),
`judge_extraction` (the configured judge, when the headline used a given extraction) and
`empty_wrong` (= strict).
Breakdowns: question_type, answer_type, skill (metadata.skills; a sample counts under each).
"""
from __future__ import annotations

from evalkit.pipeline.circular import rotate_list
from evalkit.errors import SampleError
from evalkit.metrics import mathvista as metric
from evalkit.registry import TASKS
from evalkit.types import Rule
from evalkit.task import Judge, Task, TaskSpec, official_and_strict, unparseable_count
from evalkit.types import Count, GenConfig, MetricValue, Request, SampleRecord, Score


_OFFICIAL = "lupantech/MathVista evaluation/calculate_score.py @ e999481e (2024-11-28)"
HEADLINE_RULE = Rule("official", "normalize_extracted_answer (multiple choice: option letter -> its text, "
                     "else the Levenshtein-closest choice; integer: int(float(x)); float: round to the "
                     "precision; list: str) then safe_equal, applied to the extraction: the predictions "
                     "file's `extraction` when given, else the judge's when configured, else the official "
                     "quick rules of extract_answer.py followed by evalkit's rule-based extraction", _OFFICIAL)
VARIANT_RULES = (
    Rule("rule_extraction", "evalkit's rule-based extraction of the raw response (official quick rules, then "
         "evalkit's letter/number/list rules), then the official normalisation", "evalkit"),
    Rule("judge_extraction", "the configured judge model's extraction of the raw response, then the official "
         "normalisation", "evalkit (judge backend)"),
    Rule("empty_wrong", "an empty extraction counted wrong instead of normalised to the closest choice "
         "(mathvista_acc_strict)", "evalkit"),
)


# evalkit's own few-shot extraction prompt (the official one is GPT-specific and not reused):
# four worked examples, one per answer form MathVista normalises (an option, an integer, a
# float, a list), and the "no answer" case, which must come back empty so the official
# normalisation treats it as MathVista's GPT step would an empty extraction.
JUDGE_PROMPT_NAME = "evalkit-mathvista-extract-v1"
JUDGE_INSTRUCTIONS = """\
You read a model's response to a math question and write down only the final answer it gives.
Rules: for a multiple-choice question write the chosen option's letter; for a number write the
number alone, without units or words; for a list write it as [a, b]; if the response gives no
answer, write nothing after "Extracted answer:".

Question: Which bar is the tallest?
Choices:
(A) red
(B) green
(C) blue
Response: Comparing the heights, the green bar reaches about 40 while the others stay under 30, so the answer is (B).
Extracted answer: B

Question: How many triangles are in the figure? (Answer with an integer.)
Response: I count three small triangles and one large one that contains them: 4 triangles in total.
Extracted answer: 4

Question: What is the slope of the line? Answer with a float to two decimal places.
Response: The line rises 3 units over a run of 4, a slope of 0.75.
Extracted answer: 0.75

Question: Which years had sales above 50? Answer with a Python list.
Response: Sales passed 50 in 2014 and again in 2016.
Extracted answer: [2014, 2016]

Question: What is the area of the shaded region?
Response: The picture shows a shaded region inside a square.
Extracted answer:
"""


def choices_block(choices: list[str]) -> str:
    """The benchmark's query lists choices so (evaluation/build_query.py)."""
    return "\n".join(["Choices:"] + [f"({letter}) {c}" for letter, c in zip(metric.option_letters(len(choices)), choices)])


def problem_of(row: dict) -> metric.Problem:
    choices = row.get("choices")
    precision = row.get("precision")
    return metric.Problem(
        question_type=str(row.get("question_type") or ""),
        answer_type=str(row.get("answer_type") or ""),
        choices=tuple(str(c) for c in choices) if choices else None,
        precision=float(precision) if precision is not None else None,
        query=str(row.get("query") or ""),
    )


def _problem_issue(row: dict, p: metric.Problem) -> str | None:
    """Why a row cannot be scored, or None."""
    if p.question_type == "multi_choice" and not p.choices:
        return "multi_choice question without choices"
    if p.question_type != "multi_choice" and p.answer_type == "float" and p.precision is None:
        return "float answer without precision"
    if row.get("answer") is None:
        return "no gold answer"
    return None


@TASKS.register
class MathVista(Task):
    spec = TaskSpec(
        name="mathvista", title="MathVista (testmini)",
        hub_id="AI4Math/MathVista", hub_config=None, split="testmini", id_field="pid",
        required_columns=("pid", "query", "decoded_image", "question_type", "answer_type",
                          "choices", "precision", "answer"),
        image_columns=("decoded_image",),
        sample_note=("synthetic: 30 matplotlib charts, plots and geometry figures in the hub schema, "
                     "not real MathVista items"),
        max_new_tokens=512,
        metric="mathvista_acc", headline_rule=HEADLINE_RULE, variant_rules=VARIANT_RULES,
        accepts_extraction=True, judge_prompt_name=JUDGE_PROMPT_NAME,
    )

    def build_requests(self, row: dict, uid: str) -> list[Request]:
        return [Request(uid=uid, text=str(row["query"]), images=[row["decoded_image"]],
                        gen=GenConfig(max_new_tokens=self.max_new_tokens))]

    def question(self, row: dict) -> str:
        return str(row.get("query") or row.get("question") or "")

    def judge_query(self, row: dict) -> str | None:
        return problem_of(row).query  # what metric.score passes the judge

    def judge_prompt(self, query: str, response: str) -> str:
        return f"{JUDGE_INSTRUCTIONS}\n{query.strip()}\nResponse: {response.strip()}\nExtracted answer:"

    def gold(self, row: dict) -> list[str]:
        answer = row.get("answer")
        return [] if answer is None else [str(answer)]  # no answer: nothing to show as gold

    def groups(self, row: dict) -> dict[str, list[str]]:
        skills = list((row.get("metadata") or {}).get("skills") or [])
        return {"question_type": [str(row.get("question_type"))],
                "answer_type": [str(row.get("answer_type"))],
                "skill": [str(s) for s in skills]}

    def score_text(self, row: dict, prediction: str, judge: Judge | None = None) -> Score:
        """`judge`: (query, response) -> extracted answer (evalkit.pipeline.judging), used for the headline
        with the rules as a variant; None keeps scoring model-free."""
        p = problem_of(row)
        issue = _problem_issue(row, p)
        if issue:
            return Score(None, reason=issue)
        answer = str(row["answer"])
        v = metric.score(prediction or "", p, answer, judge)
        variants = {"empty_wrong": float(v.correct and v.parsed)}
        if judge is not None:
            variants["rule_extraction"] = float(metric.score(prediction or "", p, answer).correct)
        return self._score(v, "judge" if judge is not None else "rules", variants)

    def score_extraction(self, row: dict, prediction: str | None, extraction, judge: Judge | None = None) -> Score:
        p = problem_of(row)
        issue = _problem_issue(row, p)
        if issue:
            return Score(None, reason=issue)
        answer = str(row["answer"])
        v = metric.score_extracted(extraction, p, answer)
        variants = {"empty_wrong": float(v.correct and v.parsed)}
        if prediction is not None:
            variants["rule_extraction"] = float(metric.score(prediction, p, answer).correct)
            if judge is not None:
                variants["judge_extraction"] = float(metric.score(prediction, p, answer, judge).correct)
        return self._score(v, "given", variants)

    @staticmethod
    def _score(v: metric.Verdict, source: str, variants: dict[str, float]) -> Score:
        return Score(float(v.correct), extras={
            "extraction": v.extraction, "extraction_source": source, "normalized": v.prediction,
            "parsed": v.parsed, "strict": float(v.correct and v.parsed), "variants": variants})

    def option_count(self, row: dict) -> int | None:
        p = problem_of(row)
        return len(p.choices) if p.question_type == "multi_choice" and p.choices else None

    def rotate_options(self, row: dict, shift: int) -> dict:
        # The answer is the choice's text, so only the choices and the query's Choices block move.
        choices = list(problem_of(row).choices or ())
        query = str(row.get("query") or "")
        old, new = choices_block(choices), choices_block(rotate_list(choices, shift))
        if old not in query:
            raise SampleError("query has no 'Choices:' block listing the row's choices as (A) ... lines")
        return {**row, "choices": rotate_list(choices, shift), "query": query.replace(old, new, 1)}

    def chosen_option(self, row: dict, score: Score) -> int | None:
        choices = list(problem_of(row).choices or ())
        chosen = score.extras.get("normalized")
        return choices.index(chosen) if score.extras.get("parsed") and chosen in choices else None

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        return official_and_strict(self.metric, records)

    def counts(self, records: list[SampleRecord]) -> dict[str, Count]:
        return unparseable_count(records)
