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
BOARD ?=
FROZEN ?=
HOST ?=
PASSWORD ?=
WAIT ?=
NOISE ?=

# The 32-bit runtimes (make unix32) are built from a MicroPython v1.28.0 source tree
MPY_DIR ?=
export MPY_DIR
MP32 := $(CURDIR)/.unix32/micropython32
MP32F := $(CURDIR)/.unix32/micropython32-frozen
# The interpreter make run uses: MICROPYTHON=<absolute path>, else the PyPI unix port
MICROPYTHON ?=
RUN_MP = $(if $(MICROPYTHON),$(MICROPYTHON),$(CURDIR)/$(MP))
# PyPI's umqtt.simple 1.3.4 goes on the path only for an interpreter without one frozen in:
# on the 32-bit stock-image runtime the frozen 1.7.0 runs, as on the device.
HOST_UMQTT = $(shell MICROPYPATH=.frozen $(RUN_MP) -c "import umqtt.simple" >/dev/null 2>&1 || echo ":$(CURDIR)/build/host")
PORTABLE_TESTS = $$(grep -l '^PORTABLE = True' host_tests/test_*.py) $$(ls host_tests/mp_test_*.py 2>/dev/null)
TESTPATH := $(MPPATH):$(CURDIR)/host_tests/fakes:$(CURDIR)/host_tests:$(CURDIR)

.PHONY: soak e2e-repeat setup check test test-mp test-py test-32 unix32 image decode build run sim deploy ota bundle flash console bench clean help

help:
	@echo "make setup      venv with the pinned tools, umqtt.simple for the host run"
	@echo "make test       the whole test suite (make check + MicroPython unix port + pytest)"
	@echo "make check [NOISE=1]   device code and the tests' fakes type-checked against MicroPython v1.28's stubs (ESP32-C3, ESP32)"
	@echo "make decode [JSON=1] < log   decode TuyaMCU frames found in any text"
	@echo "make run CONFIG=<file> [HEAPSIZE=<n>] [MICROPYTHON=<path>]   the firmware in the unix port"
	@echo "make unix32 MPY_DIR=<MicroPython source>   the 32-bit runtimes (stock image, firmware frozen)"
	@echo "make sim        firmware + simulated meter + Mosquitto, prints the page URL"
	@echo "make build      compile lib/ and firmware/ to .mpy in build/, with a size report"
	@echo "make deploy PORT=<port> [CONFIG=<file>] [FROZEN=1] [DRY=1]   copy build/ to the board"
	@echo "make ota HOST=<host[:port]> PASSWORD=<pw> [WAIT=<s>] [DRY=1]   update the firmware's files over the network"
	@echo "make bundle     the bundle make ota would upload, as build/spm02-<version>-<id>.ota (for /settings)"
	@echo "make image BOARD=ESP32_GENERIC_C3|ESP32_GENERIC MPY_DIR=<dir> [DRY=1]   a custom image, firmware frozen"
	@echo "make flash PORT=<port> FIRMWARE=<image.bin> [DRY=1]   write MicroPython (official or make image's)"
	@echo "make console PORT=<port>   the board's REPL"
	@echo "make bench [SOAK=1]   memory, allocation, latency and size figures"
	@echo "make soak [SOAK_DAYS=30] [SOAK_SEED=<n>]   a month on a faster clock at the 96 KiB heap, cuts and restarts (needs MPY_DIR)"
	@echo "make e2e-repeat [N=10]   the end-to-end suite N times in a row on every runtime, stops at a failure"

setup: $(STAMP) $(UMQTT)

$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
		{ rm -rf $(VENV); tools/apt-ensure --install python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(UMQTT): | $(STAMP)
	$(PY) tools/fetch_umqtt.py .deps

# The device code (and the tests' fakes) against MicroPython v1.28's stubs for each board;
# tools/check.py installs the pinned stubs (tools/check/*.txt) into .stubs/ and pyright.
check: setup
	$(PY) tools/check.py $(if $(NOISE),--noise)

# The portable tests (marked PORTABLE = True) run in the MicroPython unix port too;
# mp_test_*.py (the ESP32 parts, with fakes of machine and network) run only there.
test-mp: setup
	MICROPYPATH=$(TESTPATH) $(MP) host_tests/mp_runner.py $(PORTABLE_TESTS)

test-py: setup
	tools/apt-ensure mosquitto mosquitto
	tools/apt-ensure chromedriver chromium chromium-driver
	$(PY) -m pytest -q host_tests

# With MPY_DIR: the portable tests and the end-to-end suite again on both 32-bit runtimes
test-32: setup
ifeq ($(MPY_DIR),)
	@echo "micropython32: skipped: MPY_DIR is not set (a MicroPython v1.28.0 source tree with its micropython-lib; .ci/run sets it when ../shared/micropython/src exists)"
else
	$(PY) tools/unix32.py
	MICROPYPATH=$(TESTPATH) $(MP32) host_tests/mp_runner.py --label=micropython32 --note="stock image: asyncio, umqtt.simple 1.7.0 frozen" $(PORTABLE_TESTS)
	MICROPYPATH=$(TESTPATH) $(MP32F) host_tests/mp_runner.py --label=micropython32 --note="custom image: the firmware frozen too" $(PORTABLE_TESTS)
	tools/apt-ensure mosquitto mosquitto
	tools/apt-ensure chromedriver chromium chromium-driver
	SPM02_MICROPYTHON=$(MP32) $(PY) -m pytest -q -m e2e host_tests
	SPM02_MICROPYTHON=$(MP32F) $(PY) -m pytest -q -m e2e host_tests
	SOAK_DAYS=2 SOAK_SEED=7 $(PY) tools/soak.py
endif

# A month in at most 30 minutes on the 32-bit stock-image runtime at the 96 KiB budget heap
# (tools/soak.py): every midnight, a month end, DST both ways, power cuts, restarts
soak: build
ifeq ($(MPY_DIR),)
	@echo "soak: needs MPY_DIR (the 32-bit stock-image runtime of make unix32)"; exit 1
else
	$(PY) tools/unix32.py
	tools/apt-ensure mosquitto mosquitto
	$(PY) tools/soak.py
endif

unix32: setup
	$(PY) tools/unix32.py

# A test that fails by chance shows here, not in CI: the e2e suite N times on every runtime
e2e-repeat: setup build
	tools/apt-ensure mosquitto mosquitto
	tools/apt-ensure chromedriver chromium chromium-driver
	$(PY) tools/e2e_repeat.py --rounds $(or $(N),10)

test: check test-mp test-py test-32

decode: setup
	@$(PY) tools/decode.py $(if $(JSON),--json)

build: setup
	$(PY) tools/build.py

# The firmware runs from the build tree: what is tested is what is flashed. Exit status 75
# is the firmware asking for a restart (OTA, the setup portal, the restart command): it is
# started again, as a reset would on the device, with SPM02_RESET_CAUSE set to that status (its
# /api/state device.reset_cause; "power-on" at the first start).
run: build
	$(if $(and $(MPY_DIR),$(filter $(MP32F),$(MICROPYTHON))),@$(PY) tools/unix32.py >/dev/null)
	cd build && rc=; while :; do SPM02_RESET_CAUSE=$$rc MICROPYPATH=.frozen:$(CURDIR)/build/lib$(HOST_UMQTT) \
		$(RUN_MP) $(if $(HEAPSIZE),-X heapsize=$(HEAPSIZE)) main.py $(abspath $(CONFIG)); \
		rc=$$?; [ $$rc -eq 75 ] || exit $$rc; echo "make run: restart (exit status 75)" >&2; done

deploy: build
	$(PY) tools/deploy.py deploy --port "$(PORT)" $(if $(CONFIG_GIVEN),--config "$(CONFIG)") $(if $(FROZEN),--frozen) $(if $(DRY),--dry-run)

# The password goes to the tool in its environment, never on a command line or in make's echo
ota: export SPM02_OTA_PASSWORD = $(value PASSWORD)
ota: build
	@$(PY) tools/ota.py --host "$(HOST)" $(if $(WAIT),--wait $(WAIT)) $(if $(DRY),--dry-run)

bundle: build
	@$(PY) tools/ota.py --bundle

image: setup
	$(PY) tools/image.py --board "$(BOARD)" $(if $(DRY),--dry-run)

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
