"""End to end: the firmware's main.py in the MicroPython unix port, against the
simulated meter and a real Mosquitto, all on 127.0.0.1."""
import json
import time

import pytest

import harness
from harness import Firmware, Mosquitto, MqttWatch, render_all, stop_all, wait_until
from spm02sim import Simulator, parse_dps

LAYOUTS = ["v2", "cloud"]


class Rig(harness.Rig):
    """The simulator (seed 7) and the firmware, a watcher on every topic once the firmware is up."""

    def __init__(self, broker, layout="v2", **simargs):
        super().__init__(broker, layout, sim=dict(seed=7, **simargs), watch="started")


@pytest.fixture(params=LAYOUTS)
def rig(broker, request):
    r = Rig(broker, request.param)
    try:
        yield r.start()
    finally:
        r.stop()


@pytest.fixture
def v2rig(broker):
    r = Rig(broker, "v2")
    try:
        yield r.start()
    finally:
        r.stop()


def test_handshake_on_the_wire(v2rig):
    sim = v2rig.sim
    sim.wait_frame(0x08, timeout=10)
    cmds = [c for c, _ in sim.received]
    first = [c for i, c in enumerate(cmds) if c not in cmds[:i]]  # first appearance order
    assert first[:5] == [0x00, 0x01, 0x02, 0x03, 0x08]
    assert [p for c, p in sim.received if c == 0x03][0] == b"\x04"  # cloud-connected emulation
    assert sim.wifi_state == 4
    # the simulator asks the time after the handshake: the answer is valid and current
    t = wait_until(lambda: sim.local_time, 5, what="time answer")
    assert t[0] == 1 and t[1] == time.localtime().tm_year - 2000


def test_state_equals_simulator_truth(rig, request):
    truth, values = rig.settled()
    layout = rig.sim.layout
    st = rig.fw.state()
    assert st["mcu"]["layout"] == layout and st["mcu"]["layout_setting"] == "auto"
    assert "DP" in st["mcu"]["layout_reason"]
    assert st["mcu"]["online"] and st["mcu"]["product_key"]
    assert values["warnings"] == []
    for k in truth:
        assert values[k] == truth[k], k
    if layout == "v2":
        assert st["derived"] == ["power_factor_a", "power_factor_b", "power_factor_c"]
        for p in "abc":
            pf = values["power_a".replace("a", p)] / (values["voltage_" + p] * values["current_" + p])
            assert abs(values["power_factor_" + p] - pf) <= 0.006
    # every DP the meter sent is listed, mapped or not
    sent = set(rig.sim.truth_counts())
    assert sent <= {d["id"] for d in st["dps"]}
    # and MQTT carries the same values, retained
    def mqtt_ok():
        s = rig.watch.get("spm02/state")
        return s and all(json.loads(s).get(k) == truth[k] for k in truth)
    wait_until(mqtt_ok, 10, what="B/state to equal the truth")
    assert rig.watch.get("spm02/availability") == b"online"


def test_runs_on_the_runtime_asked_for(v2rig):
    """make test-32 runs this suite on the 32-bit runtimes: the firmware must really run
    there, with the frozen umqtt.simple 1.7.0 and (on the custom-image runtime) frozen code."""
    v2rig.settled()
    rt = v2rig.fw.state()["device"]["runtime"]
    mp = harness.MICROPYTHON
    if not mp:  # the PyPI unix port: 64-bit, umqtt.simple 1.3.4 from .deps as .mpy
        assert rt == {"bits": 64, "firmware": "files", "umqtt": "files"}
    elif mp.endswith("micropython32-frozen"):
        assert rt == {"bits": 32, "firmware": "frozen", "umqtt": "frozen"}
    else:
        assert mp.endswith("micropython32")
        assert rt == {"bits": 32, "firmware": "files", "umqtt": "frozen"}


def test_numbers_are_exact_text(v2rig):
    v2rig.settled()
    status, body = v2rig.fw.request("GET", "/api/state")
    text = body.decode()
    counts = v2rig.sim.truth_counts()
    assert '"voltage_a":%d.%d' % divmod(counts[102], 10) in text
    assert "0000000000" not in text and "9999999" not in text


def test_http_commands_reach_the_meter(rig):
    rig.settled()
    sim, fw = rig.sim, rig.fw

    def sent(name, payload, cmd, dp=None, status=200):
        mark = sim.mark()
        st, body = fw.cmd(name, payload)
        assert st == status, body
        assert json.loads(body)["ok"] is True
        return sim.wait_frame(cmd, timeout=5, since=mark, dp=dp)

    sent("query_state", "PRESS", 0x08)
    assert parse_dps(sent("refresh", "PRESS", 0x06, dp=35)[1])[0][2] == b"\x00"
    assert parse_dps(sent("clear_energy", "PRESS", 0x06, dp=12)[1])[0][2] == b"\x01"
    assert parse_dps(sent("locate", "1", 0x06, dp=101)[1])[0][2] == b"\x01"
    assert parse_dps(sent("locate", "OFF", 0x06, dp=101)[1])[0][2] == b"\x00"
    _, payload = sent("alarm", '{"name": "overvoltage", "enabled": true, "threshold": 250}', 0x06, dp=17)
    wait_until(lambda: rig.values()["alarms"]["overvoltage"] == {"enabled": True, "threshold": 250}, 5,
               what="alarm echoed")
    assert rig.values()["alarms"]["overcurrent"] == {"enabled": True, "threshold": 60}  # the rest kept
    wait_until(lambda: rig.values()["energy_forward"] == 0, 5, what="energy cleared")
    if rig.sim.layout == "cloud":
        sent("report_interval", "900", 0x06, dp=102)
        wait_until(lambda: rig.values()["report_interval"] == 900, 5, what="interval echoed")
    else:
        st, body = fw.cmd("report_interval", "900")
        assert st == 400 and "cloud" in json.loads(body)["error"]


def test_http_command_errors(v2rig):
    fw, sim = v2rig.fw, v2rig.sim
    v2rig.settled()
    mark = sim.mark()
    for name, payload in (("locate", "maybe"), ("alarm", "{"), ("alarm", '{"name": "overvoltage", "threshold": 0}')):
        st, body = fw.cmd(name, payload)
        assert st == 400, (name, body)
        assert json.loads(body)["ok"] is False
    assert fw.cmd("explode", "")[0] == 404
    assert fw.request("GET", "/api/cmd/refresh")[0] == 405
    assert fw.request("PUT", "/api/cmd/refresh", b"")[0] == 405
    assert fw.request("GET", "/nope")[0] == 404
    time.sleep(0.5)
    assert [c for c, _ in sim.received[mark:] if c == 0x06] == []


def test_mqtt_commands_and_bad_payloads(v2rig):
    v2rig.settled()
    sim, w = v2rig.sim, v2rig.watch
    wait_until(lambda: w.get("spm02/availability") == b"online", 10, what="online")
    mark = sim.mark()
    w.publish("spm02/cmd/locate", "banana")
    w.publish("spm02/cmd/no_such_command", "1")
    w.publish("spm02/cmd/alarm", "not json")
    w.publish("spm02/cmd/clear_energy", "PRESS")
    _, payload = sim.wait_frame(0x06, since=mark, dp=12, timeout=5)
    assert [c for c, p in sim.received[mark:] if c == 0x06 and parse_dps(p)[0][0] != 12] == []
    mark = sim.mark()
    w.publish("spm02/cmd/locate", "ON")
    sim.wait_frame(0x06, since=mark, dp=101, timeout=5)
    mark = sim.mark()
    w.publish("spm02/cmd/query_state", "PRESS")
    sim.wait_frame(0x08, since=mark, timeout=5)
    log = v2rig.fw.log()
    assert "bad payload ignored" in log and "unknown command no_such_command ignored" in log
    st = v2rig.fw.state()["mqtt"]
    assert st["connected"] and st["commands_bad"] == 3 and st["commands_ok"] >= 3


DEVICE = "homeassistant/device/spm02/config"
LEGACY = "homeassistant/%s/spm02/%s/config"


def test_discovery(broker):
    """One retained device-based message with origin and every component; the per-entity
    configs an earlier version left are migrated (their entities kept) and cleared."""
    seen = MqttWatch(broker.port, ("homeassistant/#", "spm02/state"))  # there before the firmware
    legacy = [("sensor", "voltage_a"), ("sensor", "energy_forward"), ("button", "clear_energy"),
              ("sensor", "voltage_b")]
    for comp, oid in legacy:
        seen.publish(LEGACY % (comp, oid), json.dumps({"name": oid, "unique_id": "spm02_" + oid,
                                                       "state_topic": "spm02/state"}), retain=True)
    wait_until(lambda: all(seen.get(LEGACY % x) for x in legacy), 5, what="old configs retained")
    r = Rig(broker, "v2")
    try:
        r.start()
        truth, _ = r.settled()
        wait_until(lambda: seen.get(DEVICE) and all(seen.get(LEGACY % x) == b"" for x in legacy), 10,
                   what="the device message and the old configs cleared")
        d = json.loads(seen.get(DEVICE))
        assert d["dev"]["ids"] == ["spm02"] and d["dev"]["mf"] == "ZGMISMART" and d["dev"]["mdl"].startswith("SPM02")
        assert d["dev"]["sw"] == d["o"]["sw"] == r.fw.state()["device"]["version"]
        assert d["o"]["name"] == "spm02-firmware" and d["o"]["url"] == r.fw.url("/")
        assert d["dev"]["cu"] == r.fw.url("/") and d["availability_topic"] == "spm02/availability"
        live = {oid: c for oid, c in d["cmps"].items() if len(c) > 1}
        v = live["voltage_a"]
        assert (v["p"], v["unique_id"], v["state_topic"]) == ("sensor", "spm02_voltage_a", "spm02/state")
        assert (v["device_class"], v["state_class"], v["unit_of_measurement"], v["suggested_display_precision"]) \
            == ("voltage", "measurement", "V", 1)
        e = live["energy_forward"]
        assert (e["device_class"], e["state_class"], e["unit_of_measurement"]) == ("energy", "total_increasing", "kWh")
        assert live["frequency"]["entity_category"] == "diagnostic"
        for b in ("query_state", "refresh", "clear_energy"):
            assert live[b]["p"] == "button" and live[b]["command_topic"] == "spm02/cmd/" + b
            assert live[b]["entity_category"] == "config"
        assert d["cmps"]["report_interval"] == {"p": "number"}  # not in the v2 layout: removed
        # The migration, in Home Assistant's order: each old config is told it moves, then the
        # device message comes, then the old config is cleared
        msgs = [(t, p) for t, p, _ in seen.messages]
        dev_at = [i for i, (t, _) in enumerate(msgs) if t == DEVICE]  # (earlier tests' retained one too)
        for x in legacy:
            mine = [(i, p) for i, (t, p) in enumerate(msgs) if t == LEGACY % x]
            assert [p for _, p in mine][1:] == [b'{"migrate_discovery": true}', b""], mine
            assert [i for i in dev_at if mine[1][0] < i < mine[2][0]], (mine, dev_at)
        # ... and nothing is left retained under the old topics
        late = MqttWatch(broker.port, ("homeassistant/#",))
        late.sync("homeassistant/test-sync")
        assert [t for t, p, r in late.messages if p and r] == [DEVICE]
        late.stop()
        # Every template renders against the state, to the simulator's numbers
        # (the day keys follow the first report within a second: the energy clock's tick)
        wait_until(lambda: b"energy_forward_month" in (seen.get("spm02/state") or b""), 10, what="the day keys")
        state = json.loads(seen.get("spm02/state"))
        # (the device's health reads B/device: test_e2e_health.py renders those)
        out = render_all({k: c for k, c in live.items() if c.get("state_topic") != "spm02/device"}, state)
        assert not [u for u, x in out.items() if x in ("", "None")], out
        for key in ("voltage_a", "current_c", "power", "energy_forward", "frequency"):
            assert float(out["spm02_" + key]) == truth[key], key
        assert out["spm02_faults"] == "none"
        assert render_all({"v": v}, {})["spm02_voltage_a"] == "None"  # unknown, not a template error
        # Home Assistant restarts: the device message is sent again
        n = seen.count(DEVICE)
        seen.publish("homeassistant/status", "online")
        wait_until(lambda: seen.count(DEVICE) > n, 10, what="rediscovery")
        # A broker that never had old configs gets no migration notes: only the device message
        assert r.fw.state()["mqtt"]["connected"]
    finally:
        r.stop()
        seen.stop()


def test_discovery_without_earlier_versions_writes_only_the_device_message():
    b = Mosquitto().start()
    seen = MqttWatch(b.port, ("homeassistant/#",))
    r = Rig(b, "cloud")
    try:
        r.start()
        r.settled()
        wait_until(lambda: seen.get(DEVICE), 10, what="the device message")
        time.sleep(1.5)
        assert {t for t, _, _ in seen.messages} == {DEVICE}
        d = json.loads(seen.get(DEVICE))
        assert d["cmps"]["report_interval"]["p"] == "number" and d["cmps"]["report_interval"]["min"] == 225
        assert d["dev"]["mdl"] == "SPM02 (cloud layout)"
    finally:
        r.stop()
        seen.stop()
        b.stop()


def test_broker_restart(broker):
    b = Mosquitto().start()
    r = Rig(b, "v2")
    try:
        r.start()
        r.settled()
        wait_until(lambda: r.fw.state()["mqtt"]["connected"], 10, what="mqtt connected")
        r.watch.stop()
        r.watch = None
        b.stop()
        wait_until(lambda: not r.fw.state()["mqtt"]["connected"], 10, what="mqtt to notice")
        # the page keeps answering and the link keeps going meanwhile
        mark = r.sim.mark()
        r.fw.cmd("query_state")
        r.sim.wait_frame(0x08, since=mark, timeout=5)
        assert r.fw.request("GET", "/")[0] == 200
        b.start()
        r.watch = MqttWatch(b.port)
        wait_until(lambda: r.watch.get("spm02/availability") == b"online", 20, what="availability again")
        truth = r.sim.truth()
        wait_until(lambda: r.watch.get("spm02/state") and
                   json.loads(r.watch.get("spm02/state"))["voltage_a"] == truth["voltage_a"], 10,
                   what="state republished")
        assert r.fw.state()["mqtt"]["connects"] >= 2
    finally:
        r.stop()
        b.stop()


def test_last_will_offline(broker):
    r = Rig(broker, "v2")
    try:
        r.start()
        wait_until(lambda: r.watch.get("spm02/availability") == b"online", 10, what="online")
        r.fw.stop()
        wait_until(lambda: r.watch.get("spm02/availability") == b"offline", 100, 0.2, what="last will")
    finally:
        r.stop()


def test_mcu_silent_offline_then_back_rebooted(broker):
    r = Rig(broker, "v2")
    try:
        r.start()
        r.settled()
        wait_until(lambda: r.watch.get("spm02/availability") == b"online", 10, what="available")
        r.sim.set_silent(True)
        # within a few heartbeats: the next one (15 s at most) and its misses, well before a
        # second heartbeat period would end
        wait_until(lambda: not r.fw.state()["mcu"]["online"], 28, 0.2, what="link offline")
        # Home Assistant shows the meter unavailable rather than stale readings
        wait_until(lambda: r.watch.get("spm02/availability") == b"offline", 5, what="unavailable")
        r.sim.set_phase("a", voltage=241.0)
        r.sim.reboot()
        mark = r.sim.mark()
        r.sim.set_silent(False)
        r.sim.wait_frame(0x01, since=mark, timeout=10)
        r.sim.wait_frame(0x08, since=mark, timeout=10)
        wait_until(lambda: r.fw.state()["mcu"]["online"], 10, what="online again")
        r.settled()
        assert r.values()["voltage_a"] == 241.0
        wait_until(lambda: r.watch.get("spm02/availability") == b"online", 5, what="available again")
    finally:
        r.stop()


def test_mcu_reboot_while_online(broker):
    r = Rig(None, "v2")
    try:
        r.start()
        r.settled()
        mark = r.sim.mark()
        r.sim.reboot()
        r.sim.wait_frame(0x01, since=mark, timeout=20)  # next heartbeat answer is 0: handshake
        r.sim.wait_frame(0x08, since=mark, timeout=5)
        wait_until(lambda: r.fw.state()["mcu"]["reboots"] == 1, 5, what="reboot counted")
    finally:
        r.stop()


def test_line_noise(broker):
    r = Rig(None, "v2", noise=0.5)
    try:
        r.start()
        for _ in range(3):
            mark = r.sim.mark()
            r.fw.cmd("query_state")
            r.sim.wait_frame(0x08, since=mark, timeout=5)
        r.settled(20)
        err = r.fw.state()["mcu"]["errors"]
        assert err["noise"] > 0
        assert r.values()["warnings"] == []
    finally:
        r.stop()


@pytest.mark.parametrize("neg", ["offset", "twos"])
def test_exporting_phase_both_negative_encodings(broker, neg):
    """A phase that exports: negative power inside the raw phase DPs in either encoding,
    reports with several DPs per frame, and reports that want an ack (0x22)."""
    r = Rig(None, "v2", neg_encoding=neg, dps_per_frame=4, report_cmd=0x22)
    try:
        r.sim.set_phase("c", voltage=232.0, current=6.0, pf=-0.9)  # exporting
        r.start()
        mark = r.sim.mark()
        r.fw.cmd("query_state")
        r.sim.wait_frame(0x08, since=mark, timeout=5)
        truth, values = r.settled()
        assert values["power_c"] < 0 and values["power_c"] == truth["power_c"]
        assert values["power_factor_c"] < 0
        st = r.fw.state()
        assert st["mcu"]["neg_encoding"] == neg  # seen in raw DP 8, shown to the owner
        raw8 = [d for d in st["dps"] if d["id"] == 8][0]["hex"]
        assert raw8 == r.sim.truth_counts()[8].hex()
        assert values["warnings"] == []
        r.sim.wait_frame(0x23, timeout=5)  # every 0x22 report was acked
    finally:
        r.stop()
