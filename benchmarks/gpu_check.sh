#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): one JSON of what only a GPU can show, in under 8 minutes
# on one H200. `--dry-run` runs the same steps on the CPU with the embedded tiny model.
#
#   bash benchmarks/gpu_check.sh [--runs-dir runs] [--run-name gpu-check] [--budget-s 450] [--dry-run] [--wheels DIR]
#
# Uses the project's .venv when there is one (`make setup`), else python3. The GPU run needs a CUDA
# build of torch in that Python (the Makefile installs the CPU wheel), plus flash-attn /
# bitsandbytes / vllm for those steps (each is skipped, with the reason, when missing).
#
# On a machine without a package index (a CUDA image with torch and transformers, no .venv):
# `--wheels DIR` installs DIR's wheels (benchmarks/gpu_wheels.txt says which, and how to download
# them) into a private folder put on PYTHONPATH, and evalkit itself from this tree (editable, no
# dependencies, no index) when it is not importable yet: its tasks/, audits/ and reports/ folders
# import as evalkit.tasks, ... only once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="${2:?--wheels needs a folder of .whl files}"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -n "${WHEELS:-}" ]; then
  SITE="${TMPDIR:-/tmp}/evalkit-gpu-check-site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if ! "$PY" -c "import evalkit.tasks" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
  fi
fi
exec "$PY" -m benchmarks.gpu_check "${args[@]}"
