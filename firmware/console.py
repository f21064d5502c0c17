# The owner's console API: the config read and changed (/api/config), its backup
# (/api/config/backup) and the live log (/api/log). Borrowed by firmware/routes.py only
# while one of these is served: its code is not in the heap otherwise.
import json

from firmware import config, log

SECRET = "password"  # wifi.password, mqtt.password, http.password: never sent, only whether set
MAX_FILE = 4096  # portal.MAX_FILE: a bigger config.json would not be read at boot
# Keys that take effect at once; any other change restarts the firmware
LIVE = ("http.password", "log.level")
PREV = ".prev"  # config.json.prev: the config before a Wi-Fi change, until the new network is joined
JSON = "application/json"
AUTH = 'WWW-Authenticate: Basic realm="spm02"\r\n'


async def route(http, w, method, path, query, headers, body):
    if path == "/api/config/backup":
        want = "GET"
    elif path == "/api/config":
        want = "GET POST"
    else:  # /api/log
        want = "GET"
    if method not in want.split(" "):
        return await http._send(w, 405, JSON, '{"ok":false,"error":"use %s"}' % want,
                                "Allow: %s\r\n" % want.replace(" ", ", "))
    if path == "/api/config/backup" and not http.cfg["password"]:
        # the backup holds every secret: it never leaves without a password
        return await http._send(w, 403, JSON, '{"ok":false,"error":"set http.password first: '
                                              'the backup holds the secrets"}')
    if not http._authorized(headers):
        return await http._send(w, 401, JSON, '{"ok":false,"error":"password required"}', AUTH)
    if path == "/api/log":
        return await _log(http, w, query)
    if path == "/api/config/backup":
        return await _backup(http, w)
    if method == "GET":
        return await http._send(w, 200, JSON, json.dumps(shown(http.app.cfg, _saved(http.app.config_path))))
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != JSON:
        # a cross-site HTML form cannot send JSON without a CORS preflight, never granted
        return await http._send(w, 415, JSON, '{"ok":false,"error":"send application/json"}')
    status, answer, restart = save(http.app, body)
    await http._send(w, status, JSON, json.dumps(answer))
    if restart:
        http.app.restart_soon(1000)


def _read(path):
    """The saved config.json's text, or None."""
    try:
        with open(path) as f:
            return f.read(MAX_FILE + 1)
    except OSError:
        return None


def _saved(path):
    """The saved config as an object ({} when missing or unreadable: boot's defaults)."""
    try:
        d = json.loads(_read(path))
    except Exception:
        return {}
    return d if isinstance(d, dict) else {}


def shown(cfg, saved):
    """The config as run, secrets as true/false; dps as the owner wrote it (the running
    table holds it as rows)."""
    out = {}
    for k in cfg:
        v = cfg[k]
        if k == "dps":
            v = saved.get("dps")
            v = v if isinstance(v, dict) else {}
        elif isinstance(v, dict):
            v = dict(v)
            if SECRET in v:
                v[SECRET] = bool(v[SECRET])
        out[k] = v
    return out


def _merge(old, patch, defaults, prefix):
    """patch into old, key by key: an object into the object it names (except dps, which
    is replaced whole, so that entries can be taken out); a secret sent as true or false
    (as GET /api/config shows it) keeps its value."""
    for k in patch:
        v = patch[k]
        d = defaults.get(k) if isinstance(defaults, dict) else None
        if k == SECRET and isinstance(v, bool):
            continue
        if isinstance(d, dict) and isinstance(v, dict) and prefix + k != "dps":
            o = old.get(k)
            if not isinstance(o, dict):
                o = old[k] = {}
            _merge(o, v, d, prefix + k + ".")
        else:
            old[k] = v


def _changed(a, b, prefix, out):
    """The dotted paths whose values differ between two run configs."""
    for k in a:
        if isinstance(a[k], dict) and isinstance(b.get(k), dict):
            _changed(a[k], b[k], prefix + k + ".", out)
        elif a[k] != b.get(k):
            out.append(prefix + k)


def save(app, body):
    """(status, answer, restart?) for POST /api/config: all or nothing."""
    try:
        patch = json.loads(body)
    except Exception:
        return 400, {"ok": False, "errors": {"config": "the body is not valid JSON"}}, False
    if not isinstance(patch, dict):
        return 400, {"ok": False, "errors": {"config": "must be an object"}}, False
    path = app.config_path
    old_text = _read(path)
    new = _saved(path)
    _merge(new, patch, config.DEFAULTS, "")
    errors = config.errors(new, patch)  # the rules boot applies: nothing it would reject is written
    text = json.dumps(new)
    if not errors and len(text) > MAX_FILE:
        errors = {"config": "over %d bytes" % MAX_FILE}
    if errors:
        log.warn("console: config refused: %s", ", ".join(errors))
        return 400, {"ok": False, "errors": errors}, False
    was = config.parse(old_text)[0]
    now = config.parse(text)[0]
    changed = []
    _changed(now, was, "", changed)
    if not changed and text == old_text:
        return 200, {"ok": True, "restart": False}, False
    from files import write_atomic
    if app.wifi is not None and [p for p in changed if p.startswith("wifi.")] and old_text is not None \
            and _read(path + PREV) is None:
        # the config that joined a network, until the new one is joined (firmware/fallback.py);
        # a second change before that keeps the first one's: that is the one known to work
        write_atomic(path + PREV, old_text)
    write_atomic(path, text)
    restart = False
    for p in changed:
        if p not in LIVE:
            restart = True
    if not restart:  # what applies at once: into the running config
        app.cfg["http"]["password"] = now["http"]["password"]
        app.cfg["log"]["level"] = now["log"]["level"]
        log.configure(now["log"]["level"], log._sink)
    log.info("console: config saved (%s)%s", ", ".join(changed) or "no change in effect",
             "; restarting" if restart else "")
    return 200, {"ok": True, "restart": restart}, restart


async def _backup(http, w):
    text = _read(http.app.config_path)
    if text is None:
        return await http._send(w, 404, JSON, '{"ok":false,"error":"no config.json saved"}')
    await http._send(w, 200, JSON, text, 'Content-Disposition: attachment; filename="%s-config.json"\r\n'
                     % http.app.cfg["name"])


async def _log(http, w, query):
    n = 0
    for part in query.split("&"):
        k, _, v = part.partition("=")
        if k == "since":
            try:
                n = int(v)
            except ValueError:
                n = -1
    if n < 0:
        return await http._send(w, 400, JSON, '{"ok":false,"error":"since must be a line number 0.."}')
    nxt, lines = log.since(n)
    await http._send(w, 200, JSON, json.dumps({"next": nxt, "lines": lines}))
