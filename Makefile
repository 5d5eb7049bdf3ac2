# Devgem: `make run` starts the whole platform locally; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv prereqs run test unit lint typecheck bench bench-spine bench-logs check-infra clean

help:
	@echo "make run          start the platform locally and deploy the example app (Ctrl-C stops it)"
	@echo "make test         lint, type-check and run every test (unit, integration, end-to-end)"
	@echo "make unit         only the unit tests (no servers)"
	@echo "make bench        both benchmarks below"
	@echo "make bench-spine  the deploy spine (20 deploys; p50/p99 per hop)"
	@echo "make bench-logs   live logs at 100, 1,000 and 3,000 lines/s (latency, loss, duplicates, writes)"
	@echo "make check-infra  offline checks of terraform/ (parse, contract, checkov, fmt)"
	@echo "make clean        remove the virtual environment and local state (.devgem/)"

$(STAMP): requirements-dev.txt functions/requirements.txt shared/pyproject.toml cli/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is needed: sudo apt-get install python3 python3-venv"; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed (found $$($(PYTHON) --version))"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create a virtual environment: sudo apt-get install python3-venv"; exit 2; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

prereqs: $(STAMP)
	@$(PY) -m devstack check

run: prereqs
	$(PY) -m devstack run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy shared/devgem cli/devgem_cli functions devstack localcloud bench tests scripts

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test: prereqs lint typecheck check-infra
	$(PY) -m pytest -q tests --ignore=tests/infra

bench: bench-spine bench-logs

bench-spine: prereqs
	$(PY) -m bench.spine

bench-logs: prereqs
	$(PY) -m bench.logs

check-infra: $(STAMP)
	$(PY) scripts/check_infra.py

clean:
	rm -rf $(VENV) .venv-infra .devgem .mypy_cache .ruff_cache .pytest_cache shared/*.egg-info cli/*.egg-info
