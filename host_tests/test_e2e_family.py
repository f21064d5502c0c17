"""End to end with the family's simulator profiles: the firmware's main.py in the
MicroPython unix port against a single-phase SPM01 (discovery of phase A only, polling of a
meter that reports only when asked), Tuya's v02 raw phase format, a v2 meter with value DPs
only, DP 18's report interval and the owner's dps map; with a real Mosquitto, all on
127.0.0.1. Every process a test starts, it stops."""
import json
import time

from prometheus_client.parser import text_string_to_metric_families

import harness
from harness import Firmware, MqttWatch, stop_all, wait_until
from spm02sim import Simulator, parse_dps

DISC = "homeassistant/%s/spm02/%s/config"  # per-entity, as earlier versions announced
DEVICE = "homeassistant/device/spm02/config"


class Rig(harness.Rig):
    """The simulator (seed 11) and the firmware; with a broker, a watcher on every topic made
    before the firmware starts (start(before) sees it first)."""

    def __init__(self, broker=None, fw=None, layout="v2", **simargs):
        super().__init__(broker, layout, sim=dict(seed=11, **simargs), **(fw or {}))


def component(w, oid):
    """A live component of the device discovery message, once it is there."""
    def live():
        d = w.get(DEVICE)
        c = json.loads(d)["cmps"].get(oid) if d else None
        return c if c and len(c) > 1 else None
    return wait_until(live, 10, what="%s in the device message" % oid)


def test_single_phase_meter_discovery(broker):
    """An SPM01 that reports only when asked: recognised from its DPs, phase A only in the
    state, /metrics and Home Assistant, and phase B/C entities an earlier run announced are
    removed."""
    def stale_entities(w):
        for key in ("voltage_b", "current_c", "power_factor_b"):
            w.publish(DISC % ("sensor", key), json.dumps({"name": key, "state_topic": "spm02/state"}), retain=True)
        wait_until(lambda: w.get(DISC % ("sensor", "voltage_b")), 5, what="stale entity retained")

    r = Rig(broker, layout="spm01", push=False)
    try:
        r.start(stale_entities)
        truth, values = r.settled()
        st = r.fw.state()
        assert st["mcu"]["layout"] == "spm01"
        assert st["mcu"]["layout_reason"] == "only raw DP 6 seen for the phases, DP 2 present: single-phase"
        assert values["warnings"] == [] and values["energy_reverse"] == truth["energy_reverse"]
        assert values["report_interval"] == 30
        assert not [k for k in values if k.endswith(("_b", "_c"))]
        assert st["derived"] == ["power_factor_a"]
        w = r.watch
        wait_until(lambda: w.get(DEVICE), 10, what="discovery")
        for key in ("voltage_b", "current_c", "power_factor_b"):  # an earlier run's: cleared
            wait_until(lambda: w.get(DISC % ("sensor", key)) == b"", 10, what="%s removed" % key)
        d = json.loads(w.get(DEVICE))
        assert d["dev"]["mdl"].startswith("SPM01")
        ids = {c["unique_id"]: c for c in d["cmps"].values() if len(c) > 1}
        assert not [u for u in ids if u.endswith(("_b", "_c"))]
        for key in ("voltage_b", "current_c", "power_factor_b", "energy_forward_a"):  # removed from the device
            assert d["cmps"][key] == {"p": "sensor"}, key
        v = ids["spm02_voltage_a"]
        assert v["name"] == "Voltage"
        e = ids["spm02_energy_reverse"]
        assert (e["device_class"], e["state_class"], e["unit_of_measurement"]) == ("energy", "total_increasing", "kWh")
        ri = ids["spm02_report_interval"]
        assert (ri["min"], ri["max"], ri["command_topic"]) == (5, 3600, "spm02/cmd/report_interval")
        # every template renders, against the published state as Home Assistant's Jinja2
        # would, the simulator's value of its entity
        import jinja2
        env = jinja2.Environment()
        env.filters["tojson"] = json.dumps
        wait_until(lambda: b"energy_forward_month" in (w.get("spm02/state") or b""), 10,
                   what="state published, with the day keys")
        state = json.loads(w.get("spm02/state"))
        assert not [k for k in state if k.endswith(("_b", "_c"))]
        want = {k: truth[k] for k in ("energy_forward", "energy_reverse", "voltage_a", "current_a", "power_a",
                                      "device_id", "report_interval")}
        want["faults"] = ", ".join(truth["faults"]) or "none"
        want["power_factor_a"] = round(truth["power_a"] / (truth["voltage_a"] * truth["current_a"]), 2)  # derived
        for k in ("forward", "reverse"):  # the counts held still since the first report
            want.update({"energy_%s_%s" % (k, when): 0.0 for when in ("today", "yesterday", "month")})
        want["warnings"] = 0
        rendered = {oid: env.from_string(c["value_template"]).render(value_json=state)
                    for oid, c in d["cmps"].items()
                    if "value_template" in c and c["state_topic"] == "spm02/state"}  # (B/device's: test_e2e_health.py)
        assert rendered == {k: str(v) for k, v in want.items()}
        # /metrics: phase a only
        fams = r.metrics()
        assert {s.labels["phase"] for s in fams["spm02_phase_voltage_volts"].samples} == {"a"}
        assert fams["spm02_energy_reverse_joules"].samples[0].value == round(truth["energy_reverse"] * 3600000)
        assert fams["spm02_report_interval_seconds"].samples[0].value == 30
    finally:
        r.stop()


def test_silent_meter_is_polled():
    """A meter that answers heartbeats but reports only when asked is asked every
    mcu.poll_s, never more often, and its new values arrive."""
    r = Rig(None, fw={"mcu": {"poll_s": 2}}, layout="spm01", push=False)
    try:
        r.start()
        r.settled()
        sim = r.sim
        mark = sim.mark()
        seen = []
        for _ in range(4):  # four polls in a row, each timed as it reaches the meter
            sim.wait_frame(0x08, timeout=10, since=mark)
            seen.append(time.monotonic())
            mark = sim.mark()
        gaps = [b - a for a, b in zip(seen, seen[1:])]
        # every poll_s, never more often; the upper bound only tells 2 s from the default 30 s
        # (the host's load may delay a poll, never bring it forward)
        assert all(1.9 <= g <= 6 for g in gaps), gaps
        assert r.fw.state()["mcu"]["polls"] >= 3 and r.fw.state()["mcu"]["poll_s"] == 2
        # what changed at the meter shows up with the next poll
        sim.set_phase("a", voltage=241.5)
        wait_until(lambda: r.values()["voltage_a"] == 241.5, 5, what="polled value")
        fams = r.metrics()
        assert fams["spm02_mcu_polls"].samples[0].value >= 3  # the parser strips _total
    finally:
        r.stop()


def test_reporting_meter_is_not_polled():
    r = Rig(None, fw={"mcu": {"poll_s": 2}}, layout="spm01", interval=0.5)
    try:
        r.start()
        r.settled()
        mark = r.sim.mark()
        time.sleep(5)
        assert [c for c, _ in r.sim.received[mark:] if c == 0x08] == []
        assert r.fw.state()["mcu"]["polls"] == 0
    finally:
        r.stop()


def test_v02_raw_format_end_to_end(broker):
    r = Rig(broker, layout="v2", raw_format="v02", export_phase="b")
    try:
        r.sim.set_phase("b", pf=-0.88)
        r.start()
        truth, values = r.settled()
        for p in "abc":
            for k in ("reactive_power_", "apparent_power_", "power_factor_"):
                assert values[k + p] == truth[k + p], k + p
        assert values["power_factor_b"] < 0 and values["reactive_power_b"] < 0
        st = r.fw.state()
        assert st["derived"] == [] and values["warnings"] == []
        assert st["mcu"]["layout"] == "v2" and "raw DP 6" in st["mcu"]["layout_reason"]
        w = r.watch
        q = component(w, "reactive_power_a")
        assert (q["device_class"], q["state_class"], q["unit_of_measurement"]) == ("reactive_power", "measurement", "var")
        s = component(w, "apparent_power_c")
        assert (s["device_class"], s["unit_of_measurement"]) == ("apparent_power", "VA")
        fams = r.metrics()
        q = {x.labels["phase"]: x.value for x in fams["spm02_phase_reactive_power_voltamperes_reactive"].samples}
        assert q == {p: truth["reactive_power_" + p] for p in "abc"}
        s = {x.labels["phase"]: x.value for x in fams["spm02_phase_apparent_power_voltamperes"].samples}
        assert s == {p: truth["apparent_power_" + p] for p in "abc"}
    finally:
        r.stop()


def test_v2_meter_with_value_dps_only():
    r = Rig(None, layout="v2", raw_format=None)
    try:
        r.start()
        truth, values = r.settled()
        st = r.fw.state()
        assert st["mcu"]["layout"] == "v2"
        assert st["mcu"]["layout_reason"] == "DP 106 seen: only the v2 layout has it"
        assert not {6, 7, 8} & {d["id"] for d in st["dps"]}
        assert values["warnings"] == []
    finally:
        r.stop()


def test_report_interval_through_dp18(broker):
    r = Rig(broker, layout="v2", dp18_interval=30)
    try:
        r.start()
        r.settled()
        sim, fw = r.sim, r.fw
        assert r.values()["report_interval"] == 30
        before = sim.truth_counts()[18]
        mark = sim.mark()
        st, body = fw.cmd("report_interval", "60")
        assert st == 200, body
        _, payload = sim.wait_frame(0x06, since=mark, dp=18, timeout=5)
        sent = parse_dps(payload)[0][2]
        assert sent == before[:-2] + b"\x00\x3c"  # the whole list, record 0x08 changed
        wait_until(lambda: r.values()["report_interval"] == 60, 5, what="interval echoed")
        for bad in ("4", "3601", "soon"):
            st, body = fw.cmd("report_interval", bad)
            assert st == 400 and "5..3600" in json.loads(body)["error"], bad
        mark = sim.mark()
        r.watch.publish("spm02/cmd/report_interval", "120")
        sim.wait_frame(0x06, since=mark, dp=18, timeout=5)
        wait_until(lambda: r.values()["report_interval"] == 120, 5, what="interval over MQTT")
        n = component(r.watch, "report_interval")
        assert n["p"] == "number" and n["min"] == 5
    finally:
        r.stop()


def test_owner_dps_map(broker):
    dps = {"120": {"key": "leakage_current", "type": "value", "decimals": 3, "unit": "A"},
           "121": {"key": "temperature", "type": "value", "decimals": 1, "unit": "degC"},
           "300": {"key": "nope"}}
    r = Rig(broker, fw={"dps": dps}, layout="v2", extra_dps={120: (2, 25), 121: (2, 215)})
    try:
        r.start()
        r.settled()
        st = r.fw.state()
        v = st["values"]
        assert v["leakage_current"] == 0.025 and v["temperature"] == 21.5
        assert st["mcu"]["layout"] == "v2"  # DPs 120/121 are the owner's, not the cloud layout's
        assert st["mcu"]["layout_reason"].endswith("(with 2 DPs from the config's dps map)")
        warn = "\n".join(st["device"]["config_warnings"])
        assert "dps.300:" in warn and "dps.121: unit degC" in warn
        d120 = [d for d in st["dps"] if d["id"] == 120][0]
        assert d120["key"] == "leakage_current" and d120["unit"] == "A"
        w = r.watch
        c = component(w, "leakage_current")
        assert (c["device_class"], c["unit_of_measurement"]) == ("current", "A")
        t = component(w, "temperature")
        assert t["unit_of_measurement"] == "degC" and "device_class" not in t
        wait_until(lambda: w.get("spm02/state") and json.loads(w.get("spm02/state")).get("leakage_current") == 0.025,
                   10, what="owner's key in B/state")
        fams = r.metrics()
        assert fams["spm02_leakage_current_amperes"].samples[0].value == 0.025
        assert fams["spm02_temperature"].samples[0].value == 21.5
    finally:
        r.stop()
