# Two commands (see README):
#   make demo   — set everything up, then generate text with the shipped default model
#   make test   — set everything up, then run every test (what .ci/run runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROMPT ?= Once upon a time

.PHONY: setup system-deps demo test lint format conformance docs serve-docs bench clean

setup: $(VENV)/.installed

# constraints.txt pins torch to the CPU build that this project is tested with.
$(VENV)/.installed: pyproject.toml constraints.txt examples/array_api_backend/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all]'
	$(BIN)/python -m pip install --quiet --no-deps -e examples/array_api_backend
	touch $@

system-deps:
	@bash scripts/install-system-deps.sh

demo: setup
	$(BIN)/tspec generate "$(PROMPT)" --max-new-tokens 60 --seed 0

test: setup system-deps lint
	$(BIN)/python -m pytest

# ruff: the linter and the formatter's check (configuration in pyproject.toml)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

conformance: setup
	$(BIN)/tspec conformance --backend all --dtype float32

docs: setup system-deps
	$(BIN)/mkdocs build --strict

serve-docs: setup system-deps
	$(BIN)/mkdocs serve

bench: setup
	$(BIN)/python -m benchmarks.bench_conformance
	$(BIN)/python -m benchmarks.bench_primitives
	$(BIN)/python -m benchmarks.bench_generate

clean:
	rm -rf $(VENV) site .hypothesis .pytest_cache
