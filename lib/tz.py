# Local time from a POSIX TZ string (config key time.tz): offset, DST, local fields and the
# next local midnight, so that energy days and months follow the user's clock.
#
# Times are unix seconds (UTC, 1970 epoch), integers. The ESP32 port's time.time() counts
# from 2000: pass time.time() + Y2K there.
#
# TZ strings as POSIX.1-2024 has them: std offset [dst [offset] [,start,end]]. Names: 3+
# letters, or <...> of letters, digits, + and -. Offsets [+-]hh[:mm[:ss]] (hh <= 24) count
# WEST of Greenwich; the dst offset defaults to one hour ahead. Rules: Mm.w.d (week 5 = the
# last, day 0 = Sunday), Jn (1..365, Feb 29 never counted), n (0..365), each with /time
# (default 02:00, -167..167 hours). A dst without rules takes the US rules, as in glibc.
# This module's offsets are what to ADD to UTC (CET: +3600).
#
# Integers only, the same on CPython and MicroPython. A year's transitions are worked out
# once and cached; a conversion then allocates only its result (plus, on 32-bit builds,
# one temporary when t is a big int: after 2004).
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

Y2K = const(946684800)  # unix time of 2000-01-01, the ESP32 port's epoch
DAY = const(86400)
_M = const(0)  # rule kinds: Mm.w.d, Jn, n
_J = const(1)
_N = const(2)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    Month 13 is January of the next year (the rules use it for month ends)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _ymd(n):
    # civil_from_days packed in one small int, y << 9 | m << 5 | d: no tuple on hot paths
    n += 719468
    era = n // 146097
    doe = n - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y << 9 | m << 5 | (doy - (153 * mp + 2) // 5 + 1)


def civil_from_days(n):
    """(year, month, day) of day n since 1970-01-01 (Howard Hinnant's algorithm)."""
    v = _ymd(n)
    return v >> 9, v >> 5 & 15, v & 31


def _day(r, y):
    # the day (since 1970) that rule r names in year y
    k, a, w, d, _ = r
    if k == _M:
        n = days_from_civil(y, a, 1)
        end = days_from_civil(y, a + 1, 1)
        n += (d - n - 4) % 7 + 7 * (w - 1)  # 1970-01-01 was a Thursday
        while n >= end:  # week 5: the last such weekday of the month
            n -= 7
        return n
    n = days_from_civil(y, 1, 1) + a
    if k == _J:
        n -= 1
        if a >= 60 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
            n += 1  # Jn never counts Feb 29
    return n


class Zone:
    """A parsed TZ string. std, dst: seconds to add to UTC (dst == std without DST);
    start, end: the rules as (kind, a, w, d, seconds after local midnight), or None."""

    def __init__(self, std_name, std, dst_name=None, dst=None, start=None, end=None):
        self.std_name = std_name
        self.dst_name = dst_name
        self.std = std
        self.dst = std if dst is None else dst
        self.start = start
        self.end = end
        self._d0 = self._t0 = self._n = 0  # the cached year: first day, first second, length
        self._tr = ()

    def _load(self, days):
        # The transitions of the years before, of and after the one holding `days`, in
        # seconds from its Jan 1 00:00 UTC: small ints even on 32-bit, and enough for any
        # rule time or offset to move a transition across New Year.
        y = _ymd(days) >> 9
        d0 = days_from_civil(y, 1, 1)
        tr = []
        if self.start:
            for k in (y - 1, y, y + 1):
                # start in standard time, end in daylight time, as POSIX says
                tr.append(((_day(self.start, k) - d0) * DAY + self.start[4] - self.std, True))
                tr.append(((_day(self.end, k) - d0) * DAY + self.end[4] - self.dst, False))
            # an end and a start at the same second sort end first, so DST goes on: that is
            # how J1/0,J365/25 means DST all year
            tr.sort()
        self._tr = tr
        self._d0 = d0
        self._t0 = d0 * DAY
        self._n = (days_from_civil(y + 1, 1, 1) - d0) * DAY

    def _rel(self, t):
        # Seconds from the cached year's start. After 2004 t is a big int on 32-bit builds:
        # one operation on it, then small ints. int(): the unix port's time.time() is a float.
        t = int(t)
        rel = t - self._t0
        if not 0 <= rel < self._n:
            self._load(t // DAY)
            rel = t - self._t0
        return rel

    def _on(self, rel):
        # DST at rel seconds from the cached year's start: the last transition decides
        on = False
        for when, flag in self._tr:
            if when > rel:
                break
            on = flag
        return on

    def _off(self, rel):
        return self.dst if self._on(rel) else self.std

    def is_dst(self, t):
        """True when daylight saving time is in effect at UTC t."""
        return self._on(self._rel(t))

    def offset(self, t):
        """Seconds to add to UTC t for local time."""
        return self._off(self._rel(t))

    def local(self, t):
        """(year, month, day, hour, minute, second, weekday) at UTC t; weekday Monday=0,
        as MicroPython's time.localtime."""
        rel = self._rel(t)
        s = rel + self._off(rel)
        n = self._d0 + s // DAY
        s %= DAY
        v = _ymd(n)
        return v >> 9, v >> 5 & 15, v & 31, s // 3600, s // 60 % 60, s % 60, (n + 3) % 7

    def next_midnight(self, t):
        """UTC time of the first instant after t whose local date is later than t's: the
        next local midnight, or the DST change that skips it."""
        rel = self._rel(t)
        w = ((rel + self._off(rel)) // DAY + 1) * DAY  # next local midnight, as wall time
        # That first instant comes where the clock reaches w at a steady offset (w - std or
        # w - dst), or at a transition: the earliest such candidate whose local time >= w.
        tr = self._tr
        best = rel + 7 * DAY
        for i in range(-2, len(tr)):
            c = tr[i][0] if i >= 0 else w - (self.std if i == -2 else self.dst)
            if rel < c < best and c + self._off(c) >= w:
                best = c
        return int(t) + (best - rel)  # one big-int operation on 32-bit, not two


def _expect(s, i, c):
    if s[i:i + 1] != c:
        raise ValueError("%r expected at %d" % (c, i))
    return i + 1


def _num(s, i, lo, hi):
    j = i
    while j < len(s) and "0" <= s[j] <= "9":
        j += 1
    if j == i or j - i > (3 if hi > 99 else 2) or not lo <= int(s[i:j]) <= hi:
        raise ValueError("number %d..%d expected at %d" % (lo, hi, i))
    return int(s[i:j]), j


def _hms(s, i, hi):
    # [+-]hh[:mm[:ss]] in seconds
    neg = s[i:i + 1] == "-"
    if neg or s[i:i + 1] == "+":
        i += 1
    v, i = _num(s, i, 0, hi)
    v *= 3600
    if s[i:i + 1] == ":":
        m, i = _num(s, i + 1, 0, 59)
        v += m * 60
        if s[i:i + 1] == ":":
            m, i = _num(s, i + 1, 0, 59)
            v += m
    return -v if neg else v, i


def _name(s, i):
    q = 1 if s[i:i + 1] == "<" else 0
    j = i + q
    while j < len(s) and ("a" <= s[j].lower() <= "z" or q and s[j] in "+-0123456789"):
        j += 1
    if j - i - q < 3 or q and s[j:j + 1] != ">":
        raise ValueError("name (3+ letters, or <...>) expected at %d" % i)
    return s[i + q:j], j + q


def _rule(s, i):
    a = w = d = 0
    if s[i:i + 1] == "M":
        k = _M
        a, i = _num(s, i + 1, 1, 12)
        w, i = _num(s, _expect(s, i, "."), 1, 5)
        d, i = _num(s, _expect(s, i, "."), 0, 6)
    elif s[i:i + 1] == "J":
        k = _J
        a, i = _num(s, i + 1, 1, 365)
    else:
        k = _N
        a, i = _num(s, i, 0, 365)
    t = 7200
    if s[i:i + 1] == "/":
        t, i = _hms(s, i + 1, 167)
    return (k, a, w, d, t), i


def parse(s):
    """The Zone of a POSIX TZ string; ValueError says what is wrong, and where."""
    if not isinstance(s, str):
        raise ValueError("not a string")
    std_name, i = _name(s, 0)
    std, i = _hms(s, i, 24)
    if i == len(s):
        return Zone(std_name, -std)
    dst_name, i = _name(s, i)
    dst = std - 3600
    if i < len(s) and s[i] != ",":
        dst, i = _hms(s, i, 24)
    if i == len(s):
        start, end = (_M, 3, 2, 0, 7200), (_M, 11, 1, 0, 7200)  # glibc's default: US rules
    else:
        start, i = _rule(s, _expect(s, i, ","))
        end, i = _rule(s, _expect(s, i, ","))
        if i < len(s):
            raise ValueError("unexpected %r at %d" % (s[i:], i))
    return Zone(std_name, -std, dst_name, -dst, start, end)


def load(s):
    """(zone, None) for a good TZ string, else (UTC, a warning): never raises, so a bad
    time.tz cannot stop the firmware."""
    try:
        return parse(s), None
    except Exception as e:
        return Zone("UTC", 0), "time.tz: cannot parse %r (%s); using UTC" % (s, e)
