# The setup portal: a page to pick a network and enter the MQTT settings, a scan, and
# a save that writes config.json atomically. Pure-ish: handle() returns
# (status, content_type, body, extra_headers) for the HTTP server to send, or None.
# Also load_config(): whatever is on the flash, the firmware starts (in setup mode if
# the config is missing or broken).
import json
import os

import asyncio

from firmware import config, log
from files import read_recovered, read_text, write_atomic

MAX_FILE = 4096  # a config.json bigger than this is not ours

# form/JSON field -> where it goes in config.json
FIELDS = (("name", ("name",)), ("ssid", ("wifi", "ssid")), ("password", ("wifi", "password")),
          ("mqtt_host", ("mqtt", "host")), ("mqtt_port", ("mqtt", "port")),
          ("mqtt_user", ("mqtt", "user")), ("mqtt_password", ("mqtt", "password")))

JSON = "application/json"

PAGE = "firmware/setup.html"  # static; it fills itself in from /setup/info


def _unquote(b):
    """Form-urlencoded bytes -> str (+ is space, %XX a byte, UTF-8)."""
    b = b.replace(b"+", b" ")
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b):  # '%XX'; bad hex raises ValueError
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out).decode()


def parse_form(body):
    out = {}
    for part in bytes(body).split(b"&"):
        if part:
            k, _, v = part.partition(b"=")
            out[_unquote(k)] = _unquote(v)
    return out


def _get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _set(d, path, v):
    for k in path[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[path[-1]] = v




def _object(text):
    """The JSON object in text, or None (not JSON, truncated, not an object, too big)."""
    if text is None or len(text) > MAX_FILE:
        return None
    try:
        d = json.loads(text)
    except Exception:
        return None
    return d if isinstance(d, dict) else None


def load_config(path="config.json"):
    """(cfg, warnings, setup_needed): setup_needed is "" or why setup mode is needed.
    Never raises: a missing, corrupt or half-written file gives the defaults. A Wi-Fi
    change put back at the last boot (firmware/fallback.py) is among the warnings."""
    cfg, warnings, setup = _load(path)
    note = path + ".reverted"  # fallback.NOTE: said once, at the boot after
    try:
        with open(note) as f:
            warnings.append(f.read(512))
        os.remove(note)
    except OSError:
        pass
    return cfg, warnings, setup


def _load(path):
    tmp = path + ".tmp"
    try:
        # a complete new config whose rename a crash stopped is taken, a cut one dropped
        text, left = read_recovered(path, lambda p: read_text(p, MAX_FILE), lambda t: _object(t) is not None)
        if left == "taken":
            log.warn("config: recovered %s from %s", path, tmp)
        elif left == "dropped":
            log.warn("config: ignoring leftover %s", tmp)
        if text is None:
            return config.parse(None)[0], ["%s not found; using defaults" % path], "no config"
        if len(text) > MAX_FILE:
            return config.parse(None)[0], ["%s is over %d bytes; using defaults" % (path, MAX_FILE)], \
                "config unreadable"
        cfg, warnings = config.parse(text)
        if _object(text) is None:
            return cfg, warnings, "config unreadable"
        return cfg, warnings, ""
    except Exception as e:
        return config.parse(None)[0], ["%s: %r; using defaults" % (path, e)], "config unreadable"


class Portal:
    RESTART_MS = 1000  # lets the 200 reach the browser before the reset

    def __init__(self, cfg, path="config.json", wlan=None, reset=None, auth=None, rename=None,
                 page_path=PAGE):
        self.cfg = cfg              # the running config: prefills the page (never passwords)
        self.path = path
        self.wlan = wlan            # station WLAN, for scan()
        self.reset = reset          # called RESTART_MS after a successful save
        self.auth = auth            # auth(headers) -> bool, or None: open
        self.rename = rename        # os.rename, replaceable for tests
        self.saved = 0
        self.restart_task = None
        self.page_path = page_path

    def handle(self, method, path, headers, body):
        """(status, content_type, body, extra_headers) for /setup paths, else None."""
        path = path.split("?", 1)[0]
        if path not in ("/setup", "/setup/info", "/setup/scan", "/setup/save"):
            return None
        if self.auth is not None and not self.auth(headers):
            return 401, "text/plain", "password required\n", 'WWW-Authenticate: Basic realm="spm02"\r\n'
        want = "POST" if path == "/setup/save" else "GET"
        if method != want:
            return 405, "text/plain", "use %s\n" % want, "Allow: %s\r\n" % want
        if path == "/setup":
            return 200, "text/html; charset=utf-8", self.page(), ""
        if path == "/setup/info":
            return 200, JSON, json.dumps(self.info()), ""
        if path == "/setup/scan":
            return self.scan()
        return self.save(body, headers.get("content-type", ""))

    def page(self):
        with open(self.page_path) as f:
            return f.read()

    def info(self):
        """What the page is prefilled with: the running config, never a password."""
        c = self.cfg
        from firmware import board  # uid: the page shows the name on the network, <name>-<uid>.local
        return {"ssid": c["wifi"]["ssid"], "host": c["mqtt"]["host"], "port": c["mqtt"]["port"], "uid": board.unique_id(),
                "user": c["mqtt"]["user"], "name": c["name"],
                "wpw": bool(c["wifi"]["password"]), "mpw": bool(c["mqtt"]["password"])}

    def scan(self):
        """Networks in range, strongest first, one entry per SSID."""
        try:
            found = self.wlan.scan()
        except Exception as e:
            log.warn("portal: scan failed: %r", e)
            return 503, JSON, '{"error":"scan failed, try again"}', ""
        best = {}
        for n in found:
            try:
                ssid = bytes(n[0]).decode()
            except Exception:
                continue
            if ssid and (ssid not in best or n[3] > best[ssid]["rssi"]):
                best[ssid] = {"ssid": ssid, "rssi": n[3], "secure": n[4] != 0}
        nets = sorted(best.values(), key=lambda x: -x["rssi"])[:20]
        return 200, JSON, json.dumps(nets), ""

    def _patch(self, body, ctype):
        """{config path: value} from a form or JSON body; ValueError for a bad body."""
        try:
            if "json" in ctype or bytes(body[:1]) == b"{":
                given = json.loads(body)
                if not isinstance(given, dict):
                    raise ValueError
            else:
                given = parse_form(body)
        except Exception:
            raise ValueError("body must be a form or a JSON object")
        patch = {}
        for field, path in FIELDS:
            v = given.get(field)
            if v is None:
                v = _get(given, path)  # nested JSON: {"wifi": {"ssid": ...}}
            if v is not None:
                patch[path] = v
        if not patch:
            raise ValueError("nothing to save")
        return patch

    def save(self, body, ctype=""):
        try:
            patch = self._patch(body, ctype)
        except ValueError as e:
            return 400, JSON, json.dumps({"ok": False, "errors": [str(e)]}), ""
        try:
            old = _object(read_text(self.path, MAX_FILE)) or {}
        except Exception:
            old = {}
        new = json.loads(json.dumps(old))  # deep copy: keys we do not touch stay as they are
        errors = []
        sent = {}
        for path in patch:
            v = patch[path]
            key = ".".join(path)
            if path == ("mqtt", "port") and isinstance(v, str):
                if not v.strip():
                    continue  # empty: unchanged
                try:
                    v = int(v)
                except ValueError:
                    errors.append("mqtt.port: must be a number")
                    continue
            if path[-1] == "password" and v == "":
                # the page never shows passwords: empty keeps the old one (a new SSID: open network)
                if path[0] == "mqtt" or patch.get(("wifi", "ssid")) in (None, _get(old, ("wifi", "ssid"))):
                    continue
            if path == ("wifi", "ssid") and v == "":
                errors.append("wifi.ssid: must be 1..32 bytes")  # the form needs one
                continue
            _set(new, path, v)
            _set(sent, path, v)
        # the same rules as at boot and in the console (config.errors), for what is saved
        bad = config.errors(new, sent)  # never quotes a secret
        for key in bad:
            errors.append("%s: %s" % (key, bad[key]))
        text = json.dumps(new)
        cfg, warnings = config.parse(text)
        if errors:
            return 400, JSON, json.dumps({"ok": False, "errors": errors}), ""
        try:
            write_atomic(self.path, text, self.rename)
        except Exception as e:
            log.error("portal: cannot write %s: %r", self.path, e)
            return 500, JSON, json.dumps({"ok": False, "errors": ["cannot write the config"]}), ""
        self.saved += 1
        log.info("portal: config saved (wifi %s, mqtt %s:%d, name %s); restarting",
                 cfg["wifi"]["ssid"], cfg["mqtt"]["host"], cfg["mqtt"]["port"], cfg["name"])
        if self.reset is not None:
            self.restart_task = asyncio.create_task(self._restart())
        return 200, JSON, json.dumps({"ok": True, "warnings": warnings,
                                      "restart_ms": self.RESTART_MS}), ""

    async def _restart(self):
        await asyncio.sleep_ms(self.RESTART_MS)
        self.reset()
