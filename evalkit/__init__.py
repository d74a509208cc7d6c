"""evalkit: evaluation and bias-audit harness for vision-language models."""

__version__ = "0.1.0"
