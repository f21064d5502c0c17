# The HTTP requests that no module of their own answers (firmware/http.py serves the page
# and borrows status, history_api, scrape, console or cfgsave for theirs): the setup
# portal, commands, the console's page and the errors.
# Loaded only while one is served, so that their code is not in the heap at the moments
# that need the room.
import json

from firmware import log
from firmware.borrow import borrow


async def serve(http, w, method, path, query, headers, body):
    if path.startswith("/setup") and http.app.setup_mode():
        return await _setup(http, w, method, path, headers, body)
    if path.startswith("/api/cmd/"):
        if method != "POST":
            return await http._send(w, 405, "application/json", '{"ok":false,"error":"use POST"}',
                                    "Allow: POST\r\n")
        if not http._authorized(headers):
            return await http._send(w, 401, "application/json", '{"ok":false,"error":"password required"}',
                                    'WWW-Authenticate: Basic realm="spm02"\r\n')
        return await _command(http, w, path[9:], body)
    if method != "GET":
        return await http._send(w, 405, "text/plain", "use GET\n", "Allow: GET\r\n")
    if path == "/settings":  # the console page: static, it fills itself in from /api/config
        return await http._page(w, http.page_path[:http.page_path.rfind("/") + 1] + "settings.html")
    await http._send(w, 404, "text/plain", "not found\n")


async def _setup(http, w, method, path, headers, body):
    app = http.app
    with borrow("firmware.portal", "firmware.config", "files", "tz", "units") as portal:
        wlan = None
        if app.wifi is not None:
            wlan = app.wifi.net.WLAN(app.wifi.net.STA_IF)
        p = portal.Portal(app.cfg, app.config_path, wlan, lambda: app.restart_soon(0), http._authorized,
                          page_path=http.page_path[:http.page_path.rfind("/") + 1] + "setup.html")
        r = p.handle(method, path, headers, body)
    if r is None:
        return await http._send(w, 404, "text/plain", "not found\n")
    await http._send(w, r[0], r[1], r[2], r[3])


async def _command(http, w, name, body):
    try:
        with borrow("commands") as commands:
            msg = commands.run(http.app.mcu, name, body)
    except KeyError:
        return await http._send(w, 404, "application/json",
                                json.dumps({"ok": False, "error": "unknown command %s" % name}))
    except ValueError as e:
        return await http._send(w, 400, "application/json", json.dumps({"ok": False, "error": str(e)}))
    except Exception as e:  # a bug, not the client's fault: say so, keep serving
        log.error("http: cmd %s failed: %r", name, e)
        return await http._send(w, 500, "application/json", json.dumps({"ok": False, "error": repr(e)}))
    log.info("http: cmd %s: %s", name, msg)
    await http._send(w, 200, "application/json", json.dumps({"ok": True, "message": msg}))
    http.app.command_done(name)
