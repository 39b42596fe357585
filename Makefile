# One command sets up and runs the main job, one sets up and runs every test.
#   make demo   — generate text from the shipped default model
#   make test   — the whole test suite (what .ci/run runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all]'
	touch $@

demo: setup
	$(BIN)/tspec conformance --backend all

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) site .hypothesis .pytest_cache
