# The firmware: one asyncio loop with the MCU link, MQTT and HTTP sharing one Mcu
# (the sans-IO core that holds the meter's state).
import gc
import json
import time

import asyncio
from micropython import const

from mcu import Mcu
from firmware import board, log
from firmware.borrow import borrow
from firmware.mculink import McuLink
from firmware.mqtt import Mqtt
from firmware.http import Http
from firmware.keeper import Keeper

VERSION = "0.1.0"
PROVE_UP_MS = const(180000)  # an OTA install whose MCU stays silent proves itself by this uptime


class App:
    version = VERSION
    # How long each task may go without beat() before the watchdog gives up on it: its
    # longest wait (UART: 30 s of backoff; MQTT: 60 s) plus its longest blocking call.
    WATCH_MS = {"uart": 45000, "mqtt": 2 * 60000 + 10000, "wifi": None}

    def __init__(self, cfg, warnings, page_path, config_path="config.json", setup="", ota=None):
        self.cfg = cfg
        self.config_warnings = warnings
        self.config_path = config_path
        self.data_dir = config_path[:config_path.rfind("/") + 1]  # OTA installs live next to it
        self.ota = ota  # the OTA pointer as main.py decided this boot (lib/otaboot.py); None: factory
        self.ota_update = None  # the last update received: progress, then its result
        self.started = time.ticks_ms()
        self.uid = board.unique_id()
        self.node_id = cfg["name"] + ("_" + self.uid if self.uid else "")
        self.mcu = Mcu(cfg["layout"], cfg["wifi_state"], cfg["mcu"]["poll_s"], cfg["dps"])
        self.mcu.link.clock = board.clock
        # energy days and history, from the files next to the config: before the other
        # long-lived objects, so that what loading them borrows leaves no holes between these
        self.keeper = Keeper(self)
        self.link = McuLink(self.mcu, self._setup_requested)
        self.mqtt = Mqtt(self)
        self.http = Http(self, page_path)
        self.wifi = self.led = self.button = self.health = None
        self.setup_reason = ""  # on the host there is no Wi-Fi, so only the reason is kept
        self.syslog = None
        if cfg["log"]["syslog"]:
            from firmware.syslog import Syslog
            self.syslog = Syslog(cfg["log"]["syslog"], self.node_id)
        if board.ESP32:
            self._esp32()
        if setup:
            self.enter_setup(setup)

    def _esp32(self):
        import machine
        import network
        from firmware import esp32
        from firmware.wifi import Wifi
        from firmware.health import Health
        bad = esp32.uart_problem(self.cfg["uart"])
        if bad:  # on the page and in /api/state; the UART task keeps saying it too
            self.config_warnings.append(bad)
        b = self.cfg["board"]
        self.led = esp32.Led(b["led"], b["led_invert"])
        self.wifi = Wifi(self.cfg, self.mcu.link, network, self.uid, on_mode=self.led.set)
        self.button = esp32.Button(b["button"], lambda: self.enter_setup("button held"))
        self.health = Health(machine)

    def _setup_requested(self):
        self.enter_setup("the MCU asked for a Wi-Fi reset")

    def enter_setup(self, reason):
        log.warn("setup mode: %s", reason)
        if self.wifi is not None:
            self.wifi.enter_setup(reason)
        else:
            self.setup_reason = reason

    def setup_mode(self):
        """Serve the setup portal: in setup mode on the ESP32; always on the host, where it
        can be tried out and tested."""
        return self.wifi.setup_mode if self.wifi is not None else True

    def before_restart(self):
        """Whatever restarts the firmware calls this first: the energy file is saved, so a
        restart loses none of today's bookkeeping nor the power chart."""
        try:
            self.keeper.flush()
        except Exception as e:
            log.error("before restart: %r", e)

    def restart(self):
        """A device reset; on the host, exit status 75, and make run starts the firmware
        again as a reset would. MQTT says goodbye first (offline now, not the last will a
        keepalive later)."""
        log.warn("restarting")
        self.before_restart()
        m = self.mqtt
        if m.client is not None:
            try:
                m.client.publish(m.base + "/availability", "offline", True)
                m.client.disconnect()
            except Exception:
                pass
        if board.ESP32:
            import machine
            time.sleep_ms(100)  # lets the goodbye leave
            machine.reset()
        if self.http.server is not None:
            self.http.server.close()
        raise SystemExit(75)

    def restart_soon(self, ms=500):
        """Restart once the answer that asked for it has been sent; meanwhile HTTP answers
        503 (after an update the heap is in pieces: the old firmware has done its part)."""
        self.http.restarting = True

        async def later():
            await asyncio.sleep_ms(ms)
            self.restart()
        asyncio.create_task(later())

    def command_done(self, name):
        """After a command answered (HTTP) or logged (MQTT): the commands that act on the
        firmware rather than the meter."""
        if name == "restart":
            self.restart_soon()

    def ota_status(self):
        s = dict(self.ota) if self.ota else {"id": "factory", "slot": "factory"}
        s["update"] = self.ota_update
        return s

    async def _prove(self):
        """An OTA install not yet proven: once the loop runs (this task does), HTTP has
        answered a request, and the MCU answers or the firmware has been up PROVE_UP_MS,
        note it in the pointer (one write). Until then each boot counts (main.py). Not
        while an update is being received: it switches the pointer itself."""
        while not (self.http.served and not self.http.updating and
                   (self.mcu.link.online or time.ticks_diff(time.ticks_ms(), self.started) >= PROVE_UP_MS)):
            await asyncio.sleep(1)
        try:
            with borrow("otaboot") as otaboot:
                p = otaboot.prove(self.ota)
                otaboot.store(self.data_dir, p)
            self.ota = p
            log.info("ota: %s proven healthy", p["id"])
        except Exception as e:
            log.error("ota: cannot note %s as healthy: %r", self.ota["id"], e)

    def beat(self, name):
        if self.health is not None:
            self.health.beat(name)

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
        yield ',"energy":'
        yield json.dumps(self.keeper.status())
        gc.collect()  # so mem_free says what is really free (and leaks show)
        yield ',"wifi":'
        yield json.dumps(self.wifi.status() if self.wifi is not None else {"setup_reason": self.setup_reason})
        if self.health is not None:
            yield ',"health":'
            yield json.dumps(self.health.status())
        yield ',"device":'
        yield json.dumps({"name": self.cfg["name"], "version": VERSION, "runtime": board.runtime(),
                          "uptime_s": time.ticks_diff(now, self.started) // 1000,
                          "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(), "config_warnings": self.config_warnings,
                          "http": self.http.status(), "ota": self.ota_status(), "log": log.recent(),
                          "syslog": self.syslog.status() if self.syslog else None})
        yield "}"

    async def run(self):
        for w in self.config_warnings:
            log.warn("config: %s", w)
        asyncio.create_task(self.http.run())
        asyncio.create_task(self.keeper.run())
        if self.syslog is not None:
            asyncio.create_task(self._syslog())
        if self.ota is not None and not self.ota["proven"]:
            asyncio.create_task(self._prove())
        tasks = {}
        if self.wifi is not None:
            # Wi-Fi first: the MCU's handshake should hear the real Wi-Fi state
            tasks["wifi"] = asyncio.create_task(self.wifi.run())
            asyncio.create_task(self.led.run())
            asyncio.create_task(self.button.run())
        mqtt = asyncio.create_task(self.mqtt.run())
        if self.cfg["mqtt"]["host"]:
            tasks["mqtt"] = mqtt  # without a broker the task ends at once, and rightly so
        tasks["uart"] = asyncio.create_task(self.link.run(self.cfg["uart"], self.beat))
        if self.health is not None:
            for name in tasks:
                self.health.watch(name, tasks[name], self.WATCH_MS[name])
            asyncio.create_task(self.health.run())
        while True:
            await asyncio.sleep(60)
            gc.collect()


    async def _syslog(self):
        """Resolve the remote log's address once the network is up (getaddrinfo blocks: once,
        like MQTT's), send what was logged before, then every line as it is logged."""
        s = self.syslog
        while True:
            if self.wifi is None or self.wifi.connected:
                if s.resolve():
                    break
                log.warn("syslog: cannot resolve %s: %s; again in 60 s", s.host, s.error)
                await asyncio.sleep(60)
            else:
                await asyncio.sleep(1)
        for line in log.recent():  # kept at log.level already
            t, level, msg = (line.split(" ", 2) + ["", ""])[:3]
            s.send(level, msg)
        log.configure(self.cfg["log"]["level"], s.send)
        log.info("syslog: sending to %s:%d", s.host, s.port)


def _load_config(path):
    # A missing, corrupt or half-written config gives the defaults and setup mode. In a
    # function of its own, so that nothing keeps the portal's code once it returns.
    with borrow("firmware.portal", "firmware.config", "firmware.syslog", "firmware.files", "tz") as portal:
        return portal.load_config(path)


def main(config_path="config.json", page_path=None, ota=None):
    """ota: the OTA pointer main.py chose this boot by (lib/otaboot.py). The pages are
    those of the install that runs (an OTA install directory, or the factory's firmware/)."""
    page_path = page_path or __file__[:__file__.rfind("/") + 1] + "page.html"
    cfg, warnings, setup = _load_config(config_path)
    log.configure(cfg["log"]["level"])
    log.info("spm02 firmware %s starting as %s", VERSION, cfg["name"])
    if cfg["mqtt"]["host"]:
        # Load code before the long-lived objects and compact: code loaded later, between
        # live data, leaves the heap in holes too small for the next request.
        from umqtt import simple  # noqa: F401
    gc.collect()
    if board.ESP32:
        from firmware import esp32
        if esp32.safe_mode(cfg["board"]["button"]):
            log.warn("safe mode (button held at boot): firmware not started, the REPL is free")
            return
    asyncio.run(App(cfg, warnings, page_path, config_path, setup, ota).run())
