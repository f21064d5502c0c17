# lib/tz.py against CPython's zoneinfo (the system's tzdata) and, for rule forms no real zone
# uses, against glibc. pytest only; the portable test_tz.py checks zoneinfo's answers for
# 2026 and 2027 (VECTORS, in tz_vectors.py), re-derived and compared here so they cannot go stale.
#   PYTHONPATH=lib .venv/bin/python host_tests/test_tz_zoneinfo.py   prints tz_vectors.py's VECTORS afresh
import os
import platform
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

import tz
import tz_vectors

zoneinfo = pytest.importorskip("zoneinfo")

# (tzdata key, its POSIX TZ string, first year the string matches the tzdata's history).
# Before that year zoneinfo applies historic rules the string does not know: the EU's end
# of DST moved from September to October in 1996, the US rules are those of 2007, and
# Sydney's those of 2008. After the last explicit transition (2037) zoneinfo applies this
# very string itself, with code of its own, so the comparison still means something to 2100.
ZONES = (
    ("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3", 1996),
    ("America/New_York", "EST5EDT,M3.2.0,M11.1.0", 2007),
    ("Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3", 2008),
    ("Asia/Kolkata", "IST-5:30", 1970),
    ("UTC", "UTC0", 1970),
)


# Zones and rule forms beyond those five, with glibc (time.tzset) as the oracle. glibc works
# out a year's transitions in its UTC year, so it is wrong where one crosses New Year in UTC
# (J1/0 west or far east of Greenwich): WART4WARST,J1/0,J365/25 and <+14>-14<+15>,J1/0,J2
# are checked in test_tz.py instead. zoneinfo is no oracle for these: it puts n rules a day
# early and J59 on Feb 29 in leap years.
GLIBC = (
    "NZST-12NZDT,M9.5.0,M4.1.0/3",
    "GMT0BST,M3.5.0/1,M10.5.0",
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
    "<-03>3<-02>,M10.3.0/0,M2.3.0/0",
    "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
    "XST3XDT,J59,J300",
    "XST3XDT,J60/-30,300/30:30:30",
    "XST3XDT,0/30,365/-30",
    "TST-23:59:35",
    "<+0530>-5:30",
    "<-03>3",
    "EST5EDT,M3.2.0,M11.1.0",
)


ALL = tuple(z[1] for z in ZONES) + GLIBC + (
    "WART4WARST,J1/0,J365/25", "<+14>-14<+15>,J1/0,J2", "XST0XDT,M3.5.0,M10.5.0/0:30")
# one zone per string for all examples: random instants also exercise the per-year cache
PARSED = {s: tz.parse(s) for s in ALL}


def utc(*a):
    return int(datetime(*a, tzinfo=timezone.utc).timestamp())


Y0, Y1 = utc(2026, 1, 1), utc(2028, 1, 1)  # the two years checked second by second
END = utc(2101, 1, 1)


def zi(key):
    try:
        return zoneinfo.ZoneInfo(key)
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no tzdata for %s" % key)


def expect(z, t):
    """(offset, is_dst, local fields with weekday Monday=0) of zoneinfo zone z at UTC t."""
    d = datetime.fromtimestamp(t, z)
    return (int(d.utcoffset().total_seconds()), d.dst() != timedelta(0),
            (d.year, d.month, d.day, d.hour, d.minute, d.second, d.weekday()))


def got(zone, t):
    return zone.offset(t), zone.is_dst(t), zone.local(t)


def transitions(z, lo, hi):
    """Every UTC second in (lo, hi) at which z's offset changes: an hourly scan, then
    bisection to the first second of the new offset."""
    def off(t):
        return datetime.fromtimestamp(t, z).utcoffset()
    out = []
    prev = off(lo)
    for b in range(lo + 3600, hi, 3600):
        cur = off(b)
        if cur != prev:
            a = b - 3600
            while b - a > 1:
                m = (a + b) // 2
                if off(m) == prev:
                    a = m
                else:
                    b = m
            out.append(b)
            prev = cur
    return out


def first_instant(z, d):
    """The first UTC second whose local date in zoneinfo zone z is d or later (local dates
    only move forward in these zones, so bisection finds it even across a gap)."""
    naive = utc(d.year, d.month, d.day)
    lo, hi = naive - 2 * 86400, naive + 2 * 86400
    while hi - lo > 1:
        m = (lo + hi) // 2
        if datetime.fromtimestamp(m, z).date() >= d:
            hi = m
        else:
            lo = m
    return hi


def vectors():
    """tz_vectors.VECTORS from zoneinfo: every transition of 2026 and 2027 (t-1, t, t+1) and
    two fixed instants, so that zones without DST have vectors too."""
    out = []
    for key, s, _ in ZONES:
        z = zi(key)
        ts = [Y0, utc(2027, 7, 1)]
        for t in transitions(z, Y0, Y1):
            ts += [t - 1, t, t + 1]
        out.append((s, tuple((t,) + expect(z, t) for t in sorted(ts))))
    return tuple(out)


def test_vectors_are_zoneinfos():
    assert tz_vectors.VECTORS == vectors()


def test_every_transition_of_two_years():
    counts = {}
    for key, s, _ in ZONES:
        z, zone = zi(key), tz.parse(s)
        ts = transitions(z, Y0, Y1)
        counts[key] = len(ts)
        for t in ts:
            for u in (t - 1, t, t + 1):
                assert got(zone, u) == expect(z, u), (s, u)
    assert counts == {"Europe/Berlin": 4, "America/New_York": 4, "Australia/Sydney": 4,
                      "Asia/Kolkata": 0, "UTC": 0}


def test_every_local_midnight_of_two_years():
    for key, s, _ in ZONES:
        z, zone = zi(key), tz.parse(s)
        d = date(2026, 1, 1)
        start = first_instant(z, d)
        while d.year < 2028:
            d += timedelta(days=1)
            nxt = first_instant(z, d)
            assert zone.local(start)[:6] == expect(z, start)[2][:6]
            for t in (start, (start + nxt) // 2, nxt - 1):
                assert zone.next_midnight(t) == nxt, (s, t)
            start = nxt


def zone_and_instant(first_year=None):
    def one(z):
        lo = utc(first_year or z[2], 1, 1)
        return st.tuples(st.just(z), st.integers(lo, END - 1))
    return st.sampled_from(ZONES).flatmap(one)


@settings(max_examples=1000, deadline=None)
@given(zone_and_instant())
def test_random_instants_match_zoneinfo(zt):
    (key, s, _), t = zt
    z, zone = zi(key), PARSED[s]
    assert got(zone, t) == expect(z, t)
    nxt = first_instant(z, datetime.fromtimestamp(t, z).date() + timedelta(days=1))
    assert zone.next_midnight(t) == nxt


def glibc_local(s, t):
    old = os.environ.get("TZ")
    os.environ["TZ"] = s
    try:
        time.tzset()
        lt = time.localtime(t)
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    return lt.tm_gmtoff, lt.tm_isdst > 0, tuple(lt[:7])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc is the oracle")
@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(GLIBC), st.integers(0, END - 1))
def test_random_instants_match_glibc(s, t):
    assert got(PARSED[s], t) == glibc_local(s, t)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ALL), st.integers(0, END - 1))
def test_local_and_next_midnight_agree(s, t):
    zone = PARSED[s]
    off = zone.offset(t)
    d = datetime.fromtimestamp(t + off, timezone.utc)
    assert zone.local(t) == (d.year, d.month, d.day, d.hour, d.minute, d.second, d.weekday())
    assert zone.is_dst(t) == (off != zone.std) or zone.dst == zone.std
    # next_midnight: the first second after t on a later local date (local dates may step
    # back where DST ends just after midnight, as in the last zone of ALL)
    m = zone.next_midnight(t)
    day = zone.local(t)[:3]
    assert m > t and zone.local(m)[:3] > day
    for u in list(range(t + 1, m, 300)) + [m - 1]:
        assert zone.local(u)[:3] <= day


if __name__ == "__main__":
    print("VECTORS = (")
    for s, vs in vectors():
        print("    (%r, (" % s)
        for v in vs:
            print("        %r," % (v,))
        print("    )),")
    print(")")
