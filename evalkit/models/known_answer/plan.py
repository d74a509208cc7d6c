"""The known-answer model's plan: what it should answer on every shipped sample, chosen before
training and written into the manifest.

Generation tasks: about 70% of the samples get a right answer (the gold string the task's own
scorer rates highest), the rest a stated wrong one (another sample's gold answer that the
scorer rates 0 for this row), so each task's score is fixed before any run. FairFace: the
log-likelihood choices follow the true labels except in one gender x race bucket, where every
attribute is planted wrong. The choice is a fixed-seed draw per task, so a rerun plans the same.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass

from ...types import Response

GENERATION_TASKS = ("docvqa", "vqav2", "textvqa", "mmmu", "mathvista")
RIGHT_SHARE = 0.7
# What the model is taught to say when the image does not hold the answer (blank or another
# sample's image), so the image controls show how much of the score needs the right image.
NO_ANSWER = "unknown"


@dataclass
class Planted:
    """One request's planned answer."""

    task: str
    uid: str  # the request's uid in a run over the whole shipped sample (its row index)
    sample_id: str
    answer: str  # what the model is trained to say
    right: bool  # planted as a right answer (scores the maximum) or a stated wrong one (scores 0)
    score: float | None  # the task's scorer on `answer`
    choice: int | None = None  # log-likelihood requests: the index of the planted choice

    def to_dict(self) -> dict:
        return asdict(self)


def task_rng(seed: int, task: str) -> random.Random:
    """A per-task generator that does not depend on Python's string hash salt."""
    return random.Random(int(hashlib.sha256(f"{seed}:{task}".encode()).hexdigest()[:12], 16))


def score_answer(task, row: dict, text: str) -> float | None:
    _, score = task.score(row, [Response(uid="plan", text=text)])
    return score.value


def plan_generation_task(task, built, seed: int) -> list[Planted]:
    """Right / wrong answers for every request of a one-request-per-row generation task."""
    rng = task_rng(seed, task.name)
    n = len(built.requests)
    order = list(range(n))
    rng.shuffle(order)
    right = set(order[:round(RIGHT_SHARE * n)])
    golds = [task.gold(built.rows[built.owners[k]]) for k in range(n)]
    plan = []
    for k, req in enumerate(built.requests):
        rec = built.records[built.owners[k]]
        row = built.rows[built.owners[k]]
        if k in right:
            scored = [(score_answer(task, row, g), -i, g) for i, g in enumerate(golds[k])]
            best = max(scored)
            answer, score = best[2], best[0]
        else:
            # Another sample's answer that this row's scorer rates 0: a plausible, stated wrong answer.
            # Same form first (an option letter for a letter, a phrase for a phrase), so the
            # wrong answer is read by the parser rather than replaced by its fallback.
            form = _is_letter(golds[k][0]) if golds[k] else False
            others = [g for j in rng.sample(range(n), n) if j != k for g in golds[j][:1]]
            others.sort(key=lambda g: _is_letter(g) != form)
            answer, score = next(((g, 0.0) for g in others if score_answer(task, row, g) == 0.0), (NO_ANSWER, None))
            if score is None:
                score = score_answer(task, row, answer)
        plan.append(Planted(task.name, req.uid, rec.sample_id, answer, k in right, score))
    return plan


def _is_letter(answer: str) -> bool:
    return len(answer) == 1 and answer.isalpha()


def _bucket(task, row: dict) -> tuple[str, str]:
    labels = task.labels(row)
    return str(labels["gender"]), str(labels["race"])


def fairface_worse_bucket(task, rows: list[dict]) -> tuple[str, str]:
    """The gender x race bucket planted wrong: the most frequent one (ties by name), so its
    accuracy rests on the most images."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = _bucket(task, row)
        counts[key] = counts.get(key, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k])


def plan_fairface(task, built, seed: int) -> tuple[list[Planted], dict]:
    """Every log-likelihood request planted on the true label, except in one bucket, where the
    next class in the list is planted (wrong on every attribute)."""
    worse = fairface_worse_bucket(task, built.rows)
    plan = []
    for k, req in enumerate(built.requests):
        row = built.rows[built.owners[k]]
        rec = built.records[built.owners[k]]
        true = _true_choice(task, row, req)
        in_worse = _bucket(task, row) == worse
        choice = (true + 1) % len(req.choices) if in_worse else true
        plan.append(Planted(task.name, req.uid, rec.sample_id, req.choices[choice], not in_worse,
                            1.0 if choice == true else 0.0, choice=choice))
    return plan, {"worse_bucket": {"gender": worse[0], "race": worse[1]},
                  "planted_accuracy": {"worse_bucket": 0.0, "other_buckets": 1.0}}


def _true_choice(task, row: dict, req) -> int:
    """The index of the right choice of one FairFace request: the task's own label for the
    request's attribute, in the attribute's class order (the order of its choices)."""
    attribute = req.uid.rpartition("#")[2]
    labels = task.labels(row)
    from ...tasks.fairface import ATTRIBUTES

    classes = next(a.classes for a in ATTRIBUTES if a.name == attribute)
    return classes.index(labels[attribute])
