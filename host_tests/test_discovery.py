# Home Assistant discovery from the DP table, per layout and shape. Runs under pytest and
# in the MicroPython unix port.
import discovery
import dptable as T
from meter import Meter
from reports import spm01_report, v0x, LEAK, feed, v2_report
from tuya import T_RAW, T_BOOL, T_VALUE

PORTABLE = True


def by_id(layout, user=(), shape=0):
    return {oid: (comp, c) for comp, oid, c in discovery.entities(layout, user, shape)}


def test_single_phase_announces_phase_a_only():
    e = by_id(T.SPM01)
    for key in ("voltage_a", "current_a", "power_a", "power_factor_a", "energy_forward", "energy_reverse"):
        assert key in e, key
    for oid in e:
        assert not (oid[-2:] in ("_b", "_c")), oid
    assert e["voltage_a"][1]["name"] == "Voltage"  # one phase: no letter
    assert e["energy_reverse"][1]["device_class"] == "energy"
    # every B/C entity any layout announces is in the list of what to remove
    gone = [oid for comp, oid in discovery.all_object_ids() if oid not in e]
    for key in ("voltage_b", "current_c", "power_factor_b", "reactive_power_c", "apparent_power_b"):
        assert key in gone, key
    assert by_id(T.V2)["voltage_b"][1]["name"] == "Voltage B"
    assert "SPM01" in discovery.model(T.SPM01) and "v2" in discovery.model(T.V2)


def test_reactive_and_apparent_power_with_the_v02_format():
    assert "reactive_power_a" not in by_id(T.V2)
    m = Meter()
    feed(m, [(6 + k, T_RAW, v0x(2, 2300, 3000, 675, 100, 700, 96)) for k in range(3)])
    e = by_id(m.layout, m.user, m.shape)
    q, s = e["reactive_power_b"][1], e["apparent_power_c"][1]
    assert (q["device_class"], q["state_class"], q["unit_of_measurement"]) == ("reactive_power", "measurement", "var")
    assert (s["device_class"], s["state_class"], s["unit_of_measurement"]) == ("apparent_power", "measurement", "VA")
    assert e["power_factor_a"][1]["device_class"] == "power_factor"


def test_report_interval_number_where_the_meter_has_one():
    assert "report_interval" not in by_id(T.V2)
    assert by_id(T.CLOUD)["report_interval"][1]["min"] == 225
    m = Meter()
    feed(m, spm01_report())  # DP 18 08 01 00 1E
    comp, c = by_id(m.layout, m.user, m.shape)["report_interval"]
    assert comp == "number" and (c["min"], c["max"]) == (T.REPORT_MIN, T.REPORT_MAX)


def test_user_keys_are_entities():
    user = (LEAK, (140, T.ANY, "relay", T_BOOL, 0, "", 0), (141, T.ANY, "temp", T_VALUE, 1, "degC", 0),
            (142, T.ANY, "count", T_VALUE, 0, "", 0))
    e = by_id(T.V2, user)
    assert e["leakage_current"][1]["device_class"] == "current"
    assert e["leakage_current"][1]["unit_of_measurement"] == "A"
    assert e["relay"][0] == "binary_sensor" and "ON" in e["relay"][1]["value_template"]
    t = e["temp"][1]
    assert t["unit_of_measurement"] == "degC" and "device_class" not in t and t["state_class"] == "measurement"
    assert "device_class" not in e["count"][1]  # unitless is a power factor only for power_factor keys
    assert ("sensor", "leakage_current") in discovery.all_object_ids(user)


def test_shape_changes_with_what_the_meter_sends():
    m = Meter()
    feed(m, v2_report())
    s0, seq = m.shape, m.seq
    assert s0 & 3 == T.V2 and not s0 & T.X_REPORT
    feed(m, [(18, T_RAW, b"\x08\x01\x00\x1e")])
    assert m.shape == s0 | T.X_REPORT and m.seq > seq


def test_single_phase_announces_common_dps_once_seen():
    m = Meter()
    feed(m, spm01_report())  # DPs 1, 2, 6, 9, 18: no 19, 29, 32, 50, 101
    e = by_id(m.layout, m.user, m.shape)
    for key in ("power", "frequency", "power_factor", "device_id", "locate"):
        assert key not in e, key
    assert "power" in by_id(T.V2) and "locate" in by_id(T.V2)  # three-phase: always
    feed(m, [(29, T_VALUE, 850), (101, T_BOOL, 0)])
    e = by_id(m.layout, m.user, m.shape)
    assert e["power"][1]["device_class"] == "power" and e["locate"][0] == "switch"
    assert "frequency" not in e
    ids = discovery.all_object_ids()
    assert ("sensor", "frequency") in ids and ("switch", "locate") in ids


def device_message(layout, user=(), shape=0, url="http://192.0.2.5/", wifi=False):
    import json
    text = "".join(discovery.device_parts(layout, user, shape, "spm02_a1b2c3", "meter1", "Garage", "1.2.3", url,
                                          wifi))
    return json.loads(text)


HEALTH = ("uptime", "mem_free", "reset_cause", "link_errors", "rssi")


def test_the_device_health_is_diagnostic_entities_reading_b_device():
    live = {oid: c for oid, c in device_message(T.V2, wifi=True)["cmps"].items() if len(c) > 1}
    for oid in HEALTH:
        c = live[oid]
        assert (c["p"], c["state_topic"], c["entity_category"]) == ("sensor", "meter1/device", "diagnostic"), oid
    assert (live["uptime"]["device_class"], live["uptime"]["unit_of_measurement"]) == ("duration", "s")
    assert live["uptime"]["value_template"] == "{{ value_json.uptime_s }}"
    assert (live["mem_free"]["unit_of_measurement"], live["mem_free"]["device_class"]) == ("B", "data_size")
    assert live["reset_cause"]["name"] == "Last restart cause"
    assert (live["rssi"]["device_class"], live["rssi"]["unit_of_measurement"]) == ("signal_strength", "dBm")
    assert "device_class" not in live["reset_cause"] and "unit_of_measurement" not in live["link_errors"]
    # no Wi-Fi (the host): no signal entity; it is removed, as what another shape lacks
    d = device_message(T.V2)
    assert d["cmps"]["rssi"] == {"p": "sensor"} and len(d["cmps"]["uptime"]) > 1
    assert set(d["cmps"]) == set(oid for _, oid in discovery.all_object_ids())


def test_device_message_has_device_origin_and_every_component():
    d = device_message(T.V2)
    assert d["dev"] == {"ids": ["spm02_a1b2c3"], "name": "Garage", "mf": "ZGMISMART", "mdl": discovery.model(T.V2),
                        "sw": "1.2.3", "cu": "http://192.0.2.5/"}
    assert d["o"] == {"name": "spm02-firmware", "sw": "1.2.3", "url": "http://192.0.2.5/"}
    assert d["availability_topic"] == "meter1/availability"
    cmps = d["cmps"]
    live = {oid: c for oid, c in cmps.items() if len(c) > 1}
    assert sorted(live) == sorted(oid for _, oid, _ in discovery.entities(T.V2))
    for oid, c in live.items():
        assert c["unique_id"] == "spm02_a1b2c3_" + oid and c["p"] in ("sensor", "binary_sensor", "button", "switch",
                                                                     "number")
        if c["p"] != "button":
            assert c["state_topic"] == ("meter1/device" if oid in HEALTH else "meter1/state"), oid
        for k in c:
            assert "~" not in str(c[k]) or k == "value_template", (oid, k)  # whole topics only
    v = live["voltage_a"]
    assert (v["device_class"], v["state_class"], v["unit_of_measurement"], v["suggested_display_precision"]) == \
        ("voltage", "measurement", "V", 1)
    assert live["current_b"]["suggested_display_precision"] == 3
    assert live["energy_forward"]["suggested_display_precision"] == 2 and "entity_category" not in live["energy_forward"]
    assert live["power"]["suggested_display_precision"] == 0
    assert live["power_factor_a"]["suggested_display_precision"] == 2  # derived on v2
    for oid in ("frequency", "power_factor", "power_factor_c", "device_id", "warnings", "faults"):
        assert live[oid]["entity_category"] == "diagnostic", oid
    for oid in ("query_state", "refresh", "clear_energy", "locate"):
        assert live[oid]["entity_category"] == "config", oid
    assert live["clear_energy"]["command_topic"] == "meter1/cmd/clear_energy"
    assert live["warnings"]["json_attributes_topic"] == "meter1/state"


def test_device_message_removes_what_this_shape_lacks():
    d = device_message(T.SPM01)
    gone = {oid: c for oid, c in d["cmps"].items() if len(c) == 1}
    for oid in ("voltage_b", "current_c", "energy_forward_a", "report_interval"):
        assert gone[oid] == {"p": "number" if oid == "report_interval" else "sensor"}, oid
    live = [oid for oid, c in d["cmps"].items() if len(c) > 1]
    assert "voltage_a" in live and not [o for o in live if o.endswith(("_b", "_c"))]
    # every component any layout announces is either here or removed
    assert set(d["cmps"]) == set(oid for _, oid in discovery.all_object_ids())
    # no address known yet: no configuration URL, and no empty one either
    d = device_message(T.V2, url="")
    assert "cu" not in d["dev"] and "url" not in d["o"]


def test_device_message_reactive_power_precision_with_the_v02_format():
    m = Meter()
    feed(m, [(6 + k, T_RAW, v0x(2, 2300, 3000, 675, 100, 700, 96)) for k in range(3)])
    live = device_message(m.layout, m.user, m.shape)["cmps"]
    assert live["reactive_power_a"]["suggested_display_precision"] == 0
    assert live["reactive_power_a"]["entity_category"] == "diagnostic"
    assert live["power_factor_b"]["suggested_display_precision"] == 2


def test_the_day_keys_are_energy_sensors_in_every_layout():
    for lay in (T.V2, T.CLOUD, T.SPM01):
        e = by_id(lay)
        for key in T.DAY_KEYS:
            comp, c = e[key]
            assert comp == "sensor" and (c["unit_of_measurement"], c["device_class"], c["state_class"],
                                         c["suggested_display_precision"]) == ("kWh", "energy", "total_increasing", 2)
            assert c["value_template"] == "{{ value_json.get('%s') }}" % key
    assert by_id(T.SPM01)["energy_forward_today"][1]["name"] == "Energy forward today"


def test_device_and_state_classes_agree_with_the_units_table():
    # discovery keeps its own copy of the device classes (lib/units.py is not loaded with
    # it): every unit, known or not, with and without a power_factor key, as units.classes
    import units
    for unit in [u[0] for u in units.UNITS] + ["degC", "kW", "V:voltage|A"]:
        for key in ("power_factor_x", "x_" + unit):
            user = ((140, T.ANY, key, T_VALUE, 1, unit, 0),)
            c = by_id(T.V2, user)[key][1]
            dc, sc, _ = units.classes(key, unit)
            assert (c.get("device_class"), c.get("state_class")) == (dc, sc), (key, unit)
            assert c.get("unit_of_measurement") == (unit or None), (key, unit)
