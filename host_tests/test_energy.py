# Today, yesterday and this month (lib/energy.py, lib/days.py) from the meter's counters at
# local midnight, and the power ring (lib/history.py), fed unix times as the firmware's
# clock would. Runs under pytest and in the MicroPython unix port.
import dptable
import history
from energy import Energy, EV_DAY, EV_ROLL, EV_SAVE, EV_QUERY, EV_SHOW, SAVE_S, Y2K
from history import History, NULL, STEP, W
from meter import Meter
import commands
from mcu import Mcu
from tz import days_from_civil
from tuya import T_VALUE
from reports import feed, v2_report, spm01_report, utc, counts, days

PORTABLE = True

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"


class Rig:
    def __init__(self, tz=BERLIN, mcu=None):
        self.mcu = mcu or Mcu()
        self.m = self.mcu.meter
        self.e = Energy(self.m, tz)
        self.evs = []

    def at(self, t, f=None, r=0, **kw):
        """A report with these counts (if f is given) and a tick at unix time t."""
        if f is not None:
            feed(self.m, counts(f, r, **kw))
        ev = self.e.tick(t, f is not None)
        self.evs.append(ev)
        return ev


def test_nothing_before_the_clock_and_a_report():
    r = Rig()
    feed(r.m, counts(1000))
    assert days(r.m) == (None,) * 6  # no tick yet: the day is not known
    r = Rig()
    assert r.at(utc(2026, 3, 10, 9)) & EV_DAY
    assert days(r.m) == (None,) * 6 and r.e.date() == "2026-03-10"
    assert r.at(utc(2026, 3, 10, 9, 0, 15), 100000, 500) & EV_SHOW  # publish the new keys
    assert days(r.m) == (0, 0, 0, 0, 0, 0)  # a first start: today counts from here
    assert r.at(utc(2026, 3, 10, 9, 0, 30), 100001, 500) & EV_SHOW == 0  # the report says it


def test_today_yesterday_month_across_midnight():
    r = Rig()
    r.at(utc(2026, 3, 10, 9), 100000, 500)
    r.at(utc(2026, 3, 10, 18), 101234, 512)
    assert days(r.m) == (12.34, 0.12, 0, 0, 12.34, 0.12)
    r.at(utc(2026, 3, 10, 22, 59, 0), 101500, 520)  # 23:59 in Berlin (CET)
    ev = r.at(utc(2026, 3, 10, 23, 0, 0))  # midnight: no new report, the day ends on the last
    assert ev & EV_DAY and ev & EV_ROLL and ev & EV_SAVE
    assert r.e.closed == (days_from_civil(2026, 3, 10), 1500, 20)
    assert days(r.m) == (0, 0, 15.0, 0.2, 15.0, 0.2)
    r.at(utc(2026, 3, 11, 6), 101700, 520)
    assert days(r.m) == (2.0, 0, 15.0, 0.2, 17.0, 0.2)
    assert r.e.date() == "2026-03-11"


def test_a_report_in_the_tick_that_sees_midnight_ends_the_day():
    r = Rig("UTC0")
    r.at(utc(2026, 3, 10, 23, 59, 59), 1000)
    r.at(utc(2026, 3, 11, 0, 0, 0), 1003)  # it came before the firmware saw the date change
    assert r.e.closed[1] == 3 and days(r.m)[:3] == (0, 0, 0.03)


def test_the_values_are_exact_text():
    r = Rig()
    r.at(utc(2026, 3, 10, 9), 100000, 500)
    r.at(utc(2026, 3, 10, 10), 100007, 501)
    s = r.m.state_json()
    assert '"energy_forward_today":0.07,' in s and '"energy_reverse_month":0.01' in s


def test_month_starts_again_and_yesterday_needs_the_day_before():
    r = Rig("UTC0")
    r.at(utc(2026, 3, 31, 12), 1000, 0)
    r.at(utc(2026, 3, 31, 23, 59), 1300, 0)
    r.at(utc(2026, 4, 1, 0, 0, 0))
    r.at(utc(2026, 4, 1, 0, 0, 1), 1301, 0)
    assert days(r.m) == (0.01, 0, 3.0, 0, 0.01, 0)
    # no tick for two days (the firmware was off with the meter): yesterday is 0
    r.at(utc(2026, 4, 3, 10), 1400, 0)
    assert r.e.closed == (days_from_civil(2026, 4, 1), 100, 0)
    assert days(r.m) == (0, 0, 0, 0, 1.0, 0)


def test_clear_in_the_middle_of_a_day():
    r = Rig()
    r.at(utc(2026, 3, 10, 9), 100000, 500)
    r.at(utc(2026, 3, 10, 12), 100300, 510)
    commands.run(r.mcu, "clear_energy", b"PRESS")
    assert r.at(utc(2026, 3, 10, 12, 0, 1), 0, 0) & EV_SAVE  # the new cycle is saved at once
    r.e.did_save(utc(2026, 3, 10, 12, 0, 1))
    assert r.m.values()["energy_forward"] == 0
    d = days(r.m)
    assert (d[0], d[2], d[4]) == (3.0, 0, 3.0)
    r.at(utc(2026, 3, 10, 15), 250, 3)
    assert days(r.m) == (5.5, 0.13, 0, 0, 5.5, 0.13)


def test_a_new_cycle_of_the_meter_counts_from_zero():
    r = Rig()
    r.at(utc(2026, 3, 10, 9), 100000, 500)
    for i in range(3):  # the meter's counter started again: confirmed by 3 reports
        r.at(utc(2026, 3, 10, 10, 0, i), 4 + i, 500)
    assert r.m.values()["energy_forward"] == 0.06
    assert days(r.m)[0] == 0.06  # what the new cycle counted (it started from 0)


def test_a_glitch_never_reaches_the_day_keys():
    r = Rig()
    r.at(utc(2026, 3, 10, 9), 100000, 500)
    r.at(utc(2026, 3, 10, 10), 0, 500)
    assert days(r.m)[0] == 0 and r.m.values()["energy_forward"] == 1000
    r.at(utc(2026, 3, 10, 11), 100100, 500)
    assert days(r.m)[0] == 1.0


def test_dst_days_end_at_local_midnight():
    r = Rig()
    r.at(utc(2026, 3, 28, 22, 59, 59), 1000)  # Berlin: Mar 28 23:59:59 CET
    assert r.e.date() == "2026-03-28"
    assert r.at(utc(2026, 3, 28, 23), 1010) & EV_ROLL  # Mar 29 00:00 CET; DST starts at 02:00
    assert r.e.date() == "2026-03-29" and r.e.midnight + Y2K == utc(2026, 3, 29, 22)  # 23 hours
    assert r.at(utc(2026, 3, 29, 22), 1050) & EV_ROLL
    assert days(r.m)[2] == 0.4
    assert r.e.midnight + Y2K == utc(2026, 3, 30, 22)


def test_southern_dst_and_india():
    r = Rig("AEST-10AEDT,M10.1.0,M4.1.0/3")
    r.at(utc(2026, 4, 4, 12, 59, 59), 10)  # Sydney: Apr 4 23:59:59 AEDT
    assert r.e.date() == "2026-04-04"
    assert r.at(utc(2026, 4, 4, 13), 20) & EV_ROLL  # Apr 5 00:00 AEDT; DST ends at 03:00
    assert r.e.midnight + Y2K == utc(2026, 4, 5, 14)  # a day of 25 hours
    r = Rig("IST-5:30")
    r.at(utc(2026, 1, 1, 18, 29), 0)
    assert r.e.date() == "2026-01-01" and r.e.midnight + Y2K == utc(2026, 1, 1, 18, 30)


def test_ask_the_meter_before_midnight():
    r = Rig("UTC0")
    r.at(utc(2026, 3, 10, 23, 59, 50), 1000)
    assert r.at(utc(2026, 3, 10, 23, 59, 56)) & EV_QUERY == 0
    assert r.at(utc(2026, 3, 10, 23, 59, 57)) & EV_QUERY
    assert r.at(utc(2026, 3, 10, 23, 59, 58)) & EV_QUERY == 0  # once


def test_saves_hourly_at_most_and_at_once_for_a_day():
    r = Rig("UTC0")
    t = utc(2026, 3, 10, 9)
    saves = []
    for s in range(0, 2 * 3600, 15):  # a report every 15 s for two hours
        if r.at(t + s, 1000 + s // 15) & EV_SAVE:
            saves.append(s)
            r.e.did_save(t + s)
    assert saves == [60, 60 + SAVE_S], saves  # the new starting points within a minute, then hourly
    r = Rig("UTC0")
    r.at(utc(2026, 3, 10, 9), 1000)
    r.e.did_save(utc(2026, 3, 10, 9))
    for s in range(1, 4000, 60):  # no reports: nothing to save
        assert r.at(utc(2026, 3, 10, 9) + s) & EV_SAVE == 0


def test_restart_on_the_same_day_and_on_a_later_day():
    r = Rig("UTC0")
    r.at(utc(2026, 3, 10, 9), 1000, 10)
    r.at(utc(2026, 3, 10, 12), 1500, 10)
    saved = (r.e.day, r.e.mon, r.e.have, list(r.e.c), r.m.counters.value[:], r.m.counters.fold[:])

    def restart(t, f):
        r2 = Rig("UTC0")
        e, c = r2.e, r2.m.counters
        e.day, e.mon, e.have, e.c[:] = saved[0], saved[1], saved[2], saved[3]
        for i in range(len(c.ids)):
            c.st[i], c.value[i], c.fold[i] = 1, saved[4][i], saved[5][i]
        r2.at(t)
        assert days(r2.m) == (None,) * 6  # before the meter's first report since boot
        r2.at(t + 5, f, 11)
        return r2

    r2 = restart(utc(2026, 3, 10, 18), 1700)
    assert days(r2.m) == (7.0, 0.01, 0, 0, 7.0, 0.01)  # none of today's energy lost
    r3 = restart(utc(2026, 3, 11, 8), 1700)  # the day saved ends with the first counts after
    assert r3.e.closed == (days_from_civil(2026, 3, 10), 700, 1)
    assert days(r3.m) == (0, 0, 7.0, 0.01, 7.0, 0.01)
    r4 = restart(utc(2026, 3, 10, 18), 0)  # a bogus 0 first: held, nothing shown
    assert "energy_forward" not in r4.m.values() and days(r4.m)[0] is None
    r4.at(utc(2026, 3, 10, 18, 1), 1600, 11)  # then the counter: today is right
    assert r4.m.values()["energy_forward"] == 16.0 and days(r4.m)[0] == 6.0


def test_spm01_reverse_is_dp2():
    r = Rig("UTC0")
    feed(r.m, spm01_report(fwd=500, rev=70))
    r.e.tick(utc(2026, 3, 10, 9), True)
    feed(r.m, spm01_report(fwd=510, rev=75))
    r.e.tick(utc(2026, 3, 10, 10), True)
    assert days(r.m)[:2] == (0.1, 0.05)


def test_power_ring_averages_slots():
    r = Rig("UTC0")
    t0 = utc(2026, 3, 10, 9)  # a slot boundary
    for s, pa in ((0, 1000), (60, 2000), (120, 1500)):
        r.at(t0 + s, 100, pa=pa, pb=0, pc=-100)
    h = r.e.ring
    assert h.slot == t0 // STEP and [h.avg(k) for k in range(3)] == [1500, 0, -100]
    r.at(t0 + STEP + 1, 101, pa=10, pb=0, pc=-100)
    assert [h.get(t0 // STEP, k) for k in range(3)] == [1500, 0, -100]
    assert h.get(t0 // STEP + 1, 0) == 10
    # ticks without reports: the slots after stay NULL
    for s in range(2, 9):
        r.at(t0 + s * STEP)
    assert h.get(t0 // STEP + 2, 0) == NULL and h.get(t0 // STEP + 1, 0) == 10


def test_ring_rounds_and_clamps():
    h = History()
    for p in (1, 2):
        h.add(5, 0, p)
    for p in (-1, -2):
        h.add(5, 1, p)
    h.add(5, 2, 100000)
    assert [h.avg(k) for k in range(3)] == [2, -2, 32767]  # 1.5 and -1.5 away from zero
    h.goto(6)
    assert [h.get(5, k) for k in range(3)] == [2, -2, 32767] and h.avg(0) == NULL


def test_ring_gaps_window_and_clock_going_back():
    h = History()
    h.add(100, 0, 50)
    h.goto(100 + W + 5)  # a gap longer than RAM keeps: the closed slot is lost, the rest NULL
    assert all(h.get(s, 0) == NULL for s in range(100, 100 + W + 5))
    h.add(200, 0, 7)
    h.goto(201)
    h.base = 200  # what the file holds (a save)
    assert h.get(200, 0) == NULL  # read from the file, not RAM
    h.goto(150)  # the clock went back: the file's slots lie in the future
    assert h.base == -1 and h.slot == 150


def test_ring_takes_a_report_in_no_allocation():
    import gc
    h = History()
    h.add(1, 0, 5)
    gc.collect()
    if hasattr(gc, "mem_alloc"):  # MicroPython
        a = gc.mem_alloc()
        for i in range(100):
            h.add(1, i % 3, i)
        assert gc.mem_alloc() == a
    assert history.SLOTS == 288 and W * STEP > SAVE_S


def test_phase_power_is_phase_counts_and_allocates_nothing():
    import gc
    from reports import v0x
    from tuya import T_RAW
    # value DPs 104/107/110, SPM01's raw DP 6, v02's raw DPs 6-8 (sign bit 1: export)
    for recs, watts in ((v2_report(pc=-600), [1100, 250, -600]), (spm01_report(), [850]),
                        ([(6 + k, T_RAW, v0x(2, 2300, 3000, 675 + k, 100, 700, 96, 2 if k else 0))
                          for k in range(3)], [675, -676, -677])):
        m = Meter()
        feed(m, recs)
        n = m.phases()
        assert [m.phase_power(k) for k in range(n)] == watts == [m.phase_counts(k)[0][2] for k in range(n)]
        if hasattr(gc, "mem_alloc"):  # MicroPython
            gc.collect()
            a = gc.mem_alloc()
            for _ in range(10):
                for k in range(m.phases()):
                    m.phase_power(k)
            assert gc.mem_alloc() == a
