# The owner's DP map (config key `dps`) checked: loaded by firmware/config.py only when
# the config has one.
# Keys a dps entry may not take: readings the firmware computes, and /metrics families
# of its own that a unitless key would collide with.
RESERVED = ("warnings", "alarms", "faults", "faults_raw", "derived", "faults_bitmap", "fault_active",
            "plausibility_warnings", "mcu_online", "mqtt_connected", "mcu_polls_total",
            "frames_received_total", "frames_sent_total", "link_errors_total",
            "last_report_age_seconds")
ENTRY = ("key", "type", "decimals", "unit")


def rows(given, warnings):
    """The owner's DP map as rows of the DP table (dptable.ROWS' shape), in DP order. A bad
    entry is dropped with a warning naming it; the rest are kept."""
    from dptable import ANY, DAY_KEYS
    from units import known_unit
    from tuya import TYPE_NAMES
    if not isinstance(given, dict):
        warnings.append('dps: must be an object like {"111": {"key": "power", "type": "value"}}; ignored')
        return ()
    out = []
    keys = []
    for dp in sorted(given, key=lambda k: (len(k), k)):
        e = given[dp]
        where = "dps.%s" % dp
        err = None
        if not (dp.isdigit() and 0 < int(dp) < 256):
            err = "the DP id must be 1..255"
        elif not isinstance(e, dict):
            err = 'must be an object like {"key": "power", "type": "value", "decimals": 0, "unit": "W"}'
        else:
            key = e.get("key")
            typ = e.get("type", "value")
            dec = e.get("decimals", 0)
            unit = e.get("unit", "")
            if not _identifier(key):
                err = "key must be 1..32 letters, digits or _"
            elif key in RESERVED or key in DAY_KEYS:
                err = "key %s is the firmware's own" % key
            elif key in keys:
                err = "key %s is already taken by another entry" % key
            elif typ not in TYPE_NAMES:
                err = "type must be one of %s" % ", ".join(TYPE_NAMES)
            elif type(dec) is not int or not 0 <= dec <= 6:
                err = "decimals must be a whole number 0..6"
            elif not isinstance(unit, str) or len(unit) > 16:
                err = "unit must be text"
        if err:
            warnings.append("%s: %s; entry ignored" % (where, err))
            continue
        for k in e:
            if k not in ENTRY:
                warnings.append("%s.%s: unknown setting, ignored" % (where, k))
        if known_unit(unit) is None:
            warnings.append("%s: unit %s is not one the table knows: no device class" % (where, unit))
        keys.append(key)
        out.append((int(dp), ANY, key, TYPE_NAMES.index(typ), dec, unit, 0))
    return tuple(out)


def _identifier(v):
    if not isinstance(v, str) or not 0 < len(v) <= 32:
        return False
    for ch in v:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "_"):
            return False
    return True
