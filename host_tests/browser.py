"""Debian's headless chromium (via selenium and chromedriver) for the page tests, and the
helpers that read and drive a page. Not a test module: conftest.py's `browser` fixture
(one chromium for a test module) comes from chromium() here."""
import os
import shutil

import pytest

from harness import ARTIFACTS, remove_tempdirs, tempdir, wait_until

CI = os.environ.get("CI", "").lower() in ("true", "1")  # CI must run these tests, never skip them
if CI:
    from selenium import webdriver  # missing: an error, not a skip
else:
    webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def chromium():
    """A headless chromium with a profile of its own, yielded once; quit and its profile
    removed after (the body of conftest.py's browser fixture)."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        why = "chromium and chromium-driver are not installed (make test-py installs them)"
        if CI:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    profile = tempdir("chrome-")
    try:
        opts = Options()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1100,900",
                  "--user-data-dir=" + profile):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        try:
            driver.implicitly_wait(0)
            yield driver
        finally:
            driver.quit()
    finally:
        remove_tempdirs(profile)


# The page rebuilds its tables every poll, so an element WebDriver found may be gone (stale)
# by the time it is read: what is read from them is read in one step, in the page.

def text(driver, id_):
    """The element's text as shown, "" while the page has not drawn it (an SVG element,
    which has no innerText: its textContent)."""
    return driver.execute_script("var e=document.getElementById(arguments[0]);"
                                 "return e?(e.innerText===undefined?e.textContent:e.innerText).trim():''", id_)


def classes(driver, id_):
    return driver.execute_script("return document.getElementById(arguments[0]).className.split(' ')", id_)


def cells(driver, css):
    """The texts of every element matching css, in one step."""
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0]))"
                                 ".map(e=>(e.innerText===undefined?e.textContent:e.innerText).trim())", css)


def number(driver, id_):
    try:
        return float(text(driver, id_))
    except ValueError:
        return None


def open_page(driver, fw):
    driver.get(fw.url("/"))
    wait_until(lambda: number(driver, "v-voltage_a") is not None, 15, 0.1, "readings on the page")


def wait_text(driver, id_, pred, what, timeout=8):
    try:
        return wait_until(lambda: pred(text(driver, id_)), timeout, 0.1, what)
    except TimeoutError:
        raise AssertionError("%s: #%s shows %r" % (what, id_, text(driver, id_)))


def screenshot(driver, name, width=1100):
    os.makedirs(ARTIFACTS, exist_ok=True)
    h = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, h + 140)  # the whole page in one picture
    driver.save_screenshot(os.path.join(ARTIFACTS, name))
    driver.set_window_size(1100, 900)


def click(driver, id_):
    driver.find_element(By.ID, id_).click()


def command(driver, sim, button, cmd, dp=None, status=None):
    """Click a button; the simulator receives the frame; the status shows success."""
    mark = sim.mark()
    click(driver, button)
    got = sim.wait_frame(cmd, timeout=5, since=mark, dp=dp)
    wait_text(driver, status or "s-" + button[2:], lambda t: t.startswith("✓"), button + " done")
    return got
