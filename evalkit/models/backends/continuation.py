"""Log-likelihood choices tokenized the way the model sees them: jointly with the prompt.

A choice tokenized on its own can come out as pieces the model never sees after the prompt:
SentencePiece starts every text with a word-start '▁', so on its own " Male" is ['▁', '▁Male']
while after "Assistant:" it is ['▁Male']. So each choice is encoded as prompt + choice and its
tokens are the ones after the prompt's tokens (as lm-evaluation-harness does), checked: where a
tokenizer merges the prompt's last piece with a choice's first (prompt "... ha", choice "ppy"
gives '▁happy'), the prompt's tokens are not a prefix of the joint encoding. Then scoring starts
where the joint encodings first part from the prompt's, taking the earliest such point over all
choices so that every choice is scored after the same context: the prompt's tokens from there on
are dropped from the context the model runs and scored as the start of each choice.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Continuations:
    context_ids: list[int]  # the prompt's own tokens, before any are dropped
    n_dropped: int  # prompt tokens dropped from the end of the context (0 when the prompt's tokens are a prefix)
    choice_ids: list[list[int]]  # each choice's scored tokens, from the same position


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def split_continuations(encode: Callable[[str], list[int]], context: str,
                        continuations: Sequence[str]) -> Continuations:
    """`encode`: text -> token ids, without BOS/EOS. `continuations` are appended to `context` as given."""
    ctx = list(encode(context))
    wholes = [list(encode(context + c)) for c in continuations]
    start = min((common_prefix_len(ctx, w) for w in wholes), default=len(ctx))
    return Continuations(ctx, len(ctx) - start, [w[start:] for w in wholes])
