# The counter rule (lib/counters.py) and what the meter shows with it: no bogus drop of an
# energy counter is ever shown, a held drop is a warning naming the DP, a drop confirmed by
# 3 reports in a row is a new cycle, our own clear_energy is a new cycle at once. Runs under
# pytest and in the MicroPython unix port.
from counters import Counters, HOLD
from meter import Meter
from commands import encode_dp
from tuya import T_VALUE, T_RAW
import commands
from mcu import Mcu
from reports import feed, v2_report, cloud_report, raw_phase, spm01_report
import report

PORTABLE = True


def reports(c, i, counts):
    return [(c.report(i, n), c.believed(i)) for n in counts]


def test_nothing_before_the_first_report():
    c = Counters((1, 23))
    assert c.believed(0) is None and c.mono(0) is None and c.slot(23) == 1 and c.slot(2) == -1
    assert c.report(0, 0)  # a first 0 is believed: there is nothing to compare it with
    assert c.believed(0) == 0 and c.believed(1) is None


def test_a_glitch_is_held_and_let_go():
    c = Counters((1,))
    c.report(0, 2400000)
    assert reports(c, 0, (0, 2400001, 2400001, 2400002)) == [
        (True, 2400000), (True, 2400001), (False, 2400001), (True, 2400002)]
    assert c.held[0] == 0 and c.cycles == 0 and c.mono(0) == 2400002


def test_a_drop_confirmed_by_three_reports_is_a_new_cycle():
    c = Counters((1,))
    c.report(0, 500)
    # a counter that started again counts up (or stays): the third report confirms it
    assert reports(c, 0, (0, 0, 3)) == [(True, 500), (False, 500), (True, 3)]
    assert c.cycles == 1 and c.fold[0] == 500 and c.mono(0) == 503
    assert HOLD == 3


def test_a_held_drop_that_goes_down_again_starts_counting_afresh():
    c = Counters((1,))
    c.report(0, 500)
    # each changes the warning (it names the value held)
    assert reports(c, 0, (10, 4, 5)) == [(True, 500), (True, 500), (True, 500)]
    assert c.held[0] == 2 and c.low[0] == 5
    assert reports(c, 0, (6,)) == [(True, 6)]  # 4, 5, 6: three in a row
    assert c.mono(0) == 506


def test_our_clear_is_a_new_cycle_at_once():
    c = Counters((1, 23))
    c.report(0, 500)
    c.report(1, 0)
    c.cleared()
    assert reports(c, 0, (500, 0)) == [(False, 500), (True, 0)]  # a report before the clear took
    assert c.cycles == 1 and c.mono(0) == 500
    assert reports(c, 1, (0, 0, 0)) == [(False, 0)] * 3  # already 0: nothing to do
    # the clear is forgotten after 3 reports: a later bogus drop is held again
    c.report(0, 100)
    c.report(0, 100)
    assert reports(c, 0, (0,)) == [(True, 100)] and c.held[0] == 1


def test_the_count_from_before_a_restart_holds_a_bogus_first_report():
    c = Counters((1,))
    c.st[0], c.value[0], c.fold[0] = 1, 2400000, 7  # as firmware/store.py restores it
    assert c.believed(0) is None  # nothing shown before the meter's first report
    # held, and not shown either: Home Assistant may have seen more since the save
    assert reports(c, 0, (0,)) == [(True, None)] and c.held[0] == 1 and c.mono(0) is None
    assert reports(c, 0, (2400010,)) == [(True, 2400010)]
    assert c.mono(0) == 2400017
    c = Counters((1,))
    c.st[0], c.value[0] = 1, 2400000
    assert reports(c, 0, (2400000,)) == [(True, 2400000)]  # the same count: shown now
    c = Counters((1,))
    c.st[0], c.value[0] = 1, 500
    assert reports(c, 0, (0, 0, 1)) == [(True, None), (False, None), (True, 1)]  # a new cycle
    assert c.mono(0) == 501


def test_mono_never_goes_down():
    c = Counters((1,))
    last = 0
    for n in (100, 0, 200, 0, 0, 0, 5, 5, 0, 7, 0, 0, 1, 2):
        c.report(0, n)
        assert c.mono(0) >= last
        last = c.mono(0)


def test_meter_shows_the_believed_value_and_names_the_dp():
    m = Meter()
    feed(m, v2_report())
    seq = m.seq
    assert feed(m, [(1, T_VALUE, 0)])
    assert m.seq > seq  # the state changed: the warning
    v = m.values()
    assert v["energy_forward"] == 1234.56  # not the 0
    assert v["warnings"] == ["energy_forward (DP 1) went down from 1234.56 to 0.00 kWh: "
                             "held until 3 reports in a row confirm a new cycle"]
    assert [d["value"] for d in report.dp_list(m, 0) if d["id"] == 1] == [0]  # the raw view
    assert '"energy_forward":1234.56,' in m.state_json()
    feed(m, [(1, T_VALUE, 123457)])
    assert m.values()["energy_forward"] == 1234.57 and m.values()["warnings"] == []


def test_unchanged_reports_confirm_a_drop():
    m = Meter()
    feed(m, v2_report())
    for _ in range(2):
        feed(m, [(23, T_VALUE, 0)])
        assert m.values()["energy_reverse"] == 7.89
    seq = m.seq
    assert feed(m, [(23, T_VALUE, 0)])  # the same bytes again, yet the state changed
    assert m.seq > seq and m.values()["energy_reverse"] == 0 and m.values()["warnings"] == []


def test_cloud_phase_energies_and_spm01_reverse_follow_the_rule():
    m = Meter()
    feed(m, cloud_report())
    feed(m, [(118, T_VALUE, 0)])
    v = m.values()
    assert v["energy_forward_b"] == 10.01
    assert v["warnings"][0].startswith("energy_forward_b (DP 118) went down from 10.01 to 0.00 kWh")
    m = Meter()
    feed(m, spm01_report())
    feed(m, [(2, T_VALUE, 3)])
    assert m.values()["energy_reverse"] == 6.78 and "(DP 2)" in m.values()["warnings"][0]


def test_a_dp_that_is_no_energy_in_this_layout_is_not_held():
    m = Meter()
    feed(m, v2_report(ic=3000))
    for i in (2900, 2800, 2700, 2600):  # current_c on the v2 layout (energy_forward_c on cloud)
        feed(m, [(109, T_VALUE, i)])
    assert m.values()["current_c"] == 2.6 and m.values()["warnings"] == []
    assert m.counters.cycles == 0  # (a cycle would be saved to flash)


def test_cloud_phase_energies_before_the_layout_is_known():
    m = Meter()
    rec = cloud_report()
    # DP 109/110 come before the DPs that say cloud (here without raw phase DPs)
    feed(m, [r for r in rec if r[0] < 112 and r[0] not in (6, 7, 8)])
    assert m.layout_name() == "v2"
    feed(m, [r for r in rec if r[0] >= 112])
    v = m.values()
    assert m.layout_name() == "cloud" and v["energy_forward_a"] == 10.0 and v["energy_reverse_a"] == 0


def test_clear_energy_command_arms_the_rule():
    mcu = Mcu()
    feed(mcu.meter, v2_report())
    commands.run(mcu, "clear_energy", b"PRESS")
    feed(mcu.meter, [(1, T_VALUE, 0), (23, T_VALUE, 0)])
    v = mcu.meter.values()
    assert v["energy_forward"] == 0 and v["energy_reverse"] == 0 and v["warnings"] == []
    assert mcu.meter.mono(0) == 123456


def test_the_owners_kwh_dps_follow_the_rule():
    user = ((120, 0, "energy_import_total", T_VALUE, 2, "kWh", 0),)
    m = Meter(user=user)
    feed(m, v2_report() + [(120, T_VALUE, 900)])
    feed(m, [(120, T_VALUE, 0)])
    v = m.values()
    assert v["energy_import_total"] == 9.0 and "(DP 120)" in v["warnings"][0]


def test_raw_phase_untouched():
    m = Meter()
    feed(m, v2_report())
    feed(m, [(6, T_RAW, raw_phase(2300, 100, 20))])
    assert m.values()["power_a"] == 1100  # value DP 104 wins; no rule on raw DPs
    assert encode_dp(1, T_VALUE, 0)  # (the helper stays importable)


def test_each_held_drop_and_new_cycle_is_traced_and_counted():
    from counters import TR_HELD, TR_CYCLE, TR_CLEARED
    c = Counters((1, 23))
    seen = []
    c.trace = lambda i, what, old, new: seen.append((i, what, old, new))
    c.report(0, 500)
    c.report(1, 70)
    for n in (0, 0, 500, 501):  # a glitch of two reports: one held drop, traced once
        c.report(0, n)
    assert seen == [(0, TR_HELD, 500, 0)] and (c.glitches, c.cycles) == (1, 0)
    for n in (3, 2, 2, 2):  # held, lower again (the same held drop), then confirmed
        c.report(0, n)
    assert seen[1:] == [(0, TR_HELD, 501, 3), (0, TR_CYCLE, 501, 2)] and (c.glitches, c.cycles) == (2, 1)
    c.cleared()
    c.report(1, 0)  # our clear: a new cycle at once, never held
    assert seen[3:] == [(1, TR_CLEARED, 70, 0)] and (c.glitches, c.cycles) == (2, 2)
    c.trace = None  # without a tracer the counts go on
    c.report(0, 1)  # (within the clear's reports: a new cycle too)
    assert (c.glitches, c.cycles) == (2, 3) and len(seen) == 4


def test_the_trace_line_names_the_dp_the_values_and_the_local_time():
    from counters import TR_HELD, TR_CYCLE, TR_CLEARED
    import countlog
    m = Meter()
    lines = []
    m.counters.trace = lambda i, what, old, new: lines.append(
        countlog.text(m, i, what, old, new, (2026, 3, 29, 2, 5, 9, 6)))
    feed(m, v2_report())
    feed(m, [(1, T_VALUE, 0)])
    feed(m, [(23, T_VALUE, 5)])
    feed(m, [(23, T_VALUE, 5)])
    feed(m, [(23, T_VALUE, 6)])
    assert lines == [
        "energy_forward (DP 1) went down from 1234.56 to 0.00 kWh at 2026-03-29 02:05:09: "
        "held (not published) until 3 reports in a row confirm a new cycle",
        "energy_reverse (DP 23) went down from 7.89 to 0.05 kWh at 2026-03-29 02:05:09: "
        "held (not published) until 3 reports in a row confirm a new cycle",
        "energy_reverse (DP 23) went down from 7.89 to 0.06 kWh at 2026-03-29 02:05:09: "
        "confirmed by 3 reports in a row: a new cycle"]
    assert countlog.text(m, 0, TR_CLEARED, 123456, 0, None) == (
        "energy_forward (DP 1) went down from 1234.56 to 0.00 kWh at an unknown time (clock not set): "
        "after clear_energy: a new cycle")
    assert TR_CYCLE != TR_HELD
