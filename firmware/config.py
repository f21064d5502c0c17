# config.json: defaults for what is missing, a clear warning for what is wrong, and
# never a crash: the firmware starts with what it can use.
import json

DEFAULTS = {
    "name": "spm02",
    "wifi": {"ssid": "", "password": "", "txpower": 0, "setup_after_s": 300},
    "uart": {"id": 1, "tx": 21, "rx": 20, "baudrate": 9600, "url": ""},
    "mqtt": {"host": "", "port": 1883, "user": "", "password": "", "base_topic": "",
             "discovery_prefix": "homeassistant"},
    "http": {"port": 80, "password": "", "host": "0.0.0.0"},
    "layout": "auto",
    "wifi_state": 4,
    "mcu": {"poll_s": 30},  # ask (0x08) when the meter sent no report for this long; 0: never
    "dps": {},  # the owner's DP map: checked by _dps, becomes rows of the DP table
    "board": {"led": -1, "led_invert": False, "button": -1},  # ESP32 pins; -1: none
    "log": {"syslog": "", "level": "info"},  # syslog: "host:port" for RFC 5424 over UDP
    "time": {"tz": "UTC0", "ntp": "pool.ntp.org"},  # tz: POSIX TZ string (local midnight); ntp: server
}

SECRETS = ("password",)
BAUDS = (9600, 19200, 38400, 57600, 115200)


def _check(path, key, value):
    """An error message for a bad value, or None."""
    if key in ("port",) and not (isinstance(value, int) and 0 < value < 65536):
        return "must be a port number 1..65535"
    if key == "baudrate" and value not in BAUDS:
        return "must be one of %s" % (BAUDS,)
    if path == "layout" and value not in ("auto", "v2", "cloud", "spm01"):
        return "must be auto, v2, cloud or spm01"
    if path == "mcu.poll_s" and not 0 <= value <= 3600:
        return "must be 0 (never) or 1..3600 seconds"
    return _check2(path, key, value)


def _check2(path, key, value):
    # (_check in three: smaller pieces of code fit a heap in pieces)
    if path == "wifi_state" and value not in (0, 1, 2, 3, 4):
        return "must be 0..4"
    if path == "name" and not _safe_name(value):
        return "must be 1..32 letters, digits, - or _"
    if key == "base_topic" and value and ("+" in value or "#" in value):
        return "must not contain + or #"
    if key == "url" and value and not value.startswith("tcp://"):
        return "must look like tcp://host:port"
    if path == "wifi.ssid" and len(value.encode()) > 32:
        return "must be 1..32 bytes"
    return _check3(path, key, value)


def _check3(path, key, value):
    if path == "wifi.password" and value and not 8 <= len(value) <= 63:
        return "must be 8..63 characters, or empty for an open network"
    if path == "time.ntp" and not _host(value):
        return "must be a host name or address"
    if path == "log.level" and value not in ("debug", "info", "warn", "error"):
        return "must be debug, info, warn or error"
    if path == "time.tz":
        import tz
        try:
            tz.parse(value)
        except ValueError as e:
            return "cannot parse %r (%s): not a POSIX TZ string such as CET-1CEST,M3.5.0,M10.5.0/3" % (value, e)
    if path == "log.syslog" and value:
        from firmware.syslog import parse_target
        try:
            parse_target(value)
        except ValueError as e:
            return str(e)
    return None


def _host(v):
    if not 0 < len(v) <= 253:
        return False
    for ch in v:
        if not (ch.isalpha() or ch.isdigit() or ch in "-.:"):
            return False
    return True


def _safe_name(v):
    if not 0 < len(v) <= 32:
        return False
    for ch in v:
        if not (ch.isalpha() or ch.isdigit() or ch in "-_"):
            return False
    return True


def _merge(defaults, given, prefix, warnings, sent=None):
    # sent (errors() for a save): only its paths are checked; the others are taken as they
    # are, so a save loads no rule's code it does not need (tz, dpsconfig: KBs of heap)
    out = {}
    if not isinstance(given, dict):
        if given is not None:
            warnings.append("%s: must be an object; using defaults" % (prefix[:-1] or "config"))
        given = {}
    for key in defaults:
        d = defaults[key]
        path = prefix + key
        if path == "dps":
            dps = given.get(key, {})
            if dps == {} or (sent is not None and not _within(sent, path)):
                out[key] = ()
            else:  # its rules only when there is a map to check
                from firmware.borrow import borrow
                with borrow("firmware.dpsconfig") as dpsconfig:
                    out[key] = dpsconfig.rows(dps, warnings)
            continue
        if key not in given:
            out[key] = d if not isinstance(d, dict) else _merge(d, None, path + ".", warnings)
            continue
        v = given[key]
        if isinstance(d, dict):
            out[key] = _merge(d, v, path + ".", warnings, sent)
            continue
        out[key] = v if sent is not None and not _within(sent, path) else _value(path, key, d, v, warnings)
    for key in given:
        if key not in defaults:
            warnings.append("%s%s: unknown setting, ignored" % (prefix, key))
    return out


def _value(path, key, d, v, warnings):
    """v when boot takes it, else d with a warning. (Apart from _merge: a function's code
    needs one free piece of heap, and smaller ones fit a heap in pieces.)"""
    if type(v) is not type(d):
        warnings.append("%s: expected %s, got %s; using %r" % (
            path, type(d).__name__, type(v).__name__, "***" if key in SECRETS else d))
        return d
    err = _check(path, key, v)
    if err:
        warnings.append("%s: %s; using %r" % (path, err, d))
        return d
    return v


def errors(given, sent=None):
    """{dotted path: why} for every value in given (a config object) that boot would not
    take as it is: the one set of rules for boot, the setup portal and the console, so
    that nothing boot would reject is ever written. {} when all is well. sent: only the
    paths in this object (what a save changes; a key an older or newer firmware left in
    the file stays as boot treats it, so that it cannot block every save)."""
    warnings = []
    if not isinstance(given, dict):
        return {"config": "must be an object"}
    _merge(DEFAULTS, given, "", warnings, sent)
    out = {}
    for w in warnings:
        if w.endswith("no device class"):
            continue  # a unit the table does not know: taken, only without a device class
        path, _, why = w.partition(": ")
        for tail in ("; using", "; entry ignored", ", ignored", "; ignored"):
            i = why.rfind(tail)
            if i > 0:
                why = why[:i]  # what boot would do instead: not the owner's concern here
        if sent is None or _within(sent, path):
            out[path] = why
    return out


def _within(sent, path):
    for k in path.split("."):
        if not isinstance(sent, dict):
            return True  # sent replaces this whole part
        if k not in sent:
            return False
        sent = sent[k]
    return True


def parse(text):
    """(config, warnings) from JSON text (or None for no file)."""
    warnings = []
    given = None
    if text is not None:
        try:
            given = json.loads(text)
        except Exception:
            warnings.append("config.json is not valid JSON; using defaults")
    cfg = _merge(DEFAULTS, given, "", warnings)
    if not cfg["mqtt"]["base_topic"]:
        cfg["mqtt"]["base_topic"] = cfg["name"]
    return cfg, warnings

