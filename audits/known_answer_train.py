"""The one command that trains the known-answer model on its whole plan: the tasks' part
(evalkit.models.known_answer.plan) and the audit's (known_answer_plan.py, here because it reads
the audit's prompts and images, which the engine may not import).

    python -m evalkit.audits.known_answer_train --out evalkit/models/known_answer/weights

Options as `python -m evalkit.models.known_answer.train` (which trains the tasks' part alone).
"""
from __future__ import annotations

import sys

from evalkit.models.known_answer.train import ExtraPlan, main as train_main
from evalkit.types import GenConfig, Request

from .known_answer_plan import AUDIT_MAX_NEW_TOKENS, plan_audit
from .prompts import PROMPTS


def audit_plan(limit: int | None = None) -> ExtraPlan:
    """The audit's planted generations as requests built the way the audit builds them."""
    planted, images, info = plan_audit(limit)
    gen = GenConfig(max_new_tokens=AUDIT_MAX_NEW_TOKENS)
    requests = [Request(uid=f"{p.dataset}:{p.example_id}:{p.prompt_id}", text=PROMPTS[p.prompt_id], images=[im],
                        gen=gen) for p, im in zip(planted, images)]
    keys = [{"dataset": p.dataset, "example_id": p.example_id, "prompt_id": p.prompt_id, "groups": p.groups}
            for p in planted]
    # A blank picture gets "unknown" for every prompt, as for the tasks' questions: one request per
    # dataset x prompt (the trainer swaps in a blank image of the same size).
    firsts = {}
    for p, req in zip(planted, requests):
        firsts.setdefault((p.dataset, p.prompt_id), req)
    blank_keys = [{"dataset": d, "prompt_id": pid} for d, pid in firsts]
    return ExtraPlan(name="audit", requests=requests, texts=[p.text for p in planted], keys=keys, info=info,
                     blanks=list(firsts.values()), blank_keys=blank_keys)


def main(argv: list[str] | None = None) -> int:
    return train_main(argv, extra_plan=audit_plan, prog="python -m evalkit.audits.known_answer_train")


if __name__ == "__main__":
    sys.exit(main())
