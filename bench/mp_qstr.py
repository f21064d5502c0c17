# The names MicroPython interns (qstrs) for the firmware on a stock image, where they are
# read from the .mpy files into the heap. They stay there for good: firmware/borrow.py drops
# a module, not its names, so every module loaded once in a long run adds its new names.
# The pools that hold them grow by doubling (the next one is allocated when the last is
# full), so a few names too many cost a whole pool. Prints each stage's qstr_info() after a
# line "stage: <what>"; tools/bench.py reads them.
import sys

import micropython

sys.path.append("../bench")
from mp_heap import RESIDENT, BORROWED, ESP32_ONLY, imp, _drop  # noqa: E402


def stage(what):
    print("stage: " + what)
    micropython.qstr_info()


for name in RESIDENT:
    imp(name)
stage("resident")
for name in BORROWED:
    imp(name)
    _drop(name)
stage("every module")
sys.path.insert(0, "../host_tests/fakes")
imp("machine")
imp("network")
for name in ESP32_ONLY:
    imp(name)
stage("esp32")
