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
Metric: VQA accuracy by the official VQA evaluation script's current rule (GT-Vision-Lab/VQA
vqaEval.py at a013f00, 2021-03-11: answers stripped; when the 10 gold answers disagree, golds and
prediction both get the punctuation and digit/article processing; mean over the 10 leave-one-out
subsets of min(1, matches / 3)), with the prediction first put through EvalAI's answer processor
as lmms-eval does (evalkit.metrics.vqa scheme "lmms_eval"). The script itself expects answers
already processed (the challenge server does that): run raw, it scores "Yes." 0 against ten
"yes". Mean over questions on a 0-100 scale; broken down by answer_type and question_type as the
official script reports. Variants: the raw 2021 script (scheme "vqav2_2021") and the script as
released for v2.0 in 2017 (scheme "vqav2": golds only punctuation-processed, so prediction
"A dog" against "the dog" x3, "dogs" x4, "dog" x3 scores 0.9 there, 1.0 here).
Prompt: the question, then "Answer the question using a single word or phrase." (lmms-eval's
VQAv2 prompt), at most 16 new tokens, greedy.
Reference numbers: evalkit/references.toml (the Idefics2-8B card, without and with image splitting,
measured on test-dev: answers withheld, scored by the EvalAI server); validation is the closest
split with public answers, so a number here is comparable to but not the same measurement as the card's.
"""
from __future__ import annotations

from evalkit.metrics.vqa import vqa_accuracy
from evalkit.registry import TASKS
from evalkit.types import Rule
from evalkit.task import SHORT_ANSWER_PROMPT, Task, TaskSpec
from evalkit.types import Score


@TASKS.register
class VQAv2(Task):
    spec = TaskSpec(
        name="vqav2", title="VQAv2",
        hub_id="lmms-lab/VQAv2", hub_config=None, split="validation", id_field="question_id",
        required_columns=("question_id", "question", "answers", "image"),
        cluster_by="image_id",  # several questions per image
        sample_note=("60 questions on 60 images from the easy-VQA dataset (the easy-vqa PyPI "
                     "package 1.0, MIT License, (c) 2019 Victor Zhou): one coloured shape on a "
                     "plain pale background per image, with easy-VQA's own questions and answers, "
                     "reshaped into the lmms-lab/VQAv2 schema by tasks/samplegen/vqav2.py. The 10 "
                     "answers per question (the true one mostly, plus plausible variants) and the "
                     "'how many shapes' questions (every easy-VQA image holds one shape) are made "
                     "by the project. Not VQAv2 data; its scores are not comparable to the model "
                     "card's."),
        post_prompt=SHORT_ANSWER_PROMPT, max_new_tokens=16,
        metric="vqa_accuracy",
        headline_rule=Rule("vqa_2021_evalai", "official VQA accuracy, 2021 revision, with the prediction through "
                           "EvalAI's answer processor first (as lmms-eval): when the 10 gold answers disagree, golds "
                           "and prediction get punctuation + digit/article processing; mean of min(1, matches/3) over "
                           "the 10 leave-one-out subsets", "GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/"
                           "vqaEval.py @ a013f00 (2021-03-11) + EvolvingLMMs-Lab/lmms-eval tasks/vqav2/utils.py"),
        variant_rules=(
            Rule("vqa_2021_script", "the 2021 vqaEval.py run on the raw prediction: nothing but stripping when the 10 "
                 "gold answers agree (\"Yes.\" scores 0 against ten \"yes\")",
                 "GT-Vision-Lab/VQA vqaEval.py @ a013f00 (2021-03-11)"),
            Rule("vqa_2017", "VQA accuracy as the v2.0 release of vqaEval.py (2017): prediction always normalised, gold "
                 "answers only punctuation-processed and only when they disagree",
                 "GT-Vision-Lab/VQA vqaEval.py @ a4f1afd (2017-10-02)"),
        ),
    )

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
        return Score(vqa_accuracy(prediction, golds, scheme="lmms_eval"), extras={"variants": {
            "vqa_2021_script": vqa_accuracy(prediction, golds, scheme="vqav2_2021"),
            "vqa_2017": vqa_accuracy(prediction, golds, scheme="vqav2")}})

    def groups(self, row: dict) -> dict[str, list[str]]:
        return {"answer_type": [str(row.get("answer_type") or "unknown")],
                "question_type": [str(row.get("question_type") or "unknown")]}
