# Deloton Stream. `make help` lists the targets.
SHELL := /bin/bash
PY    := .venv/bin/python
UV    := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=
# The suite waits on brokers, databases and browsers far more than it computes: three workers
# (pytest-xdist, one test file per worker at a time) keep both cores busy.
TEST_WORKERS ?= 3
SOAK_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

.venv/.installed: requirements.lock pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
	@[ -x $(PY) ] || $(UV) venv -q --python python3.11 .venv
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	@touch $@

install: .venv/.installed ## create .venv with the pinned dependencies and the `deloton` CLI

lock: ## re-pin requirements.lock from pyproject.toml (and checkov's own lock for tests/deploy)
	$(UV) pip compile -q pyproject.toml --all-extras --no-header --no-annotate --python-version 3.11 -o requirements.lock
	$(UV) pip compile -q tests/deploy/checkov.in --no-header --no-annotate --python-version 3.11 -o tests/deploy/checkov.lock

demo: install ## start broker, database, simulated fleet and every service; Ctrl-C stops all
	.venv/bin/deloton demo

system-deps: ## Debian packages the tests need (pdftoppm renders report pages to PNG; wrk loads the API in bench.api)
	@command -v pdftoppm >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q poppler-utils; }
	@command -v wrk >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q wrk; }

test: install system-deps ## run the whole test suite against a real broker and PostgreSQL
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: install ## only the fast tests that need no broker or database
	$(PY) -m pytest -m "not kafka and not postgres" $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	.venv/bin/ruff check services tests bench
	.venv/bin/ruff format --check services tests bench
	.venv/bin/mypy

fmt: install ## apply ruff formatting and safe fixes
	.venv/bin/ruff check --fix services tests bench
	.venv/bin/ruff format services tests bench

bench: install system-deps ## run every benchmark: bench/results/<name>.json and REPORT.md (BENCH_ARGS=--quick: smoke runs)
	@command -v wrk >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q wrk; }
	$(PY) -m bench.run_all $(BENCH_ARGS)

hostile: install ## 100,000 hostile lines through the running services; a table, non-zero on failure
	$(PY) -m bench.hostile $(HOSTILE_ARGS)

soak: install ## every service for 5 minutes under scheduled faults, checked against the truth (SOAK_ARGS)
	.venv/bin/deloton --log-level WARNING soak $(SOAK_ARGS)

images: ## build the service image and the Lambda jobs image (needs a Docker daemon)
	docker build -f docker/Dockerfile -t deloton:local .
	docker build --provenance=false -f docker/Dockerfile.lambda -t deloton-jobs:local .

down: ## stop the embedded broker and database started by `deloton infra up`
	-.venv/bin/deloton infra down

clean: down ## remove the virtualenv and local state
	rm -rf .venv .venv-checkov .deloton outbox

.PHONY: help install system-deps lock demo test test-unit lint fmt bench hostile soak images down clean
