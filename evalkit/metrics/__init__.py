"""Benchmark metrics as plain functions of (prediction, gold): no model, no I/O."""
