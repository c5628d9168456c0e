# Cairn: `make demo` runs the product, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo play minecraft-deps test lint typecheck unit integration e2e bench clean lock redis-check audit dependencies

# A changed lock gets a fresh environment: a package swapped for another that ships the same
# module name (bson) must not leave the old files behind.
$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv --clear $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cairn demo

# The Minecraft integration (integrations/minecraft/): its npm packages, from the committed lock file.
MC := integrations/minecraft
MC_STAMP := $(MC)/node_modules/.package-lock.json

$(MC_STAMP): $(MC)/package.json $(MC)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd $(MC) && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm is not installed; the Minecraft tests and make play need Node.js and npm:"; \
	  echo "  sudo apt-get install nodejs npm"; \
	  if [ "$$CI" = "true" ]; then exit 1; fi; fi

minecraft-deps: $(MC_STAMP)

# Cairn and a Minecraft server (flying-squid with the Cairn plugin) with a running hunt; Ctrl-C stops both.
play: $(STAMP) $(MC_STAMP)
	$(BIN)/python tools/play.py

test: $(STAMP) lint typecheck redis-check minecraft-deps
	$(BIN)/pytest -q --doctest-modules cairn/core tests

# The Redis tests start real redis-server processes (never the system one on 6379).
redis-check:
	@command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || { \
	  echo "redis-server is not installed; the Redis store tests need it:"; \
	  echo "  sudo apt-get install redis-server      (Debian/Ubuntu; or: brew install redis)"; \
	  if [ "$$CI" = "true" ]; then echo "CI=true: the Redis tests must not skip"; exit 1; fi; \
	  echo "without it those tests are skipped"; }

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

# Dependency audit: deptry clean, requirements.lock matches pyproject.toml, docs/dependencies.md current.
audit: $(STAMP)
	$(BIN)/python tools/audit.py

# Rewrite docs/dependencies.md (licence, compiled code, size of every locked dependency).
dependencies: $(STAMP)
	$(BIN)/python tools/audit.py --write

# Regenerate the lock file from pyproject.toml (needs network to the package index).
lock:
	rm -rf /tmp/cairn-lock-venv && $(PY) -m venv /tmp/cairn-lock-venv
	/tmp/cairn-lock-venv/bin/pip install -q -e '.[dev]'
	/tmp/cairn-lock-venv/bin/pip freeze --exclude-editable | grep -v '^cairn' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
