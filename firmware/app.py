# The firmware: one asyncio loop with the MCU link, MQTT and HTTP sharing one Mcu
# (the sans-IO core that holds the meter's state).
import gc
import json
import time

import asyncio

from mcu import Mcu
from firmware import board, log
from firmware.borrow import borrow
from firmware.mculink import McuLink
from firmware.mqtt import Mqtt
from firmware.http import Http

VERSION = "0.1.0"


class App:
    version = VERSION

    def __init__(self, cfg, warnings, page_path):
        self.cfg = cfg
        self.config_warnings = warnings
        self.started = time.ticks_ms()
        uid = board.unique_id()
        self.node_id = cfg["name"] + ("_" + uid if uid else "")
        self.mcu = Mcu(cfg["layout"], cfg["wifi_state"])
        self.mcu.link.clock = board.clock
        self.link = McuLink(self.mcu, self._changed, self._setup_requested)
        self.mqtt = Mqtt(self)
        self.http = Http(self, page_path)
        self.setup_requested = False

    def _changed(self, ev):
        pass  # MQTT compares meter.seq; the page polls

    def _setup_requested(self):
        log.warn("mcu: asks for a Wi-Fi reset (setup mode)")
        self.setup_requested = True

    def mcu_status(self):
        now = time.ticks_ms()
        st = self.mcu.status(now)
        st["uart_connected"] = self.link.connected
        return st

    def state_parts(self):
        """/api/state as pieces of JSON text, written one by one to the socket."""
        now = time.ticks_ms()
        m = self.mcu.meter
        yield '{"values":'
        for part in m.state_parts():
            yield part
        yield ',"derived":'
        yield json.dumps(m.derived_keys())
        yield ',"dps":'
        for part in m.dps_parts(now):
            yield part
        yield ',"mcu":'
        yield json.dumps(self.mcu_status())
        yield ',"mqtt":'
        yield json.dumps(self.mqtt.status())
        yield ',"device":'
        gc.collect()  # so mem_free says what is really free (and leaks show)
        yield json.dumps({"name": self.cfg["name"], "version": VERSION,
                          "uptime_s": time.ticks_diff(now, self.started) // 1000,
                          "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(), "config_warnings": self.config_warnings,
                          "http": self.http.status(), "log": log.recent})
        yield "}"

    async def run(self):
        for w in self.config_warnings:
            log.warn("config: %s", w)
        await self.http.start()
        asyncio.create_task(self.mqtt.run())
        asyncio.create_task(self.link.run(self.cfg["uart"]))
        while True:
            await asyncio.sleep(60)
            gc.collect()


def main(config_path="config.json", page_path="firmware/page.html"):
    with borrow("firmware.config") as config:
        cfg, warnings = config.load(config_path)
    log.info("spm02 firmware %s starting as %s", VERSION, cfg["name"])
    asyncio.run(App(cfg, warnings, page_path).run())
