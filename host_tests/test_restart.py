"""The restart the firmware asks for (the restart command over HTTP and MQTT, the setup
portal's save, OTA): on the host the process exits 75 and `make run` starts it again, as a
reset would on the device."""
import base64
import json
import os
import time

from harness import Firmware, Mosquitto, MqttWatch, wait_until
from spm02sim import Simulator

PW = "restart-pw-3"
AUTH = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()


def test_restart_command_over_http():
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, None, http={"password": PW})
    try:
        fw.start()
        pid = fw.pid()
        assert fw.cmd("restart", "", {})[0] == 401  # a command like the others: the password
        sent = time.monotonic()
        st, body = fw.cmd("restart", "PRESS", {"Authorization": AUTH})
        assert st == 200 and json.loads(body) == {"ok": True, "message": "restarting"}
        try:  # from now until the restart, nothing more is served
            assert fw.request("GET", "/api/state")[0] == 503
        except OSError:
            pass  # already restarting
        new = wait_until(lambda: (fw.pid() != pid) and fw.pid(), 10, what="a new process")
        wait_until(lambda: fw.answers(), 10, what="HTTP again")
        assert fw.pid() == new and fw.restarts() == 1 and fw.proc.poll() is None
        assert fw.state()["device"]["uptime_s"] <= time.monotonic() - sent + 1  # counted from the restart
        assert "http: cmd restart: restarting" in fw.log()
    finally:
        fw.stop()
        sim.stop()


def test_restart_command_over_mqtt():
    broker = Mosquitto().start()
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, broker.port)
    w = None
    try:
        fw.start()
        w = MqttWatch(broker.port, ("spm02/availability",))
        wait_until(lambda: w.get("spm02/availability") == b"online", 10, what="online")
        pid = fw.pid()
        n = len(w.messages)
        w.publish("spm02/cmd/restart", "PRESS")
        wait_until(lambda: fw.pid() != pid, 10, what="a new process")
        wait_until(lambda: fw.answers(), 10, what="HTTP again")
        # a goodbye (offline at once, not the last will a keepalive later), then online again
        wait_until(lambda: [p for t, p, _ in w.messages[n:]][-1:] == [b"online"], 10, what="online again")
        assert [p for t, p, _ in w.messages[n:]][0] == b"offline"
        with open(os.path.join(broker.dir, "log")) as f:
            blog = f.read()
        assert "Client spm02 disconnected." in blog  # a clean DISCONNECT: no last will needed
        assert "Client spm02 closed its connection" not in blog
        assert "mqtt: cmd restart: restarting" in fw.log() and fw.restarts() == 1
    finally:
        if w:
            w.stop()
        fw.stop()
        sim.stop()
        broker.stop()
