"""The owner's console API (/api/config, its backup, /api/log) and the guards of every POST
(another site's page: 403; a config not sent as JSON: 415; the password): the firmware in the
MicroPython unix port against the simulator and Mosquitto, on 127.0.0.1."""
import base64
import json

import pytest

from harness import Firmware, Mosquitto, MqttWatch, stop_all, wait_until
from spm02sim import Simulator

PW = "console-pw-7"
SECRET = "mqtt-secret-9"
JSON = {"Content-Type": "application/json"}
EVIL = {"Origin": "http://evil.example"}


def auth(pw=PW):
    return {"Authorization": "Basic " + base64.b64encode(("owner:" + pw).encode()).decode()}


def saved(fw):
    with open(fw.cfg_path, "rb") as f:
        return f.read()


def post_config(fw, obj, pw=PW, headers=None):
    h = dict(JSON, **auth(pw)) if pw else dict(JSON)
    h.update(headers or {})
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    st, body = fw.request("POST", "/api/config", body, h)
    return st, json.loads(body) if body[:1] == b"{" else body


@pytest.fixture
def pwrig(broker):
    """A firmware with http.password and an MQTT password set, its broker and meter."""
    sim = Simulator(layout="v2", port=0, interval=3600, seed=5).start()
    fw = Firmware(sim.port, broker.port, http={"password": PW},
                  mqtt={"password": SECRET, "user": "meter"})
    try:
        fw.start()
        yield sim, fw
    finally:
        stop_all(fw, sim)


@pytest.fixture
def openrig():
    """A firmware without http.password."""
    sim = Simulator(layout="v2", port=0, interval=3600, seed=6).start()
    fw = Firmware(sim.port, None)
    try:
        fw.start()
        yield sim, fw
    finally:
        stop_all(fw, sim)


def test_get_config_as_run_secrets_as_true_false(pwrig):
    _, fw = pwrig
    assert fw.request("GET", "/api/config")[0] == 401
    assert fw.request("GET", "/api/config", headers=auth("wrong"))[0] == 401
    st, body = fw.request("GET", "/api/config", headers=auth())
    assert st == 200
    cfg = json.loads(body)
    assert SECRET.encode() not in body and PW.encode() not in body
    assert cfg["mqtt"]["password"] is True and cfg["http"]["password"] is True
    assert cfg["wifi"]["password"] is False
    assert cfg["mqtt"]["user"] == "meter" and cfg["mqtt"]["port"] == fw.cfg["mqtt"]["port"]
    # defaults filled in, at config.json's paths
    assert cfg["time"] == {"tz": "UTC0", "ntp": "pool.ntp.org"}
    assert cfg["mcu"] == {"poll_s": 30} and cfg["layout"] == "auto" and cfg["dps"] == {}
    assert cfg["mqtt"]["base_topic"] == "spm02" and cfg["log"]["level"] == "info"
    assert fw.request("POST", "/api/config/backup", b"{}", auth())[0] == 405
    assert fw.request("DELETE", "/api/config", None, auth())[0] == 405


def test_bad_config_posts_write_nothing(pwrig):
    _, fw = pwrig
    before = saved(fw)
    cases = [
        ({"mqtt": {"port": "x"}}, "mqtt.port"),
        ({"mqtt": {"port": 70000}}, "mqtt.port"),
        ({"mqtt": {"port": 1884, "bogus": 1}}, "mqtt.bogus"),   # all or nothing: the good port neither
        ({"nonsense": 1}, "nonsense"),
        ({"time": {"tz": "not a zone"}}, "time.tz"),
        ({"time": {"ntp": "bad host!"}}, "time.ntp"),
        ({"name": "bad name!"}, "name"),
        ({"wifi": {"password": "short"}}, "wifi.password"),
        ({"mqtt": 5}, "mqtt"),
        ({"dps": {"300": {"key": "x"}}}, "dps.300"),
        ({"log": {"level": "loud"}}, "log.level"),
        ({"http": {"password": 5}}, "http.password"),
    ]
    for obj, path in cases:
        st, body = post_config(fw, obj)
        assert st == 400 and body["ok"] is False and path in body["errors"], (obj, body)
        assert all(body["errors"][k] for k in body["errors"])  # each says why
    st, body = post_config(fw, {"mqtt": {"port": "x"}, "layout": "weird"})
    assert st == 400 and set(body["errors"]) == {"mqtt.port", "layout"}
    for raw in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
        st, body = post_config(fw, raw)
        assert st == 400 and body["ok"] is False, raw
    st, _ = post_config(fw, b'{"name": "' + b"a" * 5000 + b'"}')
    assert st == 413
    # not JSON: a cross-site form could send it
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        st, _ = fw.request("POST", "/api/config", b'{"name": "meter-x"}', dict(auth(), **{"Content-Type": ctype}))
        assert st == 415, ctype
    st, _ = fw.request("POST", "/api/config", b'{"name": "meter-x"}', auth())  # no content type at all
    assert st == 415
    assert post_config(fw, {"name": "meter-x"}, pw=None)[0] == 401
    assert post_config(fw, {"name": "meter-x"}, pw="wrong")[0] == 401
    assert saved(fw) == before
    assert fw.answers() and fw.restarts() == 0
    assert SECRET not in fw.log() and PW not in fw.log()


def test_another_sites_page_changes_nothing(pwrig):
    sim, fw = pwrig
    before = saved(fw)
    mark = sim.mark()
    h = dict(EVIL, **auth())
    assert fw.cmd("refresh", "PRESS", h)[0] == 403
    assert fw.cmd("clear_energy", "PRESS", h)[0] == 403
    assert fw.cmd("restart", "PRESS", h)[0] == 403
    assert post_config(fw, {"name": "meter-evil"}, headers=EVIL)[0] == 403
    assert fw.request("POST", "/api/ota", b"x" * 100, h)[0] == 403
    assert fw.request("POST", "/setup/save", b"name=meter-evil&ssid=x",
                      dict(h, **{"Content-Type": "application/x-www-form-urlencoded"}))[0] == 403
    # another port on the same address is another site too; "null" (a sandboxed page) as well
    other = "http://127.0.0.1:%d" % (fw.http_port + 1)
    assert fw.cmd("refresh", "PRESS", dict(auth(), Origin=other))[0] == 403
    assert fw.cmd("refresh", "PRESS", dict(auth(), Origin="null"))[0] == 403
    # the firmware's own page (same host and port) and curl (no Origin) go through
    own = "http://127.0.0.1:%d" % fw.http_port
    st, body = fw.cmd("query_state", "PRESS", dict(auth(), Origin=own))
    assert st == 200, body
    sim.wait_frame(0x08, timeout=5, since=mark)  # the barrier: what came before has arrived
    with sim._lock:
        got = list(sim.received[mark:])
    assert [c for c, _ in got if c == 0x06] == [], got  # no DP write reached the meter
    assert saved(fw) == before and fw.restarts() == 0
    assert fw.request("GET", "/api/state", headers=EVIL)[0] == 200  # reading stays open


def test_password_change_applies_at_once_and_secrets_keep(pwrig):
    _, fw = pwrig
    st, body = post_config(fw, {"http": {"password": True}, "log": {"level": "debug"}})
    assert st == 200 and body == {"ok": True, "restart": False}
    assert json.loads(saved(fw))["http"]["password"] == PW
    st, body = post_config(fw, {"http": {"password": "new-pw-2"}})
    assert st == 200 and body == {"ok": True, "restart": False}
    assert fw.request("GET", "/api/config", headers=auth())[0] == 401  # the old one no more
    st, body = fw.request("GET", "/api/config", headers=auth("new-pw-2"))
    assert st == 200 and json.loads(body)["log"]["level"] == "debug"
    cfg = json.loads(saved(fw))
    assert cfg["http"]["password"] == "new-pw-2" and cfg["mqtt"]["password"] == SECRET
    st, body = post_config(fw, {"http": {"password": ""}}, pw="new-pw-2")
    assert st == 200 and body == {"ok": True, "restart": False}
    assert json.loads(saved(fw))["http"]["password"] == ""
    assert fw.request("GET", "/api/config")[0] == 200  # open now
    assert fw.request("GET", "/api/config/backup")[0] == 403  # secrets never leave without one
    assert fw.restarts() == 0
    assert "new-pw-2" not in fw.log()


def test_open_console_without_password(openrig):
    sim, fw = openrig
    assert fw.request("GET", "/api/config")[0] == 200
    assert fw.request("GET", "/api/log?since=0")[0] == 200
    assert fw.request("GET", "/api/config/backup")[0] == 403
    assert fw.request("GET", "/api/config/backup", headers=auth("anything"))[0] == 403
    assert fw.request("GET", "/api/log?since=x")[0] == 400
    assert fw.request("GET", "/api/log?since=-1")[0] == 400
    assert fw.request("POST", "/api/log", b"")[0] == 405
    before = saved(fw)
    assert post_config(fw, {"name": "meter-2"}, headers=EVIL)[0] == 403
    assert saved(fw) == before
    # a change that needs a restart: answered, written, then the firmware restarts into it
    st, body = post_config(fw, {"name": "meter-2", "mcu": {"poll_s": 60}}, pw=None)
    assert st == 200 and body == {"ok": True, "restart": True}
    cfg = json.loads(saved(fw))
    assert cfg["name"] == "meter-2" and cfg["mcu"] == {"poll_s": 60} and cfg["uart"] == fw.cfg["uart"]
    wait_until(lambda: fw.restarts() == 1 and fw.answers(), 15, what="a restart into the new config")
    assert fw.state()["device"]["name"] == "meter-2"
    st, body = fw.request("GET", "/api/config")
    assert json.loads(body)["mcu"]["poll_s"] == 60
    # the same again changes nothing: no restart
    st, body = post_config(fw, {"name": "meter-2"}, pw=None)
    assert st == 200 and body == {"ok": True, "restart": False}


def test_backup_and_restore(pwrig):
    _, fw = pwrig
    assert fw.request("GET", "/api/config/backup")[0] == 401
    assert fw.request("GET", "/api/config/backup", headers=auth("wrong"))[0] == 401
    import urllib.request
    req = urllib.request.Request(fw.url("/api/config/backup"), headers=auth())
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Disposition"] == 'attachment; filename="spm02-config.json"'
        backup = r.read()
    assert backup == saved(fw)  # whole, secrets included
    assert json.loads(backup)["mqtt"]["password"] == SECRET
    # a change, then the backup restored
    st, body = post_config(fw, {"mcu": {"poll_s": 90}, "mqtt": {"password": ""}})
    assert st == 200 and body["restart"] is True
    wait_until(lambda: fw.restarts() == 1 and fw.answers(), 15, what="a restart")
    assert json.loads(saved(fw))["mqtt"]["password"] == ""
    # a backup with keys this firmware does not know: reported, nothing written
    before = saved(fw)
    alien = json.loads(backup)
    alien["zigbee"] = {"channel": 11}
    alien["mqtt"]["tls"] = True
    st, body = post_config(fw, alien)
    assert st == 400 and set(body["errors"]) == {"zigbee", "mqtt.tls"}
    assert saved(fw) == before
    st, body = post_config(fw, backup)
    assert st == 200 and body == {"ok": True, "restart": True}
    restored = json.loads(saved(fw))
    for k, v in json.loads(backup).items():  # every key of the backup as it was
        assert restored[k] == v, k
    assert restored["mcu"] == {"poll_s": 90}  # a key the backup has not: merged, kept
    wait_until(lambda: fw.restarts() == 2 and fw.answers(), 15, what="a restart into the restored config")
    st, body = fw.request("GET", "/api/config", headers=auth())
    assert json.loads(body)["mqtt"]["password"] is True


def test_broker_move(broker):
    """POST /api/config moves the firmware to another broker: it restarts and comes back
    connected there."""
    sim = Simulator(layout="v2", port=0, interval=3600, seed=8).start()
    fw = Firmware(sim.port, broker.port)
    other = Mosquitto().start()
    watch = MqttWatch(other.port, ("spm02/#",))
    try:
        fw.start()
        wait_until(lambda: fw.state()["mqtt"].get("connected"), 15, what="MQTT on the first broker")
        st, body = post_config(fw, {"mqtt": {"port": other.port}}, pw=None)
        assert st == 200 and body == {"ok": True, "restart": True}
        wait_until(lambda: watch.get("spm02/availability") == b"online", 20, what="online on the second broker")
        assert fw.restarts() == 1
        assert fw.state()["mqtt"].get("connected")
        assert json.loads(saved(fw))["mqtt"]["port"] == other.port
    finally:
        stop_all(watch, fw, other, sim)


def test_log_numbering_across_the_ring_wrap(openrig):
    _, fw = openrig

    def get(n):
        st, body = fw.request("GET", "/api/log?since=%d" % n)
        assert st == 200
        return json.loads(body)

    whole = get(0)
    start = whole["next"]
    assert whole["lines"] and start >= len(whole["lines"])
    for i in range(40):  # each leaves a line: more than the ring holds
        assert fw.cmd("locate", "1" if i % 2 else "0")[0] == 200
    a = get(start)
    assert a["next"] >= start + 40
    assert len(a["lines"]) < a["next"] - start  # the oldest have left the ring: skipped
    assert sum(" http: cmd locate" in x for x in a["lines"]) >= 10
    assert a["lines"][-1].endswith("http: cmd locate: locate on") or "locate" in a["lines"][-1]
    b = get(a["next"] - 3)  # numbering is the same across the wrap: the last three lines
    assert b["next"] >= a["next"] and b["lines"][:3] == a["lines"][-3:]
    c = get(b["next"])
    assert c["next"] >= b["next"] and len(c["lines"]) == c["next"] - b["next"]
    assert get(10 ** 9)["lines"] == []
