# lib/tz.py: POSIX TZ strings, offsets, local time, next local midnight. Runs under pytest
# and in the MicroPython unix port (plain asserts only).
from portable import raises
import tz
from tz_vectors import VECTORS

PORTABLE = True

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"
SYDNEY = "AEST-10AEDT,M10.1.0,M4.1.0/3"
# DST from the third Sunday of October at 00:00 (clocks go to 01:00) to the third Sunday of
# February at 00:00 (back to 23:00 the day before), as Brazil had it
MIDNIGHT = "<-03>3<-02>,M10.3.0/0,M2.3.0/0"


def check(s, t, off, dst, fields):
    z = tz.parse(s)
    assert (z.offset(t), z.is_dst(t), z.local(t)) == (off, dst, fields), (s, t)


def test_parse_examples():
    cases = (
        ("UTC0", "UTC", 0, None, 0, None, None),
        (BERLIN, "CET", 3600, "CEST", 7200, (0, 3, 5, 0, 7200), (0, 10, 5, 0, 10800)),
        ("EST5EDT,M3.2.0,M11.1.0", "EST", -18000, "EDT", -14400,
         (0, 3, 2, 0, 7200), (0, 11, 1, 0, 7200)),
        (SYDNEY, "AEST", 36000, "AEDT", 39600, (0, 10, 1, 0, 7200), (0, 4, 1, 0, 10800)),
        ("IST-5:30", "IST", 19800, None, 19800, None, None),
        ("TST-23:59:35", "TST", 86375, None, 86375, None, None),
        ("<+0530>-5:30", "+0530", 19800, None, 19800, None, None),
        ("<-03>3", "-03", -10800, None, -10800, None, None),
        ("NZST-12NZDT,M9.5.0,M4.1.0/3", "NZST", 43200, "NZDT", 46800,
         (0, 9, 5, 0, 7200), (0, 4, 1, 0, 10800)),
        ("GMT0BST,M3.5.0/1,M10.5.0", "GMT", 0, "BST", 3600, (0, 3, 5, 0, 3600), (0, 10, 5, 0, 7200)),
        ("WART4WARST,J1/0,J365/25", "WART", -14400, "WARST", -10800,
         (1, 1, 0, 0, 0), (1, 365, 0, 0, 90000)),
        # an explicit DST offset, a negative rule time, an n rule, seconds everywhere
        ("<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", "+00", 0, "+02", 7200,
         (0, 3, 5, 0, 3600), (0, 10, 5, 0, 10800)),
        ("<-02>+2<-01>,M3.5.0/-1,M10.5.0/0", "-02", -7200, "-01", -3600,
         (0, 3, 5, 0, -3600), (0, 10, 5, 0, 0)),
        ("ABC+1:02:03DEF-0:00:01,59/-167,365/+167:59:59", "ABC", -3723, "DEF", 1,
         (2, 59, 0, 0, -601200), (2, 365, 0, 0, 604799)),
    )
    for s, sn, std, dn, dst, start, end in cases:
        z = tz.parse(s)
        assert (z.std_name, z.std, z.dst_name, z.dst, z.start, z.end) == (sn, std, dn, dst, start, end), s


def test_dst_without_rules_takes_the_us_rules():
    z = tz.parse("EST5EDT")
    assert (z.dst, z.start, z.end) == (-14400, (0, 3, 2, 0, 7200), (0, 11, 1, 0, 7200))
    assert tz.parse("XST3XDT2").dst == -7200


BAD = ("", "CET", "CET-1CEST,M13.1.0,M10.5.0", "EST5EDT,M3.2.0", "X-1", None, 42, 3.5,
       b"CET-1", ["CET-1"], "CET25", "CET-25", "CET-100", "CET-1:60", "CET-1:00:60", "CET+",
       "CE1", "<ab>1", "<+0530-5:30", "<+05 30>-5", "Europe/Berlin", ":Europe/Berlin",
       " CET-1", "CET-1 ", "CET-1CEST,", "CET-1CEST,M3.5.0,M10.5.0,", "CET-1CEST,M3.5.0/,M10.5.0",
       "CET-1CEST,M3.5.0,M10.5.0/168", "CET-1CEST,M3.0.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0",
       "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,M0.5.0,M10.5.0", "CET-1CEST,M3.5,M10.5.0",
       "CET-1CEST,J0,J365", "CET-1CEST,J1,J366", "CET-1CEST,0,366", "CET-1CEST25",
       "CET-1CEST-1,M3.5.0", "CET-1CEST;M3.5.0,M10.5.0", "CÉT-1")


def test_bad_strings_raise_value_error():
    for s in BAD:
        e = raises(ValueError, tz.parse, s)
        assert str(e), s


def test_load_never_raises_and_says_why():
    for s in BAD:
        z, warning = tz.load(s)
        assert (z.std, z.dst, z.start) == (0, 0, None), s
        assert warning.startswith("time.tz: cannot parse %r (" % (s,)), warning
        assert warning.endswith("); using UTC"), warning
        assert z.offset(1767225600) == 0 and z.local(0) == (1970, 1, 1, 0, 0, 0, 3)
    z, warning = tz.load("xyz")
    assert warning == "time.tz: cannot parse 'xyz' (number 0..24 expected at 3); using UTC"
    assert tz.load(None)[1] == "time.tz: cannot parse None (not a string); using UTC"
    z, warning = tz.load(BERLIN)
    assert warning is None and z.std == 3600


def test_berlin_edges_at_the_second():
    # 2026-03-29 01:00:00 UTC: 02:00 CET becomes 03:00 CEST
    check(BERLIN, 1774745999, 3600, False, (2026, 3, 29, 1, 59, 59, 6))
    check(BERLIN, 1774746000, 7200, True, (2026, 3, 29, 3, 0, 0, 6))
    # 2026-10-25 01:00:00 UTC: 03:00 CEST becomes 02:00 CET
    check(BERLIN, 1792889999, 7200, True, (2026, 10, 25, 2, 59, 59, 6))
    check(BERLIN, 1792890000, 3600, False, (2026, 10, 25, 2, 0, 0, 6))
    # 2100 (no leap year): last Sundays of March and October are the 28th and the 31st
    check(BERLIN, 4109878799, 3600, False, (2100, 3, 28, 1, 59, 59, 6))
    check(BERLIN, 4109878800, 7200, True, (2100, 3, 28, 3, 0, 0, 6))
    check(BERLIN, 4128627600, 3600, False, (2100, 10, 31, 2, 0, 0, 6))


def test_southern_hemisphere_dst_spans_new_year():
    check(SYDNEY, 1767225600, 39600, True, (2026, 1, 1, 11, 0, 0, 3))
    check(SYDNEY, 1767185999, 39600, True, (2025, 12, 31, 23, 59, 59, 2))
    check(SYDNEY, 1767186000, 39600, True, (2026, 1, 1, 0, 0, 0, 3))
    # 2026-04-05 03:00 AEDT -> 02:00 AEST; 2026-10-04 02:00 AEST -> 03:00 AEDT
    check(SYDNEY, 1775318399, 39600, True, (2026, 4, 5, 2, 59, 59, 6))
    check(SYDNEY, 1775318400, 36000, False, (2026, 4, 5, 2, 0, 0, 6))
    check(SYDNEY, 1791043199, 36000, False, (2026, 10, 4, 1, 59, 59, 6))
    check(SYDNEY, 1791043200, 39600, True, (2026, 10, 4, 3, 0, 0, 6))
    check("NZST-12NZDT,M9.5.0,M4.1.0/3", 1767225600, 46800, True, (2026, 1, 1, 13, 0, 0, 3))


def test_fixed_offsets():
    check("IST-5:30", 1782844199, 19800, False, (2026, 6, 30, 23, 59, 59, 1))
    check("IST-5:30", 1782844200, 19800, False, (2026, 7, 1, 0, 0, 0, 2))
    check("<+0530>-5:30", 1782864000, 19800, False, (2026, 7, 1, 5, 30, 0, 2))
    check("TST-23:59:35", 0, 86375, False, (1970, 1, 1, 23, 59, 35, 3))
    check("<-03>3", 0, -10800, False, (1969, 12, 31, 21, 0, 0, 2))
    check("UTC0", 4133980799, 0, False, (2100, 12, 31, 23, 59, 59, 4))


def test_j_and_n_rules():
    # J60 is March 1 every year; n=59 is Feb 29 in a leap year, March 1 otherwise
    j, n = "XST3XDT,J60,J300", "XST3XDT,59,300"
    check(j, 1709269199, -10800, False, (2024, 3, 1, 1, 59, 59, 4))
    check(j, 1709269200, -7200, True, (2024, 3, 1, 3, 0, 0, 4))
    check(n, 1709182799, -10800, False, (2024, 2, 29, 1, 59, 59, 3))
    check(n, 1709182800, -7200, True, (2024, 2, 29, 3, 0, 0, 3))
    check(n, 1740805199, -10800, False, (2025, 3, 1, 1, 59, 59, 5))
    check(n, 1740805200, -7200, True, (2025, 3, 1, 3, 0, 0, 5))
    check(j, 1740805200, -7200, True, (2025, 3, 1, 3, 0, 0, 5))
    # J300 is Oct 27 and n=300 is Oct 28 in 2025 (they meet in leap years)
    check(j, 1761537599, -7200, True, (2025, 10, 27, 1, 59, 59, 0))
    check(j, 1761537600, -10800, False, (2025, 10, 27, 1, 0, 0, 0))
    check(n, 1761623999, -7200, True, (2025, 10, 28, 1, 59, 59, 1))
    check(n, 1761624000, -10800, False, (2025, 10, 28, 1, 0, 0, 1))


def test_dst_all_year():
    # J1/0 to J365/25: DST ends as it starts again, so it never ends, even in the first
    # hours of a UTC year (glibc, which works in UTC years, gets those wrong)
    w = "WART4WARST,J1/0,J365/25"
    for t in (1767225600 - 1, 1767225600, 1767225600 + 4 * 3600, 1767225600 + 4 * 3600 - 1,
              1782864000, 1735689600 + 3600, 0, 4133980799, 951782400):
        assert tz.parse(w).offset(t) == -10800 and tz.parse(w).is_dst(t), t
    check(w, 1767225600, -10800, True, (2025, 12, 31, 21, 0, 0, 2))


def test_transition_across_new_year_in_utc():
    # DST starts Jan 1 00:00 at +14, i.e. Dec 31 10:00 UTC, and ends Jan 2 02:00 at +15
    z = "<+14>-14<+15>,J1/0,J2"
    check(z, 1767175199, 50400, False, (2025, 12, 31, 23, 59, 59, 2))
    check(z, 1767175200, 54000, True, (2026, 1, 1, 1, 0, 0, 3))
    check(z, 1767265199, 54000, True, (2026, 1, 2, 1, 59, 59, 4))
    check(z, 1767265200, 50400, False, (2026, 1, 2, 1, 0, 0, 4))


def test_rule_times_outside_the_day():
    # /-1: 23:00 the evening before; /0: midnight. The same instants as Berlin's changes
    g = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"
    check(g, 1774745999, -7200, False, (2026, 3, 28, 22, 59, 59, 5))
    check(g, 1774746000, -3600, True, (2026, 3, 29, 0, 0, 0, 6))
    check(g, 1792889999, -3600, True, (2026, 10, 24, 23, 59, 59, 5))
    check(g, 1792890000, -7200, False, (2026, 10, 24, 23, 0, 0, 5))


def test_next_midnight_on_normal_days():
    u = tz.parse("UTC0")
    assert [u.next_midnight(t) for t in (0, 86399, 86400, -1)] == [86400, 86400, 172800, 0]
    b = tz.parse(BERLIN)
    # 2026-01-15 13:00 CET -> 2026-01-16 00:00 CET
    assert b.next_midnight(1768478400) == 1768518000
    assert b.next_midnight(1768518000 - 1) == 1768518000
    assert b.next_midnight(1768518000) == 1768518000 + 86400  # strictly after
    assert tz.parse("IST-5:30").next_midnight(1782844199) == 1782844200
    assert tz.parse(SYDNEY).next_midnight(1767185999) == 1767186000  # New Year in Sydney


def test_next_midnight_on_dst_change_days():
    b = tz.parse(BERLIN)
    # 2026-03-29 has 23 hours: 00:30 CET -> 2026-03-30 00:00 CEST
    assert b.next_midnight(1774740600) == 1774821600
    assert b.local(1774821600) == (2026, 3, 30, 0, 0, 0, 0)
    # 2026-10-25 has 25 hours: from 2026-10-24 22:00 UTC to 2026-10-25 23:00 UTC
    assert b.next_midnight(1792879200 - 1) == 1792879200
    assert b.next_midnight(1792879200) == 1792969200
    assert b.next_midnight(1792890000) == 1792969200


def test_next_midnight_when_dst_starts_or_ends_at_midnight():
    z = tz.parse(MIDNIGHT)
    # 2026-10-18 00:00 -03 does not exist: the day starts at 01:00 -02 (03:00 UTC)
    assert z.next_midnight(1792292400 - 12 * 3600) == 1792292400
    assert z.next_midnight(1792292399) == 1792292400
    assert z.local(1792292399) == (2026, 10, 17, 23, 59, 59, 5)
    assert z.local(1792292400) == (2026, 10, 18, 1, 0, 0, 6)
    assert z.next_midnight(1792292400) == 1792292400 + 23 * 3600
    # 2026-02-15 00:00 -02 (02:00 UTC) goes back to 2026-02-14 23:00 -03: Feb 14 has 25 hours
    assert z.local(1771120800) == (2026, 2, 14, 23, 0, 0, 5)
    assert z.next_midnight(1771120800 - 3600) == 1771120800 + 3600
    assert z.next_midnight(1771120800) == 1771120800 + 3600
    assert z.local(1771120800 + 3600) == (2026, 2, 15, 0, 0, 0, 6)


def test_next_midnight_when_dst_ends_after_midnight():
    # 00:30 DST goes back to 23:30: the date steps back for half an hour; next_midnight
    # gives the first instant of a later date than the one asked about
    z = tz.parse("XST0XDT,M3.5.0,M10.5.0/0:30")
    t = 1792882800  # 2026-10-25 00:00 XDT = 2026-10-24 23:00 UTC
    assert z.local(t) == (2026, 10, 25, 0, 0, 0, 6)
    assert z.next_midnight(t - 1) == t
    assert z.local(t + 1800) == (2026, 10, 24, 23, 30, 0, 5)
    assert z.next_midnight(t + 1800) == t + 3600
    assert z.next_midnight(t + 60) == t + 3600 + 86400


def walk_days(s, t, days):
    # every next_midnight from t on: a day later each time, at 00:00 unless DST skipped it
    z = tz.parse(s)
    n = tz.days_from_civil(*z.local(t)[:3])
    out = []
    for _ in range(days):
        m = z.next_midnight(t)
        f = z.local(m)
        n += 1
        assert m > t and f[:3] == tz.civil_from_days(n) and z.local(m - 1)[:3] == z.local(t)[:3]
        if f[3:6] != (0, 0, 0):
            out.append(f)
        t = m
    return out


def test_next_midnight_walks_two_years():
    for s in (BERLIN, SYDNEY, "EST5EDT", "IST-5:30", "TST-23:59:35", "UTC0",
              "WART4WARST,J1/0,J365/25"):
        assert walk_days(s, 1767225600, 731) == [], s
    assert walk_days(MIDNIGHT, 1767225600, 731) == [(2026, 10, 18, 1, 0, 0, 6),
                                                    (2027, 10, 17, 1, 0, 0, 6)]
    assert walk_days("<+14>-14<+15>,J1/0,J2", 1767225600, 731) == [(2027, 1, 1, 1, 0, 0, 4),
                                                                   (2028, 1, 1, 1, 0, 0, 5)]


def test_civil_days():
    assert tz.days_from_civil(1970, 1, 1) == 0
    assert tz.days_from_civil(2000, 1, 1) * 86400 == tz.Y2K == 946684800
    assert tz.days_from_civil(2000, 3, 1) == 11017
    assert tz.days_from_civil(2100, 3, 1) - tz.days_from_civil(2100, 2, 28) == 1
    assert tz.days_from_civil(2024, 3, 1) - tz.days_from_civil(2024, 2, 28) == 2
    assert tz.days_from_civil(1969, 12, 31) == -1
    assert tz.civil_from_days(-1) == (1969, 12, 31)
    assert tz.civil_from_days(47540) == (2100, 2, 28)
    prev = tz.civil_from_days(-800)
    for n in range(-799, 48000):
        c = tz.civil_from_days(n)
        assert tz.days_from_civil(*c) == n
        y, m, d = prev
        assert c == (y, m, d + 1) or c == (y, m + 1, 1) or c == (y + 1, 1, 1), c
        prev = c


def test_zoneinfo_vectors():
    # zoneinfo's answers at every transition of 2026 and 2027 (t-1, t, t+1), produced and
    # kept honest by test_tz_zoneinfo.py
    n = 0
    for s, vs in VECTORS:
        z = tz.parse(s)
        for t, off, dst, fields in vs:
            assert (z.offset(t), z.is_dst(t), z.local(t)) == (off, dst, fields), (s, t)
            n += 1
    assert n == 46


def test_a_float_time_is_taken_as_its_whole_seconds():
    # the unix port's time.time() is a float; the ESP32's is an int
    z = tz.parse(BERLIN)
    assert z.offset(1774746000.5) == 7200 and z.offset(1774745999.9) == 3600
    assert z.local(1774746000.5) == (2026, 3, 29, 3, 0, 0, 6)
    assert z.next_midnight(1774740600.25) == 1774821600


def test_conversions_allocate_only_their_result():
    try:
        import gc
        gc.mem_alloc
    except (ImportError, AttributeError):
        return  # CPython
    z = tz.parse(BERLIN)
    t = 1 << 29  # 1987: a small int even on 32-bit builds
    big = 1774746000  # 2026: a big int on 32-bit builds
    z.local(t)
    z.local(big)
    z.local(t)
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        for _ in range(100):
            z.offset(t)
            z.is_dst(t)
            z.next_midnight(t)
        b = gc.mem_alloc()
        for _ in range(100):
            z.local(t)
        c = gc.mem_alloc()
        for _ in range(100):
            z.offset(big)
        d = gc.mem_alloc()
    finally:
        gc.enable()
    # 100 calls each, with 512 B of slack for the loops: the smallest allocation is 16 B, so
    # nothing per call, then one 7-tuple a call (96 B on 64-bit, 48 B on 32-bit), then one
    # temporary big int a call on 32-bit (32 B) and nothing on 64-bit
    assert b - a < 512, b - a
    assert c - b < 100 * 96 + 512, c - b
    assert d - c < 100 * 32 + 512, d - c

