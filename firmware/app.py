# The firmware: one asyncio loop with the MCU link, MQTT and HTTP sharing one Mcu
# (the sans-IO core that holds the meter's state).
import gc
import os
import time

import asyncio
from micropython import const

from firmware import board, log
from firmware.borrow import borrow
from firmware.http import Http

VERSION = "0.1.0"
UPDATE_FLAG = "update.mode"  # next to the config: the next boot is in update mode
DRAIN_MS = const(1500)  # a restart waits at most this long for answers being sent
UPDATE_MODE_MS = 300000  # an update mode without an update ends in a normal restart


class App:
    version = VERSION
    # How long each task may go without beat() before the watchdog gives up on it: its
    # longest wait (UART: 30 s of backoff; MQTT: 60 s) plus its longest blocking call.
    WATCH_MS = {"uart": 45000, "mqtt": 2 * 60000 + 10000, "wifi": None}

    def __init__(self, cfg, warnings, page_path, config_path="config.json", setup="", ota=None,
                 update_mode=False):
        self.cfg = cfg
        self.config_warnings = warnings
        self.config_path = config_path
        self.data_dir = config_path[:config_path.rfind("/") + 1]  # OTA installs live next to it
        self.ota = ota  # the OTA pointer as main.py decided this boot (lib/otaboot.py); None: factory
        self.ota_update = None  # the last update received: progress, then its result
        # Update mode: a boot that runs HTTP only, so that its heap has room for an update's
        # receiver (no_room_for_update); main() takes the flag file, so it is one boot only
        self.update_mode = update_mode
        # host-only test hook: no room for an update (outside update mode) at its "import"
        # or while it is "receive"d
        self.test_no_room = "" if board.ESP32 else os.getenv("SPM02_OTA_NOROOM") or ""
        self.started = time.ticks_ms()
        self._up_t = self.started  # uptime_s(): whole seconds counted up to this tick
        self._up_s = 0
        with borrow("firmware.devinfo") as devinfo:
            self.reset_cause = devinfo.reset_cause()  # once: on the ESP32 it clears the restart mark
        self.uid = board.unique_id()
        self.node_id = cfg["name"] + ("_" + self.uid if self.uid else "")
        self.mcu = self.keeper = self.link = self.mqtt = None
        if not update_mode:
            # The meter's side, the energy bookkeeping and MQTT: update mode never loads their
            # code, so that its heap keeps the room for an update. Code before objects.
            from mcu import Mcu
            from firmware.mculink import McuLink
            from firmware.mqtt import Mqtt
            from firmware.keeper import Keeper
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
        link = self.mcu.link if self.mcu is not None else None  # none in update mode
        self.wifi = Wifi(self.cfg, link, network, self.uid, on_mode=self.led.set)
        self.button = esp32.Button(b["button"], lambda: self.enter_setup("button held"))
        self.health = Health(machine)

    def uptime_s(self):
        """Seconds since boot. ticks_diff alone wraps after some 6 days on the ESP32: this
        counts on from the last call (the run loop calls it every minute); small ints only."""
        d = time.ticks_diff(time.ticks_ms(), self._up_t) // 1000
        self._up_t = time.ticks_add(self._up_t, d * 1000)
        self._up_s += d
        return self._up_s

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
            if self.keeper is not None:
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
        if m is not None and m.client is not None:
            try:
                m.client.publish(m.base + "/availability", "offline", True)
                m.client.disconnect()
            except Exception:
                pass
        if board.ESP32:
            import machine
            try:  # the next boot says "software reset", not "crash" (firmware/devinfo.py)
                machine.RTC().memory(b"spm02 restart")
            except Exception:  # nothing may stop a restart
                pass
            time.sleep_ms(100)  # lets the goodbye leave
            machine.reset()
        if self.http.server is not None:
            self.http.server.close()
        raise SystemExit(75)

    def restart_soon(self, ms=500):
        """Restart once the answer that asked for it has been sent, and the answers other
        clients were being sent are out: a reset in the middle of one hands its client a
        cut answer that looks whole (a 200 with half a JSON). Meanwhile HTTP answers 503
        (after an update the heap is in pieces: the old firmware has done its part). The
        wait is bounded: a stuck client never holds a restart up for long."""
        self.http.restarting = True

        async def later():
            await asyncio.sleep_ms(ms)
            t = time.ticks_ms()
            while self.http.active and time.ticks_diff(time.ticks_ms(), t) < DRAIN_MS:
                await asyncio.sleep_ms(20)
            self.restart()
        asyncio.create_task(later())

    def no_room_for_update(self, authorized):
        """The answer when an update's code does not fit the heap as the job has left it (a
        stock image: code from .mpy lives in the heap). A client with the password gets a
        restart into update mode, where the heap has room, and sends the bundle again (make
        ota does). Not for an install still on probation: that boot would count."""
        no = '{"ok":false,"error":"no memory for an update now"}'
        if not (authorized and self.cfg["http"]["password"]) or self.update_mode or self.http.restarting \
                or (self.ota and not self.ota["proven"]):
            return no
        try:
            with open(self.data_dir + UPDATE_FLAG, "w") as f:
                f.write("1")
        except OSError as e:
            log.error("ota: cannot note update mode: %r", e)
            return no
        log.warn("ota: no room for the receiver now: restarting into update mode")
        self.restart_soon()
        return ('{"ok":false,"error":"no memory for an update now: restarting into update mode, send it again",'
                '"update_mode":true}')

    async def _update_mode_end(self):
        ms = UPDATE_MODE_MS
        if not board.ESP32 and os.getenv("SPM02_UPDATE_MODE_MS"):  # host-only test hook
            ms = int(os.getenv("SPM02_UPDATE_MODE_MS"))
        log.warn("update mode: only HTTP runs, for an update; a normal restart in %d s without one", ms // 1000)
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < ms or self.http.updating:
            await asyncio.sleep_ms(200)
        if not self.http.restarting:
            log.info("update mode: no update came")
            self.restart_soon(0)

    def command_done(self, name):
        """After a command answered (HTTP) or logged (MQTT): the commands that act on the
        firmware rather than the meter."""
        if name == "restart":
            self.restart_soon()

    async def _prove(self):
        with borrow("firmware.probation") as probation:  # only until the install is proven
            await probation.run(self)

    def beat(self, name):
        if self.health is not None:
            self.health.beat(name)

    async def run(self):
        for w in self.config_warnings:
            log.warn("config: %s", w)
        asyncio.create_task(self.http.run())
        normal = not self.update_mode
        if not normal:
            asyncio.create_task(self._update_mode_end())
        else:
            asyncio.create_task(self.keeper.run())
            if self.syslog is not None:
                asyncio.create_task(self.syslog.run(self))
            if self.ota is not None and not self.ota["proven"]:
                asyncio.create_task(self._prove())

        tasks = {}
        if self.wifi is not None:
            # Wi-Fi first: the MCU's handshake should hear the real Wi-Fi state
            tasks["wifi"] = asyncio.create_task(self.wifi.run())
            from firmware import esp32
            esp32.wifi_trial(self)
            asyncio.create_task(self.led.run())
            asyncio.create_task(self.button.run())
        if normal:
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
            self.uptime_s()
            gc.collect()


def main(config_path="config.json", page_path=None, ota=None):
    """ota: the OTA pointer main.py chose this boot by (lib/otaboot.py). The pages are
    those of the install that runs (an OTA install directory, or the factory's firmware/)."""
    with borrow("firmware.start") as start:  # code for once only: not kept after the start
        app = start.app(App, config_path, page_path or __file__[:__file__.rfind("/") + 1] + "page.html", ota)
    start = None
    if app is not None:
        asyncio.run(app.run())
