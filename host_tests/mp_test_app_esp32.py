# The App wired as on an ESP32 (board.ESP32 forced), with the fakes of machine and
# network: Wi-Fi, LED, button, watchdog and the MCU's Wi-Fi reset all hang together.
# MicroPython only (see mp_test_esp32.py for the path set-up).
import sys

if "host_tests/fakes" not in sys.path:
    sys.path.insert(0, "host_tests/fakes")
if "." not in sys.path:
    sys.path.append(".")

import asyncio
import machine
import network

from firmware import board, config, log
from tuya import encode

_free_port = [18950]


def make_app(**over):
    cfg, _ = config.parse(None)
    cfg["wifi"]["ssid"] = over.get("ssid", "")
    cfg["mqtt"]["host"] = over.get("mqtt", "")
    cfg["http"]["host"] = "127.0.0.1"
    _free_port[0] += 1
    cfg["http"]["port"] = _free_port[0]
    from firmware.app import App
    return App(cfg, [], "firmware/page.html", "/tmp/none.json", over.get("setup", ""))


def isolated(fn):
    """Run a test with fresh fakes and the firmware's log silenced, then put log back."""
    def wrapped():
        machine.reset_all()
        network.reset_all()
        old = log.log
        log.log = lambda *a: None  # info, warn and error all go through log.log
        board.ESP32 = True
        try:
            fn()
        finally:
            board.ESP32 = False
            log.log = old
            asyncio.new_event_loop()  # drop the tasks the app left behind
    return wrapped


def setup():
    pass


@isolated
def test_setup_reason_from_config_enters_setup_mode():
    setup()
    app = make_app(setup="no config")
    assert app.wifi is not None and app.wifi.setup_mode
    assert app.wifi.setup_reason == "no config"
    assert app.setup_mode()


@isolated
def test_mcu_wifi_reset_enters_setup_mode():
    setup()
    app = make_app(ssid="HomeNet")
    assert not app.wifi.setup_mode
    # the MCU sends 0x04: the link raises EV_SETUP and the driver calls back
    ev = app.mcu.feed(0, encode(0x04, b"", 3))
    app.link._events(ev, 0)
    assert app.wifi.setup_mode and "MCU" in app.wifi.setup_reason
    assert app.mcu.link.poll(100) == encode(0x04)  # acked


@isolated
def test_long_press_enters_setup_mode():
    setup()
    app = make_app(ssid="HomeNet")
    app.button.on_long()
    assert app.wifi.setup_mode and app.wifi.setup_reason == "button held"


@isolated
def test_run_feeds_watchdog_and_reports_wifi_state():
    setup()
    app = make_app(ssid="HomeNet")  # no MQTT broker configured: not watched, no reset loop
    app.health.check_ms = 50
    app.wifi.CONNECT_MS = 300
    app.wifi.POLL_MS = 20

    async def go():
        t = asyncio.create_task(app.run())
        await asyncio.sleep_ms(1200)
        t.cancel()
    try:
        asyncio.run(go())
    except Exception:
        pass
    assert app.health.feeds > 3, app.health.status()
    assert app.health.failed is None, app.health.failed
    assert sorted(app.health.status()["watched"]) == ["uart", "wifi"]
    assert app.wifi.connected
    assert app.mcu.link.wifi_state == 4  # "cloud connected", as configured
    assert app.link.connected  # the UART was opened through the ESP32 board layer
    u = machine.UART.instances[-1]
    assert (u.id, u.kw["tx"], u.kw["rx"], u.kw["baudrate"], u.kw["rxbuf"]) == (1, 21, 20, 9600, 2048)


@isolated
def test_dead_task_stops_the_watchdog():
    setup()
    app = make_app(ssid="HomeNet", mqtt="127.0.0.1")
    app.health.check_ms = 50

    async def go():
        t = asyncio.create_task(app.run())
        await asyncio.sleep_ms(300)
        # the MQTT task dies (here: cancelled): the watchdog must stop being fed
        for name, w in app.health._watched.items():
            if name == "mqtt":
                w[0].cancel()
        await asyncio.sleep_ms(300)
        n = app.health.feeds
        await asyncio.sleep_ms(300)
        t.cancel()
        return n
    n = asyncio.run(go())  # an exception in go() fails the test
    assert app.health.failed and "mqtt" in app.health.failed
    assert app.health.feeds == n  # no feed after the failure


@isolated
def test_uart_that_cannot_open_does_not_reset_the_device():
    # A wrong pin in the config: the firmware keeps running (page, setup) and says why,
    # rather than the watchdog resetting it over and over.
    from firmware import esp32
    app = make_app(ssid="HomeNet")
    app.health.check_ms = 50
    app.WATCH_MS = {"uart": 2500, "mqtt": None, "wifi": None}  # retries at 0, 1 and 3 s
    old = esp32.open_uart

    def broken(ucfg, chip_name=None):
        raise ValueError("invalid pin")
    esp32.open_uart = broken

    async def go():
        t = asyncio.create_task(app.run())
        await asyncio.sleep_ms(3600)
        t.cancel()
    try:
        asyncio.run(go())
    except Exception:
        pass
    finally:
        esp32.open_uart = old
    assert not app.link.connected
    assert app.health.failed is None and app.health.feeds > 10


@isolated
def test_reset_cause_in_words_and_our_restart_is_not_a_crash():
    machine.cause[0] = machine.WDT_RESET
    assert make_app().reset_cause == "watchdog"
    machine.cause[0] = machine.PWRON_RESET
    assert make_app().reset_cause == "power-on"
    machine.cause[0] = machine.SOFT_RESET  # what MicroPython says after a panic, too
    app = make_app()
    assert app.reset_cause == "crash"
    app.keeper = None  # (nothing to save here)
    try:
        app.restart()  # the restart command, an update, the portal: a machine.reset()
    except SystemExit:
        pass
    assert machine.resets and machine.RTC().memory() == b"spm02 restart"
    assert make_app().reset_cause == "software reset"
    assert machine.RTC().memory() == b""  # read once: the next crash is a crash
    assert make_app().reset_cause == "crash"
    machine.cause[0] = 0
    assert make_app().reset_cause == "unknown (0)"


@isolated
def test_device_health_and_wifi_in_api_state_and_b_device():
    import json
    from firmware import devinfo, status
    app = make_app(ssid="HomeNet")
    app.wifi.sta = sta = network.WLAN(network.STA_IF)
    sta.active(True)
    st = json.loads("".join(status.parts(app)))["device"]
    assert st["wifi"] == {"ssid": "HomeNet", "rssi": None, "ip": None, "mac": "24:0a:c4:12:ab:cd",
                          "channel": None}  # not connected yet
    assert st["reset_cause"] == "power-on" and st["micropython"].count(".") == 2
    assert st["fs_free"] > 0
    sta.connected = app.wifi.connected = True
    sta.rssi = -71
    st = json.loads("".join(status.parts(app)))["device"]
    assert st["wifi"] == {"ssid": "HomeNet", "rssi": -71, "ip": "192.0.2.50", "mac": "24:0a:c4:12:ab:cd",
                          "channel": 6}
    h = devinfo.health(app)
    assert (h["rssi"], h["ssid"], h["reset_cause"], h["mqtt_reconnects"], h["link_errors"]) == \
        (-71, "HomeNet", "power-on", 0, 0)
    assert sorted(h) == ["flash_writes", "link_errors", "mem_free", "mqtt_reconnects", "reset_cause", "rssi",
                         "ssid", "uptime_s"]
    text = "".join(devinfo.metric_lines(h))  # /metrics
    assert "spm02_wifi_rssi_dbm -71\n" in text and 'spm02_reset_cause_info{cause="power-on"} 1\n' in text
    h["rssi"] = None  # not connected: no signal figure
    assert "rssi" not in "".join(devinfo.metric_lines(h))
