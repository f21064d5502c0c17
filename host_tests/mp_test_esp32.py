# The ESP32-only layer (board, Wi-Fi, setup portal, watchdog) in the MicroPython unix
# port, with the fakes of `machine` and `network` in host_tests/fakes. MicroPython only:
#   MICROPYPATH=.frozen:lib:host_tests/fakes:host_tests:. micropython host_tests/mp_runner.py host_tests/mp_test_esp32.py
import sys

# run from the repo root; these make it work with `make test-mp`'s MICROPYPATH too
if "host_tests/fakes" not in sys.path:
    sys.path.insert(0, "host_tests/fakes")  # the fakes must shadow the unix port's machine
if "." not in sys.path:
    sys.path.append(".")  # `from firmware import ...`

import json
import os
import time

import asyncio
import machine
import network

assert getattr(machine, "FAKE", False) and getattr(network, "FAKE", False), \
    "host_tests/fakes must come before the built-in machine module on MICROPYPATH"

import tuya
from mcu import Mcu
from link import EV_SETUP
from firmware import config, log, esp32, health, portal, wifi as wifimod
from firmware.mculink import McuLink

C3 = "ESP32C3 module with ESP32C3"
CLASSIC = "Generic ESP32 module with ESP32"


# --- helpers ---------------------------------------------------------------------

class Logs:
    """Captures firmware.log lines (and keeps the test output quiet)."""

    def __enter__(self):
        self.lines = []
        self._old = log.log
        log.log = self._cap
        return self

    def _cap(self, level, msg, *args):
        if args:
            msg = msg % args
        self.lines.append(level + " " + msg)

    def __exit__(self, *exc):
        log.log = self._old

    def text(self):
        return "\n".join(self.lines)


def fresh():
    machine.reset_all()
    network.reset_all()
    esp32.machine = machine


class FakeMicropython:  # fake of module micropython
    def __init__(self):
        self.kbd = []  # test-only

    def kbd_intr(self, __c):
        self.kbd.append(__c)


def with_mp(fn):
    """Run fn(fake micropython) with it injected into esp32."""
    old = esp32.micropython
    mp = FakeMicropython()
    esp32.micropython = mp
    try:
        return fn(mp)
    finally:
        esp32.micropython = old


class FakeLink:
    def __init__(self):
        self.states = []  # every change of the reported state
        self.rssi = -60

    def set_wifi_state(self, st):
        if not self.states or self.states[-1] != st:
            self.states.append(st)

    def state(self):
        return self.states[-1] if self.states else None


class VClock:
    """Virtual time for Wifi: every sleep advances it at once."""

    def __init__(self):
        self.t = 0
        self.sleeps = []

    def ticks(self):
        return self.t

    async def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.t = time.ticks_add(self.t, ms)
        await asyncio.sleep_ms(0)


def make_wifi(ssid="home", password="secret123", setup_after_s=None, wifi_state=4,
              txpower=0, link=None, settime=None, uid="12abcd", on_mode=None):
    fresh()
    cfg = config.parse(None)[0]
    cfg["wifi"]["ssid"] = ssid
    cfg["wifi"]["password"] = password
    cfg["wifi"]["txpower"] = txpower
    cfg["wifi_state"] = wifi_state
    if setup_after_s is not None:
        cfg["wifi"]["setup_after_s"] = setup_after_s
    clk = VClock()
    w = wifimod.Wifi(cfg, link if link is not None else FakeLink(), network, uid=uid,
                     on_mode=on_mode, ticks=clk.ticks, sleep_ms=clk.sleep_ms,
                     settime=settime or (lambda: None))
    w.CONNECT_MS = 21  # multiples of POLL_MS, far from the backoff's whole seconds
    w.POLL_MS = 7
    w.WATCH_MS = 500  # below 1000: backoffs() tells the backoff sleeps apart
    return w, clk


def run_wifi(w, script, steps=20000):
    """Run w.run() with script(until) alongside; until(pred) yields until pred()."""
    async def until(pred):
        for _ in range(steps):
            if pred():
                return
            await asyncio.sleep_ms(0)
        raise AssertionError("condition not reached")

    async def main():
        t = asyncio.create_task(w.run())
        try:
            await script(until)
        finally:
            t.cancel()
            await asyncio.sleep_ms(0)

    asyncio.run(main())


async def pause(ms):
    await asyncio.sleep_ms(ms)


def backoffs(clk):
    return [ms for ms in clk.sleeps if ms >= 1000]


TMP = "/tmp/spm02-mp-test-%d" % time.ticks_us()


def tmpdir():
    try:
        os.mkdir(TMP)
    except OSError:
        pass
    for name in os.listdir(TMP):
        os.remove(TMP + "/" + name)
    return TMP


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


# --- UART ------------------------------------------------------------------------

UCFG = {"id": 1, "tx": 21, "rx": 20, "baudrate": 9600, "url": ""}


def test_repl_rx_pin_per_chip():
    assert esp32.repl_rx_pin(C3) == 20
    assert esp32.repl_rx_pin(CLASSIC) == 3
    assert esp32.repl_rx_pin("ESP32S3 module with ESP32S3") == 44


def test_uart1_on_c3_pads_gets_rxbuf_and_disables_ctrl_c():
    # the default: UART1 routed to GPIO21/20, which are UART0's (the REPL's) pins on a C3
    fresh()
    with Logs() as lg:
        kbd = with_mp(lambda m: (esp32.open_uart(UCFG, C3), m.kbd)[1])
    u = machine.UART.instances[-1]
    assert u.id == 1
    assert u.kw == {"baudrate": 9600, "tx": 21, "rx": 20, "timeout": 0, "rxbuf": 2048}
    assert kbd == [-1]
    assert "Ctrl-C disabled" in lg.text() and "GPIO20" in lg.text()


def test_uart1_elsewhere_keeps_ctrl_c():
    fresh()
    with Logs():
        kbd = with_mp(lambda m: (esp32.open_uart(UCFG, CLASSIC), m.kbd)[1])  # GPIO20 is no REPL pin here
    assert kbd == []
    assert machine.UART.instances[-1].kw["rxbuf"] >= 1024


def test_uart0_never_gets_rxbuf_and_disables_ctrl_c():
    fresh()
    u0 = {"id": 0, "tx": 21, "rx": 20, "baudrate": 9600, "url": ""}
    with Logs():
        kbd = with_mp(lambda m: (esp32.open_uart(u0, C3), m.kbd)[1])
    u = machine.UART.instances[-1]
    assert u.id == 0 and "rxbuf" not in u.kw
    assert kbd == [-1]
    # classic ESP32: UART0 on its own pins 1/3 is the REPL too
    with Logs():
        kbd = with_mp(lambda m: (esp32.open_uart({"id": 0, "tx": 1, "rx": 3, "baudrate": 9600}, CLASSIC), m.kbd)[1])
    assert kbd == [-1] and "rxbuf" not in machine.UART.instances[-1].kw


def test_uart2_on_classic_rx3_disables_ctrl_c():
    fresh()
    with Logs():
        kbd = with_mp(lambda m: (esp32.open_uart({"id": 2, "tx": 1, "rx": 3, "baudrate": 9600}, CLASSIC), m.kbd)[1])
    assert kbd == [-1]


def test_uart_ids_and_pins_per_chip():
    # C3 (and C2, C6, S2): UART 0 and 1 only; the classic ESP32 and the S3 have UART2 too
    assert esp32.uart_problem(UCFG, C3) is None
    u2 = dict(UCFG, id=2)
    assert esp32.uart_problem(u2, C3) == "uart.id 2: this chip has UART 0..1"
    assert esp32.uart_problem(u2, "ESP32C2 module with ESP32C2") is not None
    assert esp32.uart_problem(u2, CLASSIC) is None
    assert esp32.uart_problem(u2, "ESP32S3 module with ESP32S3") is None
    assert esp32.uart_problem(dict(UCFG, id=3), CLASSIC) is not None
    # pins must be given: UART1's default RX on a C3 is GPIO9, the boot pin
    assert "two GPIO numbers" in esp32.uart_problem(dict(UCFG, rx=-1), C3)
    assert "two GPIO numbers" in esp32.uart_problem(dict(UCFG, tx=20), C3)
    # open_uart refuses before touching machine.UART, with the same words
    fresh()
    try:
        esp32.open_uart(u2, C3)
        assert False, "UART2 opened on a C3"
    except ValueError as e:
        assert "UART 0..1" in str(e)
    assert machine.UART.instances == []


def test_uart_streams_carry_frames_with_ctrl_c_bytes():
    fresh()
    hb = tuya.encode(tuya.HEARTBEAT, b"\x01")
    wifi_reset = tuya.encode(tuya.WIFI_RESET)
    assert 3 in hb or 3 in wifi_reset

    async def main():
        r, w = with_mp(lambda m: esp32.open_uart(UCFG, CLASSIC))
        u = machine.UART.instances[-1]

        async def later():
            await asyncio.sleep_ms(20)
            u.inject(wifi_reset)
        asyncio.create_task(later())
        buf = bytearray(64)
        n = await asyncio.wait_for_ms(r.readinto(buf), 1000)  # waits for the bytes
        assert bytes(buf[:n]) == wifi_reset
        w.write(hb)
        await w.drain()
        assert bytes(u.tx) == hb
    with Logs():
        asyncio.run(main())


# --- LED, button, safe mode, id ----------------------------------------------------

def _led_writes(mode, ms, invert=False):
    fresh()
    led = esp32.Led(5, invert)
    led.set(mode)

    async def main():
        t = asyncio.create_task(led.run())
        await asyncio.sleep_ms(ms)
        t.cancel()
        await asyncio.sleep_ms(0)
    asyncio.run(main())
    return led.pin.history


def _ons(hist):
    """[ms each on-phase lasted] from a pin's write history."""
    out = []
    on_at = None
    for t, v in hist:
        if v and on_at is None:
            on_at = t
        elif not v and on_at is not None:
            out.append(time.ticks_diff(t, on_at))
            on_at = None
    return out


def test_led_patterns():
    setup = _led_writes("setup", 620)
    connecting = _led_writes("connecting", 620)
    online = _led_writes("online", 620)
    assert len(_ons(setup)) >= 3 and 80 <= _ons(setup)[0] <= 250       # 100 ms on / 100 ms off
    assert len(_ons(connecting)) == 1 and 450 <= _ons(connecting)[0] <= 610  # 500 / 500
    assert len(_ons(online)) == 1 and _ons(online)[0] <= 250             # a short blink...
    assert online[-1][1] == 0                                            # ...then dark till 2 s
    assert _ons(_led_writes("off", 300)) == []


def test_led_mode_change_and_invert_and_none():
    fresh()
    led = esp32.Led(5)
    led.set("online")

    async def main():
        t = asyncio.create_task(led.run())
        await asyncio.sleep_ms(150)   # in the long dark phase of "online"
        n = len(_ons(led.pin.history))
        led.set("setup")
        await asyncio.sleep_ms(250)   # shows within a step, not after the 2 s cycle
        t.cancel()
        await asyncio.sleep_ms(0)
        assert len(_ons(led.pin.history)) >= n + 1
    asyncio.run(main())
    hist = _led_writes("off", 200, invert=True)
    assert hist and all(v == 1 for _, v in hist)  # inverted: 1 is dark
    fresh()
    led = esp32.Led(None)
    assert led.pin is None
    asyncio.run(led.run())  # returns at once
    led = esp32.Led(-1)
    assert led.pin is None


def test_button_long_press_once_per_press():
    fresh()
    calls = []
    b = esp32.Button(9, lambda: calls.append(1))
    b.LONG_MS = 100
    b.POLL_MS = 5
    assert machine.Pin.instances[-1].pull() == machine.Pin.PULL_UP

    async def main():
        t = asyncio.create_task(b.run())
        await asyncio.sleep_ms(50)
        assert calls == []
        machine.Pin.levels[9] = 0       # pressed (active low)
        await asyncio.sleep_ms(60)
        assert calls == []              # not yet 100 ms
        await asyncio.sleep_ms(200)
        assert calls == [1]             # once, however long it is held
        machine.Pin.levels[9] = 1
        await asyncio.sleep_ms(20)
        machine.Pin.levels[9] = 0       # a short press
        await asyncio.sleep_ms(50)
        machine.Pin.levels[9] = 1
        await asyncio.sleep_ms(100)
        t.cancel()
        await asyncio.sleep_ms(0)
    with Logs():
        asyncio.run(main())
    assert calls == [1] and b.long_presses == 1
    assert not esp32.Button(None).pressed()


def test_safe_mode():
    fresh()
    assert esp32.safe_mode(None) is False
    t0 = time.ticks_ms()
    assert esp32.safe_mode(9, window_ms=60, hold_ms=20) is False   # pull-up: not pressed
    assert time.ticks_diff(time.ticks_ms(), t0) >= 60
    machine.Pin.levels[9] = 0
    assert esp32.safe_mode(9, window_ms=2000, hold_ms=20) is True
    assert machine.Pin.instances[-1].pull() == machine.Pin.PULL_UP


def test_unique_id_and_reset():
    fresh()
    assert esp32.unique_id() == "12abcd"
    esp32.reset()
    assert len(machine.resets) == 1


# --- Wi-Fi -------------------------------------------------------------------------

def test_setup_mode_when_no_wifi_configured():
    modes = []
    w, clk = make_wifi(ssid="", on_mode=modes.append)

    async def script(until):
        await until(lambda: w.setup_mode)
        await until(lambda: len(clk.sleeps) > 3)
    with Logs():
        run_wifi(w, script)
    assert w.setup_reason == "no Wi-Fi configured"
    ap = network.WLAN(network.AP_IF)
    assert ap.active() and ap.conf["essid"] == "spm02-abcd" and ap.conf["authmode"] == network.AUTH_OPEN
    assert w.link.state() == 1
    assert network.WLAN(network.STA_IF).connects == []  # nothing to try
    assert modes == ["setup"]


def test_ap_name_from_name_without_unique_id():
    fresh()
    w = wifimod.Wifi(config.parse(None)[0], None, network, uid="")
    assert w.ap_name == "spm02-3032"  # hex of "spm02" ends in 3032


def test_setup_mode_after_wifi_fails_for_the_configured_time():
    w, clk = make_wifi(setup_after_s=30)
    network.WLAN(network.STA_IF).succeed_after = None  # never connects

    async def script(until):
        await until(lambda: clk.t >= 20000)
        assert not w.setup_mode and w.link.state() == 2
        await until(lambda: w.setup_mode)
        assert clk.t >= 30000
        n = len(network.WLAN(network.STA_IF).connects)
        await until(lambda: len(network.WLAN(network.STA_IF).connects) > n + 1)  # keeps trying
    with Logs():
        run_wifi(w, script)
    assert w.setup_reason == "Wi-Fi failed for 30 s"
    assert w.link.state() == 1 and network.WLAN(network.AP_IF).active()


def test_setup_after_failure_is_left_once_connected():
    w, clk = make_wifi(setup_after_s=5)
    sta = network.WLAN(network.STA_IF)
    sta.succeed_after = None

    async def script(until):
        await until(lambda: w.setup_mode)
        sta.succeed_after = len(sta.connects) + 1
        await until(lambda: w.connected)
    with Logs():
        run_wifi(w, script)
    assert not w.setup_mode and not network.WLAN(network.AP_IF).active()
    assert w.link.state() == 4


def test_setup_mode_when_the_mcu_asks_for_wifi_reset():
    # the app's hook for EV_SETUP (McuLink on_setup) calls wifi.enter_setup
    mcu = Mcu()
    w, clk = make_wifi(link=mcu.link)
    ml = McuLink(mcu, lambda: w.enter_setup("MCU asked for Wi-Fi reset"))

    async def script(until):
        await until(lambda: w.connected)
        assert mcu.link.wifi_state == 4
        ev = mcu.feed(0, tuya.encode(tuya.WIFI_RESET))
        assert ev & EV_SETUP
        ml._events(ev, 0)
        await until(lambda: len(clk.sleeps) > 10)
    with Logs():
        run_wifi(w, script)
    assert w.setup_mode and w.setup_reason == "MCU asked for Wi-Fi reset"
    assert mcu.link.wifi_state == 1  # what the MCU is told from now on
    assert network.WLAN(network.AP_IF).active()
    assert w.connected  # an explicit setup stays even with the station up


def test_setup_mode_on_long_button_press():
    w2, _ = make_wifi()
    b = esp32.Button(9, lambda: w2.enter_setup("button held"))
    b.LONG_MS = 60
    b.POLL_MS = 5

    async def main():
        t = asyncio.create_task(b.run())
        await asyncio.sleep_ms(30)
        assert not w2.setup_mode
        machine.Pin.levels[9] = 0
        await asyncio.sleep_ms(150)
        t.cancel()
        await asyncio.sleep_ms(0)
    with Logs():
        asyncio.run(main())
    assert w2.setup_mode and w2.setup_reason == "button held"
    assert network.WLAN(network.AP_IF).conf["essid"] == "spm02-abcd"
    assert w2.link.state() == 1


def test_backoff_doubles_to_60_s_and_resets_after_success():
    w, clk = make_wifi(setup_after_s=0)  # 0: never fall back to setup mode
    sta = network.WLAN(network.STA_IF)
    sta.succeed_after = 10  # nine failures first

    async def script(until):
        await until(lambda: w.connected)
        assert backoffs(clk) == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        assert w.backoff_ms == 1000
        clk.sleeps[:] = []
        sta.succeed_after = None
        sta.drop()
        await until(lambda: len(backoffs(clk)) >= 3)
        assert backoffs(clk)[:3] == [1000, 2000, 4000]  # from 1 s again
    with Logs():
        run_wifi(w, script)
    assert not w.setup_mode
    assert all(c == ("home", "secret123") for c in sta.connects)


def test_reconnect_after_drop_and_states_reported():
    w, clk = make_wifi(setup_after_s=0)
    sta = network.WLAN(network.STA_IF)
    sta.succeed_after = 2

    async def script(until):
        await until(lambda: w.connected)
        assert w.link.states == [2, 4]      # offline, then connected
        n = len(sta.connects)
        sta.drop()
        await until(lambda: not w.connected)
        assert w.link.state() == 2
        await until(lambda: w.connected)
        assert len(sta.connects) == n + 1 and w.link.state() == 4
    with Logs() as lg:
        run_wifi(w, script)
    assert "connection lost" in lg.text()
    assert "secret123" not in lg.text()


def test_configured_wifi_state_rssi_txpower():
    w, clk = make_wifi(wifi_state=3, txpower=8)
    sta = network.WLAN(network.STA_IF)
    sta.rssi = -71

    async def script(until):
        await until(lambda: w.connected and w.link.rssi == -71)
    with Logs():
        run_wifi(w, script)
    assert w.link.state() == 3
    assert sta.conf.get("txpower") == 8
    w, clk = make_wifi()

    async def script2(until):
        await until(lambda: w.connected)
    with Logs():
        run_wifi(w, script2)
    assert "txpower" not in network.WLAN(network.STA_IF).conf  # 0: the chip's default


def test_ntp_once_online_retried_after_failure():
    calls = []

    def settime():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("timeout")
    w, clk = make_wifi(settime=settime)
    w.NTP_RETRY_MS = 10000

    async def script(until):
        await until(lambda: w.connected and calls)
        assert not w.ntp_ok
        await until(lambda: w.ntp_ok)
        assert clk.t >= 10000
        t = clk.t
        await until(lambda: clk.t > t + 60000)
    with Logs():
        run_wifi(w, script)
    assert calls == [1, 1]  # failed, retried once later, then never again


def test_ntp_without_ntptime_module_does_not_crash():
    w, clk = make_wifi()
    w.settime = lambda: wifimod._settime(w.ntp_host)  # the real one: no ntptime in the unix port

    async def script(until):
        await until(lambda: w.connected and w._ntp_at is not None)
        await until(lambda: len(clk.sleeps) > 5)
    with Logs() as lg:
        run_wifi(w, script)
    assert w.connected and not w.ntp_ok and "NTP failed" in lg.text()


def test_hostname_before_the_station_and_ntp_server_from_config():
    import sys

    class NtpTime:  # stands in for the ESP32's ntptime module
        host = "pool.ntp.org"
        asked = []

        @staticmethod
        def settime():
            NtpTime.asked.append(NtpTime.host)

    w, clk = make_wifi(uid="240ac412abcd")
    w.ntp_host = "ntp.example.lan"  # time.ntp
    w.settime = lambda: wifimod._settime(w.ntp_host)
    seen = []
    orig = network.WLAN

    def wlan(i=network.STA_IF):  # what the hostname was when the station came up
        seen.append(network.hostname())
        return orig(i)
    network.WLAN = wlan
    sys.modules["ntptime"] = NtpTime

    async def script(until):
        await until(lambda: w.ntp_ok)
    try:
        with Logs():
            run_wifi(w, script)
    finally:
        network.WLAN = orig
        del sys.modules["ntptime"]
    assert seen[0] == "spm02-240ac412abcd" == w.hostname, seen
    assert NtpTime.asked == ["ntp.example.lan"]


def test_ntp_server_default_and_checked():
    cfg, warnings = config.parse(None)
    assert cfg["time"]["ntp"] == "pool.ntp.org" and warnings == []
    assert wifimod.Wifi(cfg, None, network).ntp_host == "pool.ntp.org"
    cfg, warnings = config.parse('{"time": {"ntp": "bad host name!"}}')
    assert cfg["time"]["ntp"] == "pool.ntp.org" and warnings and warnings[0].startswith("time.ntp:")
    assert config.parse('{"time": {"ntp": "192.168.1.1"}}')[0]["time"]["ntp"] == "192.168.1.1"


# --- setup portal ----------------------------------------------------------------

def make_portal(text=None, rename=None, auth=None):
    fresh()
    d = tmpdir()
    path = d + "/config.json"
    if text is not None:
        write(path, text)
    cfg = portal.load_config(path)[0]
    resets = []
    p = portal.Portal(cfg, path, network.WLAN(network.STA_IF), lambda: resets.append(1), auth, rename)
    p.RESTART_MS = 10
    return p, path, resets


OLD = json.dumps({"name": "meter1", "wifi": {"ssid": "home", "password": "oldsecret1"},
                  "mqtt": {"host": "10.0.0.2", "password": "mqttold"}, "layout": "v2",
                  "uart": {"id": 0, "tx": 21, "rx": 20, "baudrate": 9600}})


def test_setup_page_small_and_no_passwords():
    p, path, _ = make_portal(OLD)
    st, ctype, body, extra = p.handle("GET", "/setup", {}, b"")
    assert st == 200 and ctype.startswith("text/html")
    assert len(body.encode()) < 4096 and "/setup/info" in body and "<form" in body
    assert "http://" not in body and "https://" not in body  # no external assets
    st, ctype, body, extra = p.handle("GET", "/setup/info", {}, b"")
    assert st == 200 and ctype == "application/json"
    info = json.loads(body)
    assert (info["ssid"], info["name"], info["host"], info["wpw"], info["mpw"]) == ("home", "meter1", "10.0.0.2", True, True)
    assert "oldsecret1" not in body and "mqttold" not in body
    p.cfg["name"] = 'x"><script>'  # JSON, set into .value by the page: no markup to escape
    assert json.loads(p.handle("GET", "/setup/info", {}, b"")[2])["name"] == 'x"><script>'


def test_setup_routes():
    p, path, _ = make_portal(OLD)
    assert p.handle("GET", "/", {}, b"") is None
    assert p.handle("GET", "/api/state", {}, b"") is None
    assert p.handle("GET", "/setup/save", {}, b"")[0] == 405
    assert p.handle("POST", "/setup", {}, b"")[0] == 405
    p.auth = lambda h: h.get("authorization") == "ok"
    assert p.handle("GET", "/setup", {}, b"")[0] == 401
    assert p.handle("GET", "/setup?x=1", {"authorization": "ok"}, b"")[0] == 200


def test_scan_strongest_first_deduplicated():
    p, path, _ = make_portal()
    sta = network.WLAN(network.STA_IF)
    sta.scan_results = [(b"weak", b"\x06" * 6, 1, -90, 3, False),
                        (b"cafe", b"\x02" * 6, 6, -50, 0, False),
                        (b"home", b"\x01" * 6, 1, -70, 3, False),
                        (b"home", b"\x03" * 6, 11, -40, 3, False),
                        (b"", b"\x04" * 6, 3, -30, 3, True),      # hidden
                        (b"\xff\xfe", b"\x05" * 6, 3, -35, 3, False)]  # not UTF-8
    st, ctype, body, _ = p.handle("GET", "/setup/scan", {}, b"")
    assert st == 200 and ctype == "application/json"
    assert json.loads(body) == [{"ssid": "home", "rssi": -40, "secure": True},
                                {"ssid": "cafe", "rssi": -50, "secure": False},
                                {"ssid": "weak", "rssi": -90, "secure": True}]
    sta.scan_error = OSError("Wifi Internal Error")
    with Logs():
        assert p.handle("GET", "/setup/scan", {}, b"")[0] == 503


def _save(p, body, ctype="application/x-www-form-urlencoded"):
    with Logs() as lg:
        r = p.handle("POST", "/setup/save", {"content-type": ctype}, body)
    return r, lg


def test_save_form_merges_writes_and_restarts():
    p, path, resets = make_portal(OLD)
    body = (b"ssid=My+Net%C3%A9&password=n3w%26pass&mqtt_host=broker.lan&mqtt_port=1884"
            b"&mqtt_user=me&mqtt_password=mq%20pw&name=meter-2")

    async def main():
        (st, ctype, text, _), lg = _save(p, body)
        assert st == 200, text
        assert json.loads(text)["ok"] is True
        for secret in ("n3w&pass", "n3w%26pass", "mq pw", "oldsecret1", "mqttold"):
            assert secret not in text and secret not in lg.text()
        assert resets == []
        await asyncio.sleep_ms(50)
        assert resets == [1]  # restart into station mode
    asyncio.run(main())
    saved = json.loads(read(path))
    assert saved["wifi"] == {"ssid": "My Net\u00e9", "password": "n3w&pass"}
    assert saved["mqtt"] == {"host": "broker.lan", "port": 1884, "user": "me", "password": "mq pw"}
    assert saved["name"] == "meter-2"
    assert saved["layout"] == "v2" and saved["uart"]["id"] == 0  # other keys kept
    assert not exists(path + ".tmp")
    cfg, warnings, setup = portal.load_config(path)
    assert setup == "" and warnings == [] and cfg["wifi"]["ssid"] == "My Net\u00e9"


def test_save_json_and_empty_passwords_keep_old_ones():
    p, path, resets = make_portal(OLD)
    (st, _, text, _), _ = _save(p, json.dumps({"name": "meter1", "wifi": {"ssid": "home", "password": ""},
                                               "mqtt_host": "b2", "mqtt_port": 1883, "mqtt_password": ""}),
                                "application/json")
    assert st == 200, text
    saved = json.loads(read(path))
    assert saved["wifi"]["password"] == "oldsecret1" and saved["mqtt"]["password"] == "mqttold"
    assert saved["mqtt"]["host"] == "b2"
    # a new SSID with an empty password is an open network
    (st, _, text, _), _ = _save(p, b"ssid=cafe&password=")
    assert st == 200 and json.loads(read(path))["wifi"] == {"ssid": "cafe", "password": ""}
    # an empty port keeps the old one
    (st, _, text, _), _ = _save(p, b"ssid=cafe&mqtt_port=1999")
    (st, _, text, _), _ = _save(p, b"ssid=cafe&mqtt_port=")
    assert st == 200 and json.loads(read(path))["mqtt"]["port"] == 1999


def test_save_rejects_refused_values_and_keeps_the_old_file():
    p, path, resets = make_portal(OLD)
    for body in (b"ssid=home&name=bad+name%21", b"ssid=home&mqtt_port=70000", b"ssid=home&mqtt_port=abc",
                 b"ssid=&name=ok", b"ssid=home&password=short", b"ssid=" + b"x" * 33,
                 b"ssid=%zz", b"[1,2]"):
        (st, ctype, text, _), lg = _save(p, body)
        assert st == 400, (body, st, text)
        assert json.loads(text)["ok"] is False and json.loads(text)["errors"]
        assert "short" not in text
    assert read(path) == OLD
    (st, _, text, _), _ = _save(p, b"ssid=home&name=bad+name%21")
    assert json.loads(text)["errors"][0].startswith("name:")
    asyncio.run(pause(30))
    assert resets == []


def test_crash_between_write_and_rename_leaves_the_old_config():
    class PowerCut(OSError):
        pass

    def rename(a, b):
        raise PowerCut(5)  # EIO: the write of .tmp finished, the rename never happened
    p, path, resets = make_portal(OLD, rename=rename)
    (st, _, text, _), lg = _save(p, b"ssid=other&password=whatever1&name=new")
    assert st == 500 and "whatever1" not in text and "whatever1" not in lg.text()
    assert read(path) == OLD and exists(path + ".tmp")
    with Logs() as lg:
        cfg, warnings, setup = portal.load_config(path)
    assert setup == "" and cfg["name"] == "meter1" and cfg["wifi"]["ssid"] == "home"
    assert "leftover" in lg.text() and not exists(path + ".tmp")
    asyncio.run(pause(30))
    assert resets == []


def test_fat_rename_fallback():
    calls = []

    def rename(a, b):
        calls.append((a, b))
        if len(calls) == 1:
            raise OSError(17)  # EEXIST: FAT will not rename over a file
        os.rename(a, b)
    p, path, resets = make_portal(OLD, rename=rename)
    (st, _, text, _), _ = _save(p, b"ssid=home&name=fat")
    assert st == 200 and len(calls) == 2 and json.loads(read(path))["name"] == "fat"


def test_load_config_missing_corrupt_half_written():
    d = tmpdir()
    path = d + "/config.json"
    with Logs():
        cfg, warnings, setup = portal.load_config(path)
    assert setup and cfg == config.parse(None)[0] and "not found" in warnings[0]
    for bad in (OLD[:len(OLD) // 2], "", "\x00\x00\xff", "[1, 2]", '"text"', "{" * 5000):
        write(path, bad)
        with Logs():
            cfg, warnings, setup = portal.load_config(path)
        assert setup == "config unreadable", bad[:20]
        assert cfg == config.parse(None)[0] and warnings
    write(path, OLD)
    cfg, warnings, setup = portal.load_config(path)
    assert setup == "" and cfg["name"] == "meter1"


def test_load_config_tmp_only():
    d = tmpdir()
    path = d + "/config.json"
    write(path + ".tmp", OLD[:30])  # half-written .tmp, no config: ignored
    with Logs():
        cfg, warnings, setup = portal.load_config(path)
    assert setup == "no config" and cfg["name"] == "spm02" and not exists(path + ".tmp")
    write(path + ".tmp", OLD)  # complete .tmp, the rename (or FAT's remove+rename) cut short
    with Logs():
        cfg, warnings, setup = portal.load_config(path)
    assert setup == "" and cfg["name"] == "meter1" and read(path) == OLD


# --- watchdog ----------------------------------------------------------------------

async def _forever(h=None, name=None):
    while True:
        if h:
            h.beat(name)
        await asyncio.sleep_ms(5)


async def _short():
    await asyncio.sleep_ms(40)


def _health(scenario, timeout_ms=500, check_ms=10):
    fresh()
    h = health.Health(machine, timeout_ms, check_ms)

    async def main():
        t = asyncio.create_task(h.run())
        await scenario(h)
        t.cancel()
        await asyncio.sleep_ms(0)
    with Logs() as lg:
        asyncio.run(main())
    return h, machine.WDT.instances[0], lg


def test_watchdog_fed_while_all_is_well():
    async def sc(h):
        h.watch("mqtt", asyncio.create_task(_forever(h, "mqtt")), 100)
        h.watch("uart", asyncio.create_task(_forever()))
        await asyncio.sleep_ms(200)
    h, wdt, lg = _health(sc)
    assert wdt.timeout == 500
    assert len(wdt.feeds) >= 10 and h.failed is None and lg.lines == []


def test_watchdog_stops_when_a_task_dies():
    async def sc(h):
        h.watch("uart", asyncio.create_task(_short()))
        await asyncio.sleep_ms(200)
    h, wdt, lg = _health(sc)
    assert h.failed == "task uart ended"
    last = wdt.feeds[-1]
    assert len(wdt.feeds) >= 1                       # fed before
    assert time.ticks_diff(time.ticks_ms(), last) >= 120  # and not for the last ~150 ms
    assert len([x for x in lg.lines if "task uart ended" in x]) == 1  # logged once


def test_watchdog_stops_when_a_task_goes_silent():
    async def sc(h):
        t = asyncio.create_task(_forever())  # alive but never beats
        h.watch("mqtt", t, 50)
        await asyncio.sleep_ms(200)
    h, wdt, lg = _health(sc)
    assert h.failed.startswith("task mqtt silent")
    assert 1 <= len(wdt.feeds) <= 8


def test_watchdog_not_fed_while_the_loop_stalls():
    async def sc(h):
        h.watch("uart", asyncio.create_task(_forever()))
        await asyncio.sleep_ms(50)
        n = len(machine.WDT.instances[0].feeds)
        assert n >= 1 and h.failed is None  # fed while the loop ran
        time.sleep_ms(250)  # a blocking call: nothing else runs
        await asyncio.sleep_ms(100)  # the loop runs again: the stall is seen, no feed after it
        assert h.failed is not None and h.failed.startswith("loop stalled"), h.failed
        assert len(machine.WDT.instances[0].feeds) == n
    h, wdt, lg = _health(sc, timeout_ms=200)
    gaps = [time.ticks_diff(b, a) for a, b in zip(wdt.feeds, wdt.feeds[1:])]
    assert h.failed.startswith("loop stalled") and h.max_lag_ms >= 200
    assert time.ticks_diff(time.ticks_ms(), wdt.feeds[-1]) >= 340  # nothing after the stall
    assert max(gaps) < 100  # fed steadily before it


def test_watchdog_with_a_factory():
    made = []

    class W:
        def __init__(self, timeout):
            made.append(timeout)
            self.n = 0

        def feed(self):
            self.n += 1
    h = health.Health(W, timeout_ms=1234, check_ms=5)

    async def main():
        t = asyncio.create_task(h.run())
        await asyncio.sleep_ms(60)
        t.cancel()
        await asyncio.sleep_ms(0)
    asyncio.run(main())
    assert made == [1234] and h.wdt.n >= 5 and h.feeds == h.wdt.n
