# lib/ticks.py is the device's time.ticks_* for the pure lib/ code (which takes the time from
# its caller): on a 32-bit MicroPython, as on the ESP32, ticks_ms() wraps at 2**30 (a small
# int) and lib/ticks must wrap there too. MicroPython only; `make test-32` runs it on the
# 32-bit runtimes, where the wrap is the ESP32's.
import sys
import time

import ticks

PAIRS = ((5, 3), (3, 5), (0, 0), (1000, 0), (0x1FFFFFFF, 0), (0, 0x1FFFFFFF), (123456, 654321))
WRAPPING = ((0, 0x3FFFFFFF), (0x3FFFFFFF, 0), (5, 0x3FFFFF00), (0x3FFFFF00, 5), (0x20000000, 0))


def test_period_is_the_devices_on_32_bit():
    period = time.ticks_add(0, -1) + 1
    if sys.maxsize < 2 ** 32:  # small ints of 31 bits: the ESP32's
        assert period == ticks.MASK + 1 == 2 ** 30
    else:  # the 64-bit unix port wraps later; lib/ticks still takes its values (masked)
        assert period > 2 ** 30


def test_diff_and_add_agree_with_time_ticks():
    for a, b in PAIRS:
        assert ticks.diff(a, b) == time.ticks_diff(a, b), (a, b)
        assert ticks.add(a, b) == time.ticks_add(a, b), (a, b)
    if sys.maxsize < 2 ** 32:
        for a, b in WRAPPING:
            assert ticks.diff(a, b) == time.ticks_diff(a, b), (a, b)
            assert ticks.add(a, 0x3FFFFFFF) == time.ticks_add(a, -1), a
