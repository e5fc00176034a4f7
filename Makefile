# Quick start: `make demo` and `make test` on a fresh clone. Everything installs from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: venv demo test lint typecheck unit bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(BIN)/retention demo

lint: venv
	$(BIN)/ruff check retention tests
	$(BIN)/ruff format --check retention tests

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -n 2 -q

test: lint typecheck unit

bench: venv
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .retention-demo
