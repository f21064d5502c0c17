"""The page's energy table and charts in a real browser (Debian's headless chromium): the
firmware in the MicroPython unix port restores a day of power slots and 30 days of energy
from files made by the firmware's own store.py (fed the way the firmware feeds it), serves
/api/history, and the page draws it. The drawn geometry is read back through each chart's
own scale and compared with the API's numbers. Screenshots go to artifacts/."""
import json
import math
import os
import re
import time

import pytest

from harness import ARTIFACTS, Firmware, Rig, wait_until
from spm02sim import Simulator
from browser import screenshot, text, number

from energy import Energy, EV_ROLL
from mcu import Mcu
from firmware import store
from reports import counts, feed

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"


def make_files(d, end, tz=BERLIN):
    """energy.dat and energy.days as the firmware would have left them at unix time end:
    a day of reports every 5 minutes (a house that exports on phase C around noon), saved
    hourly, and the 30 days before. Returns the counters' final counts."""
    e = Energy(Mcu().meter, tz)
    e.path = os.path.join(d, "energy.dat")
    days_path = e.path[:-3] + "days"
    t0 = (end - 86400) // 300 * 300 + 300
    e.tick(t0 - 300, False)
    for back in range(30, 0, -1):  # the days before: a winter-to-spring mix
        store.put_day(days_path, e.today - back, 800 + 37 * (back % 9) + 5 * back, 150 * (back % 4))
    f, r = 1000000, 50000
    for i in range(288):
        t = t0 + i * 300
        h = (t % 86400) / 3600.0
        sun = max(0.0, math.sin((h - 6) / 12 * math.pi))
        pa = int(400 + 900 * (1 + math.sin(i / 9.0)))
        pb = int(250 + 120 * math.cos(i / 5.0))
        pc = int(300 - 2600 * sun)
        if 100 <= i < 112:
            pa = pb = pc = None  # an hour without reports: a gap in the chart
        else:
            imp = max(pa + pb + pc, 0) * 300 // 36000  # 0.01 kWh per 5 minutes
            exp = max(-(pa + pb + pc), 0) * 300 // 36000
            f, r = f + imp, r + exp
            feed(e.meter, counts(f, r, pa=pa, pb=pb, pc=pc))
        ev = e.tick(t, pa is not None)
        if ev & EV_ROLL:
            store.put_day(days_path, *e.closed)
        if i % 12 == 11:
            store.save(e.path, e)
    store.save(e.path, e)
    return f, r


@pytest.fixture
def rig():
    parts = Rig(sim={"energy_auto": False}, time={"tz": BERLIN})
    sim, fw = parts.sim, parts.fw
    try:
        f, r = make_files(fw.dir, int(time.time()))
        sim.set_counts(forward=f, reverse=r)
        parts.start()
        yield sim, fw
    finally:
        parts.stop()


def path_points(d):
    """[(x, y)] runs of an SVG path of M/L/h0 commands: [[...], ...] split at each M."""
    runs = []
    for cmd, x, y in re.findall(r"([ML])([-\d.]+) ([-\d.]+)", d):
        if cmd == "M":
            runs.append([])
        runs[-1].append((float(x), float(y)))
    return runs


def scale(driver, svg_id):
    ds = driver.execute_script("return Object.assign({}, document.getElementById(arguments[0]).dataset)", svg_id)
    return {k: float(v) for k, v in ds.items()}


def test_charts_match_the_api(browser, rig):
    sim, fw = rig
    d = browser
    d.get(fw.url("/"))
    wait_until(lambda: d.execute_script("return document.querySelectorAll('#gd rect').length") > 20, 15, 0.2,
               "the daily bars")
    wait_until(lambda: number(d, "v-energy_forward_today") is not None, 10, 0.1, "the energy table")
    api = json.loads(fw.request("GET", "/api/history")[1])
    h = d.execute_script("return G")  # what the page drew: the API's numbers
    p = h["power"]
    assert sum(1 for x in p["a"] if x is not None) > 250  # the restored day
    assert h["daily"][:-1] == api["daily"][:-1] and p["end"] == api["power"]["end"]
    for k in ("a", "b", "c", "total"):  # (the slot being filled may have moved on since)
        assert p[k][:-1] == api["power"][k][:-1], k
    # --- power: every drawn point, read back through the chart's own scale, is the API's
    s = scale(d, "gp")
    n = int(s["n"])
    assert n == 288

    def value(x, y):
        i = (x - s["l"]) * (n - 1) / (s["r"] - s["l"])
        return round(i), s["hi"] - (y - s["t"]) * (s["hi"] - s["lo"]) / (s["b"] - s["t"])

    tol = (s["hi"] - s["lo"]) / (s["b"] - s["t"]) * 0.06 + 0.5  # coordinates carry one decimal
    for k in ("a", "b", "c", "total"):
        dd = d.find_element("id", "p-" + k).get_attribute("d")
        drawn = {}
        runs = path_points(dd)
        for run in runs:
            for x, y in run:
                i, v = value(x, y)
                assert abs(i - (x - s["l"]) * (n - 1) / (s["r"] - s["l"])) < 0.05  # on a slot
                drawn[i] = v
        api = {i: v for i, v in enumerate(p[k]) if v is not None}
        assert sorted(drawn) == sorted(api), k
        for i in api:
            assert abs(drawn[i] - api[i]) <= tol, (k, i, drawn[i], api[i])
        # a gap of nulls breaks the line: one run per stretch of reports
        stretches = sum(1 for i in api if i - 1 not in api)
        assert len(runs) == stretches, k
    assert min(p["c"][i] for i in range(n) if p["c"][i] is not None) < 0
    zero = s["t"] + s["hi"] * (s["b"] - s["t"]) / (s["hi"] - s["lo"])
    ys = [y for run in path_points(d.find_element("id", "p-c").get_attribute("d")) for _, y in run]
    assert max(ys) > zero + 5  # export is drawn below zero
    # --- days: each bar's height through the scale is the day's energy, import up, export down
    s = scale(d, "gd")
    k = (s["b"] - s["t"]) / (s["hi"] - s["lo"])
    y0 = s["t"] + s["hi"] * k
    daily = {x["date"]: x for x in h["daily"][-30:]}
    bars = d.execute_script("return [...document.querySelectorAll('#gd rect')].map(r => [r.dataset.date, "
                            "r.getAttribute('class'), +r.getAttribute('x'), +r.getAttribute('y'), "
                            "+r.getAttribute('height')])")
    seen = set()
    for date, cls, x, y, hgt in bars:
        want = daily[date]["forward" if cls == "f" else "reverse"]
        assert abs(hgt / k - want) <= 0.06 / k + 0.01, (date, cls, hgt / k, want)
        assert (abs(y + hgt - y0) < 0.2) if cls == "f" else (abs(y - y0) < 0.2), (date, cls)
        seen.add((date, cls))
    assert seen == {(dt, c) for dt, x in daily.items() for c, key in (("f", "forward"), ("r", "reverse")) if x[key]}
    xs = {date: x for date, cls, x, _, _ in bars if cls == "f"}
    dates = sorted(xs)
    assert [xs[a] < xs[b] for a, b in zip(dates, dates[1:])] == [True] * (len(dates) - 1)
    assert h["daily"][-1]["date"] == fw.state()["energy"]["date"]  # the last bar is today
    screenshot(d, "page-energy.png")
    d.set_window_size(900, 1420)  # the readings, the energy table and both charts
    d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(os.path.join(ARTIFACTS, "page-energy-top.png"))
    d.set_window_size(1100, 900)
    for el, name in (("gp", "chart-power.png"), ("gd", "chart-days.png"), ("en", "energy-table.png")):
        e = d.find_element("id", el)
        d.execute_script("arguments[0].scrollIntoView()", e)
        e.screenshot(os.path.join(ARTIFACTS, name))
    screenshot(d, "page-energy-phone.png", 400)
    d.set_window_size(400, 800)
    try:
        e = d.find_element("id", "gp")
        d.execute_script("arguments[0].scrollIntoView()", e)
        assert e.size["width"] >= 340  # the chart takes the phone's width
        e.screenshot(os.path.join(ARTIFACTS, "chart-power-phone.png"))
    finally:
        d.set_window_size(1100, 900)
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        screenshot(d, "page-energy-dark.png")
    finally:
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_today_updates_live(browser, rig):
    sim, fw = rig
    d = browser
    d.get(fw.url("/"))
    wait_until(lambda: number(d, "v-energy_forward_today") is not None, 15, 0.1, "the energy table")
    today = fw.state()["energy"]["date"]

    def bar():
        return d.execute_script("let r = document.querySelector('#gd rect.f[data-date=\"%s\"]');"
                                "return r && +r.getAttribute('height')" % today)
    before = number(d, "v-energy_forward_today")
    sim.add_counts(forward=2500)  # 25 kWh more today
    sim.report_now()
    wait_until(lambda: number(d, "v-energy_forward_today") == round(before + 25, 2), 10, 0.1, "today's value")
    s = scale(d, "gd")
    k = (s["b"] - s["t"]) / (s["hi"] - s["lo"])
    wait_until(lambda: bar() and abs(bar() / k - (before + 25)) < 0.1, 10, 0.1, "today's bar")
    for key in ("energy_forward_today", "energy_reverse_today", "energy_forward_yesterday", "energy_forward_month"):
        assert number(d, "v-" + key) == fw.state()["values"][key], key
    assert "Energy forward today" not in text(d, "tot")  # in the energy table, not the totals


def test_no_clock_yet_and_an_empty_history(browser):
    """A fresh SPM01 firmware before its clock is set (an ESP32 before NTP; on the host the
    hook SPM02_NO_CLOCK=1): /api/history is empty, the page shows the readings and waits
    for the clock, no day values, nothing saved. Then with the clock and still no files:
    the history is what came since, one slot and today, phase A only."""
    sim = Simulator(layout="spm01", port=0, interval=3600).start()
    fw = Firmware(sim.port, None, env={"SPM02_NO_CLOCK": "1"})
    try:
        fw.start()
        d = browser
        d.get(fw.url("/"))
        wait_until(lambda: number(d, "v-voltage_a") is not None, 15, 0.1, "readings")
        assert json.loads(fw.request("GET", "/api/history")[1]) == \
            {"power": {"step_s": 300, "end": None, "a": [], "total": []}, "daily": []}
        wait_until(lambda: text(d, "gp") == "waiting for the clock", 10, 0.1, "the power chart's note")
        assert d.execute_script("return document.querySelectorAll('#gp path, #gd *').length") == 0
        assert text(d, "gpl") == ""  # no legend without a chart
        v = fw.state()["values"]
        assert "energy_forward" in v and "energy_forward_today" not in v and "energy_reverse_today" not in v
        assert number(d, "v-energy_forward_today") is None and number(d, "v-energy_reverse_month") is None
        screenshot(d, "page-energy-spm01-no-clock.png", 400)
        fw.stop()
        assert not [n for n in os.listdir(fw.dir) if n.startswith("energy")]  # nothing to keep yet

        fw.env = {}  # the clock is set
        fw.start()
        d.get(fw.url("/"))
        wait_until(lambda: number(d, "v-energy_forward_today") == 0, 15, 0.1, "today's energy")
        h = json.loads(fw.request("GET", "/api/history")[1])
        p = h["power"]
        assert sorted(p) == ["a", "end", "step_s", "total"] and len(p["a"]) == 288
        got = [(i, x) for i, x in enumerate(p["a"]) if x is not None]  # (a new slot may have begun)
        assert got in ([(287, sim.truth()["power_a"])], [(286, sim.truth()["power_a"])]) and p["total"] == p["a"]
        assert h["daily"] == [{"date": fw.state()["energy"]["date"], "forward": 0.0, "reverse": 0.0}]
        wait_until(lambda: d.execute_script("return document.querySelectorAll('#p-a').length") == 1, 10, 0.1,
                   "the power chart")
        assert d.execute_script("return document.querySelectorAll('#p-b, #p-c').length") == 0  # one phase
        assert "phase A" in text(d, "gpl") and "phase B" not in text(d, "gpl")
        assert d.execute_script("return document.querySelectorAll('#gd rect').length") == 0  # 0 kWh today
        screenshot(d, "page-energy-spm01-fresh.png", 400)
    finally:
        fw.stop()
        sim.stop()
