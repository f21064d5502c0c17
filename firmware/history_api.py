# GET /api/history as pieces of JSON text; loaded only while one is served:
#   {"power": {"step_s": 300, "end": <unix time the last slot starts>, "a": [...], "b": [...],
#    "c": [...], "total": [...]}, "daily": [{"date": "YYYY-MM-DD", "forward": kWh,
#    "reverse": kWh}, ...]}
# power: the average W of each phase in each 5-minute slot of the last 24 h, oldest first,
# the last one the slot being filled; null where no report came. total: the sum of the
# phases' averages (null where one is missing). A single-phase meter has "a" and "total"
# only. Before the clock is known: "end" null and empty lists.
# daily: the days in energy.days, oldest first, then today (live); null where a total is
# not known; nothing before the clock is known. Both files are firmware/store.py's.
import struct
import time

from spm02 import fmt
from history import SLOTS, STEP, NULL
from firmware import board

RING = 73          # the formats are store.py's (a test holds these to its values)
DAYS = 366
CHECK = 0xAC757A8

PER = 24  # numbers per piece


def days(path, first, last):
    """(day, forward, reverse) of the days first..last kept in energy.days, oldest first;
    forward and reverse None where unknown."""
    try:
        fd = open(path, "rb")
    except OSError:
        return
    buf = bytearray(16)
    try:
        for day in range(first, last + 1):
            fd.seek(day % DAYS * 16)
            if fd.readinto(buf) == 16:
                d, f, r, ck = struct.unpack("<iiii", buf)
                if d == day and ck == d ^ f ^ r ^ CHECK:
                    yield day, None if f < 0 else f, None if r < 0 else r
    finally:
        fd.close()


class Slots:
    """The average W of each phase in a slot of the last 24 h: from RAM (lib/history.py)
    or energy.dat."""

    def __init__(self, e):
        self.ring = e.ring
        self.fd = None
        self.buf = bytearray(2)
        if e.ring.base >= 0:
            try:
                self.fd = open(e.path, "rb")
            except OSError:
                pass

    def get(self, s, k):
        ring = self.ring
        v = ring.get(s, k)
        if v == NULL and self.fd is not None and ring.base - SLOTS + 1 < s <= ring.base:
            self.fd.seek(RING + s % SLOTS * 6 + 2 * k)
            if self.fd.readinto(self.buf) == 2:
                v = self.buf[0] | self.buf[1] << 8
                v = v - 0x10000 if v & 0x8000 else v
        return None if v == NULL else v

    def total(self, s, nph):
        t = 0
        for k in range(nph):
            v = self.get(s, k)
            if v is None:
                return None
            t += v
        return t

    def close(self):
        if self.fd is not None:
            self.fd.close()


def _num(v, dec=0):
    return "null" if v is None else fmt(v, dec)


def _day(day, f, r):
    # the date of a day number by the port's own gmtime (the ESP32 port counts from 2000)
    y, m, d = time.gmtime(day * 86400 - (946684800 if board.ESP32 else 0))[:3]
    return '{"date":"%04d-%02d-%02d","forward":%s,"reverse":%s}' % (y, m, d, _num(f, 2), _num(r, 2))


def parts(e):
    """e: the firmware's energy keeper (lib/energy.Energy with the file's path)."""
    ring = e.ring
    m = e.meter
    nph = m.phases()
    end = ring.slot
    n = SLOTS if end >= 0 else 0
    yield '{"power":{"step_s":%d,"end":%s' % (STEP, "%d" % (end * STEP) if n else "null")
    sl = Slots(e)
    try:
        for k in range(nph + 1):
            yield ',"%s":[' % ("abc"[k] if k < nph else "total")
            for i in range(0, n, PER):
                yield ("," if i else "") + ",".join(
                    _num(sl.get(s, k) if k < nph else sl.total(s, nph))
                    for s in range(end - SLOTS + 1 + i, end - SLOTS + 1 + i + PER))
            yield "]"
    finally:
        sl.close()
    yield '},"daily":['
    today = e.today
    if today >= 0:
        sep = ""
        for day, f, r in days(e.path[:-3] + "days", today - 365, today - 1):
            yield sep + _day(day, f, r)
            sep = ","
        mf, mr = m.mono(0), m.mono(1)
        yield sep + _day(today, e.value(0, mf, mr), e.value(1, mf, mr))
    yield "]}"


async def serve(http, w, *_):
    await http.stream(w, "application/json", parts(http.app.keeper))
