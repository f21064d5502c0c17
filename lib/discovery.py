# Home Assistant MQTT discovery, derived from the DP table (and the owner's dps map):
# one entity per reading the meter's shape (layout, phases, extras) can have, plus
# buttons and controls for the commands. Loaded only while discovery runs: the little code
# it needs is all here (no lib/units.py), since its load is the heap's peak.
import json

import dptable as T
from tuya import T_BOOL, T_VALUE

# Diagnostic entities: about the link and electrical detail, not the readings people watch
DIAGNOSTIC = ("device_id", "faults", "frequency", "power_factor", "current_unbalance")
DIAGNOSTIC_PHASE = ("power_factor_", "reactive_power_", "apparent_power_")
ORIGIN = "spm02-firmware"
# Home Assistant's device class by unit, as in lib/units.py ("" only for power_factor keys;
# test_discovery checks the two agree): unit, class, unit, class...
DEVICE_CLASS = ("V", "voltage", "A", "current", "W", "power", "var", "reactive_power", "VA", "apparent_power",
                "kWh", "energy", "Hz", "frequency", "", "power_factor")
GET = "{{ value_json.get('%s') }}"  # a reading not there yet renders None (unknown), not an error
FIELD = "{{ value_json.%s }}"


def entities(layout, user=(), shape=0, wifi=False):
    """(component, object_id, {config without topics and device}) for every entity; wifi:
    the device has Wi-Fi (its signal is an entity)."""
    # the keys of the readings a meter of this layout (and shape) can have
    nph = T.phases(layout)
    single = nph == 1
    keys = []
    for r in T.each(layout, user):
        key = r[2]
        if r[6] & (T.F_HIDDEN | T.F_PHASE | T.F_ALARMS) or key == "locating" \
                or key == "report_interval" or key in keys \
                or len(key) > 2 and key[-2] == "_" and "abc".find(key[-1]) >= nph:  # a phase it has not
            continue
        if single and r[1] == T.ANY and r[0] in T.SPM01_MAYBE \
                and not shape & (T.X_SEEN << T.SPM01_MAYBE.index(r[0])):
            continue  # a common row a single-phase meter has not sent (yet)
        keys.append(key)
    for k in range(nph):
        for j in range(6):
            key = T.PHASE_FIELDS[j][0] + "abc"[k]
            # reactive and apparent power come only with the v01/v02 raw format; a power
            # factor always (the layout's, the meter's own or derived)
            if key not in keys and (j == 5 or j < 3 or shape & (T.X_PHASE << k)):
                keys.append(key)
    for key in keys + list(T.DAY_KEYS):  # and today, yesterday, month of the energy totals
        # "voltage_a" -> "Voltage A" ("Voltage" on a single-phase meter), "energy_forward" -> "Energy forward"
        name = key.split("_")
        if len(name) > 1 and name[-1] in ("a", "b", "c"):
            if single:
                name.pop()
            else:
                name[-1] = name[-1].upper()
        name = " ".join(name)
        c = {"name": name[0].upper() + name[1:]}
        r = T.row_for_key(key, layout, user)
        if r is None:  # a field of a raw phase DP, or a day's total: a value with no row of its own
            dec = 2 if key in T.DAY_KEYS else T.DERIVED_DECIMALS
            for f in T.PHASE_FIELDS:
                if key[:-1] == f[0]:
                    dec = f[1]
            r = (0, 0, key, T_VALUE, dec, T.unit_of(key, layout, user))
        comp = "sensor"
        if key == "faults":
            c["value_template"] = "{{ value_json.faults | join(', ') if value_json.faults else 'none' }}"
            c["icon"] = "mdi:alert"
        elif key == "device_id":
            c["value_template"] = FIELD % key
            c["entity_category"] = "diagnostic"
        elif r[3] == T_BOOL:
            comp = "binary_sensor"
            c["value_template"] = "{{ 'ON' if value_json.get('%s') else 'OFF' }}" % key
        else:
            c["value_template"] = GET % key
            unit = r[5]
            if r[3] == T_VALUE and unit is not None:
                if unit:
                    c["unit_of_measurement"] = unit
                if unit or key.startswith("power_factor"):  # unitless is a power factor only for these
                    for i in range(0, len(DEVICE_CLASS), 2):
                        if DEVICE_CLASS[i] == unit:
                            c["device_class"] = DEVICE_CLASS[i + 1]
                if unit != "s":
                    c["state_class"] = "total_increasing" if unit == "kWh" else "measurement"
                # as many decimals as the meter's count has: 231.7 V, 5.002 A, 12.34 kWh
                c["suggested_display_precision"] = r[4]
        if key in DIAGNOSTIC or key[:-1] in DIAGNOSTIC_PHASE:
            c["entity_category"] = "diagnostic"
        yield comp, key, c
    yield "sensor", "warnings", {"name": "Plausibility warnings", "entity_category": "diagnostic",
                                 "icon": "mdi:alert-circle-outline",
                                 "value_template": "{{ value_json.warnings | length }}",
                                 "json_attributes_topic": "~/state",
                                 "json_attributes_template": "{{ {'warnings': value_json.warnings} | tojson }}"}
    # The device's own health, read from B/device ("~/device"): diagnostic entities; the
    # Wi-Fi signal only where there is Wi-Fi
    for oid, field, c in (
            ("uptime", "uptime_s", {"name": "Uptime", "device_class": "duration", "unit_of_measurement": "s"}),
            ("mem_free", "mem_free", {"name": "Free heap", "device_class": "data_size", "unit_of_measurement": "B",
                                      "state_class": "measurement", "icon": "mdi:memory"}),
            ("reset_cause", "reset_cause", {"name": "Last restart cause", "icon": "mdi:restart"}),
            ("link_errors", "link_errors", {"name": "Link errors", "state_class": "total_increasing",
                                            "icon": "mdi:alert-outline"}),
            ("rssi", None, {"name": "Wi-Fi signal", "device_class": "signal_strength", "unit_of_measurement": "dBm",
                            "state_class": "measurement", "value_template": GET % "rssi"})):
        if field or wifi:
            if field:
                c["value_template"] = FIELD % field
            c["entity_category"] = "diagnostic"
            c["state_topic"] = "~/device"
            yield "sensor", oid, c
    for cmd, name, icon in (("query_state", "Query state", "mdi:database-refresh"),
                            ("refresh", "Refresh", "mdi:refresh"),
                            ("clear_energy", "Clear energy counters", "mdi:delete-forever")):
        yield "button", cmd, {"name": name, "icon": icon, "command_topic": "~/cmd/" + cmd,
                              "payload_press": "PRESS", "entity_category": "config"}
    if not single or shape & (T.X_SEEN << T.SPM01_MAYBE.index(101)):  # DP 101 seen
        yield "switch", "locate", {"name": "Locate", "icon": "mdi:map-marker-radius",
                                   "command_topic": "~/cmd/locate", "payload_on": "ON", "payload_off": "OFF",
                                   "value_template": "{{ 'ON' if value_json.locating else 'OFF' }}",
                                   "entity_category": "config"}
    if T.row_for_key("report_interval", layout, user) is not None:
        lo, hi = 225, 3600  # the cloud layout's DP 102
    elif shape & T.X_REPORT:
        lo, hi = T.REPORT_MIN, T.REPORT_MAX  # DP 18's record 0x08
    else:
        return
    yield "number", "report_interval", {"name": "Report interval", "min": lo, "max": hi, "step": 1,
                                        "unit_of_measurement": "s", "entity_category": "config",
                                        "command_topic": "~/cmd/report_interval",
                                        "value_template": FIELD % "report_interval"}


def all_object_ids(user=()):
    """Every (component, object_id) any layout and shape announces: to remove the ones a
    change of layout or shape leaves behind (phases B and C on a single-phase meter)."""
    seen = []
    for lay in (T.V2, T.CLOUD, T.SPM01):
        for comp, oid, _ in entities(lay, user, T.X_ALL, True):
            if (comp, oid) not in seen:
                seen.append((comp, oid))
    return seen


def model(layout):
    """The Home Assistant device model of a layout."""
    if layout == T.SPM01:
        return "SPM01 (single-phase, spm01 layout)"
    return "SPM02 (%s layout)" % T.LAYOUTS[layout]


def component(comp, oid, c, node, base):
    """One component of the device message: its platform, unique id and whole topics
    ("~/cmd/x" in entities() is the base topic's cmd/x)."""
    c["p"] = comp
    c["unique_id"] = node + "_" + oid
    if comp != "button" and "state_topic" not in c:
        c["state_topic"] = "~/state"
    for k in ("state_topic", "command_topic", "json_attributes_topic"):
        if k in c:
            c[k] = base + c[k][1:]
    return c


def device_parts(layout, user, shape, node, base, name, version, url, wifi=False):
    """Home Assistant's device-based discovery message for the meter (wifi: an ESP32, whose
    Wi-Fi signal is an entity), as pieces of JSON
    text (it is some 10 KB: it goes to the broker piece by piece). Components of another
    layout or shape stay in it with their platform only, which is how Home Assistant is
    told to remove them."""
    dev = {"ids": [node], "name": name, "mf": "ZGMISMART", "mdl": model(layout), "sw": version}
    origin = {"name": ORIGIN, "sw": version}
    if url:  # the status page: where to look, and what to report
        dev["cu"] = origin["url"] = url
    yield '{"dev":'
    yield json.dumps(dev)
    yield ',"o":'
    yield json.dumps(origin)
    yield ',"availability_topic":"%s/availability","cmps":{' % base
    sep = '"'
    ours = []
    for comp, oid, c in entities(layout, user, shape, wifi):
        ours.append(oid)
        yield sep + oid + '":{'
        # key by key: the pieces stay small, which a fragmented heap can always give
        sep2 = '"'
        for k, v in component(comp, oid, c, node, base).items():
            yield sep2 + k + '":'
            yield json.dumps(v)
            sep2 = ',"'
        yield "}"
        sep = ',"'
    for lay in (T.V2, T.CLOUD, T.SPM01):  # all_object_ids(), without a list of them all
        for comp, oid, _ in entities(lay, user, T.X_ALL, True):
            if oid not in ours:
                ours.append(oid)
                yield '%s%s":{"p":"%s"}' % (sep, oid, comp)
                sep = ',"'
    yield "}}"
