"""VQAv2: open-ended visual question answering on natural images.

Measures: answering free-form questions about everyday COCO photos (yes/no, counting, colours,
objects, activities) with a short answer; VQAv2 pairs each question with two similar images
that have different answers, so language priors alone do not solve it.
Paper: Goyal, Khot, Summers-Stay, Batra, Parikh, "Making the V in VQA Matter: Elevating the
Role of Image Understanding in Visual Question Answering", CVPR 2017.
Data: lmms-lab/VQAv2, split validation (214,354 questions on COCO val2014 images), one row per
question with 10 crowd answers as {answer, answer_confidence, answer_id} dicts, plus
question_type (the question's prefix from VQA's 65 types), answer_type (yes/no, number,
other) and multiple_choice_answer (the most common answer).
Metric: VQA accuracy as the official VQA evaluation script released for v2.0 computes it
(evalkit.metrics.vqa, scheme "vqav2": the prediction fully normalised, gold answers only
punctuation-processed and only when they disagree; mean over the 10 leave-one-out subsets of
min(1, matches / 3)), mean over questions on a 0-100 scale; broken down by answer_type and
question_type as the official script reports. The script's 2021 revision (scheme
"vqav2_2021") leaves the prediction unnormalised when all 10 answers agree; see the metric
module for why we keep the v2.0 rule.
Prompt: the question, then "Answer the question using a single word or phrase." (lmms-eval's
VQAv2 prompt), at most 16 new tokens, greedy.
Reference: Idefics2-8B model card, 80.8 without image splitting and 81.2 with it, measured on
test-dev (answers withheld, scored by the EvalAI server); validation is the closest split with
public answers, so a number here is comparable to but not the same measurement as the card's.
"""
from __future__ import annotations

from evalkit.metrics.vqa import vqa_accuracy
from evalkit.registry import TASKS
from evalkit.task import Task, question_request
from evalkit.types import Request, Score


@TASKS.register("vqav2")
class VQAv2(Task):
    name = "vqav2"
    title = "VQAv2"
    hub_id = "lmms-lab/VQAv2"
    hub_config = None
    split = "validation"
    id_field = "question_id"
    required_columns = ("question_id", "question", "answers", "image")
    metric = "vqa_accuracy"
    max_new_tokens = 16
    reference = {"no_split": 80.8, "split": 81.2}
    reference_note = ("Idefics2-8B model card, VQAv2 test-dev (VQA accuracy); this task scores "
                      "the validation split, whose answers are public.")
    sample_note = ("60 questions on 60 images from the easy-VQA dataset (the easy-vqa PyPI "
                   "package 1.0, MIT License, (c) 2019 Victor Zhou): one coloured shape on a "
                   "plain pale background per image, with easy-VQA's own questions and answers, "
                   "reshaped into the lmms-lab/VQAv2 schema by tasks/samplegen/vqav2.py. The 10 "
                   "answers per question (the true one mostly, plus plausible variants) and the "
                   "'how many shapes' questions (every easy-VQA image holds one shape) are made "
                   "by the project. Not VQAv2 data; its scores are not comparable to the model "
                   "card's.")

    def build_requests(self, row: dict, uid: str) -> list[Request]:
        return question_request(uid, row.get("question"), row["image"], self.max_new_tokens)

    def gold(self, row: dict) -> list[str]:
        # VQAv2 answers are {answer, answer_confidence, answer_id} dicts; a local copy in a
        # flattened schema may hold plain strings, which we accept too.
        out = []
        for a in row.get("answers") or []:
            if isinstance(a, dict):
                if a.get("answer") is not None:
                    out.append(str(a["answer"]))
            elif a is not None:
                out.append(str(a))
        return out

    def score_text(self, row: dict, prediction: str) -> Score:
        golds = self.gold(row)
        if not golds:
            if row.get("answers"):
                return Score(None, reason="answers hold no 'answer' field; expected "
                                          "{answer, answer_confidence, answer_id} dicts or plain strings")
            return Score(None, reason="no gold answers")
        return Score(vqa_accuracy(prediction, golds, scheme="vqav2"))

    def groups(self, row: dict) -> dict[str, list[str]]:
        return {"answer_type": [str(row.get("answer_type") or "unknown")],
                "question_type": [str(row.get("question_type") or "unknown")]}
