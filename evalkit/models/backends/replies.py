"""Reading an OpenAI-compatible server's reply: the answer, the usage counts and vLLM's prompt
log-probabilities, each checked, since servers extend (and break) the format in their own ways.
A reply that does not hold what is asked raises SampleError: that sample's error record."""
from __future__ import annotations

import math
import re
from typing import Any

from ...errors import SampleError
from .http import error_message

# Usage counts above this are not token counts of one request (the longest contexts are ~10^7).
MAX_USAGE_TOKENS = 10 ** 9


def reply_text(reply: Any) -> str:
    """The answer of a chat completion; a reply that holds none is that sample's error (never an
    empty prediction, which would be scored and cached)."""
    if not isinstance(reply, dict):
        raise SampleError("the server's reply is not a JSON object")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if "error" in reply:
            raise SampleError(f"the server answered {error_text(reply)}")
        raise SampleError("the server's reply has no choices")
    first = choices[0]
    message = first.get("message")
    if not isinstance(message, dict):
        if isinstance(first.get("text"), str):
            raise SampleError("the server's reply is a text completion (choices[0].text), not a chat message; "
                              "--base-url should be the API root whose /chat/completions answers chat messages")
        raise SampleError("the server's reply has no message (choices[0].message is missing or null)")
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts
        texts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type", "text") == "text"]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise SampleError("the server's reply has a malformed content part (a text part without a string)")
        content = "".join(texts)
    if content is None:
        raise SampleError("the server's reply has no answer text (message.content is null)")
    if not isinstance(content, str):
        raise SampleError(f"the server's reply holds no text (message.content is a {type(content).__name__})")
    return content


def error_text(reply: dict, clean=lambda s: s) -> str:
    return f"200 with an error instead of an answer: {clean(error_message(reply))}"


def usage_counts(reply: Any) -> tuple[tuple[int, int], bool]:
    """((prompt tokens, completion tokens), sane) from the reply's usage; 0 for what it leaves out.
    A count that is not a non-negative integer (a bool, a string, NaN, negative, absurdly large) is
    taken as 0 and `sane` is False: the answer is kept, the count is not trusted."""
    usage = reply.get("usage") if isinstance(reply, dict) else None
    if usage is None:
        return (0, 0), True
    if not isinstance(usage, dict):
        return (0, 0), False
    counts, sane = [], True
    for k in ("prompt_tokens", "completion_tokens"):
        v = usage.get(k)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if v is None:
            counts.append(0)
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_USAGE_TOKENS:
            counts.append(v)
        else:
            counts.append(0)
            sane = False
    return (counts[0], counts[1]), sane


def failure_kind(error: str) -> str:
    """An error without its attempt count, so failures that differ only in retries compare equal."""
    return re.sub(r" (after \d+ attempts|\(no retries\))$", "", error)


def max_text_chars(max_tokens: int) -> int:
    """The longest answer kept for a request of `max_tokens` tokens: no tokenizer's token is this long."""
    return max(4096, 64 * max_tokens)


def trailing_logprob(entries: list, choice: str) -> tuple[float, int]:
    """Sum the log-probabilities of the last prompt tokens that spell `choice`. Each entry is
    vLLM's {token_id: {"logprob", "rank", "decoded_token"}} for one prompt position (None for
    the first); with prompt_logprobs=0 it holds the prompt token alone."""
    want = "".join(choice.split())
    total, pieces = 0.0, []
    for entry in reversed(entries):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise SampleError("the server's prompt_logprobs do not hold exactly the prompt token per position")
        info = next(iter(entry.values()))
        lp = info.get("logprob") if isinstance(info, dict) else None
        if isinstance(lp, bool) or not isinstance(lp, (int, float)) or not math.isfinite(lp) or lp > 0:
            # a log-probability is a finite number <= 0; `true` (read as 1), a positive value or NaN
            # is none, and would outrank every real choice
            raise SampleError(f"the server's prompt_logprobs hold {lp!r}, which is not a log-probability (<= 0)")
        token = str(info.get("decoded_token") or "")
        if not pieces and not token.strip():
            continue  # whitespace a template puts after the turn is not part of the choice
        total += float(lp)
        pieces.insert(0, token)
        spelled = "".join("".join(pieces).replace("\u2581", " ").split())
        if spelled == want:
            return total, len(pieces)
        if len(spelled) > len(want) or not want.endswith(spelled):
            break
    raise SampleError(f"cannot find the choice {choice!r} among the prompt's last tokens (it merged with the text "
                      f"before it); cannot score")
