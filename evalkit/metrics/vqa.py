"""VQA accuracy, the metric of VQAv2 (Goyal et al. 2017) and TextVQA (Singh et al. 2019).

The official scorers differ in how they treat the prediction and the *gold* answers; this
module reproduces each of them, rule for rule, as a `scheme`:

`scheme="vqav2"` (default) -- the VQA evaluation script as released for VQA v2.0
(GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py, commit a4f1afd of
2017-10-02, unchanged since 2016 in its scoring), the script of the VQAv2 era:

1. Prediction: "\\n" and "\\t" become spaces, then strip, then `process_punctuation`, then
   `process_digit_article` (see `normalize_answer`).
2. Gold answers: taken as they are, except that *when the 10 answers are not all identical*
   each one goes through `process_punctuation` only -- never lower-casing, digit or article
   processing, nor stripping. The script relies on the released VQA annotations being in
   normal form already (lower case, digits). So gold "two" is never matched by anything (a
   prediction "two" becomes "2"), and a unanimous gold "yes." is not matched by "yes".
3. Leave-one-out: for each of the n gold answers, acc_i = min(1, m_i / 3) where m_i counts
   the *other* n-1 gold answers equal to the processed prediction; the score is the mean of
   acc_i ("averaged over all 10 choose 9 sets of human annotators", visualqa.org/evaluation).
   With k of 10 answers equal to the prediction this gives 0.3, 0.6, 0.9 and 1.0 for
   k = 1, 2, 3, >= 4. The script removes one answer by dict inequality; VQA answer dicts carry
   distinct `answer_id`s, so that is exactly one answer per subset, as our index-based loop.

`scheme="vqav2_2021"` -- the same repository's master since commit a013f00 (2021-03-11, "Fixed
processing answers bug"): prediction and gold answers get "\\n"/"\\t" -> space and strip;
then *only when the gold answers disagree* both the golds and the prediction get
`process_punctuation` + `process_digit_article`. When all 10 agree nothing else is done, so
"Yes" or "yes." scores 0 against ten "yes". lmms-eval follows this flow but first runs its
EvalAI processor over the prediction, which hides that edge; we keep the script as it is.
For answers in VQA's normal form and a normal-form prediction the two VQAv2 schemes agree. They
differ when the gold answers are not in normal form: prediction "A dog" against golds
"the dog" x3, "dogs" x4, "dog" x3 scores 0.9 under the 2017 script (its golds keep "the") and
1.0 under the 2021 one. The VQAv2 task's headline is the 2021 flow on an EvalAI-processed
prediction (`lmms_eval` below); this function's default stays the 2017 script for callers that
relied on it.
`scheme="lmms_eval"` -- lmms-eval's VQAv2 rule (lmms_eval/tasks/vqav2/utils.py): the prediction
first goes through the EvalAI processor (`normalize_answer_textvqa`), then the 2021 flow (golds
stripped; when they disagree golds and the prediction get punctuation + digit/article
processing once more). Differs from the 2021 script where all 10 golds agree: "Yes" scores 1.0
against ten "yes" here, 0.0 there.

`scheme="textvqa"` -- TextVQA's evaluator (facebookresearch/mmf, mmf/utils/m4c_evaluators.py,
`TextVQAAccuracyEvaluator`, the EvalAI server's rule): the prediction *and every gold answer*
go through `normalize_answer_textvqa` (EvalAI's answer processor: lower case, commas and "?"
deleted, "'s" split off as " 's", then the same steps as above); then the same leave-one-out
mean. TextVQA's raw answers are crowd text ("Coca-Cola", "the coca cola"), hence the full pass.

Not reproduced: the 2017 EvalAI challenge copy (Cloud-CV/VQA-Challenge), which scores VQAv2
test-dev on the server with the same flow as `vqav2` but a regex rewrite of the punctuation
step (e.g. it keeps "5-6" where the script gives "5 6"); its gold answers are hidden anyway.

Quirks of the official code that we keep because they decide scores:
- `process_punctuation` decides per punctuation mark whether to delete it or replace it by a
  space by looking at the *original* text: delete if the mark has a space on either side
  anywhere, or if the text has a comma between two digits anywhere ("1,000" -> "1000");
  otherwise replace by a space ("black/white" -> "black white").
- The period rule is written `(?!<=\\d)(\\.)(?!\\d)`; its first group is a negative lookahead
  for the literal "<=" plus digit (meant as a lookbehind), which never fires before a ".", so
  the effective rule is "delete every period not followed by a digit": "3.5" and ".5" stay,
  "yes." and "5." lose it, "u.s.a" becomes "usa".
- `re.UNICODE` is passed where `Pattern.sub` expects `count`, so at most 32 periods are removed.
- Apostrophes and colons are not punctuation here ("don't", "2:30" survive), per the
  evaluation page; the contractions map only restores missing apostrophes.
- The contractions map holds a few keys with capitals ("Im", "Ive", "Id've") that can never
  match after lower-casing; they are kept as data for fidelity.
- `process_digit_article` maps number words on whitespace tokens *before* dropping articles,
  and "none" counts as a number word ("none" -> "0").
"""
from __future__ import annotations

import re
from typing import Literal, Sequence

Scheme = Literal["vqav2", "vqav2_2021", "lmms_eval", "textvqa"]

# Missing-apostrophe forms and their fix (the official map, straight quotes as on master).
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    # sic: the official map sends "somebody'd" to "somebodyd".
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've",
    "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
    "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}

# The official `manualMap`: number words zero..ten, plus "none" as zero.
NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# In the official order; the order matters only through which marks the text still holds.
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
    ">", "<", "@", "`", ",", "?", "!",
)

_COMMA_BETWEEN_DIGITS = re.compile(r"\d,\d")
# Equivalent of the official `(?!<=\d)(\.)(?!\d)`: see the module docstring.
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_MAX_PERIODS_REMOVED = 32  # the official call passes re.UNICODE (== 32) as `count`


def process_punctuation(text: str) -> str:
    """The official `processPunctuation` (rules in the module docstring)."""
    delete_all = _COMMA_BETWEEN_DIGITS.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        # The test reads the original text, the replacement works on the running result.
        if delete_all or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS_REMOVED)


def process_digit_article(text: str) -> str:
    """The official `processDigitArticle`: lower-case, whitespace-split, number words to
    digits, articles dropped, missing apostrophes restored, joined by single spaces."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(s: str) -> str:
    """A prediction as the VQA evaluation script processes it before comparison."""
    s = s.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(s))


def normalize_answer_textvqa(s: str) -> str:
    """An answer (prediction or gold) as TextVQA's EvalAI processor processes it: its
    tokenising step first (lower case, "," and "?" deleted, "'s" -> " 's", strip), then the
    VQA steps."""
    s = s.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return normalize_answer(s)


def _leave_one_out(prediction: str, golds: Sequence[str]) -> float:
    matches = sum(g == prediction for g in golds)
    # Leaving out a matching answer leaves matches-1, any other leaves matches. Summing
    # min(3, m_i) as integers and dividing once keeps k=1,2,3 at exactly 0.3, 0.6, 0.9.
    total = matches * min(3, matches - 1) + (len(golds) - matches) * min(3, matches)
    return total / (3 * len(golds))


def vqa_accuracy(prediction: str, gold_answers: Sequence[str], *, scheme: Scheme = "vqav2") -> float:
    """Per-question VQA accuracy in [0, 1] (see the module docstring for both schemes).

    Raises ValueError for an empty `gold_answers` (the task records such a row as unscored)
    or an unknown scheme.
    """
    if not gold_answers:
        raise ValueError("vqa_accuracy needs at least one gold answer")
    golds = [str(g) for g in gold_answers]
    if scheme == "vqav2":
        pred = normalize_answer(prediction)
        if len(set(golds)) > 1:
            golds = [process_punctuation(g) for g in golds]
    elif scheme == "vqav2_2021":
        pred = prediction.replace("\n", " ").replace("\t", " ").strip()
        golds = [g.replace("\n", " ").replace("\t", " ").strip() for g in golds]
        if len(set(golds)) > 1:
            golds = [process_digit_article(process_punctuation(g)) for g in golds]
            pred = process_digit_article(process_punctuation(pred))
    elif scheme == "lmms_eval":
        pred = normalize_answer_textvqa(prediction)
        golds = [g.replace("\n", " ").replace("\t", " ").strip() for g in golds]
        if len(set(golds)) > 1:
            golds = [process_digit_article(process_punctuation(g)) for g in golds]
            pred = process_digit_article(process_punctuation(pred))
    elif scheme == "textvqa":
        pred = normalize_answer_textvqa(prediction)
        golds = [normalize_answer_textvqa(g) for g in golds]
    else:
        raise ValueError(f"unknown VQA scoring scheme {scheme!r}; valid: 'vqav2', 'vqav2_2021', 'lmms_eval', 'textvqa'")
    return _leave_one_out(pred, golds)
