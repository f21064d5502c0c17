# Receives an update (POST /api/ota) into the OTA install directory that is not running:
# from the socket straight to flash in small pieces (a bundle is bigger than the heap; its
# header too is parsed from flash, never held whole), every size and sha256 checked, the
# files read back from flash and checked again, and only then the pointer switched
# (lib/otaboot.py). Any failure: 400 and nothing changed (the directory written to is not
# referenced, and it has no id marker). Loaded only while an update runs (firmware/borrow.py).
#
# A bundle (tools/ota.py makes it):
#   b"SPM02OTA" | header length (4 bytes, big-endian) | header | the files' bytes
# The header is JSON lines, at most 8 KB: {"format": 1, "version": "0.2.0", "files": 28},
# then a line per file, ["firmware/app.mpy", 2900, "<sha256 hex>"], sorted by name, in the
# order of their bytes, which end the body. Lines, so that the device parses one at a time,
# from flash. The bundle's id: the first 12 hex digits of the sha256 of the header (which
# holds every file's sha256).
import binascii
import gc
import hashlib
import json
import os
import sys

import asyncio
from micropython import const

from firmware import log
from firmware.borrow import borrow

MAGIC = b"SPM02OTA"
PREFIX = const(12)          # magic + header length
MAX_HEADER = const(8192)
MAX_BUNDLE = const(524288)  # 512 KiB; the flash's free space is checked too
MAX_FILES = const(64)
CHUNK = const(512)
UPLOAD_MS = const(120000)   # the whole upload
DRAIN_MS = const(30000)     # reading the rest of a refused bundle, so the client hears why
HEX = "0123456789abcdef"


class Bad(Exception):
    """The bundle fails a check (400) or cannot be written (500): nothing changes."""

    def __init__(self, msg, status=400):
        self.msg = msg
        self.status = status


def _name_ok(path):
    d, _, name = path.partition("/") if isinstance(path, str) else ("", "", "")
    stem, _, ext = name.rpartition(".")
    if d not in ("lib", "firmware") or not (ext == "mpy" or (ext == "html" and d == "firmware")):
        return False
    if not 0 < len(stem) <= 32:
        return False
    for c in stem:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c == "_"):
            return False
    return True


def _first(line):
    """(version, number of files) from the header's first line, or Bad."""
    try:
        h = json.loads(line)
    except ValueError:
        raise Bad("header: not JSON lines")
    if not isinstance(h, dict) or h.get("format") != 1:
        raise Bad("header: not a format 1 bundle")
    v = h.get("version")
    if not isinstance(v, str) or not 0 < len(v) <= 32:
        raise Bad("header: no version")
    n = h.get("files")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= MAX_FILES:
        raise Bad("header: 1..%d files expected" % MAX_FILES)
    return v, n


def _entry(line):
    """[path, size, sha256 hex] from a file's line of the header, or Bad: a flat name,
    lib/*.mpy or firmware/*.mpy|html only."""
    try:
        f = json.loads(line)
    except ValueError:
        raise Bad("header: not JSON lines")
    if not isinstance(f, list) or len(f) != 3:
        raise Bad("header: each file is [path, size, sha256]")
    path, size, sha = f
    if not _name_ok(path):
        raise Bad("header: bad file name %r" % (path,))
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_BUNDLE:
        raise Bad("header: bad size for %s" % path)
    if not isinstance(sha, str) or len(sha) != 64 or [c for c in sha if c not in HEX]:
        raise Bad("header: bad sha256 for %s" % path)
    return f


def _check(hpath, body_len, start, bs):
    """(version, number of files, flash they need in bytes for blocks of bs): the header
    read once from its file, every line checked, the names in order (so none twice), the
    sizes adding up to the body's length."""
    with open(hpath) as hf:
        version, n = _first(hf.readline())
        total = start
        need = 0
        prev = ""
        app = False
        for _ in range(n):
            path, size, _ = _entry(hf.readline())
            if path <= prev:
                raise Bad("header: %s out of order or repeated" % path)
            prev = path
            app = app or path == "firmware/app.mpy"
            total += size
            need += ((size + bs - 1) // bs + 1) * bs  # whole blocks, and one for the file's metadata
        if hf.readline().strip():
            raise Bad("header: more lines than files")
    if not app:
        raise Bad("header: no firmware/app.mpy")
    if total != body_len:
        raise Bad("sizes: the header adds up to %d bytes, the body has %d" % (total, body_len))
    return version, n, need


class _Body:
    """The request body: what came with the head, then the socket; exactly n bytes."""

    def __init__(self, r, head, n, up):
        self.r = r
        self.head = head
        self.n = n
        self.left = n
        self.up = up  # progress, shown in /api/state device.ota.update

    async def readinto(self, mv):
        """Up to len(mv) bytes into mv, at least one; Bad when the body ends early."""
        if self.left < len(mv):
            mv = mv[:self.left]
        if self.head:
            n = min(len(mv), len(self.head))
            mv[:n] = self.head[:n]
            self.head = self.head[n:]
        else:
            n = None
            while n is None:  # None: nothing there after all
                n = await self.r.readinto(mv)
        if not n:
            raise Bad("the body ended %d bytes early" % self.left)
        self.left -= n
        self.up["bytes"] += n
        return n

    async def fill(self, mv):
        i = 0
        while i < len(mv):
            i += await self.readinto(mv[i:])

    async def drain(self, mv):
        while self.left:
            await self.readinto(mv)


def _kill_point(name):
    # otaboot.kill_point (a host-only test hook), without loading otaboot for nothing
    if sys.platform != "esp32" and os.getenv("SPM02_OTA_KILL") == name:
        with borrow("otaboot", "files") as otaboot:
            otaboot.kill_point(name)


def _hex(h):
    return binascii.hexlify(h.digest()).decode()


def _clear(data, d):
    """An empty install directory. Its id marker goes first: a directory cut short by a
    power cut is never taken for a complete one."""
    try:
        os.remove(d + "/id")
    except OSError:
        pass
    for p in (data + "ota", d, d + "/lib", d + "/firmware"):
        try:
            os.mkdir(p)
        except OSError:
            pass  # there already
    for sub in ("/lib", "/firmware"):
        for name in os.listdir(d + sub):
            os.remove(d + sub + "/" + name)


async def _copy(body, mv, path, n):
    """The next n bytes of the body into the file path; their sha256 (hex)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        while n:
            k = await body.readinto(mv if n >= CHUNK else mv[:n])
            got = mv if k == CHUNK else mv[:k]  # a whole buffer without a new slice object
            h.update(got)
            f.write(got)
            n -= k
    return _hex(h)


def _verify(d, hf, n, mv):
    """Read every file back from flash: what will run is what was sent, and its bytecode is
    the version this MicroPython loads."""
    ver = sys.implementation._mpy & 0xFF
    for _ in range(n):
        path, size, sha = _entry(hf.readline())
        h = hashlib.sha256()
        got = 0
        with open(d + "/" + path, "rb") as f:
            while True:
                k = f.readinto(mv)
                if not k:
                    break
                if not got and path.endswith(".mpy") and (k < 2 or mv[0] != 77 or mv[1] != ver):
                    raise Bad("%s: not .mpy version %d, which this MicroPython loads" % (path, ver))
                h.update(mv[:k])
                got += k
        if got != size or _hex(h) != sha:
            raise Bad("%s: what was written to flash differs from the bundle" % path, 500)


async def _install(app, body, mv, up):
    data = app.data_dir
    await body.fill(mv[:PREFIX])
    if app.test_no_room == "receive" and not app.update_mode:
        raise MemoryError  # the host-only test hook (app.py)
    if bytes(mv[:8]) != MAGIC:
        raise Bad("not an SPM02 firmware bundle (make ota makes them)")
    hlen = int.from_bytes(bytes(mv[8:PREFIX]), "big")
    if not 0 < hlen <= MAX_HEADER:
        raise Bad("header: %d bytes, at most %d" % (hlen, MAX_HEADER))
    try:
        os.mkdir(data + "ota")
    except OSError:
        pass  # there already
    # The header goes through a file: parsed a line at a time, it never takes more than a
    # line's worth of heap (the list of files would take a few KB).
    hpath = data + "ota/header.tmp"
    ident = (await _copy(body, mv, hpath, hlen))[:12]
    try:
        st = os.statvfs(data + "ota")
        version, n, need = _check(hpath, body.n, PREFIX + hlen, st[0])
        up["id"] = ident
        up["version"] = version
        if need > st[0] * st[4]:
            raise Bad("not enough flash: the bundle needs about %d bytes, %d are free" % (need, st[0] * st[4]))
        # The directory not running, as otaboot.target and slot_dir say (the tests hold them
        # to it): otaboot is loaded only for the switch, not before the bundle streams in,
        # when MQTT and HTTP go on and the heap is at its fullest (its code loaded and
        # dropped just then leaves the heap in pieces).
        running = app.ota or {"slot": "factory", "id": "factory", "proven": True}
        slot = "b" if running["slot"] == "a" else "a"
        d = data + "ota/" + slot
        try:
            _clear(data, d)
        except OSError as e:
            raise Bad("cannot prepare %s: %r" % (d, e), 500)
        log.info("ota: receiving %s (version %s, %d files) into install %s", ident, version, n, slot)
        with open(hpath) as hf:
            hf.readline()
            for i in range(n):
                path, size, sha = _entry(hf.readline())
                if await _copy(body, mv, d + "/" + path, size) != sha:
                    raise Bad("%s: sha256 differs from the header (damaged on the way?)" % path)
                if i == 0:
                    _kill_point("upload")
        with open(hpath) as hf:
            hf.readline()
            _verify(d, hf, n, mv)
    finally:
        os.remove(hpath)
    with open(d + "/id", "w") as f:
        f.write(ident)
    with borrow("otaboot", "files") as otaboot:
        otaboot.store(data, otaboot.install(running, slot, ident), "switch-tmp")
        otaboot.kill_point("switched")
    return ident, version, slot


async def handle(http, r, w, headers, head):
    """POST /api/ota for http.py: the password first (none configured: OTA is off), one
    update at a time, and not over an install still on probation; then the update, the
    answer, and the restart into it."""
    app = http.app
    extra = ""
    if not http.cfg["password"]:
        status, body = 403, '{"ok":false,"error":"OTA is off: set http.password to turn it on"}'
    elif not http._authorized(headers):
        status, body = 401, '{"ok":false,"error":"password required"}'
        extra = 'WWW-Authenticate: Basic realm="spm02"\r\n'
    elif http.updating:
        status, body = 409, '{"ok":false,"error":"an update is running"}'
    elif app.ota and not app.ota["proven"]:
        # its way back is the install the update would be written over
        status = 409
        body = '{"ok":false,"error":"the running version has not proven itself healthy yet: try later"}'
    else:
        http.updating = True
        status = 500
        try:
            status, body = await receive(app, r, w, headers, head)
        finally:
            http.updating = status == 200  # installed: no other update before the restart
    try:
        await http._send(w, status, "application/json", body, extra)
    finally:
        if status == 200:
            app.restart_soon()  # switched: restart into it even if the answer was lost


async def receive(app, r, w, headers, head):
    """(status, JSON text) for POST /api/ota, its password already checked. The pointer
    is switched only for 200; the caller then restarts."""
    if "chunked" in headers.get("transfer-encoding", ""):
        return 400, '{"ok":false,"error":"send the bundle with a Content-Length, not chunked"}'
    n = int(headers.get("content-length", "0"))  # http.py checked it is a number >= 0
    if not n:
        return 400, '{"ok":false,"error":"no bundle: send one (make ota) as the body"}'
    if n > MAX_BUNDLE:
        return 413, json.dumps({"ok": False, "error": "a bundle is at most %d bytes" % MAX_BUNDLE})
    if headers.get("expect", "").lower() == "100-continue":
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for this before sending
        await w.drain()
    up = app.ota_update = {"state": "receiving", "bytes": 0, "of": n}
    body = _Body(r, head, n, up)
    mv = memoryview(bytearray(CHUNK))
    gc.collect()
    log.info("ota: an update of %d bytes", n)
    try:
        ident, version, slot = await asyncio.wait_for_ms(_install(app, body, mv, up), UPLOAD_MS)
    except Exception as e:
        if isinstance(e, Bad):
            status, msg = e.status, e.msg
        elif isinstance(e, asyncio.TimeoutError):
            status, msg = 408, "the upload took longer than %d s" % (UPLOAD_MS // 1000)
        elif isinstance(e, MemoryError):  # the heap as the job has left it
            status, msg = 500, "no room in the heap for the update now"
        else:
            status, msg = 500, "update failed: %r" % (e,)
        app.ota_update = {"state": "failed", "id": up.get("id"), "error": msg}
        log.warn("ota: update refused, nothing changed: %s", msg)
        room = isinstance(e, MemoryError) and not app.update_mode
        if (room or isinstance(e, Bad)) and body.left:
            try:  # the client is still sending: read it all, or it may never see the answer
                await asyncio.wait_for_ms(body.drain(mv), DRAIN_MS)
            except Exception:
                pass
        if room:  # the heap as the job has left it: update mode has room (app.py)
            return 503, app.no_room_for_update(True)
        return status, json.dumps({"ok": False, "error": msg})
    app.ota_update = {"state": "installed", "id": ident, "version": version}
    log.info("ota: %s (version %s) installed and checked; restarting into it", ident, version)
    return 200, json.dumps({"ok": True, "id": ident, "version": version, "slot": slot})
