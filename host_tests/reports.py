# The meter's reports as the tests build them (DP records for commands.encode_dp) and the feeding
# of them to a Meter, shared by the unit tests. Not a test module: plain Python that runs
# under pytest and in the MicroPython unix port (host_tests/mp_runner.py) alike.
import dptable
from portable import hexb
from commands import encode_dp
from tuya import T_RAW, T_VALUE, T_STRING, T_BITMAP
from tz import days_from_civil

DAY = 86400
LEAK = (113, dptable.ANY, "leakage_current", T_VALUE, 3, "A", 0)  # DP 113: cloud current_b


def raw_phase(v, i, p):
    return bytes((v >> 8, v & 0xFF, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF,
                  (p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF))


def feed(m, recs, now=0):
    data = b"".join(encode_dp(*r) for r in recs)
    return m.dps_in(data, 0, len(data), now)


def v2_report(va=2314, ia=5000, pa=1100, vb=2301, ib=1200, pb=250, vc=2330, ic=3000, pc=-600):
    recs = [(1, T_VALUE, 123456), (23, T_VALUE, 789), (29, T_VALUE, pa + pb + pc),
            (32, T_VALUE, 5002), (50, T_VALUE, 95), (19, T_STRING, "vow25010001"), (9, T_BITMAP, 0)]
    for k, (v, i, p) in enumerate(((va, ia, pa), (vb, ib, pb), (vc, ic, pc))):
        recs.append((6 + k, T_RAW, raw_phase(v, i, p & 0xFFFFFF)))
        recs += [(102 + 3 * k, T_VALUE, v), (103 + 3 * k, T_VALUE, i), (104 + 3 * k, T_VALUE, p)]
    return recs


def cloud_report():
    recs = [(1, T_VALUE, 500), (29, T_VALUE, 1500), (102, T_VALUE, 900), (130, T_VALUE, 3)]
    for k, (v, i, p, pf) in enumerate(((2300, 2500, 500, 87), (2310, 2500, 500, 87), (2320, 2500, 500, 86))):
        b = 103 + 9 * k
        recs += [(6 + k, T_RAW, raw_phase(v, i, p)), (b, T_VALUE, v), (b + 1, T_VALUE, i),
                 (b + 2, T_VALUE, p), (b + 5, T_VALUE, pf), (b + 6, T_VALUE, 1000 + k), (b + 7, T_VALUE, k)]
    return recs


def v0x(ver, v, i, p, q, s, pf, signs=0):
    """A raw phase DP in Tuya's v01/v02 format from magnitudes (and v02's sign bits)."""
    b = bytes((ver, 0x0F, v >> 8, v & 0xFF))
    for x in (i, p, q, s):
        b += bytes(((x >> 16) & 0xFF, (x >> 8) & 0xFF, x & 0xFF))
    b += bytes((pf,))
    return b + (bytes((signs,)) if ver == 2 else b"")


def spm01_report(v=2301, i=4000, p=850, raw=True, values=False, fwd=12345, rev=678):
    recs = [(1, T_VALUE, fwd), (2, T_VALUE, rev), (9, T_BITMAP, 0), (18, T_RAW, hexb("08 01 00 1E"))]
    if raw:
        recs.append((6, T_RAW, raw_phase(v, i, p & 0xFFFFFF)))
    if values:
        recs += [(102, T_VALUE, v), (103, T_VALUE, i), (104, T_VALUE, p)]
    return recs


# --- the energy counters, fed unix times as the firmware's clock would ---------------

def utc(y, mo, d, h=0, mi=0, s=0):
    return days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + s


def counts(f, r=0, pa=1000, pb=200, pc=-300):
    rec = v2_report(pa=pa, pb=pb, pc=pc)
    return [x for x in rec if x[0] not in (1, 23)] + [(1, T_VALUE, f), (23, T_VALUE, r)]


def days(m):
    v = m.values()
    return tuple(v.get(k) for k in dptable.DAY_KEYS)
