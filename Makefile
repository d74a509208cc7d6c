# evalkit: `make eval TASK=docvqa` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TASK   ?= docvqa
# The known-answer model (answers and scores known in advance: docs/models.md) makes a default
# run show real answers; the CLI's own default stays tiny-idefics2.
MODEL  ?= known-answer-idefics2
LIMIT  ?=
ARGS   ?=
RUNS   ?= runs

# MODEL may be a backend name (known-answer-idefics2, tiny-idefics2, hf) or a hub id / local folder for the hf backend.
MODEL_ARGS = $(if $(or $(findstring /,$(MODEL)),$(findstring .,$(MODEL))),--model hf --model-id $(MODEL),--model $(MODEL))
LIMIT_ARGS = $(if $(LIMIT),--limit $(LIMIT))

.PHONY: setup eval audit compare bench bench-grid test test-fast report browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the local CPU wheel: left to pip, `torch` would pull a CUDA build of several GB.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(STAMP)

eval: setup
	$(BIN)/evalkit eval --task $(TASK) $(MODEL_ARGS) $(LIMIT_ARGS) --runs-dir $(RUNS) $(ARGS)

audit: setup
	$(BIN)/evalkit audit --dataset both $(MODEL_ARGS) $(LIMIT_ARGS) --runs-dir $(RUNS) $(ARGS)

# Both runs are named here (not left to the default name) so the compare step finds them
# whatever MODEL looks like (a hub id, a folder with a trailing slash).
CMP_NAME = $(TASK)-$(notdir $(patsubst %/,%,$(MODEL)))
compare: setup
	$(BIN)/evalkit eval --task $(TASK) $(MODEL_ARGS) $(LIMIT_ARGS) --runs-dir $(RUNS) $(ARGS) --run-name $(CMP_NAME)-nosplit
	$(BIN)/evalkit eval --task $(TASK) $(MODEL_ARGS) $(LIMIT_ARGS) --runs-dir $(RUNS) $(ARGS) --run-name $(CMP_NAME)-split --split-images
	$(BIN)/evalkit compare $(RUNS)/$(CMP_NAME)-nosplit $(RUNS)/$(CMP_NAME)-split --runs-dir $(RUNS) --run-name compare-$(CMP_NAME)

bench: setup
	$(BIN)/python -m benchmarks.run --runs-dir $(RUNS) --run-name bench

bench-grid: setup
	$(BIN)/python -m benchmarks.grid --runs-dir $(RUNS) --run-name bench-grid $(MODEL_ARGS)

report: setup
	$(BIN)/evalkit report $(RUNS)

# The report tests render pages in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed: browser tests will be skipped"

# Every tier (tests/unit, tests/e2e, tests/slow); what CI runs. One pytest-xdist worker per core
# of the 2-core machine the suite is sized for; a test file stays on one worker, so its module
# fixtures (a built model, a server) are made once. `TEST_WORKERS=0` runs it in one process.
# --no-loadscope-reorder keeps tests/conftest.py's order (the slow tier first): xdist otherwise
# hands out files with the most tests first, which left the few long slow files to one worker at the end.
TEST_WORKERS ?= 2
test: setup browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The inner loop: the unit tier alone (no model is built), under a minute.
test-fast: setup
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(RUNS) .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
