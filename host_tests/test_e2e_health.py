"""End to end, the device's own health: the retained B/device message (at every MQTT connect
and every 5 minutes, here every second through the host-only SPM02_DEVICE_MS), the
diagnostic entities Home Assistant reads it with, the same figures in /metrics, and
/api/state's device keys (reset_cause, micropython, fs_free). The firmware's main.py in the
MicroPython unix port against the simulator and a real Mosquitto, all on 127.0.0.1."""
import json

from prometheus_client.parser import text_string_to_metric_families

from harness import Firmware, Mosquitto, MqttWatch, render_all, stop_all, wait_until
from spm02sim import Simulator

DEVICE = "spm02/device"
DISCOVERY = "homeassistant/device/spm02/config"


def metrics(fw):
    status, body = fw.request("GET", "/metrics")
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(fams, name):
    return fams[name].samples[0].value


def device_messages(watch):
    with watch.lock:
        return [(json.loads(p), retained) for t, p, retained in watch.messages if t == DEVICE and p]


def test_health_at_connect_retained_read_by_home_assistant_and_in_metrics():
    b = Mosquitto().start()  # of its own: the retained message is this firmware's
    sim = Simulator(layout="v2", port=0, seed=5, interval=3600).start()
    fw = Firmware(sim.port, b.port, env={"SPM02_DEVICE_MS": "1000"})
    seen = late = None
    try:
        seen = MqttWatch(b.port, (DEVICE, DISCOVERY))
        fw.start()
        wait_until(lambda: seen.get(DEVICE) and seen.get(DISCOVERY), 15, what="B/device and discovery")
        # /api/state's device keys
        dev = fw.state()["device"]
        assert dev["reset_cause"] == "power-on"  # a first start
        assert dev["micropython"].count(".") == 2 and dev["micropython"][0].isdigit()
        assert isinstance(dev["fs_free"], int) and dev["fs_free"] > 0
        assert "wifi" not in dev  # the ESP32's only
        # every second here (every 5 minutes on the device), uptime counting
        wait_until(lambda: len(device_messages(seen)) >= 3, 10, what="B/device again")
        msgs = [m for m, _ in device_messages(seen)]
        assert [m["uptime_s"] for m in msgs] == sorted(m["uptime_s"] for m in msgs)
        assert msgs[-1]["uptime_s"] > msgs[0]["uptime_s"]
        # a client that connects later gets it at once: retained
        late = MqttWatch(b.port, (DEVICE,))
        wait_until(lambda: device_messages(late), 5, what="the retained B/device")
        first, retained = device_messages(late)[0]
        assert retained
        assert sorted(first) == ["flash_writes", "link_errors", "mem_free", "mqtt_reconnects", "reset_cause",
                                 "uptime_s"]  # no rssi, ssid: no Wi-Fi here
        # some link errors, so that the count is no 0 by default
        sim.send_raw(b"\x55\xaa\x03\x07\x00\x01\x00\x00")  # a frame with a wrong checksum
        wait_until(lambda: device_messages(seen)[-1][0]["link_errors"] > 0, 10, what="link errors")
        msg = device_messages(seen)[-1][0]
        st = fw.state()
        assert msg["link_errors"] == sum(st["mcu"]["errors"].values())
        assert msg["reset_cause"] == "power-on" and msg["mqtt_reconnects"] == 0
        assert msg["flash_writes"] == st["energy"]["writes"]
        assert 20000 < msg["mem_free"] and abs(msg["mem_free"] - st["device"]["mem_free"]) < 65536
        assert abs(msg["uptime_s"] - st["device"]["uptime_s"]) <= 2
        # Home Assistant's diagnostic entities, rendered against the message as its Jinja2 would
        d = json.loads(seen.get(DISCOVERY))
        health = {oid: c for oid, c in d["cmps"].items() if c.get("state_topic") == DEVICE}
        assert sorted(health) == ["link_errors", "mem_free", "reset_cause", "uptime"]
        assert d["cmps"]["rssi"] == {"p": "sensor"}  # no Wi-Fi: no signal entity
        for c in health.values():
            assert c["entity_category"] == "diagnostic"
        assert (health["uptime"]["device_class"], health["uptime"]["unit_of_measurement"]) == ("duration", "s")
        assert health["mem_free"]["unit_of_measurement"] == "B"
        out = render_all(health, msg)
        assert out == {"spm02_uptime": str(msg["uptime_s"]), "spm02_mem_free": str(msg["mem_free"]),
                       "spm02_reset_cause": "power-on", "spm02_link_errors": str(msg["link_errors"])}
        # not in B/state, which changes only with readings
        assert "uptime_s" not in st["values"] and "mem_free" not in st["values"]
        # the same figures in /metrics
        fams = metrics(fw)
        msg = device_messages(seen)[-1][0]
        assert abs(value(fams, "spm02_uptime_seconds") - msg["uptime_s"]) <= 2
        assert value(fams, "spm02_heap_free_bytes") > 20000
        assert [(s.labels, s.value) for s in fams["spm02_reset_cause_info"].samples] == [({"cause": "power-on"}, 1)]
        assert value(fams, "spm02_mqtt_reconnects") == 0  # the parser strips _total
        assert fams["spm02_mqtt_reconnects"].type == "counter"
        assert value(fams, "spm02_flash_writes") == fw.state()["energy"]["writes"]
        assert sum(s.value for s in fams["spm02_link_errors"].samples) == msg["link_errors"]
        assert "spm02_wifi_rssi_dbm" not in fams
    finally:
        stop_all(late, seen, fw, sim, b)


def test_a_reconnect_and_a_restart_show_in_the_health():
    b = Mosquitto().start()
    sim = Simulator(layout="v2", port=0, seed=5, interval=3600).start()
    fw = Firmware(sim.port, b.port)  # every 5 minutes: each message here is a connect's
    seen = None
    try:
        fw.start()
        wait_until(lambda: fw.state()["mqtt"]["connected"], 15, what="mqtt connected")
        # the broker restarts (and forgets what was retained): B/device again at the reconnect
        b.stop()
        wait_until(lambda: not fw.state()["mqtt"]["connected"], 10, what="mqtt to notice")
        b.start()
        seen = MqttWatch(b.port, (DEVICE,))
        wait_until(lambda: device_messages(seen), 20, what="B/device after the reconnect")
        msg = device_messages(seen)[-1][0]
        assert msg["mqtt_reconnects"] == 1 and msg["reset_cause"] == "power-on"
        assert value(metrics(fw), "spm02_mqtt_reconnects") == 1
        # the restart command: make run starts the firmware again, which says why it started
        assert fw.cmd("restart")[0] == 200
        wait_until(lambda: device_messages(seen)[-1][0]["reset_cause"] == "exit status 75", 30,
                   what="B/device after the restart")
        msg = device_messages(seen)[-1][0]
        assert msg["mqtt_reconnects"] == 0 and msg["uptime_s"] <= 5
        assert fw.state()["device"]["reset_cause"] == "exit status 75"
        assert [s.labels["cause"] for s in metrics(fw)["spm02_reset_cause_info"].samples] == ["exit status 75"]
    finally:
        stop_all(seen, fw, sim, b)
