# Two commands: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := storefront

.PHONY: run test lint format chromium postgres redis axe wrk db bench clean help

help:
	@echo "make run   - set up, migrate, seed and serve http://127.0.0.1:5000 (with the Stripe emulator when no keys are set)"
	@echo "make test  - set up and run every test, browser tests included"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

db: $(VENV)/.installed
	FLASK_DEBUG=1 $(BIN)/flask db upgrade
	FLASK_DEBUG=1 $(BIN)/flask catalog seed

run: db
	FLASK_DEBUG=1 $(BIN)/flask serve

# Browser tests drive Chromium's headless shell (Debian's `chromium-headless-shell`, built
# from the same source as its `chromium`: the browser without its desktop parts, a third
# of the CPU per page), else Playwright's build of it where apt is not available.
chromium: $(VENV)/.dev-installed
	@if [ -x /usr/bin/chromium-headless-shell ] || [ -n "$$CHROMIUM_PATH" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		{ $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium-headless-shell >/dev/null; } \
		|| { [ -x /usr/bin/chromium ] && echo "chromium-headless-shell could not be installed: the browser tests use chromium (slower)"; } \
		|| DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	else \
		$(BIN)/python -m playwright install --only-shell chromium; \
	fi

# tests/test_postgres.py runs a throwaway PostgreSQL server: Debian's package where apt is
# available and no server binaries are found (elsewhere those tests are skipped).
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# The browser tests check every page with axe-core (tests/browser/axe.py): the pinned
# version from the npm registry, into the virtualenv (npm itself from Debian if missing).
AXE_VERSION := 4.14.1
AXE_JS := $(VENV)/axe/node_modules/axe-core/axe.min.js

$(AXE_JS): | $(BIN)/python
	@if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; \
	fi
	npm install --no-save --no-audit --no-fund --silent --prefix $(VENV)/axe axe-core@$(AXE_VERSION)

axe: $(AXE_JS)

# tests/test_ratelimits.py shares rate-limit counts between two shops through a throwaway
# Redis server (redis-server, Debian's package; elsewhere that test is skipped).
redis:
	@if command -v redis-server >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; \
	fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest-xdist: tests are independent (own databases, emulators and servers on free ports),
# so they spread over workers. `-n auto` means two per core here (tests/conftest.py: a worker
# waits on Chromium and its servers about half the time); the slow tests start first and go
# out one at a time. `python -m pytest` alone runs them in one process.
# Bytecode is compiled first and cached (in the git-ignored __pycache__ folders) even where
# PYTHONDONTWRITEBYTECODE is set: otherwise every worker, and every server process a test
# starts, compiled the shop and the emulator from source and pytest rewrote the asserts of
# every test module again; starting the four workers took 27 CPU-s instead of 11-16.
# The tests' throwaway files (each test's SQLite files, the PostgreSQL servers' data folders
# and their per-test databases, Chromium's profiles) go to a folder in /dev/shm, in memory,
# when it has room and TMPDIR is not set: on the disk, creating, copying and deleting them
# made a sample of PostgreSQL and browser tests take a fifth more CPU, others a few percent
# (bench/NOTES.md).
TEST_TMPDIR := /dev/shm/shop-tests-$(shell id -u)
TEST_TMPDIR_MIN_KB := 2000000
test: $(VENV)/.dev-installed chromium postgres redis axe lint
	$(BIN)/python -m compileall -q -j 0 storefront stripe_emulator tests
	@if [ -z "$$TMPDIR" ] && [ -d /dev/shm ] && [ -w /dev/shm ] \
		&& [ "$$(df -Pk /dev/shm | awk 'NR==2 {print $$4}')" -ge $(TEST_TMPDIR_MIN_KB) ] \
		&& mkdir -p $(TEST_TMPDIR); then \
		echo "make test: temporary files in $(TEST_TMPDIR) (memory)"; \
		export TMPDIR=$(TEST_TMPDIR); \
	else \
		echo "make test: temporary files in $${TMPDIR:-/tmp} (TMPDIR set, or /dev/shm missing or under 2 GB free)"; \
	fi; \
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n auto

# The benchmarks drive the servers with wrk: Debian's package where apt is available (else
# bench/run.py falls back to a slower Python load generator and says so).
wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; \
	fi

# The suite (bench/run.py: shop vs bare baselines, Pay, 50 shoppers on SQLite and PostgreSQL),
# then the in-process webhook latency benchmark. Exit status 1: a target was missed;
# 2: a benchmark could not run (the larger of the two statuses wins).
bench: $(VENV)/.dev-installed wrk postgres
	@status=0; \
	$(BIN)/python -m bench.run || status=$$?; \
	$(BIN)/python bench/bench_webhooks.py || { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
