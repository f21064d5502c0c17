"""make ota HOST=<host[:port]> PASSWORD=<pw> [WAIT=<s>] [DRY=1]: build a bundle of the
firmware's files from make build's output (build/lib/*.mpy, build/firmware/*.mpy and the
pages; never main.py, boot.py or a config), upload it to the device as POST /api/ota with
HTTP Basic auth and a progress bar on stderr, wait until the device runs it, and print the
bundle's id as the last line of stdout. DRY=1 builds the bundle and says what it would do.

make bundle: the same bundle, written to build/spm02-<version>-<id>.ota (for the console's
firmware update, /settings, or to keep): `python tools/ota.py --bundle`; it prints the file's
path, then the id as the last line.

The bundle (firmware/ota.py receives it):
  b"SPM02OTA" | header length (4 bytes, big-endian) | header | the files' bytes
header: JSON lines, {"format": 1, "version": ..., "files": <n>}, then [path, size, sha256 hex]
for each file, sorted by path, the files' bytes in that order. Its id: the first 12 hex
digits of the sha256 of the header.

  python tools/ota.py --host HOST[:PORT] [--wait S] [--dry-run]   (password: $SPM02_OTA_PASSWORD)
"""
import argparse
import base64
import hashlib
import json
import os
import re
import socket
import struct
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAGIC = b"SPM02OTA"
MAX_HEADER = 8192  # the device streams it to a file: a bound, not a buffer
MAX_BUNDLE = 512 * 1024


def version(root=ROOT):
    with open(os.path.join(root, "firmware", "app.py")) as f:
        m = re.search(r'^VERSION = "([^"]+)"', f.read(), re.M)
    if not m:
        raise SystemExit("ota: no VERSION in firmware/app.py")
    return m.group(1)


def files_of(build):
    """[(bundle path, bytes)]: the firmware's compiled modules and pages, sorted by path."""
    out = []
    for sub, exts in (("firmware", (".mpy", ".html")), ("lib", (".mpy",))):
        d = os.path.join(build, sub)
        for name in sorted(os.listdir(d)):
            if name.endswith(exts):
                with open(os.path.join(d, name), "rb") as f:
                    out.append((sub + "/" + name, f.read()))
    if not any(p == "firmware/app.mpy" for p, _ in out):
        raise SystemExit("ota: %s has no firmware/app.mpy: run make build" % build)
    return sorted(out)


def header(files, ver):
    lines = [{"format": 1, "version": ver, "files": len(files)}]
    lines += [[p, len(b), hashlib.sha256(b).hexdigest()] for p, b in files]
    return "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines).encode()


def bundle_id(head):
    return hashlib.sha256(head).hexdigest()[:12]


def bundle(files, ver, head=None):
    """(bundle bytes, id). head: a header of your own (tests)."""
    head = header(files, ver) if head is None else head
    if len(head) > MAX_HEADER:
        raise SystemExit("ota: the header is %d bytes, the device takes at most %d" % (len(head), MAX_HEADER))
    data = MAGIC + struct.pack(">I", len(head)) + head + b"".join(b for _, b in files)
    if len(data) > MAX_BUNDLE:
        raise SystemExit("ota: the bundle is %d bytes, the device takes at most %d" % (len(data), MAX_BUNDLE))
    return data, bundle_id(head)


def build_bundle(build, out):
    files = files_of(build)
    data, ident = bundle(files, version())
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    return data, ident, len(files)


def host_port(text):
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "80")
    return host, int(port)


class Progress:
    def __init__(self, total, out=sys.stderr):
        self.total = total
        self.out = out
        self.tty = out.isatty()
        self.shown = -1

    def restart(self):
        self.shown = -1

    def show(self, done):
        pct = done * 100 // self.total
        if self.tty:
            bar = "#" * (pct // 4) + "." * (25 - pct // 4)
            self.out.write("\rota: [%s] %3d%% %d/%d KiB" % (bar, pct, done // 1024, self.total // 1024))
            if done >= self.total:
                self.out.write("\n")
        elif pct // 25 > self.shown:  # a log, not a terminal: a line per quarter
            self.shown = pct // 25
            self.out.write("ota: %3d%% %d/%d bytes sent\n" % (pct, done, self.total))
        self.out.flush()


def _read_head(s, buf=b""):
    """(head, rest) of the next response head on s."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("the device closed the connection without an answer")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _status(head):
    return int(head.split(b" ", 2)[1])


def _read_body(s, buf):
    while True:  # the device closes after its answer
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        buf += chunk
    return buf


def upload(host, port, password, data, progress=None, timeout=30, log=sys.stderr):
    """POST the bundle; (status, body). When the device's heap has no room for the
    receiver now (a stock image after a long run) it restarts into update mode (HTTP only)
    and says so: then the bundle goes again, once, to the update mode."""
    status, body = _upload(host, port, password, data, progress, timeout)
    if status == 503 and b'"update_mode":true' in body:
        log.write("ota: the device has no room for the update now: it restarts into update mode; "
                  "sending it there\n")
        if wait_update_mode(host, port, 60):
            if progress:
                progress.restart()
            status, body = _upload(host, port, password, data, progress, timeout)
    return status, body


def wait_update_mode(host, port, seconds):
    """Until the device answers in update mode (device.ota.update_mode)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            if state(host, port)["device"]["ota"].get("update_mode"):
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.25)
    return False


def _upload(host, port, password, data, progress=None, timeout=30):
    """POST the bundle once; (status, body). Expect: 100-continue lets the device refuse
    (wrong password, OTA off, no room) before the body is sent."""
    auth = base64.b64encode(("ota:" + password).encode()).decode()
    head = ("POST /api/ota HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Basic %s\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: %d\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n" % (host, port, auth, len(data))).encode()
    s = socket.create_connection((host, port), timeout)
    try:
        s.sendall(head)
        s.settimeout(3)
        try:
            first, rest = _read_head(s)
        except socket.timeout:
            first = None  # no 100 Continue: send anyway, as HTTP says
        s.settimeout(timeout)
        if first is not None and _status(first) != 100:
            return _status(first), _read_body(s, rest)  # refused before the body
        sent = 0
        mv = memoryview(data)
        try:
            while sent < len(data):
                sent += s.send(mv[sent:sent + 4096])
                if progress:
                    progress.show(sent)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the device stopped reading: its answer says why
        head, rest = _read_head(s)
        while _status(head) == 100:
            head, rest = _read_head(s, rest)
        return _status(head), _read_body(s, rest)
    finally:
        s.close()


def state(host, port, timeout=3):
    with urllib.request.urlopen("http://%s:%d/api/state" % (host, port), timeout=timeout) as r:
        return json.loads(r.read())


def wait_running(host, port, ident, seconds, log=sys.stderr):
    """Wait until the device runs the bundle ident (asking /api/state, which is also the
    request a new install needs to prove itself). False when it came back running something
    else (it went back: device.ota.rolled_back says why) or never answered."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < seconds:
        try:
            st = state(host, port)
        except (OSError, ValueError):
            time.sleep(0.25)
            continue
        ota = st["device"].get("ota", {})
        if ota.get("id") == ident:
            return True, st
        if st["device"]["uptime_s"] + 1 < time.monotonic() - t0:
            # restarted since the upload, running something else
            return False, st
        last = st
        time.sleep(0.25)
    return False, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="", help="the device: host or host:port")
    ap.add_argument("--wait", type=float, default=120, help="seconds to wait for the device to run it (0: do not)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="make build's output")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--bundle", action="store_true",
                    help="only write the bundle to <build>/spm02-<version>-<id>.ota")
    a = ap.parse_args()
    password = os.environ.get("SPM02_OTA_PASSWORD", "")
    out = os.path.join(a.build, "ota.bin")
    data, ident, n = build_bundle(a.build, out)
    if a.bundle:
        named = os.path.join(a.build, "spm02-%s-%s.ota" % (version(), ident))
        os.replace(out, named)
        print("bundle %s: %d files, %d bytes, version %s, id %s" % (os.path.relpath(named), n, len(data), version(), ident))
        print(ident)
        return 0
    print("bundle %s: %d files, %d bytes, version %s, id %s" % (os.path.relpath(out), n, len(data), version(), ident))
    if a.dry_run:
        print("would POST it to http://%s/api/ota with HTTP Basic auth (the password from PASSWORD, not shown), "
              "then wait %g s for the device to run %s" % (a.host or "<HOST>", a.wait, ident))
        print("(dry run: nothing sent)")
        print(ident)
        return 0
    if not a.host:
        sys.exit("ota: HOST=<host[:port]> is required: the device's address")
    if not password:
        sys.exit("ota: PASSWORD=... is required: the device's http.password (OTA is off without one)")
    host, port = host_port(a.host)
    try:
        status, body = upload(host, port, password, data, Progress(len(data)))
    except OSError as e:
        sys.exit("ota: %s:%d: %s" % (host, port, e))
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {"error": body.decode(errors="replace").strip()}
    if status != 200:
        why = {401: "wrong or missing password", 403: "OTA is off on the device: set its http.password",
               409: "an update is already running"}.get(status, answer.get("error", ""))
        sys.exit("ota: refused (%d): %s; nothing changed on the device" % (status, why))
    if answer.get("id") != ident:
        sys.exit("ota: the device installed %s, not %s" % (answer.get("id"), ident))
    print("installed in slot %s; the device restarts into it" % answer.get("slot"))
    if a.wait > 0:
        ok, st = wait_running(host, port, ident, a.wait)
        if not ok:
            ota = (st or {}).get("device", {}).get("ota", {})
            sys.exit("ota: the device does not run %s: it runs %s%s" % (
                ident, ota.get("id", "(no answer)"),
                " (rolled back: %s)" % ota["rolled_back"] if ota.get("rolled_back") else ""))
        print("the device runs %s (version %s)" % (ident, st["device"]["version"]))
    print(ident)
    return 0


if __name__ == "__main__":
    sys.exit(main())
