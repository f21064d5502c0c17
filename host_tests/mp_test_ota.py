# The OTA receiver (firmware/ota.py) on its own: bundles made here, fed through a fake
# socket in pieces of every size, written to a temporary data directory. Checks what is
# switched for a good bundle and that a refused one changes nothing. MicroPython only.
import sys

if "." not in sys.path:
    sys.path.append(".")  # `from firmware import ...`

import binascii
import hashlib
import json
import os

import asyncio

import otaboot
from firmware import log, ota
from portable import rmtree, tmpdir

VER = sys.implementation._mpy & 0xFF


def mpy(text):
    return b"M" + bytes([VER]) + b"\x00\x1f" + text.encode()


FILES = [("firmware/app.mpy", mpy("app" * 300)), ("firmware/page.html", b"<!doctype html>" * 50),
         ("lib/tuya.mpy", mpy("tuya"))]


def sha(b):
    return binascii.hexlify(hashlib.sha256(b).digest()).decode()


def header(fs, version="9.9.9", lines=None, **over):
    """JSON lines: the first, then one per file (or the lines given)."""
    h = {"format": 1, "version": version, "files": len(fs)}
    h.update(over)
    lines = [[p, len(b), sha(b)] for p, b in fs] if lines is None else lines
    return "".join(json.dumps(x) + "\n" for x in [h] + lines).encode()


def bundle(files=FILES, head=None):
    head = head or header(files)
    data = b"SPM02OTA" + len(head).to_bytes(4, "big") + head
    for _, b in files:
        data += b
    return data, sha(head)[:12]


class Reader:  # fake of asyncio.StreamReader
    """A socket's StreamReader: the data in pieces of the given sizes, in turn; None now and
    then (nothing after all); then EOF."""

    def __init__(self, data, sizes=(1, 7, 512, 100, 3000)):
        self.data = data  # test-only
        self.sizes = sizes  # test-only
        self.i = 0  # test-only
        self.n = 0  # test-only

    async def readinto(self, buf):
        mv = buf
        self.n += 1
        if self.n % 5 == 0:
            return None
        k = min(len(mv), self.sizes[self.n % len(self.sizes)], len(self.data) - self.i)
        mv[:k] = self.data[self.i:self.i + k]
        self.i += k
        return k


class Writer:  # fake of asyncio.StreamWriter
    def __init__(self):
        self.out = b""  # test-only

    def write(self, __buf):
        self.out += __buf

    async def drain(self):
        pass


class App:
    def __init__(self, d, p=None, no_room="", update_mode=False):
        self.data_dir = d
        self.ota = p
        self.ota_update = None
        self.test_no_room = no_room
        self.update_mode = update_mode
        self.asked = 0

    def no_room_for_update(self, authorized):
        self.asked += authorized
        return '{"ok":false,"update_mode":true}'


def read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def quiet(fn):
    def wrapped():
        old = log.log
        log.log = lambda *a: None
        d = tmpdir("ota-rx")
        try:
            fn(d)
        finally:
            log.log = old
            rmtree(d)
    return wrapped


def receive(app, data, head_n=0, length=None, expect=False, sizes=(1, 7, 512, 100, 3000)):
    headers = {"content-length": str(len(data) if length is None else length)}
    if expect:
        headers["expect"] = "100-Continue"
    w = Writer()
    st, body = asyncio.run(ota.receive(app, Reader(data[head_n:], sizes), w, headers, data[:head_n]))
    return st, json.loads(body), w.out


@quiet
def test_a_good_bundle_is_written_checked_and_switched_to(d):
    data, ident = bundle()
    for head_n, sizes in ((0, (1, 7, 512, 100, 3000)), (40, (512,)), (len(data), (1,))):
        app = App(d)
        st, answer, out = receive(app, data, head_n, expect=True, sizes=sizes)
        assert st == 200, answer
        assert answer == {"ok": True, "id": ident, "version": "9.9.9", "slot": "a"}
        assert out == b"HTTP/1.1 100 Continue\r\n\r\n"
        for path, b in FILES:
            assert read(d + "ota/a/" + path) == b
        assert read(d + "ota/a/id", "r") == ident
        p = otaboot.load(d)
        assert (p["slot"], p["id"], p["prev_slot"], p["boots"], p["proven"]) == ("a", ident, "factory", 0, False)
        assert app.ota_update == {"state": "installed", "id": ident, "version": "9.9.9"}


@quiet
def test_the_next_update_goes_to_the_other_directory_and_clears_it(d):
    running = otaboot.prove(otaboot.install(otaboot.factory(), "a", "aaaaaaaaaaaa"))
    os.mkdir(d + "ota")
    os.mkdir(d + "ota/b")
    os.mkdir(d + "ota/b/lib")
    with open(d + "ota/b/lib/stale.mpy", "wb") as f:
        f.write(b"old")
    data, ident = bundle()
    st, answer, _ = receive(App(d, running), data)
    assert st == 200 and answer["slot"] == "b"
    assert sorted(os.listdir(d + "ota/b/lib")) == ["tuya.mpy"]
    p = otaboot.load(d)
    assert (p["slot"], p["prev_slot"], p["previous"]) == ("b", "a", "aaaaaaaaaaaa")


def refused(d, data, want, status=400, started=True, **kw):
    """The receiver refuses: its status and message, no pointer, no id marker. A bundle it
    started to receive leaves the failure, with that message, for the page (/api/state's
    ota_update); one refused at the door (started=False) leaves nothing."""
    app = App(d)
    st, answer, _ = receive(app, data, **kw)
    assert st == status and answer["ok"] is False and want in answer["error"], (st, answer)
    assert otaboot.load(d) is None and read(d + "ota/a/id") is None
    if started:
        u = app.ota_update
        assert u is not None and (u["state"], u["error"]) == ("failed", answer["error"]), u
    else:
        assert app.ota_update is None, app.ota_update
    return answer


@quiet
def test_refused_bundles(d):
    data, ident = bundle()
    bad = bytearray(data)
    bad[-1] ^= 1
    refused(d, bytes(bad), "lib/tuya.mpy: sha256 differs")
    refused(d, data[:-5], "ended 5 bytes early", length=len(data))
    refused(d, data, "sizes: the header adds up to %d bytes, the body has %d" % (len(data), len(data) + 3),
            length=len(data) + 3)  # a body with more than the header lists
    refused(d, b"NOTOURS!" + data[8:], "not an SPM02 firmware bundle")
    refused(d, data[:8] + b"\x00\x00\x20\x01" + data[12:], "header: 8193 bytes, at most 8192")
    hlen = len(header(FILES))
    refused(d, data[:12] + b"x" * hlen + data[12 + hlen:], "header: not JSON lines")
    refused(d, b"", "no bundle", length=0, started=False)
    refused(d, b"", "at most", status=413, length=ota.MAX_BUNDLE + 1, started=False)
    other = [(p, b[:1] + b"\x01" + b[2:] if p == "lib/tuya.mpy" else b) for p, b in FILES]
    refused(d, bundle(other)[0], "lib/tuya.mpy: not .mpy version")


class NearlyFullFlash:  # fake of module os
    """os on a flash with 4 free blocks of 4096 bytes; the rest is the host's."""

    def statvfs(self, __path):
        return (4096, 4096, 100, 4, 4, 0, 0, 0, 0, 255)

    def __getattr__(self, name):
        return getattr(os, name)


@quiet
def test_a_bundle_bigger_than_the_free_flash_is_refused(d):
    data, ident = bundle()
    old = ota.os
    ota.os = NearlyFullFlash()
    try:
        refused(d, data, "not enough flash: the bundle needs about")
    finally:
        ota.os = old


@quiet
def test_bad_headers(d):
    z = "0" * 64
    app = ["firmware/app.mpy", 3, z]
    for lines, want in (
            ([app, app], "firmware/app.mpy out of order or repeated"),
            ([["lib/a.mpy", 3, z], app], "firmware/app.mpy out of order"),
            ([["../app.mpy", 3, z]], "file name"),
            ([["firmware/sub/app.mpy", 3, z]], "file name"),
            ([["lib/page.html", 3, z]], "file name"),
            ([["firmware/App.mpy", 3, z]], "file name"),
            ([["firmware/app.py", 3, z]], "file name"),
            ([["boot.py", 3, z]], "file name"),
            ([["firmware/app.mpy", True, z]], "bad size"),
            ([["firmware/app.mpy", 0, z]], "bad size"),
            ([["firmware/app.mpy", 3, z[:-1]]], "bad sha256"),
            ([["firmware/app.mpy", 3, "X" * 64]], "bad sha256"),
            ([["firmware/app.mpy", 3]], "[path, size, sha256]"),
            ([{"x": 1}], "[path, size, sha256]"),
            ([["lib/tuya.mpy", 3, z]], "no firmware/app.mpy")):
        head = header([(x, b"") for x in range(len(lines))], lines=lines)
        refused(d, b"SPM02OTA" + len(head).to_bytes(4, "big") + head + b"abc" * len(lines), want)
    for over, want in (({"format": 2}, "format 1"), ({"version": ""}, "no version"),
                       ({"version": 5}, "no version"), ({"files": "x"}, "1..64 files"),
                       ({"files": 0}, "1..64 files"), ({"files": 65}, "1..64 files"),
                       ({"files": 2}, "more lines than files"), ({"files": 4}, "not JSON lines")):
        refused(d, bundle(FILES, header(FILES, **over))[0], want)
    head = header(FILES) + b"[]\n"  # more lines than it says
    refused(d, bundle(FILES, head)[0], "more lines than files")


@quiet
def test_refused_bundles_leave_the_running_install_alone(d):
    running = otaboot.prove(otaboot.install(otaboot.factory(), "a", "aaaaaaaaaaaa"))
    otaboot.store(d, running)
    os.mkdir(d + "ota/a")
    with open(d + "ota/a/id", "w") as f:
        f.write("aaaaaaaaaaaa")
    before = read(d + "ota/current")
    data, _ = bundle()
    st, _, _ = receive(App(d, running), data[:-1], length=len(data))
    assert st == 400
    assert read(d + "ota/current") == before and read(d + "ota/a/id", "r") == "aaaaaaaaaaaa"
    assert read(d + "ota/b/id") is None  # the directory written to is not complete


class Http:
    """What handle() uses of firmware/http.py's Http."""

    def __init__(self, app, password):
        self.app = app
        self.cfg = {"password": password}
        self.updating = False
        self.sent = []

    def _authorized(self, headers):
        return headers.get("authorization") == "ok"

    async def _send(self, w, status, ctype, body, extra=""):
        self.sent.append((status, json.loads(body)["error"] if status != 200 else "", extra))


@quiet
def test_handle_refuses_before_reading(d):
    data, _ = bundle()
    running = otaboot.install(otaboot.factory(), "a", "aaaaaaaaaaaa")  # on probation
    for password, headers, updating, ota_p, want in (
            ("", {"authorization": "ok"}, False, None, (403, "OTA is off")),
            ("pw", {}, False, None, (401, "password required")),
            ("pw", {"authorization": "ok"}, True, None, (409, "an update is running")),
            ("pw", {"authorization": "ok"}, False, running, (409, "the running version has not proven itself"))):
        app = App(d, ota_p)
        h = Http(app, password)
        h.updating = updating
        r = Reader(data)
        headers["content-length"] = str(len(data))
        asyncio.run(ota.handle(h, r, Writer(), headers, b""))
        (st, err, extra), = h.sent
        assert (st, err[:len(want[1])]) == want, h.sent
        assert r.i == 0 and app.ota_update is None  # not a byte read
        assert ("WWW-Authenticate" in extra) == (st == 401)
    assert not os.listdir(d)


@quiet
def test_the_receiver_picks_the_directory_otaboot_boots(d):
    """The receiver names the install directory itself (otaboot is not loaded while a
    bundle streams in): it must be the one otaboot.target and slot_dir give."""
    data, ident = bundle()
    running = None
    for _ in range(3):
        st, answer, _ = receive(App(d, running), data)
        p = otaboot.load(d)
        want = otaboot.target(running or otaboot.factory())
        assert st == 200 and answer["slot"] == want == p["slot"]
        assert otaboot.slot_ok(d, want, ident)  # where boot looks for it
        assert read(otaboot.slot_dir(d, want) + "/firmware/app.mpy") == FILES[0][1]
        running = otaboot.prove(p)


@quiet
def test_no_room_while_receiving_asks_for_update_mode(d):
    """A MemoryError while the bundle streams in (the hook stands for one): the rest of the
    body is read, nothing is switched, and the answer is the app's restart into update mode
    (503). In update mode (where the hook stays quiet) the bundle goes through."""
    data, ident = bundle()
    app = App(d, no_room="receive")
    r = Reader(data)
    st, answer = asyncio.run(ota.receive(app, r, Writer(), {"content-length": str(len(data))}, b""))
    answer = json.loads(answer)
    assert (st, answer, app.asked) == (503, {"ok": False, "update_mode": True}, 1)
    assert r.i == len(data)  # the whole body read: the client gets to see the answer
    assert otaboot.load(d) is None and read(d + "ota/a/id") is None
    assert app.ota_update["state"] == "failed"
    app = App(d, no_room="receive", update_mode=True)
    st, answer, _ = receive(app, data)
    assert st == 200 and app.asked == 0  # the hook is for outside update mode only
