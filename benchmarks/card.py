"""The Idefics2 model card's efficiency table ("Model optimizations"), every row it gives.

Measured by the card's authors on one H100 with the card's two-image snippet, 20 generations
(see HuggingFaceM4/idefics2-8b, README "Model optimizations"). "4 bits quantization" is
either bitsandbytes on the entire model or AWQ on the language model only (a pre-quantized
AWQ checkpoint, which this grid does not measure).
"""
from __future__ import annotations

from dataclasses import dataclass

CARD_SOURCE = ("HuggingFaceM4/idefics2-8b model card, 'Model optimizations' table: one H100, the card's "
               "two-image snippet, time for 20 generations and peak GPU memory")


@dataclass(frozen=True)
class CardRow:
    flash_attention_2: bool
    split: bool
    dtype: str
    quantization: str  # "none" | "bitsandbytes (entire model)" | "AWQ (LLM only)" | "AWQ + fusing (LLM only)"
    peak_gb: float
    time_s: float

    @property
    def quant4_bnb(self) -> bool:
        return self.quantization.startswith("bitsandbytes")

    @property
    def measurable(self) -> bool:
        """AWQ rows need a pre-quantized checkpoint; the grid measures none and bitsandbytes."""
        return self.quantization == "none" or self.quant4_bnb


_BNB, _AWQ, _AWQF = "bitsandbytes (entire model)", "AWQ (LLM only)", "AWQ + fusing (LLM only)"
# (flash attention 2, image splitting, dtype, 4-bit, peak GPU memory GB, time for 20 generations s)
_ROWS = [
    (False, True, "fp32", "none", 54.9, 55.6),
    (False, True, "bf16", "none", 41.3, 34.3),
    (False, True, "fp16", "none", 36.7, 33.3),
    (True, True, "fp16", "none", 21.0, 13.3),
    (True, True, "fp16", _BNB, 8.9, 19.9),
    (False, True, "fp16", _BNB, 24.7, 40.4),
    (False, True, "fp16", _AWQ, 26.4, 37.1),
    (True, True, "fp16", _AWQ, 10.7, 16.3),
    (False, True, "fp16", _AWQF, 26.0, 38.4),
    (False, False, "fp32", "none", 38.8, 17.5),
    (False, False, "bf16", "none", 22.2, 14.4),
    (False, False, "fp16", "none", 21.3, 13.9),
    (True, False, "fp16", "none", 18.1, 10.4),
    (True, False, "fp16", _BNB, 6.0, 17.3),
    (False, False, "fp16", _BNB, 9.2, 20.9),
    (False, False, "fp16", _AWQ, 10.9, 15.9),
    (True, False, "fp16", _AWQ, 7.8, 12.3),
    (False, False, "fp16", _AWQF, 10.5, 19.5),
]


def card_rows() -> list[CardRow]:
    return [CardRow(*r) for r in _ROWS]
