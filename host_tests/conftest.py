import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for d in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools"), HERE, ROOT):
    if d not in sys.path:
        sys.path.insert(0, d)


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _tempdirs():
    """Every temp dir harness.tempdir made (firmwares', brokers', browser profiles), removed
    when the session ends (a firmware's log is read after it stopped, so not before)."""
    yield
    from harness import remove_tempdirs
    remove_tempdirs()


@pytest.fixture(scope="module")
def broker():
    """A Mosquitto on a free loopback port for the tests of one module, stopped after them."""
    from harness import Mosquitto
    b = Mosquitto().start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def browser():
    """A headless chromium for the page tests of one module (browser.py), quit after them."""
    from browser import chromium
    yield from chromium()


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs the firmware (harness.Firmware); make test-32 runs "
                                       "these again on the 32-bit runtimes")


def pytest_collection_modifyitems(config, items):
    # The end-to-end suite is every test of a module that runs the firmware (its Firmware or Rig)
    from harness import Firmware, Rig
    for item in items:
        rig = getattr(item.module, "Rig", None)
        if getattr(item.module, "Firmware", None) is Firmware or isinstance(rig, type) and issubclass(rig, Rig):
            item.add_marker(pytest.mark.e2e)
