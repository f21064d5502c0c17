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


# --- a Wi-Fi change on trial (firmware/fallback.py) ----------------------------------

OLD_CFG = '{"name": "spm02", "wifi": {"ssid": "HomeNet", "password": "old-pass-1"}}'


def trial_app(joins):
    """An App booted after the console changed the Wi-Fi to NewNet: config.json.prev holds
    the config before. joins: whether NewNet is ever joined. JOIN_MS is 400 ms here."""
    from portable import tmpdir
    from firmware import cfgsave
    from firmware.app import App
    d = tmpdir("trial")
    path = d + "config.json"
    with open(path, "w") as f:
        f.write(OLD_CFG)
    cfg, _ = config.parse(OLD_CFG)
    cfg["http"]["host"] = "127.0.0.1"
    _free_port[0] += 1
    cfg["http"]["port"] = _free_port[0]
    old = App(cfg, [], "firmware/page.html", path)
    # the console's save, as on the device: the previous config is kept for the trial
    st, answer, restart = cfgsave.save(old, b'{"wifi": {"ssid": "NewNet", "password": "new-pass-2"}}')
    assert st == 200 and answer == {"ok": True, "restart": True} and restart, answer
    with open(path + ".prev") as f:
        assert f.read() == OLD_CFG
    # a second change before the first was joined keeps the config known to work
    st, answer, _ = cfgsave.save(old, b'{"wifi": {"password": "new-pass-3"}}')
    assert st == 200
    with open(path + ".prev") as f:
        assert f.read() == OLD_CFG
    # the boot after the restart
    network.reset_all()
    cfg, warnings, _ = __import__("firmware.portal", None, None, ("x",)).load_config(path)
    assert cfg["wifi"]["ssid"] == "NewNet" and warnings == []
    cfg["http"]["host"] = "127.0.0.1"
    cfg["http"]["port"] = _free_port[0]
    app = App(cfg, warnings, "firmware/page.html", path)
    app.wifi.JOIN_MS = 400 if not joins else 60000
    app.wifi.CONNECT_MS = 100
    app.wifi.POLL_MS = 20
    sta = network.WLAN(network.STA_IF)
    sta.succeed_after = 1 if joins else None
    restarts = []
    app.restart = lambda: restarts.append(1)

    def done():  # put back and restarting; or joined, and the trial over
        return restarts if not joins else _text(path + ".prev") is None

    async def go():
        t = asyncio.create_task(app.run())
        for _ in range(500):  # 10 s at most
            await asyncio.sleep_ms(20)
            if done():
                break
        await asyncio.sleep_ms(100)  # nothing more happens after that (a second restart would show)
        t.cancel()
    try:
        asyncio.run(go())
    except Exception:
        pass
    return app, path, restarts, sta


def _text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


@isolated
def test_wifi_change_not_joined_puts_the_previous_config_back():
    from portable import rmtree
    app, path, restarts, sta = trial_app(joins=False)
    try:
        assert sta.connects and sta.connects[0] == ("NewNet", "new-pass-3") and not app.wifi.connected
        assert restarts == [1]
        assert _text(path) == OLD_CFG and _text(path + ".prev") is None
        # the boot after says so (device.config_warnings), once
        from firmware.portal import load_config
        cfg, warnings, setup = load_config(path)
        assert cfg["wifi"]["ssid"] == "HomeNet" and setup == ""
        assert len(warnings) == 1 and "NewNet not joined" in warnings[0] and "previous config" in warnings[0]
        assert load_config(path)[1] == []
    finally:
        rmtree(path[:path.rfind("/")])


@isolated
def test_wifi_change_joined_keeps_the_new_config():
    from portable import rmtree
    app, path, restarts, sta = trial_app(joins=True)
    try:
        assert app.wifi.connected and sta.connects[0] == ("NewNet", "new-pass-3")
        assert restarts == []
        assert _text(path + ".prev") is None and _text(path + ".reverted") is None
        assert '"NewNet"' in _text(path)
    finally:
        rmtree(path[:path.rfind("/")])


@isolated
def test_a_change_without_wifi_starts_no_trial():
    from portable import tmpdir, rmtree
    from firmware import cfgsave
    d = tmpdir("trial")
    try:
        app = make_app(ssid="HomeNet")
        app.config_path = d + "config.json"
        with open(app.config_path, "w") as f:
            f.write(OLD_CFG)
        st, answer, _ = cfgsave.save(app, b'{"mqtt": {"host": "10.0.0.2"}}')
        assert st == 200 and answer["restart"] is True
        assert _text(app.config_path + ".prev") is None
    finally:
        rmtree(d)
