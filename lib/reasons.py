# Why the meter's layout is what it is, in words: for /api/state, make decode and the
# plausibility warning of a forced layout. Only those need it, so it is not part of the
# resident layout module (its strings would sit in the heap from .mpy).
import dptable as T
from dptable import SPM01
import layout as L


def reason(why, product_key=None, user_n=0):
    """Why the layout (layout.py's why) in words."""
    kind = why >> 16
    d = why & 0xFFFF
    if kind == L.WHY_HIGH:
        s = "DP %d seen: only the cloud layout has DPs %d..%d" % (d & 0xFF, L.CLOUD_SPAN[0], L.CLOUD_SPAN[-1])
    elif kind == L.WHY_ONLY:
        s = "DP %d seen: only the %s layout has it" % (d & 0xFF, T.LAYOUTS[d >> 8])
    elif kind == L.WHY_MATCH:
        ids = L.PHASE_IDS[d >> 4]
        k = d & 15
        s = "DP %d, %d, %d equal the voltage, current and power inside raw DP %d" % (
            ids[3 * k], ids[3 * k + 1], ids[3 * k + 2], L.RAW_A + k)
    elif kind == L.WHY_SINGLE:
        ids = L.PHASE_IDS[SPM01]
        s = "only %s seen for the phases, DP %d present: single-phase" % (
            ("raw DP %d" % L.RAW_A, "DPs %d..%d" % (ids[0], ids[2]),
             "raw DP %d and DPs %d..%d" % (L.RAW_A, ids[0], ids[2]))[d - 1], L.ONLY[SPM01][0])
    elif kind == L.WHY_THREE:
        s = "DP %d seen: more than one phase, nothing more yet" % d
    elif kind == L.WHY_HINT:
        s = "product key %s (a hint until the DPs confirm it)" % product_key
    elif kind == L.WHY_FORCED:
        s = "forced by config"
    else:
        s = "default: no evidence yet"
    if user_n:
        s += " (with %d DP%s from the config's dps map)" % (user_n, "" if user_n == 1 else "s")
    return s
