"""Option-order control for multiple choice (`--circular`), after VLMEvalKit's CircularEval
for MMBench: each question with n options is asked n times, its options rotated one place
further each time, so the right option sits once at every letter.

Rotation k shows the options in the order options[k:] + options[:k]: position i (letter i)
holds original option (i + k) mod n, and the gold option g sits at position (g - k) mod n.
Rotation 0 is the question as the benchmark asks it (the run's ordinary request); rotations
1..n-1 are extra requests with their own prompts, so they are ordinary cached requests: a
resumed run answers from cache.jsonl what it already has, and their cache keys never meet the
real request's (the prompt text differs).

Per question, under one rule for every rotation: a rotation is right when the task's strict
score is 1 (the answer parsed and names the gold option; an unparseable answer is wrong, no
random fallback), so the numbers below differ only in how many rotations must be right.
- standard: right at rotation 0 (the benchmark's own order);
- circular: right at every rotation;
- fixed_letter (position bias): the same letter chosen at every rotation (a model that reads
  the options picks the same option, whose letter moves; one that always answers "A" keeps
  its letter);
- same_option: the same original option chosen at every rotation (consistency, right or wrong);
- delta: circular - standard, paired per question.
Questions with an error in any rotation are left out and counted (n_incomplete).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..analyses.controls import delta_dict, paired_difference
from ..errors import SampleError
from ..analyses.stats import bootstrap_mean
from ..types import Request, Response, SampleRecord

RULE = ("a rotation is right when its answer parses to the gold option (the task's strict score: an "
        "unparseable answer is wrong); standard = right in the benchmark's order, circular = right in every "
        "rotation")


@dataclass
class Rotated:
    """The rotations 1..n-1 of one record's question; requests[k-1] asks rotation k."""

    record: int
    rows: list[dict]  # rows[k]: the row with options rotated k places (rows[0] is the original)
    requests: list[list[Request]] = field(default_factory=list)


def rotate_list(options: list, shift: int) -> list:
    shift %= len(options)
    return list(options[shift:]) + list(options[:shift])


def plan(task, records: list[SampleRecord], rows: list[dict]) -> tuple[list[Rotated], list[str]]:
    """Every multiple-choice record's rotated rows and requests; the second list holds one line
    per question that could not be rotated (it keeps its standard score, not in the summary)."""
    out, problems = [], []
    for i, (rec, row) in enumerate(zip(records, rows)):
        if rec.error is not None:
            continue
        n = task.option_count(row)
        if n is None or n < 2:
            continue
        try:
            rotated = [row] + [task.rotate_options(row, k) for k in range(1, n)]
            reqs = [task.build_requests(r, f"{rec.uid}@rot{k}") for k, r in enumerate(rotated) if k > 0]
        except SampleError as e:
            problems.append(f"{rec.sample_id}: {e}")
            continue
        out.append(Rotated(i, rotated, reqs))
    return out, problems


def flat_requests(rotations: list[Rotated]) -> list[Request]:
    return [r for rot in rotations for reqs in rot.requests for r in reqs]


def score_rotations(task, rotations: list[Rotated], base: list[list[Response]], extra: list[Response],
                    records: list[SampleRecord]) -> None:
    """Put each rotation's verdict on its record: extras["circular"] = {correct, chosen} per
    rotation (chosen: the letter position picked, None when unparseable). `base[i]`: record i's
    ordinary responses (rotation 0); `extra`: the rotation requests' responses in plan order."""
    pos = 0
    for rot in rotations:
        answers = [base[rot.record]]
        for reqs in rot.requests:
            answers.append(extra[pos:pos + len(reqs)])
            pos += len(reqs)
        correct, chosen, errors = [], [], []
        for row, responses in zip(rot.rows, answers):
            failed = next((r.error for r in responses if r.error), None)
            if failed is None:
                try:
                    _, score = task.score(row, responses)
                except SampleError as e:
                    failed = str(e)
            if failed is not None or score.value is None:
                errors.append(failed or score.reason or "not scorable")
                correct.append(None)
                chosen.append(None)
                continue
            correct.append(float(score.extras.get("strict", score.value)))
            chosen.append(task.chosen_option(row, score))
        entry = {"correct": correct, "chosen": chosen}
        if errors:
            entry["error"] = errors[0]
        records[rot.record].extras = {**records[rot.record].extras, "circular": entry}


def complete(rec: SampleRecord) -> bool:
    c = rec.extras.get("circular")
    return rec.error is None and c is not None and "error" not in c and None not in c["correct"]


def summarize(records: list[SampleRecord], problems: list[str] | None = None) -> dict:
    """The results.json controls.circular section (see the module docstring)."""
    asked = [r for r in records if r.extras.get("circular") is not None]
    done = [r for r in asked if complete(r)]
    standard = [r.extras["circular"]["correct"][0] for r in done]
    # questions that share an image move together (the task's cluster key, as in every interval)
    clusters = [r.cluster if r.cluster is not None else f"s:{r.uid}" for r in done]
    circ = [float(all(c == 1.0 for c in r.extras["circular"]["correct"])) for r in done]
    fixed, same = [], []
    for r in done:
        chosen = r.extras["circular"]["chosen"]
        n = len(chosen)
        fixed.append(float(chosen[0] is not None and all(c == chosen[0] for c in chosen)))
        original = [None if c is None else (c + k) % n for k, c in enumerate(chosen)]
        same.append(float(original[0] is not None and all(o == original[0] for o in original)))
    return {
        "rule": RULE,
        "n_questions": len(done),
        "n_incomplete": len(asked) - len(done),
        "n_not_rotated": len(problems or []),
        "not_rotated": (problems or [])[:20],
        "n_rotations": sum(len(r.extras["circular"]["correct"]) for r in done),
        "standard": bootstrap_mean(standard, clusters=clusters).to_dict(),
        "circular": bootstrap_mean(circ, clusters=clusters).to_dict(),
        "delta": delta_dict(paired_difference(standard, circ, clusters)),
        "fixed_letter": bootstrap_mean(fixed, clusters=clusters).to_dict(),
        "same_option": bootstrap_mean(same, clusters=clusters).to_dict(),
    }
