# The energy files next to the config, loaded only for a read or a write (firmware/keeper.py):
#
# energy.dat: what today/yesterday/month, the counter rule and the power chart need after a
#   restart; written whole and atomically (files.write_atomic), at most hourly, at each day
#   change, after a new counter cycle and before a restart. Little-endian:
#     "SPE1" | day, month, have, day start f/r, month start f/r, yesterday f/r (9 x i32)
#     | ring: base, slot, its sums and counts (8 x i32) | n (u8)
#     | the 288 slots of the last 24 h up to slot (base + 1, its average so far), at
#       (slot % 288) * 6: a, b, c (3 x i16)
#     | n x (dpid u8, believed i32, fold i32) | Adler-32 of all before (a, b: u16 each)
#   (lib/energy.py, lib/history.py and lib/counters.py say what the numbers are.)
# energy.days: the last 366 days, one 16-byte record per day at (day % 366) * 16:
#     day, forward, reverse (0.01 kWh; -1 unknown), check (i32 each). A day is written once,
#   when it ends, by rewriting its record alone; a record whose day or check does not match
#   is no day (a torn write, or one from a year before). Read by firmware/history_api.py.
import os
import struct

from firmware import log
from files import write_atomic
from history import SLOTS

MAGIC = b"SPE1"
HEAD = "<17iB"
RING = 73            # where the slots start: 4 + struct.calcsize(HEAD)
COUNTERS = 73 + SLOTS * 6
RECORD = "<iiii"
DAYS = 366
CHECK = 0xAC757A8    # mixed into a record's check: an all-zero record is no day


def run(k, what, t):
    """For keeper k: 0 save energy.dat, 1 keep k.closed in energy.days, 2 load energy.dat
    (returns a note for its status)."""
    if what == 2:
        warn, note = load(k.path, k)
        if warn:
            k.app.config_warnings.append(warn)  # on the page, and logged at start
            return warn
        if note[0] == "n":
            log.info("energy: %s: %s", k.path, note)
        return note
    if what:
        put_day(k.path[:-3] + "days", *k.closed)
    else:
        save(k.path, k)
        k.did_save(t)
    k.writes += 1
    k.error = None


class _Adler:
    def __init__(self):
        self.a, self.b = 1, 0

    def add(self, data):
        a, b = self.a, self.b
        for x in data:
            a = (a + x) % 65521
            b = (b + a) % 65521
        self.a, self.b = a, b
        return data

    def digest(self):
        return struct.pack("<HH", self.a, self.b)


def _old(path, base):
    """energy.dat open for reading its slots, when it holds the slots up to base."""
    if base < 0:
        return None
    try:
        f = open(path, "rb")
    except OSError:
        return None
    h = f.read(RING)
    if len(h) == RING and h[:4] == MAGIC and struct.unpack_from(HEAD, h, 4)[9] == base:
        return f
    f.close()
    return None


def save(path, e):
    """Write the energy file of e (lib/energy.Energy): the slots of RAM go in with those of
    the file before (read as it is written: nothing is held whole)."""
    top = e.ring.slot
    write_atomic(path, _parts(path, e))
    e.ring.base = top - 1  # the file holds the closed slots now: RAM may reuse their room


def _parts(path, e):
    ring = e.ring
    c = e.meter.counters
    known = []
    for i in range(len(c.ids)):  # the believed counters of the layout's energy DPs
        r = e.meter.row(c.ids[i])
        if c.st[i] & 1 and r is not None and r[5] == "kWh":
            known.append(i)
    top = ring.slot  # the new file holds the 288 slots up to the one being filled (its
    ck = _Adler()    # average so far); the closed ones up to base = top - 1
    yield ck.add(MAGIC + struct.pack(HEAD, e.day, e.mon, e.have, *(e.c + [top - 1, top] + ring.acc + [len(known)])))
    old = _old(path, ring.base)
    buf = bytearray(96)
    try:
        for p0 in range(0, SLOTS, 16):
            for p in range(p0, p0 + 16):
                s = top - (top - p) % SLOTS  # the slot at position p
                j = (p - p0) * 6
                # (the old file's oldest position holds the slot it was filling then)
                if old is not None and ring.base - SLOTS + 1 < s <= ring.base:
                    old.seek(RING + p * 6)
                    old.readinto(memoryview(buf)[j:j + 6])
                else:
                    for k in range(3):
                        v = ring.get(s, k)
                        buf[j] = v & 0xFF
                        buf[j + 1] = v >> 8 & 0xFF
                        j += 2
            yield ck.add(buf)
    finally:
        if old is not None:
            old.close()  # before the rename
    yield ck.add(b"".join(struct.pack("<Bii", c.ids[i], c.value[i], c.fold[i]) for i in known))
    yield ck.digest()


def _check(f):
    """The head's numbers of a valid energy file, or why it is not."""
    h = f.read(RING)
    if len(h) < RING or h[:4] != MAGIC:
        return "not an energy file"
    v = struct.unpack_from(HEAD, h, 4)
    end = COUNTERS + v[-1] * 9
    if f.seek(0, 2) != end + 4:
        return "wrong length"
    ck = _Adler()
    f.seek(0)
    buf = bytearray(128)
    n = 0
    while n < end:
        m = f.readinto(buf)
        if not m:
            return "cut short"
        m = min(m, end - n)
        ck.add(memoryview(buf)[:m])
        n += m
    f.seek(end)
    if f.read(4) != ck.digest():
        return "checksum mismatch"
    return v


def load(path, e):
    """Restore the energy file into e. Returns (warning, note): a missing file is a first
    start (a note), a corrupt one a warning; either way the bookkeeping starts afresh. A
    complete .tmp (the rename never happened) is used when the file is not. Never raises."""
    why = None
    try:
        for p in (path, path + ".tmp"):
            try:
                f = open(p, "rb")
            except OSError:
                continue
            with f:
                v = _check(f)
                if isinstance(v, str):
                    why = why or v
                    continue
                e.day, e.mon, e.have = v[0], v[1], v[2]
                e.c[:] = v[3:9]
                ring = e.ring
                ring.base, ring.slot = v[9], v[10]
                ring.acc[:] = v[11:17]
                f.seek(COUNTERS)
                c = e.meter.counters
                for _ in range(v[17]):
                    dpid, value, fold = struct.unpack("<Bii", f.read(9))
                    i = c.slot(dpid)
                    if i >= 0:
                        c.st[i] = 1  # S_KNOWN: believed, not reported since boot
                        c.value[i] = value
                        c.fold[i] = fold
            if p != path:  # the complete .tmp becomes the file: the next save reads its slots
                try:
                    os.remove(path)
                except OSError:
                    pass
                os.rename(p, path)
            if why is None:
                return None, "restored"
            return "%s: %s; restored from %s" % (path, why, p), None
    except Exception as x:
        why = repr(x)
    if why is None:
        return None, "none yet: started afresh"
    return "%s: %s; today, yesterday and month start afresh" % (path, why), None


def put_day(path, day, f, r):
    """Keep the energy of a day that ended (counts; None unknown) in energy.days."""
    f = -1 if f is None else f
    r = -1 if r is None else r
    try:
        fd = open(path, "r+b")
        if fd.seek(0, 2) != DAYS * 16:
            fd.close()
            raise OSError
    except OSError:
        fd = open(path, "wb")  # new, or not ours: a file of empty records
        z = bytes(16)
        for _ in range(DAYS):
            fd.write(z)
    try:
        fd.seek(day % DAYS * 16)
        fd.write(struct.pack(RECORD, day, f, r, day ^ f ^ r ^ CHECK))
    finally:
        fd.close()
