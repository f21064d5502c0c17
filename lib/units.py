# Units and what Home Assistant and Prometheus call them. Only the borrowed modules need
# these (discovery, metrics, config), so they are not part of the resident DP table.

# (unit, Home Assistant device_class, state_class, Prometheus unit suffix in base units;
# kWh go to Prometheus as joules). "" is a power factor only for power_factor keys.
UNITS = (
    ("V", "voltage", "measurement", "volts"),
    ("A", "current", "measurement", "amperes"),
    ("W", "power", "measurement", "watts"),
    ("var", "reactive_power", "measurement", "voltamperes_reactive"),
    ("VA", "apparent_power", "measurement", "voltamperes"),
    ("kWh", "energy", "total_increasing", "joules"),
    ("Hz", "frequency", "measurement", "hertz"),
    ("", "power_factor", "measurement", "ratio"),
    ("%", None, "measurement", "percent"),
    ("s", None, None, "seconds"),
)
NO_CLASS = (None, "measurement", "")  # unitless readings and units the table does not know


def known_unit(unit):
    for u in UNITS:
        if u[0] == unit:
            return u
    return None


def classes(key, unit):
    """(device_class, state_class, Prometheus suffix) of a reading."""
    if unit == "" and not key.startswith("power_factor"):
        return NO_CLASS
    u = known_unit(unit)
    return u[1:] if u else NO_CLASS
