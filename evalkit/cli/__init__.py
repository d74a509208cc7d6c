"""The command line: every `evalkit` command's parser and wiring, and the config-file reader."""
from .commands import console_main, main  # the console script and `python -m evalkit.cli` enter here

__all__ = ["console_main", "main"]
