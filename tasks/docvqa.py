"""DocVQA: visual question answering on scanned document pages.

Measures: reading and locating text in real-world documents (forms, letters, tables,
reports, handwriting) well enough to answer a question with a short span from the page.
Paper: Mathew, Karatzas, Jawahar, "DocVQA: A Dataset for VQA on Document Images", WACV 2021.
Data: lmms-lab/DocVQA, config DocVQA, split validation (5,349 questions on 1,286 pages of
the UCSF Industry Documents Library); one row per question, the page image repeated.
Metric: ANLS (evalkit.metrics.anls, the official RRC scorer's rule), mean over questions,
reported on a 0-100 scale; broken down by DocVQA's question_types.
Prompt: the question, then "Answer the question using a single word or phrase." (as lmms-eval).
Reference numbers: evalkit/references.toml (the Idefics2-8B card's ANLS without and with image
splitting, and other models' own); most cards scored the test split (answers withheld, scored
by the RRC server), so a validation number is close to, but not the same measurement as, theirs.
"""
from __future__ import annotations

from evalkit.metrics.anls import anls, anls_paper
from evalkit.registry import TASKS
from evalkit.types import Rule
from evalkit.task import SHORT_ANSWER_PROMPT, Task, TaskSpec
from evalkit.types import Score


@TASKS.register
class DocVQA(Task):
    spec = TaskSpec(
        name="docvqa", title="DocVQA",
        hub_id="lmms-lab/DocVQA", hub_config="DocVQA", split="validation", id_field="questionId",
        required_columns=("questionId", "question", "image", "answers"),
        cluster_by="docId",  # ~4 questions per page; the page is the unit a configuration helps or hurts
        sample_note=("Rendered by the project (tasks/samplegen/docvqa.py): 36 synthetic pages "
                     "(forms, receipts, letters, tables, memos, invoices), 60 questions in the "
                     "lmms-lab/DocVQA schema. Not real DocVQA data; its scores are not comparable "
                     "to the model card's."),
        post_prompt=SHORT_ANSWER_PROMPT, max_new_tokens=32,
        metric="anls",
        headline_rule=Rule("anls_official", "ANLS as the RRC DocVQA scorer: lower-cased, whitespace-collapsed "
                           "strings, Levenshtein distance over the longer raw length, similarity kept when >= 0.5; "
                           "lmms-eval's and VLMEvalKit's ANLS are the same rule", "Robust Reading Competition "
                           "DocVQA evaluation script (rrc.cvc.uab.es/?ch=17)"),
        variant_rules=(
            Rule("anls_paper", "ANLS as the ST-VQA/DocVQA papers write it: 1 - NL kept only when NL < 0.5, so a "
                 "similarity of exactly 0.5 scores 0", "Biten et al. 2019, eq. 1"),
        ),
    )

    def score_text(self, row: dict, prediction: str) -> Score:
        golds = self.gold(row)
        if not golds:
            return Score(None, reason="no gold answers")
        pred = prediction.strip()
        return Score(anls(pred, golds), extras={"variants": {"anls_paper": anls_paper(pred, golds)}})

    def groups(self, row: dict) -> dict[str, list[str]]:
        return {"question_type": list(row.get("question_types") or ["unknown"])}
