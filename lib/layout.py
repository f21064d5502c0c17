# Which DP layout a meter speaks, decided from what it sends: the evidence in the DPs
# seen (ranked) and the product key as a hint (lib/reasons.py puts the why in words). The DP ids it looks
# at come from the table (dptable.rows()): a new layout's rows are new evidence.
#
# Evidence runs on every changed report, so it allocates nothing: it walks strings of DP
# ids made once at import and reads raw phase fields in place.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import dptable as T
from dptable import V2, CLOUD, SPM01
from spm02 import phase_field, phase_format
from tuya import T_RAW, T_VALUE

# Why a layout was chosen: kind << 16 | detail
WHY_DEFAULT = const(0)
WHY_FORCED = const(1)
WHY_HINT = const(2)     # detail: the layout
WHY_THREE = const(3)    # a DP of phase B or C: not single-phase, nothing more; detail: the DP
WHY_SINGLE = const(4)   # phase A only, and a DP only the SPM01 has; detail: 1 raw, 2 values seen
WHY_ONLY = const(5)     # a DP only one three-phase layout has; detail: layout << 8 | DP
WHY_MATCH = const(6)    # a layout's V, I, P DPs equal a raw phase DP; detail: layout << 4 | phase
WHY_HIGH = const(7)     # as WHY_ONLY, for the cloud layout's DPs: checked first


def _ids(lay):
    return set(r[0] for r in T.rows() if T.applies(r[1], lay))


def _others(lay):
    out = set()
    for o in (V2, CLOUD, SPM01):
        if o != lay:
            out |= _ids(o)
    return out


def _only(lay):
    """DPs of a layout's rows that no row of another layout (or of all) has."""
    return bytes(sorted(_ids(lay) - _others(lay)))


def _phase_ids(lay):
    """The V, I, P DP ids of phase A, then B, ... of a layout's value DPs, in one string."""
    return bytes(T.row_for_key(T.PHASE_FIELDS[j][0] + "abc"[k], lay)[0]
                 for k in range(T.phases(lay)) for j in range(3))


# DP ids (all below 256) are held as bytes, smaller than tuples of ints and read the same.
# Indexed by layout code (0: none)
ONLY = (b"",) + tuple(_only(lay) for lay in (V2, CLOUD, SPM01))
# The cloud model has more DPs than the table lists: any DP in the span of its own ones
# (112..130) that no other layout has is the cloud layout's
_c = ONLY[CLOUD]
CLOUD_SPAN = bytes(d for d in range(_c[0], _c[-1] + 1) if d not in _others(CLOUD))
PHASE_IDS = (b"",) + tuple(_phase_ids(lay) for lay in (V2, CLOUD, SPM01))
# DPs of a phase B or C in any layout (raw or value): no single-phase meter sends them
BEYOND = bytes(sorted(set(r[0] for r in T.rows() if r[2][-2:] in ("_b", "_c"))))
RAW_A = T.row_for_key("phase_a", V2)[0]
_THREE = (V2, CLOUD)  # the three-phase layouts, as a tuple made once
del _c, _ids, _others, _only, _phase_ids  # needed once: their code leaves the heap


def layout_of(why):
    kind = why >> 16
    d = why & 0xFFFF
    if kind == WHY_HINT:
        return d
    if kind == WHY_ONLY or kind == WHY_HIGH:
        return d >> 8
    if kind == WHY_MATCH:
        return d >> 4
    return SPM01 if kind == WHY_SINGLE else V2


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
    d = _dp(dps, RAW_A + k, T_RAW, user)
    return d if d is not None and phase_format(d.raw, d.n) else None


def _near(a, b):
    return abs(a - b) <= max(2, abs(b) // 50)


def _matches(dps, user, ids, at, raw):
    for j in range(3):  # voltage, current, power: ids[at], ids[at + 1], ids[at + 2]
        c = _count(dps, ids[at + j], user)
        if c is None or not _near(c, phase_field(raw.raw, raw.n, j)):
            return False
    return True


def _seen(dps, ids, user):
    """The first of ids the meter sent (and the owner's map does not claim), or 0."""
    for d in ids:
        if d in dps and not _mapped(user, d):
            return d
    return 0


def evidence(dps, user=()):
    """Why the DPs themselves point to a layout, as WHY_* << 16 | detail, or 0. DPs the
    owner's map claims are no evidence: the owner said what they are."""
    d = _seen(dps, CLOUD_SPAN, user)
    if d:
        return WHY_HIGH << 16 | CLOUD << 8 | d
    beyond = _seen(dps, BEYOND, user)
    if not beyond and _seen(dps, ONLY[SPM01], user):
        seen = 1 if raw_phase(dps, 0, user) is not None else 0
        ids = PHASE_IDS[SPM01]
        if _count(dps, ids[0], user) is not None and _count(dps, ids[1], user) is not None \
                and _count(dps, ids[2], user) is not None:
            seen |= 2
        if seen:
            return WHY_SINGLE << 16 | seen
    for k in range(3):
        raw = raw_phase(dps, k, user)
        if raw is None:
            continue
        for lay in _THREE:
            if _matches(dps, user, PHASE_IDS[lay], 3 * k, raw):
                return WHY_MATCH << 16 | lay << 4 | k
    if beyond:
        d = _seen(dps, ONLY[V2], user)
        if d:
            return WHY_ONLY << 16 | V2 << 8 | d
        return WHY_THREE << 16 | beyond
    return 0


def hint(product_key):
    """The layout a product key suggests, or None."""
    if not isinstance(product_key, str):
        return None
    for key, lay in T.PRODUCT_HINTS:
        if key == product_key:
            return lay
    return CLOUD if "g5n4t0" in product_key else None


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
