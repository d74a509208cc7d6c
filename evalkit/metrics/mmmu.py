"""MMMU scoring, reproducing the official rules (MMMU-Benchmark/MMMU, mmmu/utils/eval_utils.py).

Multiple choice (`parse_multi_choice`), in the official order:
  1. strip the characters , . ! ? ; : ' from both ends, one character kind after another in
     that order (so "B." -> "B" but "B. " keeps its period), then pad with one space each side;
  2. candidates = letters written in brackets, "(B)";
  3. if none: letters standing alone between spaces, " B ";
  4. if none and the padded response has more than 5 whitespace tokens: options whose text
     occurs in the response (case-insensitive);
  5. several candidates: the one whose last occurrence starts latest (first in option order
     on a tie); none: a random letter. The official script seeds Python's `random` with 42
     once (at import of utils/eval_utils.py) and calls `random.choice(all_choices)` for each
     unparseable answer in its processing order; `official_fallback_letters` reproduces that
     sequence (tasks/mmmu.py applies it over the whole run). `parse_multi_choice` draws from
     an RNG the caller passes instead (a per-sample seeded one gives the per-sample variant).
  Correct when the letter equals the gold letter (or one of a list of gold letters).
  Other harnesses differ here: lmms-eval also accepts "B " without a leading space and "B."
  anywhere, so the same outputs can score differently there.

Open questions (`parse_open`, `score_open`):
  the response is lower-cased, cut into sentences at newlines (the official split at ". "
  before a capital never fires because the text was lower-cased first -- kept as is), and for
  each sentence the shortest tail after an indicator ("could be ", "so ", "is ", "thus ",
  "therefore ", "final ", "answer ", "result ", and "=" for the last sentence) is a key
  response; with no key response the whole response is used. Numbers found in the key
  responses are added; every item is normalised (numbers -> float rounded to 2 places,
  strings -> lower case, a single character -> " c" and "c " so it cannot match inside a
  word). A prediction is correct when a numeric prediction equals a numeric gold, or a
  string gold is a *substring* of a string prediction.
"""
from __future__ import annotations

import random
import re
from typing import Sequence

OFFICIAL_SEED = 42  # utils/eval_utils.py: random.seed(42) at import
_STRIP_CHARS = (",", ".", "!", "?", ";", ":", "'")
_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL_KEYS = {":", ",", ".", "!", "?", ";", "'"}

# The official number patterns: 1,234,567 style; scientific notation; plain numbers not
# followed by an exponent, a comma or another digit.
_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def option_letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


# ---------------------------------------------------------------- multiple choice
def parse_multi_choice(response: str, options: Sequence[str], rng: random.Random) -> tuple[str, bool]:
    """The letter the response picks and whether a rule found it (False: drawn from `rng`)."""
    letter = parse_multi_choice_rules(response, options)
    if letter is not None:
        return letter, True
    return rng.choice(option_letters(len(options))), False


def official_fallback_letters(n_options: Sequence[int], seed: int = OFFICIAL_SEED) -> list[str]:
    """The letters the official script draws for its unparseable answers, given each one's
    number of options in the script's processing order: one `random.Random(seed)` (the state
    `random.seed(42)` gives the module-level functions), `choice` over A.. per answer. The
    parser calls `random` nowhere else, so this is the script's whole draw sequence."""
    rng = random.Random(seed)
    return [rng.choice(option_letters(k)) for k in n_options]


def parse_multi_choice_rules(response: str, options: Sequence[str]) -> str | None:
    """The letter the official rules find in the response, or None (the script then draws)."""
    if not options:
        raise ValueError("a multiple-choice question needs at least one option")
    letters = option_letters(len(options))
    text = response
    for ch in _STRIP_CHARS:
        text = text.strip(ch)
    text = f" {text} "

    found = [c for c in letters if f"({c})" in text]
    if found:
        return _latest(found, lambda c: text.rfind(f"({c})"))
    found = [c for c in letters if f" {c} " in text]
    if found:
        return _latest(found, lambda c: text.rfind(f" {c} "))
    if len(text.split()) > 5:
        lower = text.lower()
        found = [c for c, opt in zip(letters, options) if str(opt).lower() in lower]
        if found:
            by_letter = dict(zip(letters, options))
            return _latest(found, lambda c: lower.rfind(str(by_letter[c]).lower()))
    return None


def _latest(candidates: list[str], position) -> str:
    # argmax with the first maximum winning, as numpy's argmax does in the official script
    best, best_pos = candidates[0], position(candidates[0])
    for c in candidates[1:]:
        p = position(c)
        if p > best_pos:
            best, best_pos = c, p
    return best


def score_multi_choice(letter: str, gold: str | Sequence[str]) -> bool:
    golds = [gold] if isinstance(gold, str) else list(gold)
    return letter in golds


# ---------------------------------------------------------------- open questions
def check_is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(text: str) -> list:
    """One answer string -> its comparable forms (a rounded float, or lower-cased text)."""
    text = text.strip()
    if check_is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


def extract_numbers(text: str) -> list[str]:
    return _NUM_COMMAS.findall(text) + _NUM_SCIENTIFIC.findall(text) + _NUM_SIMPLE.findall(text)


def _key_responses(response: str) -> list[str]:
    text = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys = []
    for i, sentence in enumerate(sentences):
        indicators = _KEY_INDICATORS + (("=",) if i == len(sentences) - 1 else ())
        shortest = None
        for ind in indicators:
            if ind in sentence:
                tail = sentence.split(ind)[-1].strip()
                # an empty tail is falsy, so the next indicator's tail replaces it
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL_KEYS:
            keys.append(shortest)
    return keys or [text]


def parse_open(response: str) -> list:
    """Normalised candidate answers (floats and lower-cased strings), duplicates removed."""
    keys = _key_responses(response)
    raw = list(keys)
    for key in keys:
        raw.extend(extract_numbers(key))
    out: list = []
    for item in raw:
        for norm in normalize_str(item):
            if norm not in out:
                out.append(norm)
    return out


def score_open(pred_list: Sequence, gold: str | Sequence[str]) -> bool:
    """Official open-question match: equal numbers, or a gold string inside a predicted string."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    norm_golds = [n for g in golds for n in normalize_str(str(g))]
    for pred in pred_list:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in norm_golds):
                return True
        elif pred in norm_golds:
            return True
    return False
