# The device's own health: the retained B/device message (at every MQTT connect and every
# 5 minutes), the same figures in /metrics, the reset cause (at boot) and the ESP32's Wi-Fi
# for /api/state's device (firmware/status.py). Borrowed for each use: none of it stays in
# the heap.
import gc
import json
import os

from firmware import board

# machine.reset_cause() in words. MicroPython's ESP32 port says SOFT_RESET after a crash
# (a panic) as after machine.reset(): App.restart leaves MARK in the RTC memory first (it
# survives a reset, not a power cut), which tells the two apart.
CAUSES = (("PWRON_RESET", "power-on"), ("HARD_RESET", "hard reset"), ("WDT_RESET", "watchdog"),
          ("DEEPSLEEP_RESET", "deep sleep"), ("SOFT_RESET", "crash"))
MARK = b"spm02 restart"  # App.restart writes it (there: nothing to import before a reset)


def reset_cause():
    """Why the firmware started, in words: read once at boot (App keeps it)."""
    if board.ESP32:
        import machine
        c = machine.reset_cause()
        words = "unknown (%d)" % c
        for name, w in CAUSES:
            if getattr(machine, name, None) == c:
                words = w
        try:
            rtc = machine.RTC()
            if words == "crash" and rtc.memory() == MARK:
                words = "software reset"
            rtc.memory(b"")
        except Exception:
            pass
        return words
    # host only: make run passes the exit status the firmware restarted from
    rc = os.getenv("SPM02_RESET_CAUSE")
    return "exit status " + rc if rc else "power-on"


def link_errors(mcu):
    """The TuyaMCU link's errors of every kind (/metrics has them by kind)."""
    n = mcu.meter.bad_records + mcu.link.timeouts + mcu.link.unknown
    e = mcu.dec.errors()
    for k in e:
        n += e[k]
    return n


def _rssi(app):
    w = app.wifi
    if w is None or not w.connected:
        return None
    try:
        return int(w.sta.status("rssi"))
    except Exception:
        return None


def health(app):
    """The B/device object: uptime_s, mem_free, reset_cause, mqtt_reconnects, link_errors,
    flash_writes, and on the ESP32 rssi (dBm, None while not connected) and ssid."""
    gc.collect()
    d = {"uptime_s": app.uptime_s(), "mem_free": gc.mem_free(), "reset_cause": app.reset_cause,
         "mqtt_reconnects": max(app.mqtt.connects - 1, 0), "link_errors": link_errors(app.mcu),
         "flash_writes": app.keeper.writes}
    if app.wifi is not None:
        d["rssi"] = _rssi(app)
        d["ssid"] = app.wifi.ssid
    return d


def metric_lines(d):
    """The B/device object d in /metrics (after lib/metrics.py's families; its link_errors
    are spm02_link_errors_total's kinds summed)."""
    yield "# HELP spm02_uptime_seconds Time since the firmware started\n# TYPE spm02_uptime_seconds gauge\n"
    yield "spm02_uptime_seconds %d\n" % d["uptime_s"]
    yield "# HELP spm02_heap_free_bytes Free MicroPython heap\n# TYPE spm02_heap_free_bytes gauge\n"
    yield "spm02_heap_free_bytes %d\n" % d["mem_free"]
    yield "# HELP spm02_reset_cause_info Why the firmware last started\n# TYPE spm02_reset_cause_info gauge\n"
    yield 'spm02_reset_cause_info{cause="%s"} 1\n' % d["reset_cause"]
    yield "# HELP spm02_mqtt_reconnects_total MQTT connections after the first since boot\n"
    yield "# TYPE spm02_mqtt_reconnects_total counter\nspm02_mqtt_reconnects_total %d\n" % d["mqtt_reconnects"]
    yield "# HELP spm02_flash_writes_total Files the firmware wrote since boot\n"
    yield "# TYPE spm02_flash_writes_total counter\nspm02_flash_writes_total %d\n" % d["flash_writes"]
    if d.get("rssi") is not None:
        yield "# HELP spm02_wifi_rssi_dbm Wi-Fi signal strength\n# TYPE spm02_wifi_rssi_dbm gauge\n"
        yield "spm02_wifi_rssi_dbm %d\n" % d["rssi"]


def publish(q):
    """B/device, retained."""
    q.client.publish(q.base + "/device", json.dumps(health(q.app)), True)


def wifi(app):
    """/api/state device.wifi: ssid, rssi (dBm), ip, mac, channel (None where not known)."""
    w = app.wifi
    d = {"ssid": w.ssid, "rssi": _rssi(app), "ip": None, "mac": None, "channel": None}
    sta = w.sta
    if sta is None:
        return d
    try:
        d["mac"] = ":".join("%02x" % b for b in sta.config("mac"))
    except Exception:
        pass
    if w.connected:
        try:
            d["ip"] = sta.ifconfig()[0]
            d["channel"] = sta.config("channel")
        except Exception:
            pass
    return d
