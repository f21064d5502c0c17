# The SPM02's datapoints: the one table that replaces OpenBeken's autoexec.bat.
#
# Decoding, the state keys, Home Assistant discovery, /metrics and the page's labels
# are all derived from ROWS; nothing else lists DPs.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tuya import T_RAW, T_BOOL, T_VALUE, T_STRING, T_ENUM, T_BITMAP

# Layouts of a row
ANY = const(0)
V2 = const(1)
CLOUD = const(2)
LAYOUTS = ("any", "v2", "cloud")

# Row flags
F_WRITE = const(1)    # the MCU accepts writes
F_HIDDEN = const(2)   # a command target, not a reading: no state key
F_PHASE = const(4)    # raw phase DP: voltage | current | power of one phase
F_FAULTS = const(8)   # fault bitmap
F_ALARMS = const(16)  # alarm settings list

# (dpid, layout, key, type, decimals, unit, flags); a value is count / 10**decimals unit.
ROWS = (
    (1, ANY, "energy_forward", T_VALUE, 2, "kWh", 0),
    (6, ANY, "phase_a", T_RAW, 0, "", F_PHASE),
    (7, ANY, "phase_b", T_RAW, 0, "", F_PHASE),
    (8, ANY, "phase_c", T_RAW, 0, "", F_PHASE),
    (9, ANY, "faults", T_BITMAP, 0, "", F_FAULTS),
    (12, ANY, "clear_energy", T_BOOL, 0, "", F_WRITE | F_HIDDEN),
    (17, ANY, "alarms_1", T_RAW, 0, "", F_WRITE | F_ALARMS),
    (18, ANY, "alarms_2", T_RAW, 0, "", F_WRITE | F_ALARMS),
    (19, ANY, "device_id", T_STRING, 0, "", 0),
    (23, ANY, "energy_reverse", T_VALUE, 2, "kWh", 0),
    (29, ANY, "power", T_VALUE, 0, "W", 0),
    (32, ANY, "frequency", T_VALUE, 2, "Hz", 0),
    (35, ANY, "online_state", T_ENUM, 0, "", F_WRITE | F_HIDDEN),
    (50, ANY, "power_factor", T_VALUE, 2, "", 0),
    (101, ANY, "locating", T_BOOL, 0, "", F_WRITE),
    # v2 layout (captured from a real v2 meter; the default)
    (102, V2, "voltage_a", T_VALUE, 1, "V", 0),
    (103, V2, "current_a", T_VALUE, 3, "A", 0),
    (104, V2, "power_a", T_VALUE, 0, "W", 0),
    (105, V2, "voltage_b", T_VALUE, 1, "V", 0),
    (106, V2, "current_b", T_VALUE, 3, "A", 0),
    (107, V2, "power_b", T_VALUE, 0, "W", 0),
    (108, V2, "voltage_c", T_VALUE, 1, "V", 0),
    (109, V2, "current_c", T_VALUE, 3, "A", 0),
    (110, V2, "power_c", T_VALUE, 0, "W", 0),
    # cloud layout (Tuya cloud model g5n4t0)
    (102, CLOUD, "report_interval", T_VALUE, 0, "s", F_WRITE),
    (103, CLOUD, "voltage_a", T_VALUE, 1, "V", 0),
    (104, CLOUD, "current_a", T_VALUE, 3, "A", 0),
    (105, CLOUD, "power_a", T_VALUE, 0, "W", 0),
    (108, CLOUD, "power_factor_a", T_VALUE, 2, "", 0),
    (109, CLOUD, "energy_forward_a", T_VALUE, 2, "kWh", 0),
    (110, CLOUD, "energy_reverse_a", T_VALUE, 2, "kWh", 0),
    (112, CLOUD, "voltage_b", T_VALUE, 1, "V", 0),
    (113, CLOUD, "current_b", T_VALUE, 3, "A", 0),
    (114, CLOUD, "power_b", T_VALUE, 0, "W", 0),
    (117, CLOUD, "power_factor_b", T_VALUE, 2, "", 0),
    (118, CLOUD, "energy_forward_b", T_VALUE, 2, "kWh", 0),
    (119, CLOUD, "energy_reverse_b", T_VALUE, 2, "kWh", 0),
    (121, CLOUD, "voltage_c", T_VALUE, 1, "V", 0),
    (122, CLOUD, "current_c", T_VALUE, 3, "A", 0),
    (123, CLOUD, "power_c", T_VALUE, 0, "W", 0),
    (126, CLOUD, "power_factor_c", T_VALUE, 2, "", 0),
    (127, CLOUD, "energy_forward_c", T_VALUE, 2, "kWh", 0),
    (128, CLOUD, "energy_reverse_c", T_VALUE, 2, "kWh", 0),
    (130, CLOUD, "current_unbalance", T_VALUE, 0, "%", 0),
)

# Per-phase power factor where a layout has no DP for it: P / (V * I), marked derived.
DERIVED = ("power_factor_a", "power_factor_b", "power_factor_c")
DERIVED_DECIMALS = const(2)

# Fault bitmap DP 9: bit -> name, per layout. v2 owners saw 0x04 on overcurrent and
# 0x08 on phase loss; the other v2 bits are unknown and show as bit_N.
FAULTS = {
    V2: {2: "overcurrent", 3: "phase_loss"},
    CLOUD: dict(enumerate((
        "short_circuit", "surge", "overload", "leakage_current", "temperature", "fire",
        "high_power", "self_test", "overcurrent", "unbalance", "overvoltage",
        "undervoltage", "phase_loss", "outage", "magnetism", "credit", "no_balance"))),
}

# Alarm settings DPs 17/18: record id -> (name, threshold min, max); max 0 = no threshold.
ALARMS = {
    17: {1: ("overcurrent", 1, 65535), 2: ("unbalance", 1, 100), 3: ("overvoltage", 1, 65535),
         4: ("undervoltage", 1, 65535), 5: ("phase_loss", 0, 0), 7: ("high_power", 1, 65535)},
    18: {1: ("overcurrent", 1, 65535), 2: ("unbalance", 1, 100), 3: ("overvoltage", 1, 65535),
         4: ("undervoltage", 1, 65535), 5: ("phase_loss", 0, 0), 7: ("reverse_power", 0, 0)},
}

# Product keys seen for this family: only a hint, the DPs decide.
PRODUCT_HINTS = {"kxdr6su0c55p7bbo": V2}

# Unit -> (Home Assistant device_class, state_class, Prometheus unit suffix in base units;
# kWh go to Prometheus as joules).
UNITS = {
    "V": ("voltage", "measurement", "volts"),
    "A": ("current", "measurement", "amperes"),
    "W": ("power", "measurement", "watts"),
    "kWh": ("energy", "total_increasing", "joules"),
    "Hz": ("frequency", "measurement", "hertz"),
    "": ("power_factor", "measurement", "ratio"),
    "%": (None, "measurement", "percent"),
    "s": (None, None, "seconds"),
}


def rows(layout):
    """The rows that apply to a layout."""
    return [r for r in ROWS if r[1] == ANY or r[1] == layout]


def row(dpid, layout):
    for r in ROWS:
        if r[0] == dpid and (r[1] == ANY or r[1] == layout):
            return r
    return None


def row_for_key(key, layout):
    for r in ROWS:
        if r[2] == key and (r[1] == ANY or r[1] == layout):
            return r
    return None


def dpid_for_key(key, layout):
    r = row_for_key(key, layout)
    return r[0] if r else None


def unit_of(key, layout):
    if key in DERIVED:
        return ""
    r = row_for_key(key, layout)
    return r[5] if r else None


def layout_code(name):
    return LAYOUTS.index(name) if name in LAYOUTS[1:] else None
