# Devgem: `make run` starts the whole platform locally; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv prereqs run demo test unit lint typecheck bench bench-spine bench-logs bench-faults bench-crash check-infra clean

help:
	@echo "make run          start the platform locally and deploy the example app (Ctrl-C stops it)"
	@echo "make demo         with make run going: crash the example, see the Slack alert, press Roll back"
	@echo "make test         lint, type-check, then every test, fastest first (unit, integration, localcloud, e2e), and coverage"
	@echo "make unit         only the unit tests (no Java, no servers; a few seconds)"
	@echo "make bench        every benchmark below"
	@echo "make bench-spine  the deploy spine (20 deploys; p50/p99 per hop)"
	@echo "make bench-logs   live logs at 100, 1,000 and 3,000 lines/s (latency, loss, duplicates, writes)"
	@echo "make bench-faults deploys and live logs under kill -9, freezes and outages (stuck, builds, lost, duplicates, recovery)"
	@echo "make bench-crash  crash -> Slack alert latency, a crash loop stays one message, rollback latency"
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

demo: $(STAMP)
	$(PY) -m devstack.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy shared/devgem cli/devgem_cli functions devstack localcloud bench tests scripts

unit: $(STAMP)
	$(PY) -m pytest tests/unit

# Test stages, fastest first: unit (no servers), then every directory under tests/ that is not named
# here (so a new one runs too), then e2e, the whole platform. tests/infra runs in check-infra.
NOT_STAGES := unit e2e infra fixtures __pycache__
TEST_STAGES := unit $(sort $(filter-out $(NOT_STAGES),$(patsubst tests/%/,%,$(wildcard tests/*/)))) e2e
COVERAGE_DATA := .pytest_cache/coverage

test: prereqs lint typecheck check-infra
	@mkdir -p $(dir $(COVERAGE_DATA)) && rm -f $(COVERAGE_DATA)
	@failed=""; \
	for stage in $(TEST_STAGES); do \
	  echo; echo "==> tests/$$stage"; \
	  $(PY) -m pytest tests/$$stage --cov --cov-append --cov-report=; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "make test: tests/$$stage collected no tests" >&2; fi; \
	  if [ $$status -ne 0 ]; then failed="$$failed $$stage"; fi; \
	done; \
	echo; echo "==> line coverage of shared/devgem, cli, functions, localcloud, devstack (code run in the pytest processes)"; \
	$(PY) -m coverage report | grep -E '^(Name|TOTAL)'; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

bench: bench-spine bench-logs bench-faults bench-crash

bench-spine: prereqs
	$(PY) -m bench.spine

bench-logs: prereqs
	$(PY) -m bench.logs

bench-faults: prereqs
	$(PY) -m bench.faults

bench-crash: prereqs
	$(PY) -m bench.crash

check-infra: $(STAMP)
	$(PY) scripts/check_infra.py

clean:
	rm -rf $(VENV) .venv-infra .devgem .mypy_cache .ruff_cache .pytest_cache shared/*.egg-info cli/*.egg-info
