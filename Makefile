# Cairn: `make demo` runs the product, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration e2e bench clean lock

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cairn demo

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q --doctest-modules cairn/core tests

lint: $(STAMP)
	$(BIN)/ruff check cairn tests benchmarks
	$(BIN)/deptry cairn

typecheck: $(STAMP)
	$(BIN)/mypy cairn/core

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

# Regenerate the lock file from pyproject.toml (needs network to the package index).
lock:
	rm -rf /tmp/cairn-lock-venv && $(PY) -m venv /tmp/cairn-lock-venv
	/tmp/cairn-lock-venv/bin/pip install -q -e '.[dev]'
	/tmp/cairn-lock-venv/bin/pip freeze --exclude-editable | grep -v '^cairn' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
