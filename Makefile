# Portfolio backend: `make run` starts the whole stack, `make test` runs every test.
#
# Nothing needs installing by hand beyond Python 3.11 with pip: uv is brought in
# when missing (into .tools/), and uv never downloads a Python of its own.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON ?= 3.11

PYTHON_BOOTSTRAP ?= python3
TOOLS_DIR := $(CURDIR)/.tools
UV ?= $(or $(shell command -v uv 2>/dev/null),$(TOOLS_DIR)/uv/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.make-installed
PROJECT_FILES := uv.lock pyproject.toml $(wildcard shared/pyproject.toml services/*/pyproject.toml)
OPS := $(PY) -m portfolio_content.ops

# Packages and tests that the strict type check covers. Each folder under tests/
# is checked on its own, with itself on the module path, because its test
# modules import helpers by bare name (``from stack import Stack``), from beside
# them or from tests/integration.
MYPY_PATHS := shared/src $(wildcard services/*/src) shared/tests $(wildcard services/*/tests) $(wildcard bench)
SYSTEM_TEST_DIRS := $(wildcard tests/*/)

.PHONY: help install run test test-deps lint format \
	db-generate db-migrate db-migrate-prod db-downgrade backup restore import export \
	flush-cache admin-key config clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Tooling

$(TOOLS_DIR)/uv/bin/uv:
	@echo "uv not found: installing it into $(TOOLS_DIR)/uv"
	$(PYTHON_BOOTSTRAP) -m pip install --quiet --disable-pip-version-check --target $(TOOLS_DIR)/uv uv

$(INSTALLED): $(PROJECT_FILES) | $(UV)
	$(UV) sync --frozen
	@touch $@

install: $(INSTALLED) ## Install every package of the workspace from uv.lock

# Debian packages the tests use: promtool (package prometheus) checks the alert
# rules, the runbook's commands need redis-cli, jq and sqlite3, and the benchmark
# harness tests drive wrk. policy-rc.d
# keeps apt from starting the daemons these packages ship.
DEBIAN_TEST_COMMANDS := promtool:prometheus redis-cli:redis-tools jq:jq sqlite3:sqlite3 wrk:wrk

test-deps:
	@missing=""; \
	for pair in $(DEBIAN_TEST_COMMANDS); do \
		command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq; \
		created_policy=0; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		if [ "$$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	fi

# Chromium for the browser tests (tests/browser): Debian's chromium and
# chromium-driver, driven by Playwright, which never downloads a browser here.
.PHONY: browser-deps
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "chromium not found: installing the Debian packages chromium and chromium-driver"; \
		apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# Running and testing

run: $(INSTALLED) ## Start NATS (unless NATS_URL is set) and the four services in the foreground
	$(PY) -m portfolio_shared.devstack

# pytest exits with 5 when no test was collected (a PYTEST_ARGS filter that
# matches nothing): that is reported, not treated as a failure.
test: $(INSTALLED) test-deps browser-deps ## Install what is missing, then run every test (PYTEST_ARGS adds options)
	@status=0; $(UV) run --frozen --no-sync pytest $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" = 5 ]; then echo "pytest collected no test"; status=0; fi; \
	exit $$status

lint: $(INSTALLED) ## Check formatting, lint rules and strict types
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_PATHS)
	@for dir in $(SYSTEM_TEST_DIRS); do \
		echo "MYPYPATH=$$dir:tests/integration $(VENV)/bin/mypy $$dir"; \
		MYPYPATH=$$dir:tests/integration $(VENV)/bin/mypy $$dir || exit 1; \
	done

format: $(INSTALLED) ## Rewrite files in the project's format and apply safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Operator commands: each wraps `python -m portfolio_content.ops`, which reads
# the same variables as the services (TURSO_DATABASE_URL, NATS_URL, ...).
# ARGS passes further options through.
BACKUP_DIR ?= $(or $(DATA_DIR),data)/backups
FILE ?= $(BACKUP_DIR)/portfolio-$(shell date -u +%Y%m%d-%H%M%S).sql
DIR ?= content-export

db-generate: $(INSTALLED) ## Generate a migration from schema changes: make db-generate MESSAGE="add a column"
	@if [ -z "$(MESSAGE)" ]; then echo 'MESSAGE is missing: make db-generate MESSAGE="what changes"' >&2; exit 2; fi
	$(OPS) db-generate -m "$(MESSAGE)" $(ARGS)

db-migrate: $(INSTALLED) ## Apply migrations to the development database
	$(OPS) migrate $(ARGS)

db-migrate-prod: $(INSTALLED) ## Apply migrations to the production database (TURSO_DATABASE_URL)
	$(OPS) migrate --prod $(ARGS)

db-downgrade: $(INSTALLED) ## Revert migrations down to REVISION (or base)
	@if [ -z "$(REVISION)" ]; then echo 'REVISION is missing: make db-downgrade REVISION=<revision>' >&2; exit 2; fi
	$(OPS) downgrade "$(REVISION)" $(ARGS)

backup: $(INSTALLED) ## Write an SQL dump of the database to FILE (default under DATA_DIR/backups)
	@mkdir -p "$(dir $(FILE))"
	$(OPS) backup "$(FILE)" $(ARGS)

restore: $(INSTALLED) ## Restore FILE into a new database: make restore FILE=x.sql DATABASE_URL=file:new.db
	$(OPS) restore "$(FILE)" --database-url "$(DATABASE_URL)" $(ARGS)

import: $(INSTALLED) ## Import Markdown content files from DIR
	$(OPS) import "$(DIR)" $(ARGS)

export: $(INSTALLED) ## Export all content as Markdown files into DIR
	$(OPS) export "$(DIR)" $(ARGS)

flush-cache: $(INSTALLED) ## Make every gateway replica drop its content cache
	$(OPS) flush-cache $(ARGS)

admin-key: $(INSTALLED) ## Print a new random admin API key
	$(OPS) gen-admin-key $(ARGS)

config: $(INSTALLED) ## Print the effective configuration, secrets masked
	$(OPS) config $(ARGS)

clean: ## Remove the virtual environment, bootstrapped tools and caches
	rm -rf $(VENV) $(TOOLS_DIR) .mypy_cache .ruff_cache .pytest_cache

# Benchmarks (bench/): wrk comes from Debian's package and is installed when
# missing; results go to bench-results/, and the full run also rewrites
# docs/benchmarks.md and docs/benchmarks.json.
BENCH := BENCH_UV=$(UV) $(PY) -m bench
BENCH_WRK := command -v wrk >/dev/null || { echo "wrk not found: installing the Debian package wrk"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }

.PHONY: bench bench-quick

bench: $(INSTALLED) ## Run every benchmark (several minutes) and write docs/benchmarks.md
	@$(BENCH_WRK)
	$(BENCH)

bench-quick: $(INSTALLED) ## Run a short benchmark (under a minute) ending with one line of key ratios
	@$(BENCH_WRK)
	$(BENCH) --quick
