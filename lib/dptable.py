# The SPM02 family's datapoints: the one table that replaces OpenBeken's autoexec.bat.
#
# Decoding, the state keys, Home Assistant discovery, /metrics and the page's labels
# are all derived from ROWS (and the owner's `dps` map, rows of the same shape that
# override these); nothing else lists DPs.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tuya import T_RAW, T_BOOL, T_VALUE, T_STRING, T_ENUM, T_BITMAP

# Layouts (what the meter's DPs 2 and 102 and up mean); code 0 is "not decided"
V2 = const(1)
CLOUD = const(2)
SPM01 = const(3)   # single-phase: phase A only
LAYOUTS = ("any", "v2", "cloud", "spm01")

# The layouts a row applies to: 0 for all, else a bit set of 1 << layout
ANY = const(0)
_L_V2 = const(2)
_L_CLOUD = const(4)
_L_SPM01 = const(8)

# Row flags
_F_WRITE = const(1)   # the MCU accepts writes
F_HIDDEN = const(2)   # a command target, not a reading: no state key
F_PHASE = const(4)    # raw phase DP: voltage | current | power ... of one phase
F_FAULTS = const(8)   # fault bitmap
F_ALARMS = const(16)  # alarm settings list

# (dpid, layouts, key, type, decimals, unit, flags); a value is count / 10**decimals unit.
# Written as tuples to be read; held packed (KEYS, UNITS, _P below).
ROWS = (
    (1, ANY, "energy_forward", T_VALUE, 2, "kWh", 0),
    (2, _L_SPM01, "energy_reverse", T_VALUE, 2, "kWh", 0),
    (6, ANY, "phase_a", T_RAW, 0, "", F_PHASE),
    (7, ANY, "phase_b", T_RAW, 0, "", F_PHASE),
    (8, ANY, "phase_c", T_RAW, 0, "", F_PHASE),
    (9, ANY, "faults", T_BITMAP, 0, "", F_FAULTS),
    (12, ANY, "clear_energy", T_BOOL, 0, "", _F_WRITE | F_HIDDEN),
    (17, ANY, "alarms_1", T_RAW, 0, "", _F_WRITE | F_ALARMS),
    (18, ANY, "alarms_2", T_RAW, 0, "", _F_WRITE | F_ALARMS),
    (19, ANY, "device_id", T_STRING, 0, "", 0),
    (23, _L_V2 | _L_CLOUD, "energy_reverse", T_VALUE, 2, "kWh", 0),
    (29, ANY, "power", T_VALUE, 0, "W", 0),
    (32, ANY, "frequency", T_VALUE, 2, "Hz", 0),
    (35, ANY, "online_state", T_ENUM, 0, "", _F_WRITE | F_HIDDEN),
    (50, ANY, "power_factor", T_VALUE, 2, "", 0),
    (101, ANY, "locating", T_BOOL, 0, "", _F_WRITE),
    # v2 layout (captured from a real v2 meter; the default). An SPM01 that sends value
    # DPs sends 102..104 for its one phase.
    (102, _L_V2 | _L_SPM01, "voltage_a", T_VALUE, 1, "V", 0),
    (103, _L_V2 | _L_SPM01, "current_a", T_VALUE, 3, "A", 0),
    (104, _L_V2 | _L_SPM01, "power_a", T_VALUE, 0, "W", 0),
    (105, _L_V2, "voltage_b", T_VALUE, 1, "V", 0),
    (106, _L_V2, "current_b", T_VALUE, 3, "A", 0),
    (107, _L_V2, "power_b", T_VALUE, 0, "W", 0),
    (108, _L_V2, "voltage_c", T_VALUE, 1, "V", 0),
    (109, _L_V2, "current_c", T_VALUE, 3, "A", 0),
    (110, _L_V2, "power_c", T_VALUE, 0, "W", 0),
    # cloud layout (Tuya cloud model g5n4t0)
    (102, _L_CLOUD, "report_interval", T_VALUE, 0, "s", _F_WRITE),
    (103, _L_CLOUD, "voltage_a", T_VALUE, 1, "V", 0),
    (104, _L_CLOUD, "current_a", T_VALUE, 3, "A", 0),
    (105, _L_CLOUD, "power_a", T_VALUE, 0, "W", 0),
    (108, _L_CLOUD, "power_factor_a", T_VALUE, 2, "", 0),
    (109, _L_CLOUD, "energy_forward_a", T_VALUE, 2, "kWh", 0),
    (110, _L_CLOUD, "energy_reverse_a", T_VALUE, 2, "kWh", 0),
    (112, _L_CLOUD, "voltage_b", T_VALUE, 1, "V", 0),
    (113, _L_CLOUD, "current_b", T_VALUE, 3, "A", 0),
    (114, _L_CLOUD, "power_b", T_VALUE, 0, "W", 0),
    (117, _L_CLOUD, "power_factor_b", T_VALUE, 2, "", 0),
    (118, _L_CLOUD, "energy_forward_b", T_VALUE, 2, "kWh", 0),
    (119, _L_CLOUD, "energy_reverse_b", T_VALUE, 2, "kWh", 0),
    (121, _L_CLOUD, "voltage_c", T_VALUE, 1, "V", 0),
    (122, _L_CLOUD, "current_c", T_VALUE, 3, "A", 0),
    (123, _L_CLOUD, "power_c", T_VALUE, 0, "W", 0),
    (126, _L_CLOUD, "power_factor_c", T_VALUE, 2, "", 0),
    (127, _L_CLOUD, "energy_forward_c", T_VALUE, 2, "kWh", 0),
    (128, _L_CLOUD, "energy_reverse_c", T_VALUE, 2, "kWh", 0),
    (130, _L_CLOUD, "current_unbalance", T_VALUE, 0, "%", 0),
)
# The rows above are built at import (they name tuya's types: no constant of the .mpy) and
# held packed, 0.5 KB of heap where the tuples took 2.4: the keys, the units, and 6 bytes a
# row (dpid, layouts, type, decimals, unit as an index of UNITS, flags). row() and each()
# build a row's tuple when asked; field(), walk() and at(), for every report and every
# state, build none.
UNITS = tuple(sorted(set(r[5] for r in ROWS)))
KEYS = tuple(r[2] for r in ROWS)
_P = bytes(b for r in ROWS for b in (r[0], r[1], r[3], r[4], UNITS.index(r[5]), r[6]))
del ROWS

# The fields of a raw phase DP (6, 7, 8), in order: state key prefix (+ phase), decimals,
# unit. The 8-byte format has the first three; Tuya's v01/v02 format all six.
PHASE_FIELDS = (("voltage_", 1, "V"), ("current_", 3, "A"), ("power_", 0, "W"),
                ("reactive_power_", 0, "var"), ("apparent_power_", 0, "VA"),
                ("power_factor_", 2, ""))
RAW_PHASE = (6, 7, 8)

# A meter's shape (Meter.shape): its layout | the extras below, which its entities
# depend on beyond the layout
X_PHASE = const(4)     # << phase: raw phase DP in the v01/v02 format (Q, S and PF)
X_REPORT = const(32)   # DP 18 carries the report interval record
X_SEEN = const(64)     # << i: DP SPM01_MAYBE[i] seen
X_ALL = const(2044)
# DPs of the common rows that a single-phase SPM01 may not have (the reference lists DPs
# 1, 2, 6, 9, 12 for it): announced on a single-phase meter only once seen
SPM01_MAYBE = (19, 29, 32, 50, 101)

# Today, yesterday and this month of the energy totals (lib/days.py, from the counters at
# local midnight), at 0.01 kWh like the counters
DAY_KEYS = ("energy_forward_today", "energy_reverse_today", "energy_forward_yesterday",
            "energy_reverse_yesterday", "energy_forward_month", "energy_reverse_month")
ENERGY_KEYS = ("energy_forward", "energy_reverse")  # the totals they come from

# Per-phase power factor where neither the layout nor the raw phase DP has one:
# P / (V * I), marked derived.
DERIVED = ("power_factor_a", "power_factor_b", "power_factor_c")
DERIVED_DECIMALS = const(2)

# DP 18 record 0x08 is the meter's data report interval in seconds, not an alarm
# (zigbee2mqtt writes it so for SPM01V2/SPM02V2.5). The range the command accepts:
REPORT_DP = const(18)
REPORT_RECORD = const(8)
REPORT_MIN = const(5)
REPORT_MAX = const(3600)

# Tables as tuples, not dicts: in a custom image they freeze into flash and hold no heap.
#
# Fault bitmap DP 9: names by bit, per layout (FAULTS[layout]; "" or past the end: unknown).
# v2 owners saw 0x04 on overcurrent and 0x08 on phase loss; the other v2 bits (and the
# SPM01's) are unknown and show as bit_N.
FAULTS = ((), ("", "", "overcurrent", "phase_loss"),
          ("short_circuit", "surge", "overload", "leakage_current", "temperature", "fire",
           "high_power", "self_test", "overcurrent", "unbalance", "overvoltage",
           "undervoltage", "phase_loss", "outage", "magnetism", "credit", "no_balance"),
          ())

# Alarm settings DPs 17/18: record names by record id (ALARM_NAMES[DP - 17][id]; "" or
# past the end: unknown, shown as alarm_<id>). The thresholds the alarm command accepts are
# lib/commands.py's (LIMITS): only a command needs them.
ALARM_NAMES = (("", "overcurrent", "unbalance", "overvoltage", "undervoltage", "phase_loss", "", "high_power"),
               ("", "overcurrent", "unbalance", "overvoltage", "undervoltage", "phase_loss", "", "reverse_power"))

# Product keys seen for this family: only a hint, the DPs decide. (key, layout)
PRODUCT_HINTS = (("kxdr6su0c55p7bbo", V2),)

def phases(layout):
    """How many phases a layout has."""
    return 1 if layout == SPM01 else 3


def applies(layouts, layout):
    return layouts == ANY or layouts >> layout & 1


def _claimed(user, dpid, key):
    # a row of the owner's map shadows the table's rows of the same DP or key
    for r in user:
        if r[0] == dpid or r[2] == key:
            return True
    return False


def _row(i):
    j = 6 * i
    p = _P
    return (p[j], p[j + 1], KEYS[i], p[j + 2], p[j + 3], UNITS[p[j + 4]], p[j + 5])


def rows():
    """Every row of the table, one by one (for tools and tests)."""
    for i in range(len(KEYS)):
        yield _row(i)


def _index(dpid, key, layout, user):
    """The index of the table's row of dpid (or of key, with dpid -1) in a layout that no
    row of the owner's map shadows, or -1."""
    p = _P
    for i in range(len(KEYS)):
        j = 6 * i
        if (p[j] == dpid or KEYS[i] == key) and applies(p[j + 1], layout) \
                and not _claimed(user, p[j], KEYS[i]):
            return i
    return -1


def walk(layout, user=()):
    """each()'s rows as numbers, which build no tuple (for what runs at every state): -1 - k
    for row k of the owner's map, else the index of the table's row. at() reads their fields."""
    for k in range(len(user)):
        yield -1 - k
    p = _P
    for i in range(len(KEYS)):
        if applies(p[6 * i + 1], layout) and not _claimed(user, p[6 * i], KEYS[i]):
            yield i


def at(n, f, user=()):
    """Field f of walk()'s row n."""
    if n < 0:
        return user[-1 - n][f]
    if f == 2:
        return KEYS[n]
    v = _P[6 * n + (f if f < 2 else f - 1)]
    return UNITS[v] if f == 5 else v


def each(layout, user=()):
    """The rows that apply to a layout, one by one: the owner's first, then the table's."""
    for n in walk(layout, user):
        yield user[-1 - n] if n < 0 else _row(n)


def row(dpid, layout, user=()):
    for r in user:
        if r[0] == dpid:
            return r
    i = _index(dpid, None, layout, user)
    return _row(i) if i >= 0 else None


def row_for_key(key, layout, user=()):
    for r in user:
        if r[2] == key:
            return r
    i = _index(-1, key, layout, user)
    return _row(i) if i >= 0 else None


def field(dpid, key, layout, user, f):
    """Field f of row(dpid, ...) (key None) or of row_for_key(key, ...) (dpid -1), or None
    when there is no such row. Builds no tuple: for the lookups of every report."""
    for r in user:
        if r[0] == dpid or r[2] == key:
            return r[f]
    i = _index(dpid, key, layout, user)
    return at(i, f) if i >= 0 else None


def unit_of(key, layout, user=()):
    """The unit of a state key: from its row, else from the raw phase fields (or DP 18's
    report interval) it is decoded from; None for keys that are no reading."""
    u = field(-1, key, layout, user, 5)
    if u is not None:
        return u
    if key == "report_interval":
        return "s"
    if key in DAY_KEYS:
        return "kWh"
    if len(key) > 2 and key[-2] == "_" and key[-1] in "abc":
        for f in PHASE_FIELDS:
            if key[:-1] == f[0]:
                return f[2]
    return None

