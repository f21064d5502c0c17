"""The status page in a real browser (Debian's headless chromium + chromedriver via
selenium), served by the firmware in the MicroPython unix port against the simulated
meter, all on 127.0.0.1."""
import json

import pytest

from browser import By, cells, classes, click, command, number, open_page, screenshot, text, wait_text
import harness
from harness import ARTIFACTS, Firmware, wait_until
from selenium.webdriver.support.ui import Select
from spm02sim import Simulator, parse_dps

PAGE_LIMIT = 12 * 1024
READINGS = [k + "_" + p for k in ("voltage", "current", "power") for p in "abc"] + \
    ["energy_forward", "energy_reverse", "power", "frequency", "power_factor"]


class Rig(harness.Rig):
    """The simulator and the firmware without MQTT, started."""

    def __init__(self, sim_layout="v2", simargs=None, **fwargs):
        super().__init__(None, sim_layout, sim=simargs, start=True, **fwargs)


@pytest.fixture
def rig(request):
    r = Rig(*getattr(request, "param", ("v2",)))
    try:
        yield r
    finally:
        r.stop()


def test_page_is_small_and_self_contained(rig):
    status, body = rig.fw.request("GET", "/")
    assert status == 200
    assert len(body) <= PAGE_LIMIT, len(body)
    low = body.lower()
    assert b"http://" not in low and b"https://" not in low
    assert b"//" + b"cdn" not in low and b"@import" not in low


def test_readings_equal_the_simulator(browser, rig):
    sim, fw = rig.sim, rig.fw
    open_page(browser, fw)
    truth = sim.truth()
    wait_until(lambda: all(number(browser, "v-" + k) == truth[k] for k in READINGS), 10, 0.1,
               "the page to show the simulator's values")
    for k in READINGS:
        assert number(browser, "v-" + k) == truth[k], k
    # derived values are marked, measured ones are not
    assert "d" in classes(browser, "v-power_factor_a")
    assert "d" not in classes(browser, "v-voltage_a")
    assert browser.find_element(By.ID, "leg").is_displayed()
    assert not browser.find_element(By.ID, "warnings").is_displayed()
    assert text(browser, "mcu-online") == "yes"
    assert text(browser, "layout").startswith("v2")
    assert text(browser, "faults") == "none"
    assert "overvoltage" in text(browser, "alarms")
    # every DP the meter sent has a row
    shown = {int(x) for x in cells(browser, "#dps tr td:first-of-type")}
    assert set(sim.truth_counts()) <= shown
    assert not browser.find_element(By.ID, "rib").is_displayed()  # no report interval in v2
    screenshot(browser, "page.png")
    screenshot(browser, "page-phone.png", 400)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        screenshot(browser, "page-dark.png")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_buttons_reach_the_meter(browser, rig):
    sim, fw = rig.sim, rig.fw
    open_page(browser, fw)
    assert number(browser, "v-energy_forward") > 0

    mark = sim.mark()
    click(browser, "b-clear_energy")
    alert = wait_until(lambda: _alert(browser), 5, 0.05, "confirm dialog")
    alert.accept()
    _, payload = sim.wait_frame(0x06, timeout=5, since=mark, dp=12)
    assert parse_dps(payload)[0][2] == b"\x01"
    wait_text(browser, "s-clear_energy", lambda t: t.startswith("✓"), "clear done")
    wait_text(browser, "v-energy_forward", lambda t: t == "0", "energy cleared on the page")

    # dismissing the dialog sends nothing
    mark = sim.mark()
    click(browser, "b-clear_energy")
    wait_until(lambda: _alert(browser), 5, 0.05, "confirm dialog").dismiss()

    _, payload = command(browser, sim, "b-refresh", 0x06, dp=35)
    assert parse_dps(payload)[0][2] == b"\x00"
    command(browser, sim, "b-query_state", 0x08)
    assert [p for c, p in sim.received[mark:] if c == 0x06 and parse_dps(p)[0][0] == 12] == []

    assert text(browser, "b-locate").endswith("off")
    _, payload = command(browser, sim, "b-locate", 0x06, dp=101)
    assert parse_dps(payload)[0][2] == b"\x01"
    wait_text(browser, "b-locate", lambda t: t.endswith("on"), "locate on")
    _, payload = command(browser, sim, "b-locate", 0x06, dp=101)
    assert parse_dps(payload)[0][2] == b"\x00"

    # an alarm through the form
    Select(browser.find_element(By.ID, "al-name")).select_by_visible_text("overvoltage")
    th = browser.find_element(By.ID, "al-th")
    assert th.get_attribute("value") == "260" and th.is_enabled()
    th.clear()
    th.send_keys("250")
    command(browser, sim, "b-alarm", 0x06, dp=17)
    wait_text(browser, "at-overvoltage", lambda t: t.split()[0] == "250", "new threshold shown")
    assert fw.state()["values"]["alarms"]["overvoltage"] == {"enabled": True, "threshold": 250}
    # an alarm without a threshold: the field is off and the body has none
    Select(browser.find_element(By.ID, "al-name")).select_by_visible_text("phase_loss")
    assert not browser.find_element(By.ID, "al-th").is_enabled()
    browser.find_element(By.ID, "al-en").click()
    command(browser, sim, "b-alarm", 0x06, dp=18)
    wait_text(browser, "ae-phase_loss", lambda t: t == "off", "phase_loss disabled")
    # a bad value: the server's error is shown, nothing is sent
    Select(browser.find_element(By.ID, "al-name")).select_by_visible_text("overvoltage")
    th.clear()
    th.send_keys("0")
    mark = sim.mark()
    click(browser, "b-alarm")
    wait_text(browser, "s-alarm", lambda t: "threshold of overvoltage" in t, "error shown")
    assert "err" in browser.find_element(By.ID, "s-alarm").get_attribute("class")
    assert [c for c, _ in sim.received[mark:] if c == 0x06] == []


def _alert(driver):
    try:
        a = driver.switch_to.alert
        a.text
        return a
    except Exception:
        return None


def test_wrong_layout_shows_warnings(browser):
    r = Rig("cloud", layout="v2")
    try:
        open_page(browser, r.fw)
        wait_until(lambda: browser.find_element(By.ID, "warnings").is_displayed(), 10, 0.1, "warnings")
        w = text(browser, "warnings")
        assert "DP" in w and "not trust" in w
        assert text(browser, "layout").startswith("v2")
        # an unmapped value DP shows its value at the usual scales, exactly
        counts = r.sim.truth_counts()
        row = cells(browser, "#dp-112 td")
        n = counts[112]
        assert "unmapped" in row and str(n) in row
        assert row[-3:] == ["%d.%d" % divmod(n, 10), "%d.%02d" % divmod(n, 100), "%d.%03d" % divmod(n, 1000)]
        screenshot(browser, "page-warnings.png")
        # the firmware goes away: the page says so and keeps trying
        r.fw.stop()
        wait_until(lambda: "lost" in text(browser, "conn").lower(), 10, 0.1, "connection lost note")
    finally:
        r.stop()


def test_cloud_layout_report_interval_with_password(browser):
    r = Rig("cloud", http={"password": "sekret"})
    try:
        sim = r.sim
        open_page(browser, r.fw)
        assert text(browser, "layout").startswith("cloud")
        assert number(browser, "v-energy_forward_a") == sim.truth()["energy_forward_a"]
        wait_until(lambda: browser.find_element(By.ID, "rib").is_displayed(), 5, 0.1, "interval input")
        ri = browser.find_element(By.ID, "ri")
        assert ri.get_attribute("value") == "225"
        ri.clear()
        ri.send_keys("900")
        assert not browser.find_element(By.ID, "pwb").is_displayed()
        mark = sim.mark()
        click(browser, "b-report_interval")
        wait_text(browser, "s-report_interval", lambda t: "password" in t, "password asked")
        assert browser.find_element(By.ID, "pwb").is_displayed()
        assert [c for c, _ in sim.received[mark:] if c == 0x06] == []
        browser.find_element(By.ID, "pw").send_keys("sekret\n")  # Enter retries the command
        _, payload = sim.wait_frame(0x06, timeout=5, since=mark, dp=102)
        assert parse_dps(payload)[0][2] == (900).to_bytes(4, "big")
        wait_text(browser, "s-report_interval", lambda t: t.startswith("✓"), "interval set")
        wait_text(browser, "v-report_interval", lambda t: t == "900", "interval shown")
        # later commands carry the password without asking again
        command(browser, sim, "b-refresh", 0x06, dp=35)
        screenshot(browser, "page-cloud.png")
    finally:
        r.stop()


def test_single_phase_page(browser):
    """A single-phase SPM01: phase A only, the report interval of DP 18's record 0x08, and a
    key of the owner's dps map among the totals."""
    r = Rig("spm01", simargs={"extra_dps": {120: (2, 25)}},
            dps={"120": {"key": "leakage_current", "type": "value", "decimals": 3, "unit": "A"}})
    try:
        sim, d = r.sim, browser
        open_page(d, r.fw)
        truth = sim.truth()
        wait_until(lambda: number(d, "v-voltage_a") == truth["voltage_a"], 10, 0.1, "phase A")
        head = cells(d, "#ph tr:first-child th")
        assert head == ["", "A"]
        assert not d.find_elements(By.ID, "v-voltage_b") and not d.find_elements(By.ID, "v-power_c")
        assert not d.find_elements(By.ID, "v-reactive_power_a")  # the 8-byte format has none
        assert number(d, "v-energy_reverse") == truth["energy_reverse"]
        assert number(d, "v-leakage_current") == 0.025
        row = d.execute_script("return document.getElementById('v-leakage_current').parentNode.textContent")
        assert row.startswith("Leakage current A")  # the label from the key, the unit from the map
        assert text(d, "layout").startswith("spm01") and "single-phase" in text(d, "layout")
        assert d.find_element(By.ID, "rib").is_displayed()
        assert d.find_element(By.ID, "ri").get_attribute("value") == "30"
        screenshot(d, "page-spm01.png")
    finally:
        r.stop()


def test_v02_page_shows_reactive_and_apparent_power(browser):
    r = Rig("v2", simargs={"raw_format": "v02"})
    try:
        open_page(browser, r.fw)
        truth = r.sim.truth()
        keys = [k + "_" + p for k in ("reactive_power", "apparent_power", "power_factor") for p in "abc"]
        wait_until(lambda: all(number(browser, "v-" + k) == truth[k] for k in keys), 10, 0.1,
                   "reactive, apparent power and the meter's power factor")
        head = cells(browser, "#ph tr:first-child th")
        assert head == ["", "A", "B", "C"]
        # the meter's own power factor: not marked derived
        assert "d" not in classes(browser, "v-power_factor_a")
        assert not browser.find_element(By.ID, "leg").is_displayed()
    finally:
        r.stop()


def test_setup_portal_page_fills_in_and_saves(browser, rig):
    """The setup page (served on the host at any time, on the ESP32 in setup mode) fills
    itself in from /setup/info and saves through the form."""
    d, fw = browser, rig.fw
    d.get(fw.url("/setup"))
    wait_until(lambda: d.find_element(By.NAME, "name").get_attribute("value") == "spm02", 10, 0.1,
               "the form filled in")
    assert d.find_element(By.NAME, "mqtt_port").get_attribute("value") == str(fw.cfg["mqtt"]["port"])
    d.find_element(By.NAME, "ssid").send_keys("HomeNet")
    d.find_element(By.NAME, "password").send_keys("wifi-pass-123")
    d.find_element(By.NAME, "name").clear()
    d.find_element(By.NAME, "name").send_keys("meter-7")
    d.find_element(By.CSS_SELECTOR, "form button:not([type])").click()
    wait_until(lambda: "Saved" in d.find_element(By.ID, "m").text, 10, 0.1, "saved")
    saved = json.load(open(fw.cfg_path))
    assert saved["name"] == "meter-7" and saved["wifi"]["ssid"] == "HomeNet"
    # the name on the network (no unique id on the host): where to find it after the restart
    assert "http://meter-7.local/" in d.find_element(By.ID, "m").text
    screenshot(d, "setup.png", 500)
