"""Benchmarks (not tests): throughput and memory measurements that take minutes and a GPU to mean much.

Run from the repository root, e.g. `python -m benchmarks.grid` (writes runs/bench-grid/).
"""
