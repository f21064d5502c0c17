# GET /metrics for Prometheus: the readings (lib/metrics.py), the link's figures and the
# device's health. Borrowed by firmware/http.py while it answers; it borrows each part's code
# in turn, so no two parts' code is in the heap together.
import time

from firmware.borrow import borrow


async def serve(http, w, *_):
    app = http.app
    with borrow("report", "reasons") as report:
        st = report.mcu_status(app.mcu, time.ticks_ms())
    report = None  # (a coroutine's local would keep the module while metrics runs)
    st["uart_connected"] = app.link.connected
    with borrow("metrics", "units") as metrics:
        await http.stream(w, "text/plain; version=0.0.4; charset=utf-8",
                          metrics.lines(app.mcu.meter, st, app.mqtt.connected), 16)
    metrics = None
    # the device's health after the readings: its code and theirs never in the heap together
    with borrow("firmware.devinfo") as devinfo:
        for line in devinfo.metric_lines(devinfo.health(app)):
            w.write(line)
    devinfo = None
    await w.drain()
