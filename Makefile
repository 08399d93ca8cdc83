# The newcomer's path: `make demo` and `make test` work on a fresh machine with Python 3.11+.
# `make demo` installs only consultflow itself; `make test` adds the test tools on top.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint typecheck unit bench bench-quick clean

$(BIN)/python:
	@echo "Setting up $(VENV) with $(PYTHON) (first run only)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): $(BIN)/python pyproject.toml
	@echo "Installing consultflow into $(VENV) (first run only)..."
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(DEMO_STAMP) pyproject.toml
	@echo "Installing the test tools (pytest, hypothesis, mypy, ruff, psycopg, the sim and dask extras, nbclient, delivery test servers) into $(VENV) (first run only)..."
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/consultflow demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(TEST_STAMP)
	$(BIN)/mypy --strict src/consultflow
	$(BIN)/mypy tests benchmarks

unit: $(TEST_STAMP)
	$(BIN)/python -m pytest

# the benchmarks' smoke runs: every variant once, a few seconds, no timing asserted
bench-quick: $(TEST_STAMP)
	$(BIN)/python benchmarks/lifecycle.py --quick
	$(BIN)/python benchmarks/storage.py --quick
	$(BIN)/python benchmarks/dispatch.py --quick
	$(BIN)/python benchmarks/simulate.py --quick

test: lint typecheck unit bench-quick

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/lifecycle.py
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/dispatch.py
	$(BIN)/python benchmarks/simulate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
