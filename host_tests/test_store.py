# The energy files (firmware/store.py) and GET /api/history's text (firmware/history_api.py):
# a round trip keeps the days, the believed counters and the power slots; a file that is
# missing, cut short or corrupt starts afresh with a warning and never raises; a day is one
# record in a ring of 366. Runs under pytest and in the MicroPython unix port.
import json
import os
import time

from energy import Energy
from history import STEP, SLOTS
from mcu import Mcu
from tz import days_from_civil
import files
from firmware import store, history_api
from reports import counts, utc, days, feed

PORTABLE = True


class Dir:
    def __init__(self):
        self.path = "/tmp/spm02-store-%d-%d" % (int(time.time() * 1000) % 100000000, id(self) % 100000)
        os.mkdir(self.path)

    def __call__(self, name):
        return self.path + "/" + name

    def clean(self):
        for n in os.listdir(self.path):
            os.remove(self.path + "/" + n)
        os.rmdir(self.path)


def energy(d, tz="UTC0"):
    e = Energy(Mcu().meter, tz)
    e.path = d("energy.dat")
    return e


def run(e, t, f=None, r=0, **kw):
    if f is not None:
        feed(e.meter, counts(f, r, **kw))
    return e.tick(t, f is not None)


def parse(e):
    return json.loads("".join(history_api.parts(e)))


def test_formats_agree():
    assert (history_api.RING, history_api.DAYS, history_api.CHECK) == (store.RING, store.DAYS, store.CHECK)
    assert store.RING == 4 + 17 * 4 + 1


def test_round_trip_keeps_days_counters_and_slots():
    d = Dir()
    try:
        e = energy(d)
        t0 = utc(2026, 3, 10, 9)
        run(e, t0, 100000, 500, pa=1200)
        run(e, t0 + 400, 100300, 501, pa=800)  # the next slot
        c = e.meter.counters
        feed(e.meter, counts(0, 501))  # a glitch: held
        store.save(e.path, e)
        assert store.load(e.path, energy(d))[1] == "restored"
        e2 = energy(d)
        store.load(e.path, e2)
        assert (e2.day, e2.mon, e2.have, e2.c) == (e.day, e.mon, e.have, e.c)
        c2 = e2.meter.counters
        # the layout's energy counters only (DP 109 and 110 are a current and a power on v2)
        assert (c2.value[0], c2.value[2], c2.fold[0], c2.fold[2]) == (100300, 501, 0, 0) == \
            (c.value[0], c.value[2], c.fold[0], c.fold[2])
        assert list(c2.st) == [1, 0, 1, 0, 0, 0, 0, 0, 0] and c2.believed(0) is None
        assert c.ids[:3] == (1, 2, 23)
        assert (e2.ring.base, e2.ring.slot, e2.ring.acc) == (e.ring.slot - 1, e.ring.slot, e.ring.acc)
        h = parse(e2)["power"]
        assert h["end"] == e.ring.slot * STEP and len(h["a"]) == SLOTS
        assert h["a"][-2:] == [1200, 800] and h["total"][-2:] == [1200 + 200 - 300, 800 + 200 - 300]
        assert h["a"][:-2] == [None] * (SLOTS - 2)
        # the same day after the restart: the meter's counts go on, today is right
        run(e2, t0 + 500)
        run(e2, t0 + 501, 100400, 502)
        assert days(e2.meter)[:2] == (4.0, 0.02)
    finally:
        d.clean()


def test_saves_merge_ram_into_the_file_and_drop_what_is_older_than_a_day():
    d = Dir()
    try:
        e = energy(d)
        t0 = utc(2026, 3, 10, 0)
        n = 0
        for i in range(30 * 12):  # 30 hours, one report a slot, saved every hour
            run(e, t0 + i * STEP, 1000 + i, pa=i)
            if i % 12 == 11:
                store.save(e.path, e)
                n += 1
        e2 = energy(d)
        store.load(e.path, e2)
        run(e2, t0 + 30 * 12 * STEP)  # the next slot: the one being filled was saved as sums
        a = parse(e2)["power"]["a"]
        last = 30 * 12 - 1
        assert a[-1] is None and a[-2] == last  # nothing in the slot being filled yet
        assert a[:-1] == list(range(last - SLOTS + 2, last + 1))
        assert n == 30 and os.stat(e.path)[6] == store.COUNTERS + 2 * 9 + 4  # DP 1 and 23 (v2)
    finally:
        d.clean()


def test_missing_corrupt_and_cut_short_files_start_afresh():
    d = Dir()
    try:
        e = energy(d)
        assert store.load(e.path, e) == (None, "none yet: started afresh")
        run(e, utc(2026, 3, 10, 9), 1000)
        store.save(e.path, e)
        good = open(e.path, "rb").read()
        for bad, why in ((good[:40], "not an energy file"), (good[:-1], "wrong length"),
                         (good[:100] + bytes([good[100] ^ 1]) + good[101:], "checksum mismatch"),
                         (b"garbage" * 300, "not an energy file"), (b"", "not an energy file")):
            with open(e.path, "wb") as f:
                f.write(bad)
            e2 = energy(d)
            w, note = store.load(e.path, e2)
            assert note is None and w == "%s: %s; today, yesterday and month start afresh" % (e.path, why), w
            assert e2.day == -1 and e2.have == 0 and e2.meter.counters.st[0] == 0
    finally:
        d.clean()


def test_a_complete_tmp_file_is_used_when_the_rename_never_happened():
    d = Dir()
    try:
        e = energy(d)
        run(e, utc(2026, 3, 10, 9), 1000)
        store.save(e.path, e)
        os.rename(e.path, e.path + ".tmp")
        e2 = energy(d)
        assert store.load(e.path, e2) == (None, "restored")
        assert e2.day == e.day and os.listdir(d.path) == ["energy.dat"]
        # a half-written .tmp next to a good file: the good file wins
        with open(e.path + ".tmp", "wb") as f:
            f.write(b"SPE1")
        assert store.load(e.path, energy(d)) == (None, "restored")
    finally:
        d.clean()


def test_write_atomic_takes_pieces_of_any_kind():
    d = Dir()
    try:
        files.write_atomic(d("x"), (p for p in (b"ab", "cd", bytearray(b"ef"))))
        files.write_atomic(d("y"), "text")
        assert open(d("x"), "rb").read() == b"abcdef" and open(d("y")).read() == "text"
        assert sorted(os.listdir(d.path)) == ["x", "y"]
    finally:
        d.clean()


def test_read_text_reads_no_more_than_the_limit_and_one():
    d = Dir()
    try:
        assert files.read_text(d("missing"), 10) is None
        files.write_atomic(d("small"), "abc")
        files.write_atomic(d("big"), "x" * 50)
        assert files.read_text(d("small"), 10) == "abc"
        assert files.read_text(d("big"), 10) == "x" * 11  # one more than the limit: "too big"
        assert files.read_text(d("big"), 50) == "x" * 50
    finally:
        d.clean()


def test_days_file_is_a_ring_of_366_records():
    d = Dir()
    try:
        path = d("energy.days")
        day0 = days_from_civil(2026, 1, 1)
        for i in range(400):
            store.put_day(path, day0 + i, 100 + i, i if i % 7 else None)
        assert os.stat(path)[6] == 366 * 16
        got = list(history_api.days(path, day0 + 400 - 366, day0 + 399))
        assert [x[0] for x in got] == list(range(day0 + 34, day0 + 400))
        assert got[0] == (day0 + 34, 134, 34) and got[-1] == (day0 + 399, 499, None)
        assert list(history_api.days(path, day0, day0 + 33)) == []  # overwritten a year on
        # a torn record is no day
        with open(path, "r+b") as f:
            f.seek((day0 + 399) % 366 * 16 + 4)
            f.write(b"\x00")
        assert list(history_api.days(path, day0 + 399, day0 + 399)) == []
        with open(path, "wb") as f:
            f.write(b"not ours")
        store.put_day(path, day0, 1, 2)  # a file that is not ours is made afresh
        assert list(history_api.days(path, day0 - 5, day0 + 5)) == [(day0, 1, 2)]
        assert list(history_api.days(d("none"), day0, day0 + 5)) == []
    finally:
        d.clean()


def test_history_text():
    d = Dir()
    try:
        e = energy(d, "CET-1CEST,M3.5.0,M10.5.0/3")
        assert parse(e) == {"power": {"step_s": 300, "end": None, "a": [], "b": [], "c": [], "total": []},
                            "daily": []}
        t0 = utc(2026, 3, 10, 21)  # 22:00 in Berlin
        run(e, t0, 100000, 500)
        run(e, t0 + 3600, 101000, 600, pa=1000, pb=-50, pc=7)
        run(e, utc(2026, 3, 10, 23))  # midnight: Mar 10 ends
        store.put_day(e.path[:-3] + "days", *e.closed)
        run(e, utc(2026, 3, 10, 23, 0, 5), 101005, 600)
        h = parse(e)
        p = h["power"]
        assert p["end"] == utc(2026, 3, 10, 23) // STEP * STEP and p["step_s"] == 300
        assert [len(p[k]) for k in "abc"] == [SLOTS] * 3 and len(p["total"]) == SLOTS
        i = SLOTS - 1 - 12  # an hour before the slot being filled
        assert (p["a"][i], p["b"][i], p["c"][i], p["total"][i]) == (1000, -50, 7, 957)
        assert h["daily"] == [{"date": "2026-03-10", "forward": 10.0, "reverse": 1.0},
                              {"date": "2026-03-11", "forward": 0.05, "reverse": 0.0}]
    finally:
        d.clean()


def test_single_phase_history_has_a_and_total():
    from reports import spm01_report
    d = Dir()
    try:
        e = Energy(Mcu().meter, "UTC0")
        e.path = d("energy.dat")
        feed(e.meter, spm01_report(p=850))
        e.tick(utc(2026, 3, 10, 9), True)
        p = parse(e)["power"]
        assert sorted(p) == ["a", "end", "step_s", "total"] and p["a"][-1] == 850 == p["total"][-1]
    finally:
        d.clean()


def test_null_is_none():
    """A slot no report came in is null in /api/history, from RAM and from the file alike,
    and the most negative reading (clamped to -32767) is a number, never taken for NULL."""
    d = Dir()
    try:
        e = energy(d)
        t0 = utc(2026, 3, 10, 6)
        run(e, t0, 1000, pa=-40000, pb=-32768, pc=5)  # beyond 16 bits: clamped, not NULL
        run(e, t0 + 2 * STEP, 1001, pa=7, pb=8, pc=9)  # the slot between: no report
        want = {"a": [-32767, None, 7], "b": [-32767, None, 8], "c": [5, None, 9], "total": [-65529, None, 24]}
        p = parse(e)["power"]
        assert {k: p[k][-3:] for k in want} == want  # from RAM
        assert [p[k][:-3] for k in want] == [[None] * (SLOTS - 3)] * 4  # before the first report
        store.save(e.path, e)
        e2 = energy(d)
        store.load(e.path, e2)
        run(e2, t0 + 3 * STEP, 1002, pa=1, pb=2, pc=3)
        p = parse(e2)["power"]
        assert e2.ring.base == (t0 + 2 * STEP) // STEP - 1  # the two slots before come from the file
        assert {k: p[k][-4:-1] for k in want} == want  # from the file
    finally:
        d.clean()


def test_dates_of_day_numbers():
    for y, m, dd in ((2028, 2, 29), (1999, 12, 31), (2100, 3, 1), (2026, 11, 24)):
        assert history_api._day(days_from_civil(y, m, dd), 1, None) == \
            '{"date":"%04d-%02d-%02d","forward":0.01,"reverse":null}' % (y, m, dd)


def test_a_restart_hours_later_keeps_the_day_before_the_gap():
    d = Dir()
    try:
        e = energy(d)
        t0 = utc(2026, 3, 10, 6)
        for i in range(24):  # two hours of slots, saved hourly and before a restart
            run(e, t0 + i * STEP, 1000 + i, pa=100 + i)
            if i in (11, 23):
                store.save(e.path, e)
        e2 = energy(d)
        store.load(e.path, e2)
        t1 = t0 + 5 * 3600  # the firmware was off for three hours after that
        run(e2, t1, 1030, pa=7)
        a = parse(e2)["power"]["a"]
        gap = (t1 - (t0 + 23 * STEP)) // STEP  # slots from the one being filled then to now
        assert a[-1] == 7 and a[-gap:-1] == [None] * (gap - 1)
        assert a[-gap - 1] == 123 and a[-gap - 24:-gap] == list(range(100, 124)) and a[0] is None
    finally:
        d.clean()


def test_the_keepers_calls():
    class App:
        config_warnings = []
    patched = not hasattr(time, "ticks_ms")
    if patched:  # CPython: firmware/log.py stamps lines with it
        time.ticks_ms = lambda: 0
    d = Dir()
    try:
        e = energy(d)
        e.app, e.writes, e.error = App(), 0, "old"
        assert store.run(e, 2, None) == "none yet: started afresh"
        t0 = utc(2026, 3, 10, 6)
        for i in range(40):  # more slots than RAM keeps: the saves move them to the file
            run(e, t0 + i * STEP, 1000 + i, pa=i)
            if i % 12 == 11:
                store.run(e, 0, t0 + i * STEP)
        assert e.writes == 3 and e.error is None and e.ring.base == (t0 + 35 * STEP) // STEP - 1
        assert e.saved == t0 + 35 * STEP - 946684800
        a = parse(e)["power"]["a"]
        assert a[-40:] == list(range(40))
        e.closed = (days_from_civil(2026, 3, 9), 5, None)
        store.run(e, 1, None)
        assert e.writes == 4 and list(history_api.days(d("energy.days"), 0, 30000)) == [e.closed]
        with open(e.path, "wb") as f:
            f.write(b"x")
        e2 = energy(d)
        e2.app = App()
        assert store.run(e2, 2, None).endswith("not an energy file; today, yesterday and month start afresh")
        assert App.config_warnings == [e.path + ": not an energy file; today, yesterday and month start afresh"]
    finally:
        d.clean()
        if patched:  # not left behind for the tests after this one
            del time.ticks_ms
