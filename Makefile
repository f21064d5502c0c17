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
CONFIG_GIVEN := $(filter command line environment,$(origin CONFIG))
CONFIG ?= host_tests/host-config.json
JSON ?=

PORT ?=
FIRMWARE ?=
DRY ?=

.PHONY: setup test test-mp test-py decode build run sim deploy flash console bench clean help

help:
	@echo "make setup      venv with the pinned tools, umqtt.simple for the host run"
	@echo "make test       the whole test suite (MicroPython unix port + pytest)"
	@echo "make decode [JSON=1] < log   decode TuyaMCU frames found in any text"
	@echo "make run CONFIG=<file> [HEAPSIZE=<n>]   the firmware in the unix port"
	@echo "make sim        firmware + simulated meter + Mosquitto, prints the page URL"
	@echo "make build      compile lib/ and firmware/ to .mpy in build/, with a size report"
	@echo "make deploy PORT=<port> [CONFIG=<file>] [DRY=1]   copy build/ to the board"
	@echo "make flash PORT=<port> FIRMWARE=<image.bin> [DRY=1]   write MicroPython with esptool"
	@echo "make console PORT=<port>   the board's REPL"
	@echo "make bench [SOAK=1]   memory, allocation, latency and size figures"

setup: $(STAMP) $(UMQTT)

$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
		{ rm -rf $(VENV); tools/apt-ensure --install python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(UMQTT): | $(STAMP)
	$(PY) tools/fetch_umqtt.py .deps

# The portable tests (marked PORTABLE = True) run in the MicroPython unix port too;
# mp_test_*.py (the ESP32 parts, with fakes of machine and network) run only there.
test-mp: setup
	MICROPYPATH=$(MPPATH):$(CURDIR)/host_tests/fakes:$(CURDIR)/host_tests:$(CURDIR) $(MP) \
		host_tests/mp_runner.py $$(grep -l '^PORTABLE = True' host_tests/test_*.py) \
		$$(ls host_tests/mp_test_*.py 2>/dev/null)

test-py: setup
	tools/apt-ensure mosquitto mosquitto
	tools/apt-ensure chromedriver chromium chromium-driver
	$(PY) -m pytest -q host_tests

test: test-mp test-py

decode: setup
	@$(PY) tools/decode.py $(if $(JSON),--json)

build: setup
	$(PY) tools/build.py

# The firmware runs from the build tree: what is tested is what is flashed.
run: build
	cd build && MICROPYPATH=.frozen:$(CURDIR)/build/lib:$(CURDIR)/build/host \
		exec $(CURDIR)/$(MP) $(if $(HEAPSIZE),-X heapsize=$(HEAPSIZE)) main.py $(abspath $(CONFIG))

deploy: build
	$(PY) tools/deploy.py deploy --port "$(PORT)" $(if $(CONFIG_GIVEN),--config "$(CONFIG)") $(if $(DRY),--dry-run)

flash: setup
	$(PY) tools/deploy.py flash --port "$(PORT)" --firmware "$(FIRMWARE)" $(if $(DRY),--dry-run)

console: setup
	$(PY) tools/deploy.py console --port "$(PORT)" $(if $(DRY),--dry-run)

sim: setup
	tools/apt-ensure mosquitto mosquitto
	tools/apt-ensure mosquitto_sub mosquitto-clients
	$(PY) tools/sim.py

bench: build
	tools/apt-ensure mosquitto mosquitto
	$(PY) tools/bench.py

clean:
	rm -rf build artifacts .pytest_cache .hypothesis
