# Placewatch: `make run` runs the whole platform, `make test` runs the whole suite.
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
# `make run` installs the platform and its embedded services only (no test or lint tools); every other target
# installs the development tools too. Each stamp names the pyproject.toml it installed; a development install
# covers a run install of the same file, so it leaves both stamps.
RUN_STAMP := $(VENV)/.installed-run-$(SUM)
STAMP := $(VENV)/.installed-dev-$(SUM)

.PHONY: run test test-fast test-faults test-cluster check lint typecheck bench install clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Placewatch needs Python 3.11 or newer")'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "Install python3-venv (sudo apt-get install python3-venv) and run make again"; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[embedded]"
	@rm -f $(VENV)/.installed-run-* && touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[embedded,dev]"
	@rm -f $(VENV)/.installed-* && touch $@ $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/placewatch run

CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }; \
	else echo "Chromium is missing: the browser tests will be skipped (sudo apt-get install chromium)"; fi

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The fault-injection suite: 100,000 readings through SIGKILLs, a 60 s database outage and a broker
# restart, on private PostgreSQL and Mosquitto instances; prints lost=N doubled=M (both must be 0).
# CI runs it with the cluster and failover runs below (about 6 minutes more).
test-faults: $(STAMP)
	PLACEWATCH_FAULTS=1 PLACEWATCH_CLUSTER=1 $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/faults tests/cluster

# The cluster and failover runs: a three-node NATS cluster (JetStream, MQTT listeners) with a node and an ingest
# worker SIGKILLed, and a PostgreSQL primary SIGKILLed with its synchronous standby promoted; lost=0 doubled=0.
test-cluster: $(STAMP)
	PLACEWATCH_CLUSTER=1 $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/cluster

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check core store

typecheck: $(STAMP)
	$(BIN)/mypy core

check: lint typecheck

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var build *.egg-info
