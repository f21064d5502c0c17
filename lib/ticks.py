# Time as MicroPython's time.ticks_ms() gives it: milliseconds that wrap at 2**30. The
# pure modules take the time from their caller and do the arithmetic here, so the same
# code runs on CPython with any counter.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MASK = const(0x3FFFFFFF)
HALF = const(0x20000000)


def diff(a, b):
    """a - b in ms, correct across the wrap (like time.ticks_diff)."""
    return ((a - b + HALF) & MASK) - HALF


def add(t, ms):
    return (t + ms) & MASK
