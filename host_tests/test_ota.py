"""OTA end to end: bundles built by the real `make ota` from copies of this checkout (with
a changed VERSION, so the new code shows when it runs; or broken on purpose), uploaded to the
firmware's own main.py in the MicroPython unix port, which exits 75 to restart and is started
again by `make run`. Power cuts are kill -9 of the MicroPython process, at exact points given
by the host-only test hook SPM02_OTA_KILL (lib/otaboot.py kill_point)."""
import base64
import json
import os
import signal
import socket
import subprocess
import time

import re

import pytest

import ota as otatool
import harness
from harness import ROOT, Firmware, checkout_copy, wait_until
from spm02sim import Simulator

PW = "ota-secret-7"
AUTH = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()
@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    base = tmp_path_factory.mktemp("checkouts")
    return {
        "v1": checkout_copy(str(base / "v1"), "0.1.0-ota.1"),
        "v2": checkout_copy(str(base / "v2"), "0.1.0-ota.2", [
            ("firmware/page.html", None, "<!-- ota.2 -->"), ("firmware/setup.html", None, "<!-- ota.2 -->")]),
        # imports nothing: every boot of it ends in an exception
        "crash": checkout_copy(str(base / "crash"), "0.1.0-crash", [(
            "firmware/app.py", "from firmware.http import Http\n",
            "from firmware.http import Http\nraise RuntimeError('broken on purpose')\n")]),
        # runs, but never serves HTTP: it never proves itself healthy
        "nohttp": checkout_copy(str(base / "nohttp"), "0.1.0-nohttp", [(
            "firmware/http.py", "    async def run(self):\n",
            "    async def run(self):\n        await asyncio.sleep(86400)\n")]),
    }


def make_ota(checkout, fw, password=PW, wait=None):
    """`make ota` in a checkout: (exit status, stdout, stderr)."""
    args = ["make", "-s", "--no-print-directory", "-C", checkout, "ota",
            "HOST=127.0.0.1:%d" % fw.http_port, "PASSWORD=" + password]
    if wait is not None:
        args.append("WAIT=%s" % wait)
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def install(checkout, fw):
    """Update with make ota (which waits until the device runs it); the bundle id."""
    rc, out, err = make_ota(checkout, fw)
    assert rc == 0, out + err + fw.log()[-3000:]
    ident = out.strip().splitlines()[-1]
    assert len(ident) == 12 and int(ident, 16) >= 0, out
    return ident


def pointer(fw):
    try:
        with open(os.path.join(fw.dir, "ota", "current"), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def ota_state(fw):
    return fw.state()["device"]["ota"]


def proven(fw, ident):
    wait_until(lambda: ota_state(fw)["proven"] and ota_state(fw)["id"] == ident, 15, 0.2,
               what="%s proven healthy" % ident)


def boots_logged(fw, ident):
    return fw.log().count("ota: running %s (boot " % ident)


def power_cut(fw):
    """kill -9 of the MicroPython process: make run does not start it again."""
    os.kill(fw.pid(), signal.SIGKILL)
    fw.proc.wait(10)


class Rig(harness.Rig):
    """The simulator and a firmware (not started) without MQTT, with these Firmware options."""

    def __init__(self, **kw):
        super().__init__(None, **kw)


@pytest.fixture
def rig():
    r = Rig(http={"password": PW})
    try:
        r.fw.start()
        yield r
    finally:
        r.stop()


def test_update_runs_the_new_files_then_the_next_one(rig, copies):
    fw = rig.fw
    st = fw.state()["device"]
    assert st["ota"] == {"id": "factory", "slot": "factory", "prev_slot": "factory", "previous": "factory",
                         "boots": 0, "proven": True, "rolled_back": None, "error": None, "update": None,
                         "update_mode": False}
    pid = fw.pid()
    v1 = install(copies["v1"], fw)
    assert fw.pid() != pid and fw.restarts() == 1  # exit 75, started again by make run
    st = fw.state()["device"]
    # the new files run: their VERSION, loaded from files (on the frozen runtime too, where
    # the factory firmware is frozen into the interpreter)
    assert st["version"] == "0.1.0-ota.1"
    assert st["runtime"]["firmware"] == "files"
    assert st["ota"]["id"] == v1 and st["ota"]["slot"] == "a" and st["ota"]["previous"] == "factory"
    assert st["ota"]["rolled_back"] is None
    proven(fw, v1)  # MCU online, HTTP served (make ota asked /api/state)
    assert json.loads(pointer(fw)) == {"slot": "a", "id": v1, "prev_slot": "factory", "previous": "factory",
                                       "boots": 0, "proven": True, "rolled_back": None, "error": None}
    assert fw.request("GET", "/")[0] == 200
    v2 = install(copies["v2"], fw)
    st = fw.state()["device"]
    assert st["version"] == "0.1.0-ota.2"
    assert (st["ota"]["id"], st["ota"]["slot"], st["ota"]["previous"]) == (v2, "b", v1)
    proven(fw, v2)
    # the pages are the new install's too
    assert fw.request("GET", "/")[1].startswith(b"<!-- ota.2 -->")
    assert fw.request("GET", "/setup", headers={"Authorization": AUTH})[1].startswith(b"<!-- ota.2 -->")
    assert fw.state()["values"]["voltage_a"] == rig.sim.truth()["voltage_a"]


def post(fw, data, length=None, auth=AUTH, shut=True):
    """POST data to /api/ota on a raw socket (Content-Length: length, else len(data)), then
    half-close; (status, JSON answer)."""
    s = socket.create_connection(("127.0.0.1", fw.http_port), 5)
    s.settimeout(15)
    try:
        head = "POST /api/ota HTTP/1.0\r\nContent-Length: %d\r\n%s\r\n" % (
            len(data) if length is None else length, "Authorization: %s\r\n" % auth if auth else "")
        s.sendall(head.encode() + data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), json.loads(body)
    finally:
        s.close()


def built(checkout):
    rc = subprocess.run(["make", "-s", "--no-print-directory", "-C", checkout, "build"],
                        capture_output=True).returncode
    assert rc == 0
    return otatool.files_of(os.path.join(checkout, "build"))


def test_refused_bundles_change_nothing(rig, copies):
    fw = rig.fw
    v1 = install(copies["v1"], fw)
    proven(fw, v1)
    before = pointer(fw)
    pid = fw.pid()
    files = built(copies["v2"])
    good, gid = otatool.bundle(files, "0.1.0-ota.2")

    def refused(status, data, want, **kw):
        st, answer = post(fw, data, **kw)
        assert st == status and answer["ok"] is False and want in answer["error"], (st, answer)
        assert pointer(fw) == before and fw.pid() == pid
        o = ota_state(fw)
        assert o["id"] == v1 and o["proven"]
        return o

    # a password is needed, and the right one (the tool says so too)
    rc, out, err = make_ota(copies["v2"], fw, password="wrong-one")
    assert rc != 0 and "401" in err and "wrong or missing password" in err and gid not in out.splitlines()[-1:]
    assert PW not in fw.log() and "wrong-one" not in fw.log()
    refused(401, b"", "password", auth=None, length=len(good))  # answered before the body
    # one byte changed in the last file
    bad = bytearray(good)
    bad[-10] ^= 0xFF
    o = refused(400, bytes(bad), "sha256 differs")
    assert o["update"]["state"] == "failed" and o["update"]["id"] == gid
    # the body ends early
    refused(400, good[:len(good) // 2], "ended", length=len(good))
    # not a bundle, a header that is not JSON, or not ours
    refused(400, b"GARBAGE!" + good[8:], "not an SPM02 firmware bundle")
    refused(400, good[:12] + b"x" * (len(good) - 12), "header: not JSON lines")
    first = b'{"format":1,"version":"x","files":1}\n'
    for head, want in ((b'{"format":2}\n', "format 1"),
                       (first + b'["../main.py",3,"%s"]\n' % (b"0" * 64), "bad file name"),
                       (first + b'["lib/a.mpy",3,"%s"]\n' % (b"0" * 64), "no firmware/app.mpy")):
        refused(400, otatool.bundle([("lib/a.mpy", b"abc")], "x", head)[0], want)
    # sizes that do not add up to the body
    h = otatool.header(files, "x")
    size = len(dict(files)["firmware/app.mpy"])
    wrong = h.replace(b'"firmware/app.mpy",%d' % size, b'"firmware/app.mpy",%d' % (size + 1))
    assert wrong != h
    refused(400, otatool.bundle(files, "x", wrong)[0], "sizes")
    # the same file twice
    twice = sorted(files + [("firmware/app.mpy", dict(files)["firmware/app.mpy"])])
    refused(400, otatool.bundle(twice, "x")[0], "firmware/app.mpy out of order or repeated")
    # bytecode for another MicroPython: the .mpy version byte
    other = [(p, b[:1] + b"\x05" + b[2:] if p == "firmware/app.mpy" else b) for p, b in files]
    refused(400, otatool.bundle(other, "x")[0], "not .mpy version")
    # too big for the device, refused before a byte of it is read
    assert post(fw, b"", length=600 * 1024)[0] == 413
    # one update at a time
    s = socket.create_connection(("127.0.0.1", fw.http_port), 5)
    try:
        s.sendall(("POST /api/ota HTTP/1.0\r\nContent-Length: %d\r\nAuthorization: %s\r\n\r\n"
                   % (len(good), AUTH)).encode() + good[:1000])
        wait_until(lambda: (ota_state(fw)["update"] or {}).get("state") == "receiving", 5, what="receiving")
        assert otatool.upload("127.0.0.1", fw.http_port, PW, good)[0] == 409
    finally:
        s.close()
    wait_until(lambda: ota_state(fw)["update"]["state"] == "failed", 5, what="the cut upload refused")
    assert pointer(fw) == before and fw.pid() == pid and ota_state(fw)["id"] == v1
    # and after all that, a good bundle goes in
    assert install(copies["v2"], fw) == gid
    assert fw.state()["device"]["version"] == "0.1.0-ota.2"


def test_ota_is_off_without_a_password(copies):
    r = Rig()
    try:
        r.fw.start()
        rc, out, err = make_ota(copies["v1"], r.fw)
        assert rc != 0 and "403" in err and "OTA is off" in err
        assert post(r.fw, b"", auth=None, length=100)[0] == 403
        assert pointer(r.fw) is None and not os.path.exists(os.path.join(r.fw.dir, "ota"))
        assert ota_state(r.fw)["id"] == "factory" and r.fw.restarts() == 0
    finally:
        r.stop()


def test_crash_at_import_goes_back_after_three_boots(rig, copies):
    fw = rig.fw
    v1 = install(copies["v1"], fw)
    proven(fw, v1)
    # make ota waits for the device: it comes back running something else, and says so
    rc, out, err = make_ota(copies["crash"], fw)
    assert rc != 0 and "does not run" in err and "rolled back" in err, out + err
    crash = re.search(r" id ([0-9a-f]{12})$", out, re.M).group(1)
    st = fw.state()["device"]
    assert st["version"] == "0.1.0-ota.1"
    o = st["ota"]
    assert (o["id"], o["slot"], o["proven"], o["boots"]) == (v1, "a", True, 0)
    assert o["rolled_back"].startswith("%s was not healthy after 3 boots (last error: " % crash)
    assert "broken on purpose" in o["rolled_back"]  # the last error, noted before each restart
    assert o["rolled_back"].endswith("; went back to %s" % v1)
    assert fw.log().count("broken on purpose") >= 3
    assert fw.restarts() == 1 + 1 + 3  # v1, the crash bundle, its 3 boots
    assert "ota: rolled back: %s" % o["rolled_back"] in fw.log()


def test_install_that_never_serves_http_goes_back_after_three_boots(rig, copies):
    fw = rig.fw
    rc, out, err = make_ota(copies["nohttp"], fw, wait=0)
    assert rc == 0, out + err
    bad = out.strip().splitlines()[-1]
    for boot in (1, 2, 3):
        # it runs (the loop, the MCU link) but never listens: unproven, each boot counted
        wait_until(lambda: boots_logged(fw, bad) == boot, 20, what="boot %d of %s" % (boot, bad))
        p = json.loads(pointer(fw))
        assert (p["id"], p["boots"], p["proven"]) == (bad, boot, False)
        time.sleep(0.5)
        power_cut(fw)
        fw.start(wait=boot == 3)
    o = ota_state(fw)
    assert (o["id"], o["slot"], o["proven"]) == ("factory", "factory", True)
    assert o["rolled_back"] == "%s was not healthy after 3 boots; went back to factory" % bad
    assert fw.state()["device"]["version"] == "0.1.0"


def test_power_cut_mid_upload(copies):
    r = Rig(http={"password": PW}, env={"SPM02_OTA_KILL": "upload"})
    fw = r.fw
    try:
        fw.start()
        rc, out, err = make_ota(copies["v1"], fw)
        assert rc != 0  # the device died under it
        fw.proc.wait(10)
        assert pointer(fw) is None
        assert os.listdir(os.path.join(fw.dir, "ota", "a", "firmware"))  # a part was written
        assert not os.path.exists(os.path.join(fw.dir, "ota", "a", "id"))
        fw.env = {}
        fw.start()
        assert ota_state(fw)["id"] == "factory" and fw.state()["device"]["version"] == "0.1.0"
        v1 = install(copies["v1"], fw)  # the half-written install is cleared and written again
        proven(fw, v1)
    finally:
        r.stop()


@pytest.mark.parametrize("case", ["old", "first", "switched"])
def test_power_cut_at_the_switch(copies, case):
    """Killed with the new pointer in its temp file, not renamed yet: the old firmware boots
    (the cut write is dropped) when there was a pointer. With none before (the first update),
    the temp file is all there is, as on FAT cut between its remove and rename: it is taken,
    and the complete, checked install boots on probation. Killed after the rename, before
    the restart: the new firmware boots."""
    r = Rig(http={"password": PW})
    fw = r.fw
    try:
        fw.start()
        old = "factory"
        if case != "first":
            old = install(copies["v1"], fw)
            proven(fw, old)
            fw.stop()
            fw.start()
        before = pointer(fw)
        fw.stop()
        fw.env = {"SPM02_OTA_KILL": "switched" if case == "switched" else "switch-tmp"}
        fw.start()
        new = "v1" if case == "first" else "v2"
        rc, out, err = make_ota(copies[new], fw)
        assert rc != 0, out + err
        sent = re.search(r"^bundle .* id ([0-9a-f]{12})$", out, re.M)  # make ota's first line
        assert sent, out + err
        sent = sent.group(1)
        try:
            fw.proc.wait(10)  # the power cut ends make run
        except subprocess.TimeoutExpired:
            raise AssertionError("no power cut:\n" + out + err + fw.log()[-2000:])
        tmp = os.path.join(fw.dir, "ota", "current.tmp")
        if case == "switched":
            assert json.loads(pointer(fw))["slot"] == "b" and not os.path.exists(tmp)
        else:
            assert pointer(fw) == before and os.path.exists(tmp)
        fw.env = {}
        fw.start()
        o = ota_state(fw)
        assert not os.path.exists(tmp)
        if case == "old":
            assert o["id"] == old != sent and pointer(fw) == before
            assert fw.state()["device"]["version"] == "0.1.0-ota.1"
        else:
            assert (o["id"], o["boots"], o["proven"]) == (sent, 1, False)  # the bundle just uploaded
            assert fw.state()["device"]["version"] == ("0.1.0-ota.1" if case == "first" else "0.1.0-ota.2")
            proven(fw, sent)
    finally:
        r.stop()


def test_power_cut_in_the_first_boot(copies):
    """Killed in the new version's first boot, just after its boot was counted: the next
    boot runs it again (its second of three) and it proves itself."""
    r = Rig(http={"password": PW}, env={"SPM02_OTA_KILL": "boot"})  # only boots that count
    fw = r.fw
    try:
        fw.start()
        rc, out, err = make_ota(copies["v1"], fw, wait=0)
        assert rc == 0, out + err
        v1 = out.strip().splitlines()[-1]
        fw.proc.wait(20)  # restarted into v1, killed in its first boot
        p = json.loads(pointer(fw))
        assert (p["id"], p["boots"], p["proven"]) == (v1, 1, False)
        fw.env = {}
        fw.start()
        o = ota_state(fw)
        assert (o["id"], o["boots"], o["proven"]) == (v1, 2, False)
        proven(fw, v1)
        assert json.loads(pointer(fw))["boots"] == 0
    finally:
        r.stop()


@pytest.mark.parametrize("where", ["import", "receive"])
def test_no_room_for_the_receiver_restarts_into_update_mode(copies, where):
    """On a stock image after a long run the receiver may not fit the heap (the host-only
    hook SPM02_OTA_NOROOM makes its import, or the receiving, fail outside update mode): with
    the password the device restarts into update mode, which runs HTTP only, make ota sends
    the bundle again there, and the update runs. Without the password: refused (503 when the
    code did not even load), nothing restarts.
    An update mode nobody updates ends in a normal restart (SPM02_UPDATE_MODE_MS: 3 s)."""
    r = Rig(http={"password": PW}, env={"SPM02_OTA_NOROOM": where, "SPM02_UPDATE_MODE_MS": "3000"})
    try:
        fw = r.fw
        fw.start()
        wait_until(lambda: fw.state()["mcu"]["online"], 10, 0.2, what="the MCU online")
        wrong = "Basic " + base64.b64encode(b"admin:wrong").decode()
        st, answer = post(fw, b"x" * 64, auth=wrong)
        assert "update_mode" not in answer
        assert (st, "no memory" in answer["error"]) == ((503, True) if where == "import" else (401, False))
        time.sleep(1)
        assert fw.restarts() == 0 and not ota_state(fw)["update_mode"]
        # the password, but nobody sends the bundle again: update mode, then back to normal
        st, answer = post(fw, b"x" * 64)
        assert st == 503 and answer["update_mode"] is True, answer
        wait_until(lambda: fw.answers() and ota_state(fw)["update_mode"], 10, 0.2, what="update mode")
        s = fw.state()
        assert s["values"] == {} and "mcu" not in s and "mqtt" not in s  # HTTP only
        assert fw.request("GET", "/")[0] == 503 and fw.request("GET", "/metrics")[0] == 503
        assert not os.path.exists(os.path.join(fw.dir, "update.mode"))  # one boot only
        wait_until(lambda: fw.restarts() == 2 and fw.answers() and not ota_state(fw)["update_mode"], 15, 0.2,
                   what="a normal restart after update mode")
        wait_until(lambda: fw.state()["mcu"]["online"], 10, 0.2, what="the MCU online again")
        assert "update mode: no update came" in fw.log()
        # make ota: refused for room, sent again to the update mode, and it runs
        v1 = install(copies["v1"], fw)
        st = fw.state()["device"]
        assert st["version"] == "0.1.0-ota.1" and st["ota"]["id"] == v1 and not st["ota"]["update_mode"]
        assert fw.restarts() == 4  # into update mode, then into the new version
        assert "restarting into update mode" in fw.log()
        proven(fw, v1)
    finally:
        r.stop()
