# SPM02 firmware: host tools. Everything installs what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
# .frozen keeps MicroPython's built-in asyncio importable when MICROPYPATH is set
MPPATH := .frozen:$(CURDIR)/lib:$(CURDIR)/.deps
STAMP := $(VENV)/.installed
UMQTT := .deps/umqtt/simple.py
HEAPSIZE ?=
CONFIG ?= host_tests/host-config.json
JSON ?=

.PHONY: setup test test-mp test-py decode run sim clean help

help:
	@echo "make setup      venv with the pinned tools, umqtt.simple for the host run"
	@echo "make test       the whole test suite (MicroPython unix port + pytest)"
	@echo "make decode [JSON=1] < log   decode TuyaMCU frames found in any text"
	@echo "make run CONFIG=<file> [HEAPSIZE=<n>]   the firmware in the unix port"
	@echo "make sim        firmware + simulated meter + Mosquitto, prints the page URL"

setup: $(STAMP) $(UMQTT)

$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(UMQTT): | $(STAMP)
	$(PY) tools/fetch_umqtt.py .deps

# The portable tests (marked PORTABLE = True) run in the MicroPython unix port too.
test-mp: setup
	MICROPYPATH=$(MPPATH):$(CURDIR)/host_tests $(MP) host_tests/mp_runner.py \
		$$(grep -l '^PORTABLE = True' host_tests/test_*.py)

test-py: setup
	tools/apt-ensure mosquitto mosquitto
	$(PY) -m pytest -q host_tests

test: test-mp test-py

decode: setup
	@$(PY) tools/decode.py $(if $(JSON),--json)

run: setup
	MICROPYPATH=$(MPPATH) $(MP) $(if $(HEAPSIZE),-X heapsize=$(HEAPSIZE)) main.py $(CONFIG)

sim: setup
	tools/apt-ensure mosquitto mosquitto
	tools/apt-ensure mosquitto_sub mosquitto-clients
	$(PY) tools/sim.py

clean:
	rm -rf build artifacts .pytest_cache .hypothesis
