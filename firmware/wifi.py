# Wi-Fi station with reconnect and backoff, the setup access point, NTP once online,
# and the Wi-Fi state the MCU is told. No `machine` here: the network module (or a
# fake) is passed in, and the clock and sleep can be too, so tests run in virtual time.
import time
import binascii

import asyncio

from firmware import log

ST_SETUP = 1      # TuyaMCU 0x03: AP config mode
ST_OFFLINE = 2    # configured but not connected


async def _sleep_ms(ms):
    await asyncio.sleep_ms(ms)


def _settime(host):
    import ntptime  # lazily: not on every port
    ntptime.host = host  # time.ntp
    ntptime.settime()


class Wifi:
    CONNECT_MS = 20000     # wait this long for isconnected() after connect()
    POLL_MS = 250          # isconnected() checks while connecting
    WATCH_MS = 2000        # checks while connected (drop, RSSI, NTP retry)
    BACKOFF_MIN_MS = 1000
    BACKOFF_MAX_MS = 60000
    NTP_RETRY_MS = 60000
    JOIN_MS = 120000  # a changed Wi-Fi not joined by then: the previous config comes back (fallback.py)

    def __init__(self, cfg, link=None, net=None, uid="", on_mode=None,
                 ticks=None, sleep_ms=None, settime=None):
        if net is None:
            import network as net
        self.net = net
        self.wcfg = cfg.get("wifi", {})
        self.ssid = self.wcfg.get("ssid", "")
        self.online_state = cfg.get("wifi_state", 4)
        self.setup_after_ms = self.wcfg.get("setup_after_s", 300) * 1000  # <= 0: never
        self.link = link
        self.on_mode = on_mode  # called with "setup" / "connecting" / "online" on change
        self.ticks = ticks or time.ticks_ms
        self.sleep_ms = sleep_ms or _sleep_ms
        self.ntp_host = cfg.get("time", {}).get("ntp", "pool.ntp.org")
        self.settime = settime or (lambda: _settime(self.ntp_host))
        name = cfg.get("name", "spm02")
        # a name on the network (DHCP, the router's list): the node id, with - for its _
        # (host names take letters, digits and - only)
        self.hostname = (name + ("-" + uid if uid else ""))[:32].replace("_", "-")
        tail = uid or binascii.hexlify(name.encode()).decode()
        self.ap_name = "spm02-" + tail[-4:]
        self.sta = None
        self.ap = None
        self.connected = False
        self.setup_mode = False
        self.setup_reason = ""
        self._auto_setup = False  # entered because Wi-Fi failed: leave it once connected
        self.attempts = 0
        self.backoff_ms = self.BACKOFF_MIN_MS
        self.ntp_ok = False
        self._ntp_at = None
        self._mode = None
        self._fail_since = self.ticks()

    # --- what the app calls --------------------------------------------------

    def enter_setup(self, reason, auto=False):
        """Setup mode: open AP "spm02-XXXX" for the portal. The station keeps trying."""
        if self.setup_mode:
            return
        log.warn("wifi: setup mode (%s): AP %s", reason, self.ap_name)
        self.setup_mode = True
        self.setup_reason = reason
        self._auto_setup = auto
        try:
            self.ap = self.net.WLAN(self.net.AP_IF)
            self.ap.active(True)
            self.ap.config(essid=self.ap_name, authmode=getattr(self.net, "AUTH_OPEN", 0))
        except Exception as e:
            log.error("wifi: cannot start the AP: %r", e)
        self._report()

    def leave_setup(self):
        if not self.setup_mode:
            return
        log.info("wifi: leaving setup mode")
        self.setup_mode = False
        self.setup_reason = ""
        try:
            self.ap.active(False)
        except Exception:
            pass
        self._report()

    def mode(self):
        if self.setup_mode:
            return "setup"
        return "online" if self.connected else "connecting"

    def status(self):
        ip = ""
        if self.connected:
            try:
                ip = self.sta.ifconfig()[0]
            except Exception:
                pass
        return {"ssid": self.ssid, "connected": self.connected, "ip": ip,
                "setup_mode": self.setup_mode, "setup_reason": self.setup_reason,
                "ap": self.ap_name if self.setup_mode else "", "attempts": self.attempts,
                "backoff_s": self.backoff_ms // 1000, "ntp": self.ntp_ok,
                "rssi": self.link.rssi if self.link else None}

    # --- the loop --------------------------------------------------------------

    async def run(self):
        self._fail_since = self.ticks()
        try:
            self.net.hostname(self.hostname)  # before the station is up, so that DHCP sends it
        except Exception as e:  # an older MicroPython: no network.hostname
            log.warn("wifi: hostname %s refused: %r", self.hostname, e)
        self.sta = self.net.WLAN(self.net.STA_IF)
        self.sta.active(True)
        tx = self.wcfg.get("txpower", 0)
        if tx:
            try:
                self.sta.config(txpower=tx)  # a weak 3.3 V supply browns out at full power
            except Exception as e:
                log.warn("wifi: txpower %r refused: %r", tx, e)
        if not self.ssid:
            self.enter_setup("no Wi-Fi configured")
        self._report()
        while True:
            if not self.ssid:
                await self.sleep_ms(self.WATCH_MS)  # setup mode only: the portal will restart us
                continue
            if await self._connect():
                self._up()
                await self._watch()
                log.warn("wifi: connection lost")
                self.connected = False
                self._fail_since = self.ticks()
                self._report()
                continue
            self._report()
            if (not self.setup_mode and self.setup_after_ms > 0
                    and time.ticks_diff(self.ticks(), self._fail_since) >= self.setup_after_ms):
                self.enter_setup("Wi-Fi failed for %d s" % (self.setup_after_ms // 1000), True)
            log.info("wifi: again in %d s", self.backoff_ms // 1000)
            await self.sleep_ms(self.backoff_ms)
            self.backoff_ms = min(self.backoff_ms * 2, self.BACKOFF_MAX_MS)

    async def _connect(self):
        self.attempts += 1
        log.info("wifi: connecting to %s (attempt %d)", self.ssid, self.attempts)
        try:
            self.sta.disconnect()  # the ESP32 refuses connect() while it still tries
        except Exception:
            pass
        try:
            self.sta.connect(self.ssid, self.wcfg.get("password", ""))
        except Exception as e:
            log.warn("wifi: connect: %r", e)
            return False
        waited = 0
        while waited < self.CONNECT_MS:
            if self.sta.isconnected():
                return True
            await self.sleep_ms(self.POLL_MS)
            waited += self.POLL_MS
        if self.sta.isconnected():
            return True
        try:
            st = self.sta.status()
        except Exception:
            st = None
        log.warn("wifi: no connection after %d s (status %r)", self.CONNECT_MS // 1000, st)
        return False

    def _up(self):
        self.connected = True
        self.backoff_ms = self.BACKOFF_MIN_MS
        try:
            ip = self.sta.ifconfig()[0]
        except Exception:
            ip = "?"
        log.info("wifi: connected to %s as %s", self.ssid, ip)
        if self._auto_setup:
            self.leave_setup()
        self._report()

    async def _watch(self):
        while self.sta.isconnected():
            self._rssi()
            self._ntp()
            await self.sleep_ms(self.WATCH_MS)

    def _rssi(self):
        if self.link is None:
            return
        try:
            self.link.rssi = int(self.sta.status("rssi"))
        except Exception:
            pass

    def _ntp(self):
        if self.ntp_ok:
            return
        now = self.ticks()
        if self._ntp_at is not None and time.ticks_diff(now, self._ntp_at) < self.NTP_RETRY_MS:
            return
        self._ntp_at = now
        try:
            self.settime()
            self.ntp_ok = True
            log.info("wifi: time set from NTP")
        except Exception as e:
            log.warn("wifi: NTP failed (%r); again in %d s", e, self.NTP_RETRY_MS // 1000)

    def _report(self):
        """Tell the MCU and the LED what state Wi-Fi is in."""
        if self.setup_mode:
            st = ST_SETUP
        elif self.connected:
            st = self.online_state
        else:
            st = ST_OFFLINE
        if self.link is not None:
            self.link.set_wifi_state(st)
        m = self.mode()
        if m != self._mode:
            self._mode = m
            if self.on_mode:
                self.on_mode(m)
