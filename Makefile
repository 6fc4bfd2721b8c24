# A fresh clone needs nothing but Python 3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

# The demo needs bulksync alone; the tests (and lint, bench) need the test extras too.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/bulksync demo

test: $(BIN)/.installed-test
	$(BIN)/python -m pytest -n 4

bench: $(BIN)/.installed-test
	$(BIN)/python bench/run.py
	$(BIN)/python bench/sandbox_throughput.py
	$(BIN)/python bench/xlsx_writeback.py

lint: $(BIN)/.installed-test
	$(BIN)/ruff check bulksync tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
