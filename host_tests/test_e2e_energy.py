"""End to end, the energy a Home Assistant owner can trust: the firmware's main.py in the
MicroPython unix port against the simulator (counters a test moves, glitches and resets) and
a real Mosquitto, all on 127.0.0.1. Local midnight is put a few seconds away with time.tz
(a fixed offset), never by faking the clock. Every process a test starts, it stops."""
import json
import os
import random
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

import harness
from harness import Firmware, MqttWatch, stop_all, wait_until
from spm02sim import Simulator

STATE = "spm02/state"
DAY_KEYS = ("energy_forward_today", "energy_reverse_today", "energy_forward_yesterday",
            "energy_reverse_yesterday", "energy_forward_month", "energy_reverse_month")


def zone_with_midnight_in(seconds):
    """(a POSIX TZ string whose local midnight comes `seconds` from now, that midnight's unix
    time, its offset east of UTC in seconds)."""
    t = int(time.time()) + seconds
    east = -t % 86400
    return "XMT-%d:%02d:%02d" % (east // 3600, east // 60 % 60, east % 60), t, east


def local_date(t, east):
    return (datetime.fromtimestamp(t, timezone.utc) + timedelta(seconds=east)).date()


class Rig(harness.Rig):
    """The simulator (seed 3, counters only a test moves) and the firmware in a zone whose
    local midnight is midnight_in seconds away; with a broker, a watcher on B/state from here on."""

    def __init__(self, broker=None, layout="v2", midnight_in=43200, fw=None, **simargs):
        self.tz, self.midnight, self.east = zone_with_midnight_in(midnight_in)
        super().__init__(broker, layout, sim=dict(seed=3, energy_auto=False, **simargs), topics=(STATE,),
                         watch="now", time={"tz": self.tz}, **(fw or {}))

    def report(self):
        """A full report, and wait until the firmware took all of it, the energy bookkeeping
        too (its clock ticks once a second)."""
        before = self.state()["mcu"]["frames_rx"]
        n = len(self.sim.report_dps())
        self.sim.report_now()
        wait_until(lambda: self.state()["mcu"]["frames_rx"] >= before + n, 10, what="the report's frames")
        wait_until(lambda: not self.state()["energy"]["pending"], 10, what="the report taken by the energy clock")

    def wait_values(self, what, **want):
        def ok():
            v = self.values()
            return all(v.get(k) == x for k, x in want.items()) and v
        try:
            return wait_until(ok, 10, 0.1, what)
        except TimeoutError:
            v = self.values()
            raise AssertionError("%s: %r\n%s" % (what, {k: v.get(k) for k in want}, self.fw.log()[-2000:]))

    def published(self, key):
        """Every value of key in every B/state message this firmware sent so far (not what
        the broker kept from an earlier test)."""
        with self.watch.lock:
            msgs = [json.loads(p) for t, p, retained in self.watch.messages if t == STATE and p and not retained]
        return [m[key] for m in msgs if key in m]


@pytest.fixture
def rig(broker):
    r = Rig(broker)
    try:
        yield r
    finally:
        r.stop()


def test_a_bogus_zero_is_never_published(rig):
    sim = rig.sim
    sim.set_counts(forward=2400000, reverse=100)  # 24,000 kWh
    rig.start()
    rig.wait_values("first report", energy_forward=24000.0, energy_reverse=1.0)
    wait_until(lambda: 24000.0 in rig.published("energy_forward"), 10, what="B/state")
    sim.glitch(1, 0)
    rig.report()
    st = rig.state()
    assert st["values"]["energy_forward"] == 24000.0
    assert st["values"]["warnings"] == ["energy_forward (DP 1) went down from 24000.00 to 0.00 kWh: "
                                        "held until 3 reports in a row confirm a new cycle"]
    assert [d["value"] for d in st["dps"] if d["id"] == 1] == [0]  # the raw view
    status, body = rig.fw.request("GET", "/metrics")
    assert b"spm02_energy_forward_joules_total 86400000000\n" in body
    wait_until(lambda: any("DP 1" in w for w in json.loads(rig.watch.get(STATE))["warnings"]), 10,
               what="the held drop's warning on MQTT")
    rig.report()  # the counter again: the warning goes
    rig.wait_values("let go", energy_forward=24000.0, warnings=[])
    wait_until(lambda: rig.published("warnings")[-1:] == [[]], 10, what="the warning gone on MQTT")
    assert set(rig.published("energy_forward")) == {24000.0}  # every message, never the 0


def metric(fw, name):
    """The value of a /metrics family without labels, read by Prometheus' own parser."""
    from prometheus_client.parser import text_string_to_metric_families
    status, body = fw.request("GET", "/metrics")
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    return fams[name].samples[0].value


def test_a_held_glitch_leaves_a_trace(rig):
    """One bogus 0: after the meter is back to normal, the warning has gone but a warn line
    with the DP, the values and the local time (time.tz) stays in the log, and it is counted."""
    sim = rig.sim
    sim.set_counts(forward=2400000, reverse=100)
    rig.start()
    rig.wait_values("first report", energy_forward=24000.0)
    assert (rig.state()["energy"]["glitches"], metric(rig.fw, "spm02_energy_glitches")) == (0, 0)
    sim.glitch(1, 0)
    t0 = time.time()
    rig.report()
    t1 = time.time()
    rig.report()  # the counter again
    rig.wait_values("let go", energy_forward=24000.0, warnings=[])
    st = rig.state()
    assert (st["energy"]["glitches"], st["energy"]["new_cycles"]) == (1, 0)
    assert (metric(rig.fw, "spm02_energy_glitches"), metric(rig.fw, "spm02_energy_new_cycles")) == (1, 0)
    lines = [x for x in st["device"]["log"] if "went down" in x]
    assert len(lines) == 1, st["device"]["log"]
    head, _, rest = lines[0].partition(" W energy: energy_forward (DP 1) went down from 24000.00 to 0.00 kWh at ")
    assert head and rest.endswith(": held (not published) until 3 reports in a row confirm a new cycle"), lines
    when = datetime.strptime(rest[:19], "%Y-%m-%d %H:%M:%S")  # the zone's local time, not UTC
    lo = datetime.fromtimestamp(int(t0), timezone.utc).replace(tzinfo=None) + timedelta(seconds=rig.east)
    hi = datetime.fromtimestamp(int(t1) + 1, timezone.utc).replace(tzinfo=None) + timedelta(seconds=rig.east)
    assert lo <= when <= hi, (lines[0], lo, hi)
    assert lines[0] in rig.fw.log()  # the console too


def test_a_drop_confirmed_by_three_reports_is_published(rig):
    sim = rig.sim
    sim.set_counts(forward=500000, reverse=100)
    rig.start()
    rig.wait_values("first report", energy_forward=5000.0)
    sim.reset_energy()  # the meter started a new cycle on its own
    for n in (1, 2):
        rig.report()
        assert rig.values()["energy_forward"] == 5000.0, n
        assert rig.values()["warnings"][0].startswith("energy_forward (DP 1) went down")
    assert 0 not in rig.published("energy_forward")
    rig.report()
    rig.wait_values("the new cycle", energy_forward=0, energy_reverse=0, warnings=[])
    wait_until(lambda: rig.published("energy_forward")[-1:] == [0], 10, what="0 on MQTT")
    vals = rig.published("energy_forward")
    assert vals[:vals.index(0)] == [5000.0] * vals.index(0) and set(vals[vals.index(0):]) == {0}
    # both counters: held, then a new cycle each, each traced
    st = rig.state()
    assert (st["energy"]["glitches"], st["energy"]["new_cycles"]) == (2, 2)
    assert len([x for x in st["device"]["log"] if "confirmed by 3 reports in a row: a new cycle" in x]) == 2


def test_our_clear_energy_publishes_zero_at_once_and_today_stays_right(rig):
    sim = rig.sim
    sim.set_counts(forward=100000, reverse=5000)
    rig.start()
    rig.wait_values("first report", energy_forward=1000.0, energy_forward_today=0)
    sim.add_counts(forward=200, reverse=3)
    rig.report()
    rig.wait_values("today", energy_forward_today=2.0, energy_reverse_today=0.03)
    rig.watch.publish("spm02/cmd/clear_energy", "PRESS")  # over MQTT, as Home Assistant's button
    # the meter's echo of the clear is the one report: 0 at once, and today is still today
    rig.wait_values("cleared", energy_forward=0, energy_reverse=0, energy_forward_today=2.0,
                    energy_reverse_today=0.03, warnings=[])
    wait_until(lambda: rig.published("energy_forward")[-1:] == [0], 10, what="0 on MQTT")
    sim.add_counts(forward=30, reverse=1)
    rig.report()
    v = rig.wait_values("after the clear", energy_forward=0.3, energy_forward_today=2.3, energy_reverse_today=0.04)
    assert v["energy_forward_month"] == 2.3 and v["energy_forward_yesterday"] == 0
    assert rig.state()["energy"]["date"] == str(local_date(time.time(), rig.east))


def test_today_yesterday_and_month_across_local_midnight(broker):
    r = Rig(broker, midnight_in=30)  # the start may take a while on a busy host
    try:
        sim = r.sim
        sim.set_counts(forward=100000, reverse=5000)
        r.start()
        r.wait_values("first report", energy_forward=1000.0, energy_forward_today=0)
        assert time.time() < r.midnight - 8, "the firmware took %.0f s to start: the test needs 8 s before " \
            "midnight" % (time.time() - r.midnight + 30)
        before = local_date(r.midnight - 1, r.east)
        assert r.state()["energy"]["date"] == str(before)
        sim.add_counts(forward=123, reverse=4)
        r.report()
        r.wait_values("before midnight", energy_forward_today=1.23, energy_reverse_today=0.04,
                      energy_forward_month=1.23, energy_forward_yesterday=0)
        mark = sim.mark()
        wait_until(lambda: time.time() > r.midnight + 1, 30, what="midnight")
        after = local_date(r.midnight + 1, r.east)
        assert after == before + timedelta(days=1)
        same_month = before.month == after.month
        v = r.wait_values("after midnight", energy_forward_today=0, energy_reverse_today=0,
                          energy_forward_yesterday=1.23, energy_reverse_yesterday=0.04,
                          energy_forward_month=1.23 if same_month else 0)
        assert [c for c, _ in sim.received[mark:] if c == 0x08], "no query before midnight"
        wait_until(lambda: json.loads(r.watch.get(STATE)).get("energy_forward_today") == 0, 10,
                   what="the day change on MQTT")
        assert json.loads(r.watch.get(STATE))["energy_forward_yesterday"] == 1.23
        assert r.state()["energy"]["date"] == str(after)
        sim.add_counts(forward=50)
        r.report()
        r.wait_values("the new day", energy_forward_today=0.5,
                      energy_forward_month=1.73 if same_month else 0.5)
        st = r.state()["energy"]
        assert st["writes"] >= 2 and st["error"] is None  # the day that ended, and the file
        assert os.path.getsize(os.path.join(r.fw.dir, "energy.days")) == 366 * 16
        status, body = r.fw.request("GET", "/api/history")
        daily = json.loads(body)["daily"]
        assert daily == [{"date": str(before), "forward": 1.23, "reverse": 0.04},
                         {"date": str(after), "forward": 0.5, "reverse": 0.0}]
        assert v["energy_forward"] == 1001.23
    finally:
        r.stop()


# The power cut's moment: seeded, one in each half second of the 1.5 s after today's value
# showed (the energy clock ticks once a second; publishing goes on in between). The seed and
# moment are printed; SPM02_KILL_SEED=<n> replays a run's moments or tries others.
KILL_SEED = int(os.environ.get("SPM02_KILL_SEED", "2026"))
KILL_MOMENTS = [round((i + random.Random(KILL_SEED * 10 + i).random()) * 0.5, 3) for i in range(3)]


@pytest.mark.parametrize("moment", KILL_MOMENTS, ids=["%.3fs" % m for m in KILL_MOMENTS])
def test_kill_at_any_moment_loses_none_of_todays_energy(broker, moment):
    print("SPM02_KILL_SEED=%d: killed %.3f s after today's value showed (moments %r)" % (
        KILL_SEED, moment, KILL_MOMENTS))
    r = Rig(broker)
    try:
        sim = r.sim
        sim.set_counts(forward=100000, reverse=5000)
        r.start()
        r.wait_values("first report", energy_forward_today=0)
        sim.add_counts(forward=400, reverse=2)
        r.report()
        # a fresh start is saved within a minute (not in the rush of connecting)
        wait_until(lambda: r.state()["energy"]["writes"] >= 1, 75, 0.5, "the first save")
        assert os.path.exists(os.path.join(r.fw.dir, "energy.dat"))
        sim.add_counts(forward=100)
        r.report()
        r.wait_values("today", energy_forward_today=5.0)
        pid = r.fw.pid()
        time.sleep(moment)  # the moment of the power cut, not a wait for something
        os.kill(pid, signal.SIGKILL)  # a power cut: no save before it
        r.fw.stop()
        sim.add_counts(forward=7)  # the meter counted on meanwhile (it has its own supply here)
        sim.glitch(1, 0)  # and its first report after the module's power-up is a bogus 0
        r.fw.start()
        # the report, and the energy clock's tick after it (the day keys come with the tick)
        v = r.wait_values("the first report after the cut", energy_reverse=50.02, energy_reverse_today=0.02)
        # held against the count saved before the kill; neither it nor the 0 is shown (Home
        # Assistant saw 1005.00 since), and so no day keys either
        assert "energy_forward" not in v and "energy_forward_today" not in v
        assert v["warnings"] == ["energy_forward (DP 1) went down from 1004.00 to 0.00 kWh: "
                                 "held until 3 reports in a row confirm a new cycle"]
        assert v["energy_reverse"] == 50.02 and v["energy_reverse_today"] == 0.02
        r.report()
        r.wait_values("after the restart", energy_forward=1005.07, energy_forward_today=5.07, warnings=[])
        wait_until(lambda: r.published("energy_forward")[-1:] == [1005.07], 10, what="1005.07 on MQTT")
        vals = r.published("energy_forward")
        assert vals == sorted(vals), vals  # never down: no new cycle for HA
        assert r.state()["energy"]["file_state"] == "restored"
    finally:
        r.stop()


def test_a_corrupt_file_is_a_warning_and_a_fresh_start():
    r = Rig(None)
    try:
        with open(os.path.join(r.fw.dir, "energy.dat"), "wb") as f:
            f.write(b"SPE1" + bytes(range(256)) * 8)
        r.sim.set_counts(forward=1000)
        r.start()
        st = r.state()
        w = [x for x in st["device"]["config_warnings"] if "energy.dat" in x]
        assert len(w) == 1 and w[0].endswith("; today, yesterday and month start afresh"), w
        assert "energy.dat" in st["energy"]["file_state"]
        r.wait_values("a fresh start", energy_forward=10.0, energy_forward_today=0)
        assert "energy.dat" in r.fw.log()  # logged too
    finally:
        r.stop()


def test_history_after_reports():
    r = Rig(None)
    try:
        sim = r.sim
        for ph, v, i, pf in (("a", 230.0, 5.0, 0.9), ("b", 231.0, 2.0, 1.0), ("c", 229.0, 4.0, -0.8)):
            sim.set_phase(ph, voltage=v, current=i, pf=pf)
        r.start()
        r.wait_values("first report", energy_forward_today=0)
        r.report()
        truth = sim.truth()
        status, body = r.fw.request("GET", "/api/history")
        assert status == 200
        h = json.loads(body)
        p = h["power"]
        now = int(time.time())
        assert p["step_s"] == 300 and p["end"] in (now // 300 * 300, now // 300 * 300 - 300), p["end"]
        assert [len(p[k]) for k in ("a", "b", "c", "total")] == [288] * 4
        last = [p[k][-1] for k in "abc"]
        assert last == [truth["power_a"], truth["power_b"], truth["power_c"]] == [1035, 462, -733]
        assert p["total"][-1] == sum(last) and p["a"][:-2] == [None] * 286
        assert h["daily"] == [{"date": str(local_date(now, r.east)), "forward": 0.0, "reverse": 0.0}]
    finally:
        r.stop()


def test_single_phase_history_and_days():
    r = Rig(None, layout="spm01")
    try:
        r.sim.set_phase("a", voltage=230.0, current=3.0, pf=-0.5)  # exporting: 345 W out
        r.sim.set_counts(forward=700, reverse=30)
        r.start()
        r.wait_values("first report", energy_forward_today=0, energy_reverse_today=0)
        r.sim.add_counts(forward=2, reverse=1)
        r.report()
        r.wait_values("today", energy_forward_today=0.02, energy_reverse_today=0.01)
        p = json.loads(r.fw.request("GET", "/api/history")[1])["power"]
        assert sorted(p) == ["a", "end", "step_s", "total"] and p["a"][-1] == -345 == p["total"][-1]
    finally:
        r.stop()


def test_home_assistant_gets_the_day_sensors(broker):
    r = Rig(broker)
    try:
        w = MqttWatch(broker.port, ("homeassistant/#",))

        def config(key):
            # one device-based message, or (before it) a config per entity
            d = w.get("homeassistant/device/spm02/config")
            if d:
                return json.loads(d)["cmps"].get(key)
            c = w.get("homeassistant/sensor/spm02/%s/config" % key)
            return dict(json.loads(c), p="sensor") if c else None
        try:
            r.start()
            wait_until(lambda: all(config(k) for k in DAY_KEYS), 10, what="the day sensors")
            for key in DAY_KEYS:
                c = config(key)
                assert (c["p"], c["unit_of_measurement"], c["device_class"], c["state_class"],
                        c["suggested_display_precision"]) == ("sensor", "kWh", "energy", "total_increasing", 2), key
                assert c["value_template"] == "{{ value_json.get('%s') }}" % key
        finally:
            w.stop()
        wait_until(lambda: "energy_forward_month" in json.loads(r.watch.get(STATE) or b"{}"), 10,
                   what="the day keys on MQTT")
    finally:
        r.stop()
