# Decoders for the SPM02 family's structured DPs: raw phase readings (6, 7, 8) in the
# 8-byte and Tuya's v01/v02 formats, the fault bitmap (9) and the alarm settings lists
# (17, 18, with DP 18's report interval record), plus exact number formatting. Rewriting
# an alarm list is the commands' (lib/commands.py).
# Pure functions on bytes and ints.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from dptable import FAULTS, REPORT_DP, REPORT_RECORD, ALARM_NAMES
from tuya import be_uint

NEG_LIMIT = const(0x100000)   # no real reading reaches 1048 A or 1048 kW: at or above is negative
_NEG_OFFSET = const(0x19999A)  # zigbee SPM02 firmwares send 0x19999A - |x|


def s24(v):
    """A 24-bit field of a raw phase DP as a signed number.

    The one place that knows both negative encodings: 0x19999A - |x| leaves values in
    0x100000..0x19999A, 24-bit two's complement leaves them above; they do not overlap
    for any real reading."""
    if v < NEG_LIMIT:
        return v
    if v <= _NEG_OFFSET:
        return v - _NEG_OFFSET
    return v - 0x1000000


def s24_encoding(v):
    """Which negative encoding a 24-bit field used: None, "offset" or "twos"."""
    if v < NEG_LIMIT:
        return None
    return "offset" if v <= _NEG_OFFSET else "twos"


def field(buf, start):
    """One signed 24-bit field (current or power) of an 8-byte raw phase DP."""
    return s24(be_uint(buf, start, 3))


# Fields of a raw phase DP, as dptable.PHASE_FIELDS lists them
_PH_V = const(0)
_PH_I = const(1)
_PH_P = const(2)
_PH_Q = const(3)
_PH_S = const(4)
_PH_PF = const(5)
# v02's sign byte: bit0 I, bit1 P, bit2 Q, bit3 PF; S has none
_SIGN_BIT = (0, 1, 2, 4, 0, 8)


def phase_format(raw, n):
    """8 for the 8-byte format, 1 or 2 for Tuya's v01 (17 bytes) / v02 (18 bytes)
    (`ver | 0x0F | V | I | P | Q | S | PF [| signs]`), 0 for anything else."""
    if n == 8:
        return 8
    if (n == 17 or n == 18) and raw[0] == n - 16 and raw[1] == 0x0F:
        return n - 16
    return 0


def phase_field(raw, n, j):
    """Field j (_PH_*) of a raw phase DP of n bytes as a signed count in the unit of
    dptable.PHASE_FIELDS, or None where the format has no such field. Allocates nothing
    (the layout evidence calls it on every changed report)."""
    fmt = phase_format(raw, n)
    if fmt == 8:
        if j == _PH_V:
            return raw[0] << 8 | raw[1]
        return field(raw, 2 + 3 * (j - 1)) if j <= _PH_P else None
    if not fmt:
        return None
    if j == _PH_V:
        return raw[2] << 8 | raw[3]
    # magnitudes: v01 has no signs (all non-negative), v02 a sign bit per field
    v = raw[16] if j == _PH_PF else be_uint(raw, 4 + 3 * (j - 1), 3)
    if fmt == 2 and raw[17] & _SIGN_BIT[j]:
        return -v
    return v


def phase_fields(raw):
    """Every field of a raw phase DP: a tuple of 6, None where the format has none;
    None for a value in no known format. For tools and tests."""
    n = len(raw)
    if not phase_format(raw, n):
        return None
    return tuple(phase_field(raw, n, j) for j in range(6))


def phase_encoding(raw):
    """The negative encoding seen in an 8-byte raw phase DP, or None when all fields are
    positive (the v01/v02 formats carry signs as bits)."""
    if len(raw) != 8:
        return None
    for k in (2, 5):
        e = s24_encoding(be_uint(raw, k, 3))
        if e:
            return e
    return None


def fault_names(bits, layout):
    """Names of the set bits of a (up to 32-bit) bitmap; a bitmap sent as a signed value
    reads the same, bit by bit."""
    names = FAULTS[layout] if 0 <= layout < len(FAULTS) else ()
    out = []
    for b in range(32):
        if (bits >> b) & 1:
            out.append(names[b] if b < len(names) and names[b] else "bit_%d" % b)
    return out


def alarm_records(raw):
    """[(id, enabled, threshold)] from a DP 17/18 value; a trailing partial record is ignored."""
    out = []
    for i in range(0, len(raw) - 3, 4):
        out.append((raw[i], raw[i + 1], raw[i + 2] << 8 | raw[i + 3]))
    return out


def alarm_name(dpid, rid):
    names = ALARM_NAMES[dpid - 17] if dpid == 17 or dpid == 18 else ()
    return names[rid] if rid < len(names) and names[rid] else "alarm_%d" % rid


def alarms(dpid, raw):
    """{name: {"enabled": bool, "threshold": int}} of one DP 17/18 value; DP 18's report
    interval record is no alarm (see report_interval)."""
    out = {}
    for rid, en, th in alarm_records(raw):
        if dpid == REPORT_DP and rid == REPORT_RECORD:
            continue
        out[alarm_name(dpid, rid)] = {"enabled": en == 1, "threshold": th}
    return out


def report_interval(raw, n):
    """The report interval (s) in DP 18's record 0x08, or None. Allocates nothing."""
    for i in range(0, n - 3, 4):
        if raw[i] == REPORT_RECORD:
            return raw[i + 2] << 8 | raw[i + 3]
    return None


def fmt(count, decimals):
    """An integer count at 10**-decimals as exact decimal text: (2317, 1) -> "231.7"."""
    if decimals <= 0:
        return "%d" % count
    d = 10 ** decimals
    if count < 0:
        return "-%d.%0*d" % (-count // d, decimals, -count % d)
    return "%d.%0*d" % (count // d, decimals, count % d)


def ratio(num, den, decimals):
    """round(num / den) at 10**-decimals as an integer count, without floats."""
    d = 10 ** decimals
    n = num * d
    q = (2 * abs(n) + abs(den)) // (2 * abs(den))
    return -q if (n < 0) != (den < 0) else q
