# GET /api/state: the firmware's whole state as pieces of JSON, written one by one to the
# socket. Loaded only while it is served (with lib/report.py), so that none of this code
# sits in the heap at the moments that need the room.
import gc
import json
import time

import report
from firmware import board, log


def mcu(app):
    st = report.mcu_status(app.mcu, time.ticks_ms())
    st["uart_connected"] = app.link.connected
    return st


def ota(app):
    s = dict(app.ota) if app.ota else {"id": "factory", "slot": "factory"}
    s["update"] = app.ota_update
    s["update_mode"] = app.update_mode
    return s


def mqtt(q):
    return {"enabled": bool(q.cfg["host"]), "connected": q.connected,
            "host": q.cfg["host"], "port": q.cfg["port"], "base_topic": q.base,
            "publishes": q.publishes, "connects": q.connects,
            "commands_ok": q.commands_ok, "commands_bad": q.commands_bad,
            "last_error": q.last_error}


def energy(k):
    return {"tz": k.tz, "date": k.date(), "file": k.path, "file_state": k.note,
            "writes": k.writes, "error": k.error}


def parts(app):
    now = time.ticks_ms()
    m = app.mcu.meter
    yield '{"values":'
    for part in m.state_parts():
        yield part
    yield ',"derived":'
    yield json.dumps(m.derived_keys())
    yield ',"dps":'
    for part in report.dps_parts(m, now):
        yield part
    yield ',"mcu":'
    yield json.dumps(mcu(app))
    yield ',"mqtt":'
    yield json.dumps(mqtt(app.mqtt))
    yield ',"energy":'
    yield json.dumps(energy(app.keeper))
    gc.collect()  # so mem_free says what is really free (and leaks show)
    yield ',"wifi":'
    yield json.dumps(app.wifi.status() if app.wifi is not None else {"setup_reason": app.setup_reason})
    if app.health is not None:
        yield ',"health":'
        yield json.dumps(app.health.status())
    h = app.http
    yield ',"device":'
    yield json.dumps({"name": app.cfg["name"], "version": app.version, "runtime": board.runtime(),
                      "uptime_s": time.ticks_diff(now, app.started) // 1000,
                      "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(), "config_warnings": app.config_warnings,
                      "http": {"active": h.active, "served": h.served, "rejected": h.rejected},
                      "ota": ota(app), "syslog": app.syslog.status() if app.syslog else None})[:-1]
    sep = ',"log":['
    for line in log.lines():  # a line at a time
        yield sep + json.dumps(line)
        sep = ","
    yield "]}}" if sep == "," else ',"log":[]}}'
