# Receives an update (POST /api/ota) into the OTA install directory that is not running:
# from the socket straight to flash in small pieces (a bundle is bigger than the heap; its
# header too is parsed from flash, never held whole), every size and sha256 checked, the
# files read back from flash and checked again, and only then the pointer switched
# (lib/otaboot.py). Any failure: 400 and nothing changed (the directory written to is not
# referenced, and it has no id marker). Loaded only while an update runs (firmware/borrow.py).
#
# A bundle (tools/ota.py makes it):
#   b"SPM02OTA" | header length (4 bytes, big-endian) | header | the files' bytes
# The header is JSON: {"format": 1, "version": "0.2.0",
#   "files": [["firmware/app.mpy", 2900, "<sha256 hex>"], ...]}; the files follow in that
# order, with nothing after them. The bundle's id: the first 12 hex digits of the sha256 of
# the header (which holds every file's sha256).
import binascii
import gc
import hashlib
import json
import os
import sys

import asyncio
from micropython import const

import otaboot
from firmware import log

MAGIC = b"SPM02OTA"
PREFIX = const(12)          # magic + header length
MAX_HEADER = const(4096)
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


def check_header(h, body_len, prefix_len):
    """(version, [[path, size, sha256 hex], ...]) from the parsed header, or Bad: the file
    names (flat, lib/*.mpy and firmware/*.mpy|html only), sizes and hashes, and that they
    add up to the body's length."""
    if not isinstance(h, dict) or h.get("format") != 1:
        raise Bad("header: not a format 1 bundle")
    v = h.get("version")
    if not isinstance(v, str) or not 0 < len(v) <= 32:
        raise Bad("header: no version")
    files = h.get("files")
    if not isinstance(files, list) or not 0 < len(files) <= MAX_FILES:
        raise Bad("header: 1..%d files expected" % MAX_FILES)
    seen = set()
    total = prefix_len
    for f in files:
        if not isinstance(f, list) or len(f) != 3:
            raise Bad("header: each file is [path, size, sha256]")
        path, size, sha = f
        if not _name_ok(path) or path in seen:
            raise Bad("header: bad or repeated file name %r" % (path,))
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_BUNDLE:
            raise Bad("header: bad size for %s" % path)
        if not isinstance(sha, str) or len(sha) != 64 or [c for c in sha if c not in HEX]:
            raise Bad("header: bad sha256 for %s" % path)
        seen.add(path)
        total += size
    if "firmware/app.mpy" not in seen:
        raise Bad("header: no firmware/app.mpy")
    if total != body_len:
        raise Bad("sizes: the header adds up to %d bytes, the body has %d" % (total, body_len))
    return v, files


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
        want = min(len(mv), self.left)
        if self.head:
            n = min(want, len(self.head))
            mv[:n] = self.head[:n]
            self.head = self.head[n:]
        else:
            n = None
            while n is None:  # None: nothing there after all
                n = await self.r.readinto(mv[:want])
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


def _room(d, files):
    if not hasattr(os, "statvfs"):
        return
    st = os.statvfs(d)
    bs = st[0] or 4096
    need = 0
    for _, size, _ in files:
        need += ((size + bs - 1) // bs + 1) * bs  # whole blocks, and one for the file's metadata
    if need > st[0] * st[4]:
        raise Bad("not enough flash: the bundle needs about %d bytes, %d are free" % (need, st[0] * st[4]))


async def _receive_file(body, mv, d, path, size, sha):
    h = hashlib.sha256()
    left = size
    with open(d + "/" + path, "wb") as f:
        while left:
            n = await body.readinto(mv[:min(CHUNK, left)])
            h.update(mv[:n])
            f.write(mv[:n])
            left -= n
    if _hex(h) != sha:
        raise Bad("%s: sha256 differs from the header (damaged on the way?)" % path)


def _verify(d, files, mv):
    """Read every file back from flash: what will run is what was sent, and its bytecode is
    the version this MicroPython loads."""
    ver = sys.implementation._mpy & 0xFF
    for path, size, sha in files:
        h = hashlib.sha256()
        got = 0
        with open(d + "/" + path, "rb") as f:
            while True:
                n = f.readinto(mv)
                if not n:
                    break
                if not got and path.endswith(".mpy") and (n < 2 or mv[0] != 77 or mv[1] != ver):
                    raise Bad("%s: not .mpy version %d, which this MicroPython loads" % (path, ver))
                h.update(mv[:n])
                got += n
        if got != size or _hex(h) != sha:
            raise Bad("%s: what was written to flash differs from the bundle" % path, 500)


async def _header(data, body, mv):
    """(id, version, files): the header, through a file (in a fragmented heap a few KB in
    one piece may not be there; its parsed objects are small pieces)."""
    await body.fill(mv[:PREFIX])
    if bytes(mv[:8]) != MAGIC:
        raise Bad("not an SPM02 firmware bundle (make ota makes them)")
    hlen = int.from_bytes(bytes(mv[8:PREFIX]), "big")
    if not 0 < hlen <= MAX_HEADER:
        raise Bad("header: %d bytes, at most %d" % (hlen, MAX_HEADER))
    path = data + "ota/header.tmp"
    try:
        os.mkdir(data + "ota")
    except OSError:
        pass  # there already
    h = hashlib.sha256()
    left = hlen
    with open(path, "wb") as f:
        while left:
            n = await body.readinto(mv[:min(CHUNK, left)])
            h.update(mv[:n])
            f.write(mv[:n])
            left -= n
    try:
        with open(path) as f:
            parsed = json.load(f)
    except Exception:
        raise Bad("header: not JSON")
    finally:
        os.remove(path)
    version, files = check_header(parsed, body.n, PREFIX + hlen)
    return _hex(h)[:12], version, files


async def _install(app, body, mv, up):
    ident, version, files = await _header(app.data_dir, body, mv)
    up["id"] = ident
    up["version"] = version
    running = app.ota or otaboot.factory()
    slot = otaboot.target(running)
    d = otaboot.slot_dir(app.data_dir, slot)
    try:
        _clear(app.data_dir, d)
        _room(d, files)
    except OSError as e:
        raise Bad("cannot prepare %s: %r" % (d, e), 500)
    log.info("ota: receiving %s (version %s, %d files) into install %s", ident, version, len(files), slot)
    for i, (path, size, sha) in enumerate(files):
        await _receive_file(body, mv, d, path, size, sha)
        if i == 0:
            otaboot.kill_point("upload")
    _verify(d, files, mv)
    with open(d + "/id", "w") as f:
        f.write(ident)
    otaboot.store(app.data_dir, otaboot.install(running, slot, ident), "switch-tmp")
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
        status, body = 409, json.dumps({"ok": False, "error": "%s has not proven itself healthy yet; try again in "
                                        "a few minutes" % app.ota["id"]})
    else:
        http.updating = True
        status = 500
        try:
            status, body = await receive(app, r, w, headers, head)
        finally:
            http.updating = status == 200  # installed: no other update before the restart
    await http._send(w, status, "application/json", body, extra)
    if status == 200:
        app.restart_soon()


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
        else:
            status, msg = 500, "update failed: %r" % (e,)
        app.ota_update = {"state": "failed", "id": up.get("id"), "error": msg}
        log.warn("ota: update refused, nothing changed: %s", msg)
        if isinstance(e, Bad) and body.left:
            try:  # the client is still sending: read it all, or it may never see the answer
                await asyncio.wait_for_ms(body.drain(mv), DRAIN_MS)
            except Exception:
                pass
        return status, json.dumps({"ok": False, "error": msg})
    app.ota_update = {"state": "installed", "id": ident, "version": version}
    log.info("ota: %s (version %s) installed and checked; restarting into it", ident, version)
    return 200, json.dumps({"ok": True, "id": ident, "version": version, "slot": slot})
