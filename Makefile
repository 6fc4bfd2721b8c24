# A fresh clone needs nothing but Python 3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-office lint bench clean

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

# Bytecode is written (to __pycache__, which git ignores) even where the environment says
# PYTHONDONTWRITEBYTECODE: bulksync is compiled once here, not by each of the four workers
# and the processes they start, and a second run does not rewrite the tests' asserts again
# (2 s of CPU a worker).
test: export PYTHONDONTWRITEBYTECODE :=
test: $(BIN)/.installed-test
	$(BIN)/python -m compileall -q bulksync
	$(BIN)/python -m pytest -n 4

# tests/office: a real LibreOffice Calc sorts, re-saves and holds open pushed sheets. It is
# driven through UNO by tests/office/driver.py under the system Python, the one Debian's
# python3-uno serves (the venv's Python cannot import uno). Installed here when missing.
OFFICE_PYTHON ?= /usr/bin/python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test-office: $(BIN)/.installed-test
	@if ! command -v soffice >/dev/null 2>&1 || ! $(OFFICE_PYTHON) -c 'import uno' 2>/dev/null; then \
		echo "installing LibreOffice Calc (headless) and its Python bridge from Debian's packages"; \
		$(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends libreoffice-calc-nogui python3-uno; \
	fi
	BULKSYNC_OFFICE_PYTHON=$(OFFICE_PYTHON) $(BIN)/python -m pytest tests/office

bench: $(BIN)/.installed-test
	$(BIN)/python bench/run.py
	$(BIN)/python bench/sandbox_throughput.py
	$(BIN)/python bench/xlsx_writeback.py
	$(BIN)/python bench/rate_window.py
	$(BIN)/python bench/store_scale.py
	$(BIN)/python bench/suggest_speed.py

lint: $(BIN)/.installed-test
	$(BIN)/ruff check bulksync tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
