"""The ANLS `evaluate` module's folder (evaluate.load reads anls.py in it)."""
