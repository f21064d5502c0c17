"""The console page (GET /settings) in a real browser (headless chromium via selenium),
served by the firmware in the MicroPython unix port against the simulated meter."""
import json
import os

import pytest

from browser import By
from harness import ARTIFACTS, Firmware, Rig, stop_all, wait_until
from spm02sim import Simulator


@pytest.fixture
def rig():
    r = Rig(sim={"seed": 4})
    try:
        r.start()
        yield r.sim, r.fw
    finally:
        r.stop()


def field(driver, name):
    els = driver.find_elements(By.NAME, name)
    return els[0] if els else None


def msg(driver):
    return driver.find_element(By.ID, "msg").text


def saved(fw):
    with open(fw.cfg_path, "rb") as f:
        return f.read()


def test_settings_page_served_and_linked(rig):
    _, fw = rig
    st, body = fw.request("GET", "/settings")
    assert st == 200 and b"<form" in body and b"/api/config" in body
    st, page = fw.request("GET", "/")
    assert b'href="/settings"' in page


def test_settings_page_shows_saves_and_refuses(browser, rig):
    _, fw = rig
    browser.get(fw.url("/settings"))
    wait_until(lambda: field(browser, "mqtt.port") is not None, 10, 0.1, "the form drawn from /api/config")
    # every key as run, secrets never shown; the page says plainly that it is open
    assert field(browser, "mqtt.port").get_attribute("value") == str(fw.cfg["mqtt"]["port"])
    assert field(browser, "time.ntp").get_attribute("value") == "pool.ntp.org"
    assert field(browser, "mqtt.password").get_attribute("type") == "password"
    assert field(browser, "mqtt.password").get_attribute("value") == ""
    assert browser.find_element(By.ID, "warn").is_displayed()
    browser.find_element(By.ID, "setpw").click()  # the offer to set one: its field, focused
    assert browser.switch_to.active_element.get_attribute("name") == "http.password"
    wait_until(lambda: "starting as spm02" in browser.find_element(By.ID, "log").text, 10, 0.2, "the live log")
    # a bad value: the error next to the field, nothing written
    before = saved(fw)
    port = field(browser, "mqtt.port")
    port.clear()
    port.send_keys("70000")
    browser.find_element(By.ID, "save").click()
    wait_until(lambda: "Not saved" in msg(browser), 10, 0.1, "the refusal")
    assert "1..65535" in browser.find_element(By.ID, "e-mqtt.port").text
    assert saved(fw) == before
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, "settings-refused.png"))
    # a good change: saved, the firmware restarts into it, the page says so
    browser.get(fw.url("/settings"))
    wait_until(lambda: field(browser, "mcu.poll_s") is not None, 10, 0.1, "the form again")
    poll = field(browser, "mcu.poll_s")
    poll.clear()
    poll.send_keys("45")
    browser.find_element(By.ID, "save").click()
    wait_until(lambda: "Saved" in msg(browser), 10, 0.1, "the save")
    cfg = json.loads(saved(fw))
    assert cfg["mcu"] == {"poll_s": 45} and cfg["uart"] == fw.cfg["uart"]
    assert "password" not in cfg.get("mqtt", {}) or cfg["mqtt"]["password"] == fw.cfg["mqtt"].get("password", "")
    wait_until(lambda: "Back" in msg(browser), 20, 0.2, "the page seeing the firmware back")
    assert fw.log().count("make run: restart (exit status 75)") == 1


def test_a_change_shows_after_the_restart_in_the_form_and_the_config(browser, rig):
    _, fw = rig
    browser.get(fw.url("/settings"))
    wait_until(lambda: field(browser, "log.level") is not None, 10, 0.1, "the form")
    assert fw.state()["device"]["hostname"] == "spm02"  # no unique id on the host
    wait_until(lambda: "http://spm02.local/" in browser.find_element(By.ID, "dev").text, 10, 0.1,
               "the name on the network in the device information")
    name = field(browser, "name")
    name.clear()
    name.send_keys("meter_9")
    browser.find_element(By.ID, "save").click()
    wait_until(lambda: "Back" in msg(browser), 30, 0.2, "the page seeing the firmware back")
    st, body = fw.request("GET", "/api/config")
    assert st == 200 and json.loads(body)["name"] == "meter_9"
    assert fw.state()["device"]["name"] == "meter_9" and fw.state()["device"]["hostname"] == "meter-9"
    wait_until(lambda: field(browser, "name").get_attribute("value") == "meter_9"
               and "http://meter-9.local/" in browser.find_element(By.ID, "dev").text, 10, 0.1,
               "the form and the device information redrawn from the restarted firmware")
    assert "Settings of meter_9" in browser.find_element(By.ID, "title").text


def test_log_filter_hides_lower_levels(browser, rig):
    _, fw = rig
    browser.get(fw.url("/settings"))
    wait_until(lambda: "starting as spm02" in browser.find_element(By.ID, "log").text, 10, 0.2, "the live log")
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element(By.ID, "lv")).select_by_value("3")  # errors only
    assert "starting as spm02" not in browser.find_element(By.ID, "log").text
    Select(browser.find_element(By.ID, "lv")).select_by_value("0")
    assert "starting as spm02" in browser.find_element(By.ID, "log").text


EVIL_PAGE = """<!DOCTYPE html><html><body>
<iframe name="a"></iframe><iframe name="b"></iframe>
<form id="c" method="post" action="%(fw)s/api/cmd/clear_energy" target="a"><input name="x" value="PRESS"></form>
<form id="g" method="post" action="%(fw)s/api/config" target="b" enctype="text/plain">
<input name='{"name":"evil","x":"' value='"}'></form>
<script>
Promise.all([
 fetch('%(fw)s/api/config',{method:'POST',headers:{'Content-Type':'application/json'},body:'{"name":"evil"}'}).catch(function(){}),
 fetch('%(fw)s/api/config',{method:'POST',mode:'no-cors',headers:{'Content-Type':'text/plain'},body:'{"name":"evil"}'}).catch(function(){}),
 fetch('%(fw)s/api/cmd/clear_energy',{method:'POST',mode:'no-cors',body:'PRESS'}).catch(function(){})
]).then(function(){document.getElementById('c').submit();document.getElementById('g').submit();document.title='sent'});
</script></body></html>"""


def test_a_page_from_another_origin_changes_nothing(browser, rig):
    import http.server
    import threading
    sim, fw = rig
    page = (EVIL_PAGE % {"fw": "http://127.0.0.1:%d" % fw.http_port}).encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        before = saved(fw)
        mark = sim.mark()
        rejected = fw.state()["device"]["http"]["rejected"]
        browser.get("http://127.0.0.1:%d/" % srv.server_address[1])
        wait_until(lambda: browser.title == "sent", 10, 0.1, "the other site's page sending its requests")
        # the two forms and the two no-cors fetches reach the firmware and are refused (the JSON
        # fetch needs a preflight, which is never granted: it is not sent at all)
        wait_until(lambda: fw.state()["device"]["http"]["rejected"] >= rejected + 4, 10, 0.2,
                   "the firmware refusing the other site's four requests")
        st, body = fw.cmd("query_state", "PRESS")
        assert st == 200, body
        sim.wait_frame(0x08, timeout=5, since=mark)  # the barrier: what came before has arrived
        with sim._lock:
            got = list(sim.received[mark:])
        assert [p for c, p in got if c == 0x06] == [], got  # no DP write (DP 12 or any) reached the meter
        assert saved(fw) == before
        assert fw.log().count("make run: restart (exit status 75)") == 0
    finally:
        srv.shutdown()
        srv.server_close()


PW = "page-secret-3"


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory):
    """make bundle in a copy of this checkout with another VERSION: (path, id)."""
    import re
    import subprocess
    from harness import checkout_copy
    d = checkout_copy(str(tmp_path_factory.mktemp("checkouts") / "page"), "0.1.0-page.1")
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C", d, "bundle"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    ident = p.stdout.strip().splitlines()[-1]
    path = os.path.join(d, re.search(r"(build/spm02-0\.1\.0-page\.1-[0-9a-f]{12}\.ota)", p.stdout).group(1))
    assert ident in path and os.path.isfile(path)
    return path, ident


@pytest.mark.parametrize("room", ["", "import"])
def test_a_bundle_uploaded_from_the_page_installs(browser, bundle_file, room):
    """The owner chooses make bundle's file under Firmware update: it goes up with a progress
    bar, through update mode when the receiver has no room now (the host-only hook
    SPM02_OTA_NOROOM), the page waits for the meter to run it and shows the new version."""
    import base64
    path, ident = bundle_file
    sim = Simulator(layout="v2", port=0, interval=3600, seed=4).start()
    fw = Firmware(sim.port, None, http={"password": PW},
                  env={"SPM02_OTA_NOROOM": room} if room else None)
    auth = "Basic " + base64.b64encode(("owner:" + PW).encode()).decode()
    try:
        fw.start()
        # the browser's answer to the password prompt, for every request of the page
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": auth}})
        browser.get(fw.url("/settings"))
        wait_until(lambda: "0.1.0" in browser.find_element(By.ID, "dev").text, 10, 0.1, "the device information")
        assert not browser.find_element(By.ID, "warn").is_displayed()  # a password is set
        browser.find_element(By.ID, "up").send_keys(path)
        wait_until(lambda: "Updated" in msg(browser), 90, 0.3, "the page showing the update installed")
        assert "version 0.1.0-page.1" in msg(browser) and ident in msg(browser)
        dev = fw.state()["device"]
        assert dev["version"] == "0.1.0-page.1" and dev["ota"]["id"] == ident
        assert "0.1.0-page.1" in browser.find_element(By.ID, "dev").text
        if room:
            assert "restarting into update mode" in fw.log()
        os.makedirs(ARTIFACTS, exist_ok=True)
        browser.save_screenshot(os.path.join(ARTIFACTS, "settings-updated%s.png" % ("-update-mode" if room else "")))
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        stop_all(fw, sim)


def test_a_refused_update_is_said_in_words(browser):
    sim = Simulator(layout="v2", port=0, interval=3600, seed=4).start()
    fw = Firmware(sim.port, None)  # no password: updates are off
    try:
        fw.start()
        browser.get(fw.url("/settings"))
        wait_until(lambda: "0.1.0" in browser.find_element(By.ID, "dev").text, 10, 0.1, "the device information")
        junk = os.path.join(fw.dir, "junk.ota")
        with open(junk, "wb") as f:
            f.write(b"not a bundle" * 100)
        browser.find_element(By.ID, "up").send_keys(junk)
        wait_until(lambda: "refused" in msg(browser), 20, 0.2, "the refusal")
        assert "updates are off: set http.password first" in msg(browser) and "Nothing changed" in msg(browser)
        assert fw.state()["device"]["ota"]["id"] == "factory"
    finally:
        stop_all(fw, sim)


def test_screenshots(browser, rig):
    """/settings at desktop and phone width, light and dark (artifacts/settings-*.png;
    docs/page-settings.png is a copy of the desktop light one)."""
    _, fw = rig
    browser.get(fw.url("/settings"))
    wait_until(lambda: "starting as spm02" in browser.find_element(By.ID, "log").text
               and "spm02.local" in browser.find_element(By.ID, "dev").text, 10, 0.2, "the page filled in")
    os.makedirs(ARTIFACTS, exist_ok=True)
    try:
        for scheme in ("light", "dark"):
            browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                    {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            fg = browser.execute_script("return getComputedStyle(document.body).color")
            assert (fg == "rgb(0, 0, 0)") == (scheme == "light"), fg  # the dark scheme: light text
            for name, width in (("desktop", 1100), ("phone", 400)):
                browser.set_window_size(width, 900)
                h = browser.execute_script("return document.documentElement.scrollHeight")
                browser.set_window_size(width, h + 140)  # the whole page in one picture
                # nothing wider than the window at phone width
                assert browser.execute_script("return document.documentElement.scrollWidth") <= width
                browser.save_screenshot(os.path.join(ARTIFACTS, "settings-%s-%s.png" % (name, scheme)))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.set_window_size(1100, 900)
