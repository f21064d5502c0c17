# An OTA install on probation (lib/otaboot.py): it proves itself healthy once the loop runs,
# HTTP has served a request, and the MCU answers (or the firmware has been up PROVE_UP_MS).
# Loaded only while an install is on probation.
import time

import asyncio
from micropython import const

from firmware import log
from firmware.borrow import borrow

PROVE_UP_MS = const(180000)  # an OTA install whose MCU stays silent proves itself by this uptime


async def run(app):
    """An OTA install not yet proven: once the loop runs (this task does), HTTP has
    answered a request, and the MCU answers or the firmware has been up PROVE_UP_MS,
    note it in the pointer (one write). Until then each boot counts (main.py). Not
    while an update is being received: it switches the pointer itself."""
    while not (app.http.served and not app.http.updating and
               (app.mcu.link.online or time.ticks_diff(time.ticks_ms(), app.started) >= PROVE_UP_MS)):
        await asyncio.sleep(1)
    try:
        with borrow("otaboot", "files") as otaboot:
            p = otaboot.prove(app.ota)
            otaboot.store(app.data_dir, p)
        app.ota = p
        log.info("ota: %s proven healthy", p["id"])
    except Exception as e:
        log.error("ota: cannot note %s as healthy: %r", app.ota["id"], e)
