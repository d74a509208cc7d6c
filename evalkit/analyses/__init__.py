"""Analyses of result files: statistics, comparisons, invariance, scoring sensitivity, verdicts."""
