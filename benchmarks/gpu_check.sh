#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): one JSON of what only a GPU can show, in under 8 minutes
# on one H200. `--dry-run` runs the same steps on the CPU with the embedded tiny model.
#
#   bash benchmarks/gpu_check.sh --out runs/gpu-check [--budget-s 450] [--dry-run]
#
# Uses the project's .venv when there is one (`make setup`); the GPU run needs a CUDA build of torch
# there (the Makefile installs the CPU wheel), plus flash-attn / bitsandbytes / vllm for those steps
# (each is skipped, with the reason, when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
exec "$PY" -m benchmarks.gpu_check "$@"
