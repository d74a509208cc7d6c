"""MathVista scoring: answer extraction, then the official normalisation and exact match
(lupantech/MathVista, evaluation/extract_answer.py and evaluation/calculate_score.py).

Extraction (`extract_answer`) -- the official cheap rules first, in their order:
  empty response -> ""; multiple choice and the response is one of the choices -> it;
  integer type and int(response) works -> str of it; float type and float(response) works ->
  str of it; `The answer is "X".` -> X (the official quick_extract).
The official script then asks a GPT model to extract the answer. We do not call a model by
default; in its place come deterministic rules of our own (documented here, not official):
  multiple choice: a response that is one letter in any case ("c", "(c)", "C."); else a
    letter in brackets "(B)", a letter after "answer"/"option"/"choice" ("The answer is B",
    "Answer: B"), a response that starts with a letter and a period, colon or bracket
    ("B.", "B) 145°"; not "A triangle ..."), or a response that ends with a lone letter
    ("... so the answer is\nB") -- the match that starts latest wins; else the choice whose
    text occurs latest in the response (longer choice on a tie, so "quarter to" beats
    "quarter");
  integer / float: the number after "answer is"/"answer:" if present, else the last number
    in the response (thousands commas removed);
  list: the last [...] in the response, its items re-joined with ", " as Python prints lists.
  Nothing found -> "" (the official result when the judge gives nothing).
An optional `judge(query, response) -> str` replaces our rules (not the official cheap ones),
as the official script's GPT call does; its prompt is the caller's business (the official
few-shot prompt is evaluation/prompts/ext_ans.py in the MathVista repository).

Normalisation (`normalize_extracted_answer`), as calculate_score.py does:
  multi_choice: strip; a letter in brackets anywhere -> that letter (upper-cased); a letter
    among A, B, ... -> that choice's text; anything else (including "") -> the choice with the
    smallest Levenshtein distance (first on a tie). So an empty extraction still picks a
    choice -- the shortest one -- which is why we also report a strict score;
  integer: str(int(float(x))) -- truncation, so "3.7" -> "3"; failure -> None;
  float: str(round(float(x), int(precision))) -- Python's round on the binary value, so
    round(1.25, 1) = 1.2 (exact tie, to even) but round(1.35, 1) = 1.4; failure -> None;
  list: str(x).
  answer_type "text" outside multiple choice does not occur in MathVista (the official code
  would fail); we compare the stripped text.
Correct when the normalised prediction == the gold answer string (the official safe_equal).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .anls import levenshtein
from .mmmu import option_letters

Judge = Callable[[str, str], str]  # (query, response) -> extracted answer


@dataclass(frozen=True)
class Problem:
    """The fields of a MathVista row that scoring needs."""

    question_type: str  # "multi_choice" | "free_form"
    answer_type: str  # "text" | "integer" | "float" | "list"
    choices: tuple[str, ...] | None = None
    precision: float | None = None
    query: str = ""


@dataclass(frozen=True)
class Verdict:
    extraction: str  # what the rules (or judge) pulled out of the response; "" = nothing
    prediction: str | None  # after normalisation
    correct: bool

    @property
    def parsed(self) -> bool:
        return self.extraction.strip() != ""


# ---------------------------------------------------------------- extraction
_QUICK = re.compile(r'The answer is "(.*)"\.')
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_ANSWER_NUMBER = re.compile(r"answer\s*(?:is|:)\s*[:=]?\s*\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)",
                            re.IGNORECASE)
_LIST = re.compile(r"\[([^\[\]]*)\]")


def _official_quick(response: str, p: Problem) -> str | None:
    if response == "":
        return ""
    if p.question_type == "multi_choice" and p.choices and response in p.choices:
        return response
    if p.answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if p.answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    m = _QUICK.search(response)
    if m:
        return m.group(1)
    return None


def _letter_rules(text: str, letters: str) -> str | None:
    bare = text.strip("().: ")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()  # the whole response is one letter, any case: "c", "(c)", "C."
    cls = f"[{letters}]"
    patterns = [
        rf"\(([{letters}{letters.lower()}])\)",  # "(b)": the official normaliser upper-cases it too
        rf"(?i:answer|option|choice)\s*(?i:is|:)?\s*:?\s*\(?({cls})\)?(?![A-Za-z0-9])",
        rf"^\(?({cls})\)?(?:[.:)]|$)",
        rf"(?:^|\s)\(?({cls})\)?\.?$",
    ]
    best: tuple[int, str] | None = None
    for pat in patterns:
        for m in re.finditer(pat, text):
            if best is None or m.start(1) > best[0]:
                best = (m.start(1), m.group(1).upper())
    return best[1] if best else None


def _choice_text_rule(text: str, choices: Sequence[str]) -> str | None:
    lower = text.lower()
    best: tuple[int, int, str] | None = None
    for c in choices:
        pos = lower.rfind(str(c).lower()) if str(c) else -1
        if pos >= 0 and (best is None or (pos, len(c)) > best[:2]):
            best = (pos, len(c), c)
    return best[2] if best else None


def _number_rule(text: str) -> str | None:
    hits = _ANSWER_NUMBER.findall(text)
    if hits:
        return hits[-1].replace(",", "")
    nums = _NUMBER.findall(text)
    return nums[-1].replace(",", "") if nums else None


def _list_rule(text: str) -> str | None:
    found = _LIST.findall(text)
    if not found:
        return None
    items = [s.strip().strip("'\"") for s in found[-1].split(",")]
    return "[" + ", ".join(i for i in items if i) + "]"


def rule_extract(response: str, p: Problem) -> str:
    """Our deterministic stand-in for the official GPT extraction; "" when nothing is found."""
    text = response.strip()
    if not text:
        return ""
    if p.question_type == "multi_choice" and p.choices:
        if text in p.choices:
            return text
        letters = "".join(option_letters(len(p.choices)))
        return _letter_rules(text, letters) or _choice_text_rule(text, p.choices) or ""
    if p.answer_type in ("integer", "float"):
        return _number_rule(text) or ""
    if p.answer_type == "list":
        return _list_rule(text) or ""
    return text


def extract_answer(response: str, p: Problem, judge: Judge | None = None) -> str:
    quick = _official_quick(response, p)
    if quick is not None:
        return quick
    if judge is not None:
        return str(judge(p.query, response) or "")
    return rule_extract(response, p)


# ---------------------------------------------------------------- normalisation and match
def closest_choice(prediction: str, choices: Sequence[str]) -> str:
    distances = [levenshtein(prediction, c) for c in choices]
    return choices[distances.index(min(distances))]


def normalize_extracted_answer(extraction, p: Problem) -> str | None:
    """calculate_score.py's normalize_extracted_answer (ignore_empty_extractions off, its
    default). `extraction` may be any JSON value, as in the official output files: a
    non-string goes through str() for multiple choice and lists, float() for numbers."""
    if p.question_type == "multi_choice":
        text = extraction.strip() if isinstance(extraction, str) else str(extraction)
        bracketed = re.findall(r"\(([a-zA-Z])\)", text)
        if bracketed:
            text = bracketed[0].upper()
        choices = list(p.choices or ())
        if not choices:
            return None
        letters = option_letters(len(choices))
        if text in letters:
            return choices[letters.index(text)]
        return closest_choice(text, choices)
    try:
        if p.answer_type == "integer":
            return str(int(float(extraction)))
        if p.answer_type == "float":
            return str(round(float(extraction), int(p.precision)))
    except (TypeError, ValueError, OverflowError):
        return None
    if p.answer_type == "list":
        return str(extraction)
    return str(extraction).strip()


def safe_equal(prediction, answer) -> bool:
    return prediction == answer


def score_extracted(extraction, p: Problem, answer: str) -> Verdict:
    """The official calculate_score.py on an answer already extracted (by the official GPT
    step or anyone else): normalisation and exact match only, no extraction rule of ours."""
    prediction = normalize_extracted_answer(extraction, p)
    text = extraction if isinstance(extraction, str) else ("" if extraction is None else str(extraction))
    return Verdict(text, prediction, safe_equal(prediction, answer))


def score(response: str, p: Problem, answer: str, judge: Judge | None = None) -> Verdict:
    extraction = extract_answer(response, p, judge)
    prediction = normalize_extracted_answer(extraction, p)
    return Verdict(extraction, prediction, safe_equal(prediction, answer))
