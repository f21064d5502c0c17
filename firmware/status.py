# GET /api/state: the firmware's whole state as pieces of JSON, written one by one to the
# socket. Loaded only while it is served (with lib/report.py), so that none of this code
# sits in the heap at the moments that need the room.
import gc
import json
import os
import sys
import time

import report
from meter import json_parts
from firmware import log
from firmware.borrow import borrow


def runtime():
    """What runs the firmware: word size, and whether the firmware and umqtt.simple are
    frozen into the image (a custom image) or loaded from files (heap)."""
    def where(name):
        # frozen modules are named by their source; files are the .mpy that was loaded
        mod = sys.modules.get(name)
        if mod is None:
            return None  # not loaded (umqtt without a broker configured)
        return "files" if getattr(mod, "__file__", "").endswith(".mpy") else "frozen"
    return {"bits": 64 if sys.maxsize > 0x7FFFFFFF else 32, "firmware": where("firmware.app"),
            "umqtt": where("umqtt.simple")}


def mcu(app):
    st = report.mcu_status(app.mcu, time.ticks_ms())
    st["uart_connected"] = app.link.connected
    return st


def ota(app):
    s = dict(app.ota) if app.ota else {"id": "factory", "slot": "factory"}
    s["update"] = app.ota_update
    s["update_mode"] = app.update_mode
    return s


def mqtt(app):
    q = app.mqtt
    return {"enabled": bool(q.cfg["host"]), "connected": q.connected,
            "host": q.cfg["host"], "port": q.cfg["port"], "base_topic": q.base,
            "publishes": q.publishes, "connects": q.connects,
            "commands_ok": q.commands_ok, "commands_bad": q.commands_bad,
            "last_error": q.last_error, "mem_waits": q.mem_waits}


def energy(app):
    k = app.keeper
    c = k.meter.counters
    # pending: a report came that the bookkeeping's once-a-second clock has not taken yet
    return {"tz": k.tz, "date": k.date(), "file": k.path, "file_state": k.note,
            "writes": k.writes, "error": k.error, "pending": k.seen != app.mcu.last_report,
            "glitches": c.glitches, "new_cycles": c.cycles}


def _wifi(app):
    # a function of its own: a local of the generator would keep the module until the end
    with borrow("firmware.devinfo") as devinfo:
        return devinfo.wifi(app)


def fs_free(path):
    """Bytes free on the filesystem that holds path (the config's directory)."""
    try:
        s = os.statvfs(path or "/")  # "": the ESP32's config.json, at the root
        return (s[1] or s[0]) * s[4]  # f_frsize (the ESP32's VFS: f_bsize) * f_bavail
    except Exception:
        return None


def parts(app):
    now = time.ticks_ms()
    yield '{"values":'
    if app.mcu is None:  # update mode: no meter, no MQTT, no energy bookkeeping
        yield "{}"
    else:
        m = app.mcu.meter
        for part in m.state_parts():
            yield part
        yield ',"derived":'
        yield json.dumps(m.derived_keys())
        yield ',"dps":'
        for part in report.dps_parts(m, now):
            yield part
        for name, obj in (("mcu", mcu), ("mqtt", mqtt), ("energy", energy)):
            yield ',"%s":' % name
            for part in json_parts(obj(app)):  # key by key: small pieces
                yield part
    wifi = _wifi(app) if app.wifi is not None else None  # the ESP32's; before the collect
    gc.collect()  # so mem_free says what is really free (and leaks show)
    yield ',"wifi":'
    yield json.dumps(app.wifi.status() if app.wifi is not None else {"setup_reason": app.setup_reason})
    if app.health is not None:
        yield ',"health":'
        yield json.dumps(app.health.status())
    h = app.http
    yield ',"device":'
    # the name on the network, as firmware/wifi.py gives it (mDNS answers <hostname>.local)
    dev = {"name": app.cfg["name"], "hostname": app.node_id[:32].replace("_", "-"), "version": app.version, "runtime": runtime(),
           "uptime_s": app.uptime_s(), "reset_cause": app.reset_cause,
           "micropython": "%d.%d.%d" % sys.implementation.version[:3], "fs_free": fs_free(app.data_dir),
           "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(), "config_warnings": app.config_warnings,
           "http": {"active": h.active, "served": h.served, "rejected": h.rejected, "mem_waits": h.mem_waits},
           "ota": ota(app), "syslog": app.syslog.status() if app.syslog else None}
    if wifi is not None:
        dev["wifi"] = wifi
    wifi = None
    dev = json_parts(dev)
    for part in dev:
        if part != "}":  # the log follows
            yield part
    sep = ',"log":['
    for line in log.lines():  # a line at a time
        yield sep + json.dumps(line)
        sep = ","
    yield "]}}" if sep == "," else ',"log":[]}}'


async def serve(http, w, *_):
    await http.stream(w, "application/json", parts(http.app))
