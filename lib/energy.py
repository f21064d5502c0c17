# Today, yesterday and this month of the meter's energy totals, and the power history, kept
# by the clock, sans-IO. Fed the unix time about once a second (and whether the meter
# reported since the last tick), it counts the days from the meter's own counters
# (meter.mono(): never integrated from power, exact to the count of 0.01 kWh, right across a
# clear), samples the phase powers into the ring (lib/history.py), and says when the
# firmware should save, and when to ask the meter for a fresh report. The calendar (by
# time.tz) and the day changes are lib/days.py's, imported only when one comes. The firmware
# does the I/O; `make bench` runs this code through a simulated day to count its writes.
#
# c = [day start f, r | month start f, r | yesterday f, r]: mono counts of energy_forward
# (f) and energy_reverse (r); today = mono - day start, month = mono - month start.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from history import History, STEP

EV_DAY = const(1)     # a local midnight passed (or the first tick): days.py was imported
EV_ROLL = const(2)    # the counts moved on to a new day: publish; the day that ended is closed
EV_SAVE = const(4)    # save the energy file now
EV_QUERY = const(8)   # ask the meter for a report: the day should end on fresh counts
EV_SHOW = const(16)   # the day keys changed other than by a report (a new day, a first start)
Y2K = 946684800       # unix time of 2000-01-01: times kept from it are small ints on 32-bit
SAVE_S = const(3600)  # at most this often when only the counts and the ring changed
SOON_S = const(60)    # after a new cycle or new starting points (not in the rush after boot)
QUERY_S = const(3)    # how long before midnight to ask


class Energy:
    def __init__(self, meter, tz):
        self.meter = meter
        meter.days = self     # the meter shows value() as dptable.DAY_KEYS
        self.tz = tz          # the POSIX TZ string, parsed at each midnight
        self.ring = History()
        self.day = -1         # the local day the counts belong to; -1: none yet
        self.mon = 0          # its month (year * 12 + month)
        self.have = 0         # bit k: series k (0 forward, 1 reverse) has its starting points
        self.c = [0] * 6
        self.closed = None    # (day, forward, reverse) of the last day that ended; None: unknown
        # Times kept here count seconds from 2000 (Y2K), not 1970: small ints on 32-bit
        # builds until 2034, so no long-lived heap object (a big int made at a day change,
        # between the code loaded for it, would stay in the middle of its freed memory)
        self.today = -1       # the local day now, its month, its date (y << 9 | m << 5 | d)
        self.tmon = 0
        self.ymd = 0
        self.midnight = None  # the next local midnight
        self.asked = False
        self.saved = None     # the last save (the first tick counts as one)
        self.mark = 0         # the counters' new cycles and the starting points at that save
        self.changed = False  # reports came since then

    def tick(self, t, report):
        """t: unix time (int s); report: the meter reported since the last tick (a burst
        that has ended). Returns EV_* bits."""
        ev = 0
        if self.saved is None:
            self.did_save(t)  # what was loaded at boot is on the flash already
        s = t - Y2K
        if self.midnight is None or s >= self.midnight:
            ev = EV_DAY
        elif not self.asked and self.midnight - s <= QUERY_S:
            self.asked = True
            ev = EV_QUERY
        m = self.meter
        slot = t // STEP
        self.ring.goto(slot)
        if report or ev & EV_DAY:
            f = m.mono(0)
            r = m.mono(1)
            known = (f is not None) | (r is not None) << 1
            if ev & EV_DAY or known and (self.day != self.today or known & ~self.have):
                import days
                ev |= days.update(self, t, f, r, ev & EV_DAY)
        if report:
            for k in range(m.phases()):
                p = m.phase_power(k)
                if p is not None:
                    self.ring.add(slot, k, p)
            self.changed = True
        if self.mark != self._mark() and s - self.saved >= SOON_S \
                or self.changed and s - self.saved >= SAVE_S:
            ev |= EV_SAVE  # a new cycle, new starting points: soon; else hourly
        return ev

    def value(self, j, f, r):
        """dptable.DAY_KEYS[j] in counts (j = 2 * (today, yesterday, month) + series), given
        the series' mono counts; None while not known."""
        k = j & 1
        v = f if k == 0 else r
        if v is None or not self.have >> k & 1 or self.day != self.today:
            return None
        w = j >> 1
        return v - self.c[k] if w == 0 else self.c[4 + k] if w == 1 else v - self.c[2 + k]

    def _mark(self):
        return self.meter.counters.cycles << 2 | self.have

    def date(self):
        """The local date now, "YYYY-MM-DD", or None before the clock is known."""
        v = self.ymd
        return "%04d-%02d-%02d" % (v >> 9, v >> 5 & 15, v & 31) if v else None

    def did_save(self, t):
        """The energy file was saved at unix time t (None: the clock is not known)."""
        self.saved = None if t is None else t - Y2K
        self.changed = False
        self.mark = self._mark()

    def unsaved(self):
        """Something a save would keep changed since the last one."""
        return self.changed or self.mark != self._mark()
