# A change of the config (POST /api/config): merged into the saved config key by key,
# checked by the rules boot applies (firmware/config.py), written atomically, all or
# nothing. Borrowed by firmware/http.py only while the answer is made, without
# console.py: the least code in the heap at once (a stock image has little room to spare).
import json

from firmware import config, log  # all its code at once, before this request's data: fewer holes
from files import read_text, write_atomic

SECRET = "password"  # wifi.password, mqtt.password, http.password: true/false keeps them
MAX_FILE = 4096  # portal.MAX_FILE: a bigger config.json would not be read at boot
# Keys that take effect at once; any other change restarts the firmware
LIVE = ("http.password", "log.level")
LEVELS = ("debug", "info", "warn", "error")
PREV = ".prev"  # config.json.prev: the config before a Wi-Fi change, until the new network is joined
JSON = "application/json"


def handle(http, method, path, query, headers, body):
    """(status, JSON body, extra headers, restart?) for POST /api/config."""
    if not http._authorized(headers):
        return 401, '{"ok":false,"error":"password required"}', 'WWW-Authenticate: Basic realm="spm02"\r\n', False
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != JSON:
        # a cross-site HTML form cannot send JSON without a CORS preflight, never granted
        return 415, '{"ok":false,"error":"send application/json"}', "", False
    status, answer, restart = save(http.app, body)
    return status, json.dumps(answer), "", restart




def _saved(text):
    """The saved config as an object ({} when missing or unreadable: boot's defaults)."""
    try:
        d = json.loads(text)
    except Exception:
        return {}
    return d if isinstance(d, dict) else {}


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


def _changed(patch, run, saved, prefix, out):
    """The dotted paths the patch changes from the running config (dps: from the saved map)."""
    for k in patch:
        v = patch[k]
        path = prefix + k
        r = run.get(k) if isinstance(run, dict) else None
        if k == SECRET and isinstance(v, bool):
            continue
        if path == "dps":
            if v != saved.get("dps", {}):
                out.append(path)
        elif isinstance(v, dict) and isinstance(r, dict):
            _changed(v, r, saved, path + ".", out)
        elif v != r:
            out.append(path)


def save(app, body):
    """(status, answer, restart?) for POST /api/config: all or nothing."""
    try:
        patch = json.loads(body)
    except MemoryError:
        raise
    except Exception:
        return 400, {"ok": False, "errors": {"config": "the body is not valid JSON"}}, False
    if not isinstance(patch, dict):
        return 400, {"ok": False, "errors": {"config": "must be an object"}}, False
    path = app.config_path
    old_text = read_text(path, MAX_FILE)
    new = _saved(old_text)
    changed = []
    _changed(patch, app.cfg, new, "", changed)
    _merge(new, patch, app.cfg, "")
    errors = config.errors(new, patch)  # the rules boot applies: nothing it would reject is written
    text = json.dumps(new)
    if not errors and len(text) > MAX_FILE:
        errors = {"config": "over %d bytes" % MAX_FILE}
    if errors:
        log.warn("console: config refused: %s", ", ".join(errors))
        return 400, {"ok": False, "errors": errors}, False
    if text == old_text:
        return 200, {"ok": True, "restart": False}, False
    return _write(app, path, old_text, text, new, changed)


def _write(app, path, old_text, text, new, changed):
    # (save in two: each function's code fits a smaller hole of a heap in pieces)
    if app.wifi is not None and [p for p in changed if p.startswith("wifi.")] and old_text is not None \
            and read_text(path + PREV, MAX_FILE) is None:
        # the config that joined a network, until the new one is joined (firmware/fallback.py);
        # a second change before that keeps the first one's: that is the one known to work
        write_atomic(path + PREV, old_text)
    write_atomic(path, text)
    restart = False
    for p in changed:
        if p not in LIVE:
            restart = True
    if not restart:  # what applies at once: into the running config
        for p in changed:
            sect, _, key = p.partition(".")
            v = new[sect][key]
            if v in LEVELS:  # the constant, not the request's copy: nothing of this request stays in the heap
                v = LEVELS[LEVELS.index(v)]
            app.cfg[sect][key] = v
        log.configure(app.cfg["log"]["level"], log._sink)
    log.info("console: config saved (%s)%s", ", ".join(changed) or "no change in effect",
             "; restarting" if restart else "")
    return 200, {"ok": True, "restart": restart}, restart


async def serve(http, w, method, path, query, headers, body):
    await http.answer(w, handle(http, method, path, query, headers, body))
