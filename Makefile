# Set-up is automatic: every target below first makes .venv match requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced-$(shell cat requirements.lock pyproject.toml 2>/dev/null | sha1sum | cut -c1-12)
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: env test demo bench clean-demo lock browser mutate

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null || { echo "ERROR: java not found. Spark needs Java 17: sudo apt-get install -y openjdk-17-jre-headless"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.synced-*
	@touch $(STAMP)

test: env browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium from Debian's packages for the browser test (tests/test_browser_ui.py; no
# browser is downloaded by Playwright). Installed when missing and we are root; otherwise the
# command to run is printed and the browser test skips, saying why.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium (Debian package) for the browser test"; \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)) \
	  || echo "WARNING: apt-get could not install chromium; the browser test will skip"; \
	else \
	  echo "NOTE: $(CHROMIUM) missing; the browser test will skip. Install it with: sudo apt-get install -y chromium"; \
	fi

demo: env
	$(BIN)/dhs demo --out $(DEMO_DIR)

bench: env
	$(BIN)/python -m benchmarks.run

clean-demo:
	rm -rf $(DEMO_DIR)

# Re-resolve the lock from requirements.in (maintainers only; commit the result).
lock: env
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.lock

# Mutation testing (issue 20): mutmut over the pure core (setup.cfg [mutmut]: which modules, which
# fast tests). Not part of `make test` or CI. Its pins live in requirements-mutate.lock (made with
# `uv pip compile requirements-mutate.in -c requirements.lock`), installed here only.
# `make mutate MUTANTS='pipeline.physics_checks*'` mutates one module; the report lists killed /
# total per module and every survivor with its diff (mutation_report.md).
MUTANTS ?=
mutate: env
	$(BIN)/uv pip install --python $(BIN)/python -r requirements-mutate.lock
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python scripts/mutation_report.py mutation_report.md $(MUTANTS)
