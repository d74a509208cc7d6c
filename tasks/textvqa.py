"""TextVQA: visual question answering that requires reading text in the image.

Measures: reading scene text (signs, shop fronts, product labels, jerseys, book covers) in
Open Images photos and answering a question about it with a short answer, usually the text.
Paper: Singh, Natarajan, Shah, Jiang, Chen, Batra, Parikh, Rohrbach, "Towards VQA Models
That Can Read", CVPR 2019.
Data: lmms-lab/textvqa, split validation (5,000 questions on 3,166 images), one row per
question with 10 crowd answers as plain strings, the OCR tokens of the Rosetta OCR system
(ocr_tokens), Open Images classes (image_classes) and image metadata.
Metric: VQA accuracy as TextVQA's official evaluator computes it (evalkit.metrics.vqa,
scheme "textvqa": prediction and every gold answer normalised by EvalAI's answer processor,
then the mean over the 10 leave-one-out subsets of min(1, matches / 3)); mean over questions
on a 0-100 scale. TextVQA ships no answer type, so the breakdown axis `answer_type` is derived
here from the most common normalised gold answer: "yes/no", "number" (digits, optionally with
"." "," ":" inside) or "other".
Prompt: the question with its first letter upper-cased and the rest lower-cased (Python's
str.capitalize, as lmms-eval's TextVQA prompt does), then "Answer the question using a single
word or phrase."; at most 16 new tokens, greedy. lmms-eval's default TextVQA prompt does not
add the OCR tokens (its `ocr` option is off by default), and neither do we: the model reads
the image itself.
Reference numbers: evalkit/references.toml (the Idefics2-8B card, without and with image splitting,
on validation, and other models' own).
"""
from __future__ import annotations

import re
from collections import Counter

from evalkit.metrics.vqa import normalize_answer_textvqa, vqa_accuracy
from evalkit.registry import TASKS
from evalkit.types import Rule
from evalkit.task import SHORT_ANSWER_PROMPT, Task, TaskSpec, question_request
from evalkit.types import Request, Score

_NUMBER = re.compile(r"\d+([.,:]\d+)*")


def answer_type(golds: list[str]) -> str:
    """VQA-style answer type of the most common normalised answer (ties: first seen)."""
    top = Counter(normalize_answer_textvqa(g) for g in golds).most_common(1)[0][0]
    if top in ("yes", "no"):
        return "yes/no"
    if _NUMBER.fullmatch(top):
        return "number"
    return "other"


@TASKS.register
class TextVQA(Task):
    spec = TaskSpec(
        name="textvqa", title="TextVQA",
        hub_id="lmms-lab/textvqa", hub_config=None, split="validation", id_field="question_id",
        required_columns=("question_id", "question", "answers", "image"),
        cluster_by="image_id",  # several questions per image
        sample_note=("Rendered by the project (tasks/samplegen/textvqa.py): 40 synthetic scenes "
                     "with drawn text (street signs, shop fronts, product labels, jersey numbers, "
                     "book covers, licence plates, price tags), one question each, 10 answers "
                     "(the drawn text mostly, plus plausible crowd variants), ocr_tokens = the "
                     "words drawn, in the lmms-lab/textvqa schema. Not TextVQA data; its scores "
                     "are not comparable to the model card's."),
        post_prompt=SHORT_ANSWER_PROMPT, max_new_tokens=16,
        metric="vqa_accuracy",
        headline_rule=Rule("textvqa", "TextVQA's evaluator (EvalAI answer processor on the prediction and every "
                           "gold answer, then mean of min(1, matches/3) over the 10 leave-one-out subsets); "
                           "lmms-eval's TextVQA rule is the same", "facebookresearch/mmf mmf/utils/m4c_evaluators.py "
                           "TextVQAAccuracyEvaluator"),
        variant_rules=(
            Rule("vqa_2021_script", "the VQAv2 script's rule (2021 revision) applied to TextVQA answers: golds "
                 "normalised only when they disagree, an unnormalised prediction against unanimous golds",
                 "GT-Vision-Lab/VQA vqaEval.py @ a013f00 (2021-03-11)"),
        ),
    )

    def build_requests(self, row: dict, uid: str) -> list[Request]:
        return question_request(uid, str(row.get("question") or "").strip().capitalize(), row["image"],
                                self.max_new_tokens, self.post_prompt)

    def score_text(self, row: dict, prediction: str) -> Score:
        golds = self.gold(row)
        if not golds:
            return Score(None, reason="no gold answers")
        return Score(vqa_accuracy(prediction, golds, scheme="textvqa"), extras={"variants": {
            "vqa_2021_script": vqa_accuracy(prediction, golds, scheme="vqav2_2021")}})

    def groups(self, row: dict) -> dict[str, list[str]]:
        golds = self.gold(row)
        return {"answer_type": [answer_type(golds) if golds else "unknown"]}
