# The two commands of the README: `make demo` and `make test`.
# Both work on a fresh machine with Python >= 3.11 and make: the virtual environment is
# created and filled on first use, and refreshed when pyproject.toml or the lock changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/test-lock.txt
PYTEST_ARGS ?= -q

.PHONY: help install test lint typecheck unit demo bench reliability clean

help:
	@echo "make demo         run the example DAGs in a real Airflow against the simulator"
	@echo "make test         lint, type-check and run the whole test suite"
	@echo "make bench        run the benchmarks (prints figures and ratios)"
	@echo "make reliability  run the fault-storm / hostile-answer trials (prints figures)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(wildcard $(LOCK))
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(LOCK)),-c $(LOCK)) -e ".[test,sdk-check]"
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/python -m demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

reliability: $(STAMP)
	$(BIN)/python -m pytest tests/reliability -q
	$(BIN)/python benchmarks/reliability_storm.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
