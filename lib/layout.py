# Which DP layout a meter speaks, decided from what it sends: the evidence in the DPs
# seen (ranked), the product key as a hint, and the reason in words. The table's rows
# say what each layout means; this module only says which one applies.
#
# Evidence runs on every changed report, so it allocates nothing: it walks fixed DP
# ranges and reads raw phase fields in place.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from dptable import V2, CLOUD, SPM01, LAYOUTS, PRODUCT_HINTS
from spm02 import phase_field, phase_format, PH_V, PH_I, PH_P
from tuya import T_RAW, T_VALUE

# Why a layout was chosen: kind << 16 | detail (the deciding DP; for WHY_HINT the
# layout; for WHY_SINGLE a bit set: 1 raw DP 6 seen, 2 value DPs 102..104 seen)
WHY_DEFAULT = const(0)
WHY_FORCED = const(1)
WHY_HINT = const(2)
WHY_THREE = const(3)    # a DP of phase B or C: not single-phase, nothing more
WHY_SINGLE = const(4)   # phase A only, and DP 2 (reverse energy of the SPM01)
WHY_V2_ONLY = const(5)  # DP 106/107: only the v2 layout has them
WHY_V2 = const(6)       # value DPs equal the readings inside a raw phase DP
WHY_CLOUD = const(7)
WHY_HIGH = const(8)     # a DP above 110: only the cloud layout has them
_LAYOUT = (V2, None, None, V2, SPM01, V2, V2, CLOUD, CLOUD)


def layout_of(why):
    kind = why >> 16
    return why & 0xFFFF if kind == WHY_HINT else _LAYOUT[kind]


def decided(why):
    """True when the DPs themselves chose the layout."""
    return why >> 16 > WHY_HINT


def _mapped(user, dpid):
    for r in user:
        if r[0] == dpid:
            return True
    return False


def _dp(dps, dpid, typ, user):
    d = dps.get(dpid)
    if d is None or d.type != typ or _mapped(user, dpid):
        return None
    return d


def _count(dps, dpid, user):
    d = _dp(dps, dpid, T_VALUE, user)
    if d is None or d.n != 4:
        return None
    return d.value()


def raw_phase(dps, k, user=()):
    """The raw phase DP of phase k (0..2) when it is in a known format, else None."""
    d = _dp(dps, 6 + k, T_RAW, user)
    return d if d is not None and phase_format(d.raw, d.n) else None


def _near(a, b):
    return abs(a - b) <= max(2, abs(b) // 50)


def _matches(dps, user, base, raw):
    r, n = raw.raw, raw.n
    for j in range(3):  # voltage, current, power at base, base + 1, base + 2
        c = _count(dps, base + j, user)
        if c is None or not _near(c, phase_field(r, n, j)):
            return False
    return True


def evidence(dps, user=()):
    """Why the DPs themselves point to a layout, as WHY_* << 16 | detail, or 0. DPs the
    owner's map claims are no evidence: the owner said what they are."""
    for d in range(111, 131):
        if d in dps and not _mapped(user, d):
            return WHY_HIGH << 16 | d
    beyond = 0  # a DP no single-phase meter sends: raw phase B/C, value DPs 105..110
    for d in range(105, 111):
        if _count(dps, d, user) is not None:
            beyond = d
            break
    if not beyond:
        for d in (7, 8):
            if raw_phase(dps, d - 6, user) is not None:
                beyond = d
                break
    if not beyond and _count(dps, 2, user) is not None:
        seen = 0
        if raw_phase(dps, 0, user) is not None:
            seen = 1
        if _count(dps, 102, user) is not None and _count(dps, 103, user) is not None \
                and _count(dps, 104, user) is not None:
            seen |= 2
        if seen:
            return WHY_SINGLE << 16 | seen
    for k in range(3):
        raw = raw_phase(dps, k, user)
        if raw is None:
            continue
        if _matches(dps, user, 102 + 3 * k, raw):  # v2: V, I, P of phase k
            return WHY_V2 << 16 | (102 + 3 * k)
        if _matches(dps, user, 103 + 9 * k, raw):  # cloud: V, I, P of phase k
            return WHY_CLOUD << 16 | (103 + 9 * k)
    if beyond:
        for d in (106, 107):
            if _count(dps, d, user) is not None:
                return WHY_V2_ONLY << 16 | d
        return WHY_THREE << 16 | beyond
    return 0


def hint(product_key):
    """The layout a product key suggests, or None."""
    if not isinstance(product_key, str):
        return None
    h = PRODUCT_HINTS.get(product_key)
    if h is None and "g5n4t0" in product_key:
        h = CLOUD
    return h


def choose(old, why, product_key):
    """The new why from the old one and the evidence now (auto layout)."""
    kind = why >> 16
    if kind == WHY_THREE and decided(old) and old >> 16 != WHY_SINGLE:
        return old  # the DPs decided more before: a phase B/C DP adds nothing
    if why == 0 or kind == WHY_THREE:
        if why == 0 and decided(old):
            return old  # a report without the deciding DPs changes nothing
        h = hint(product_key)
        if h is not None:
            return WHY_HINT << 16 | h
    return why if why else old


def reason(why, product_key=None, user_n=0):
    kind = why >> 16
    d = why & 0xFFFF
    if kind == WHY_HIGH:
        s = "DP %d seen: only the cloud layout has DPs above 110" % d
    elif kind == WHY_V2 or kind == WHY_CLOUD:
        s = ("DP %d, %d, %d equal the voltage, current and power inside raw DP %d"
             % (d, d + 1, d + 2, 6 + (d - 102) // 3 if kind == WHY_V2 else 6 + (d - 103) // 9))
    elif kind == WHY_V2_ONLY:
        s = "DP %d seen and no DP above 110: only the v2 layout has DPs 106 and 107" % d
    elif kind == WHY_SINGLE:
        s = "only %s seen for the phases, DP 2 present: single-phase" % (
            ("raw DP 6", "DPs 102..104", "raw DP 6 and DPs 102..104")[d - 1])
    elif kind == WHY_THREE:
        s = "DP %d seen: more than one phase, nothing more yet" % d
    elif kind == WHY_HINT:
        s = "product key %s (a hint until the DPs confirm it)" % product_key
    elif kind == WHY_FORCED:
        s = "forced by config"
    else:
        s = "default: no evidence yet"
    if user_n:
        s += " (with %d DP%s from the config's dps map)" % (user_n, "" if user_n == 1 else "s")
    return s


def name(layout):
    return LAYOUTS[layout]
