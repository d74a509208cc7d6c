"""`python -m evalkit.cli`: the `evalkit` command."""
import sys

from .commands import console_main

sys.exit(console_main())
