# The owner's console API: the config as run (GET /api/config), its backup
# (/api/config/backup) and the live log (/api/log). Borrowed by firmware/http.py only while the answer is made, as is
# firmware/cfgsave.py for a change (POST /api/config): only one's code at a time, and none
# while the answer is sent (other tasks run then, and need the room).
import json

from firmware import log
from files import read_text

SECRET = "password"  # wifi.password, mqtt.password, http.password: never sent, only whether set
MAX_FILE = 4096  # portal.MAX_FILE: a bigger config.json would not be read at boot
NEED = '{"ok":false,"error":"password required"}'
AUTH = 'WWW-Authenticate: Basic realm="spm02"\r\n'


def handle(http, method, path, query, headers, body):
    """(status, JSON body (text, or its parts one at a time), extra headers, restart?) for
    GET /api/config, /api/config/backup and /api/log."""
    if path not in ("/api/config", "/api/config/backup", "/api/log"):
        return 404, '{"ok":false,"error":"not found"}', "", False
    want = "GET, POST" if path == "/api/config" else "GET"
    if method != "GET":
        return 405, '{"ok":false,"error":"use %s"}' % want, "Allow: %s\r\n" % want, False
    if path == "/api/config/backup" and not http.cfg["password"]:
        # the backup holds every secret: it never leaves without a password
        return 403, '{"ok":false,"error":"set http.password first: the backup holds the secrets"}', "", False
    if not http._authorized(headers):
        return 401, NEED, AUTH, False
    if path == "/api/log":
        return _log(query)
    if path == "/api/config":
        return 200, _shown(http.app), "", False
    text = read_text(http.app.config_path, MAX_FILE)
    if text is None:
        return 404, '{"ok":false,"error":"no config.json saved"}', "", False
    return 200, text, 'Content-Disposition: attachment; filename="%s-config.json"\r\n' % http.app.cfg["name"], False




def _shown(app):
    """The config as run, secrets as true/false; dps as the owner wrote it (the running
    table holds it as rows). In pieces, a section each: no one large piece of heap."""
    parts = []
    cfg = app.cfg
    for k in cfg:
        v = cfg[k]
        if k == "dps":
            try:
                v = json.loads(read_text(app.config_path, MAX_FILE)).get("dps")
            except Exception:
                v = None
            v = v if isinstance(v, dict) else {}
        elif isinstance(v, dict) and SECRET in v:
            v = dict(v)
            v[SECRET] = bool(v[SECRET])
        parts.append(("{" if not parts else ",") + json.dumps(k) + ":")
        parts.append(json.dumps(v))
    parts.append("}")
    return parts


def _log(query):
    """GET /api/log?since=N: the log ring's lines numbered N and later, oldest first."""
    n = 0
    for part in query.split("&"):
        k, _, v = part.partition("=")
        if k == "since":
            n = int(v) if v.isdigit() else -1
    if n < 0:
        return 400, '{"ok":false,"error":"since must be a line number 0.."}', "", False
    nxt, lines = since(n)
    return 200, _parts(nxt, lines), "", False


def _parts(nxt, lines):
    # a line at a time: no list of them, no whole answer in the heap
    yield '{"next":%d,"lines":[' % nxt
    sep = ""
    for line in lines:
        yield sep + json.dumps(line)
        sep = ","
    yield "]}"


def since(n):
    """(the number the next log line will get, the kept lines numbered n and later, oldest
    first, one at a time): lines that have left the ring are skipped."""
    kept = 0
    for _ in log.lines():
        kept += 1
    return log._count, _numbered(n, log._count - kept)


def _numbered(n, i):
    for line in log.lines():
        if i >= n:
            yield line
        i += 1


async def serve(http, w, method, path, query, headers, body):
    await http.answer(w, handle(http, method, path, query, headers, body))
