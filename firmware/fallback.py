# Wi-Fi changes cannot lock the owner out: after the console changed `wifi`, the config
# before the change waits in config.json.prev (firmware/console.py). A firmware that has not
# joined the new network within JOIN_MS puts it back and restarts; one that has joined drops
# it. Loaded only while such a change is on trial.
import os
import time

import asyncio
from micropython import const

from firmware import log

JOIN_MS = const(120000)
PREV = ".prev"       # next to config.json: the config that worked, until the new one is joined
NOTE = ".reverted"   # next to config.json: why it was put back, a warning at the next boot (portal.load_config)


async def run(app, ms=JOIN_MS, step_ms=500):
    """True once the new network is joined (the previous config dropped); else the
    previous config is put back, noted for the next boot, and the firmware restarts."""
    path = app.config_path
    wifi = app.wifi
    log.warn("wifi: new settings on trial: the previous config comes back unless %s is joined within %d s",
             wifi.ssid, ms // 1000)
    t0 = time.ticks_ms()
    while True:
        if wifi.connected:
            try:
                os.remove(path + PREV)
            except OSError:
                pass
            log.info("wifi: joined %s: the new settings stay", wifi.ssid)
            return True
        if time.ticks_diff(time.ticks_ms(), t0) >= ms:
            break
        await asyncio.sleep_ms(step_ms)
    from files import write_atomic
    with open(path + PREV) as f:
        text = f.read()
    msg = "wifi: %s not joined within %d s after a change: the previous config was put back" % (
        wifi.ssid, ms // 1000)
    # config first, then the note, then the trial ends: a cut anywhere leaves a config that
    # boots, and at worst a trial of the old config (which ends when it joins)
    write_atomic(path, text)
    write_atomic(path + NOTE, msg)
    os.remove(path + PREV)
    log.warn(msg)
    app.restart()
    return False

