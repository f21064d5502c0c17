# The day changes of lib/energy.py, imported only when one comes: at a local midnight, at
# the first tick, and at the first counts of a series (a first start, or the first report
# after a restart on a later day). The local calendar by time.tz, and the end of a day.
#
# A day ends with the counts the firmware has when it sees the date change: at midnight,
# the meter's last report before it (asked for a few seconds earlier). After a restart on
# a later day, the day last saved ends with the first counts after the restart: a power cut
# stops the meter's counting too, so what it counted since the last save belongs to that
# day. Days in between count 0.
import tz
from energy import EV_ROLL, EV_SAVE, EV_SHOW, Y2K


def update(e, t, f, r, new_day):
    """e: lib/energy.Energy at unix time t; f, r: the mono counts now (None where not known
    yet); new_day: a local midnight passed. Returns EV_SHOW, with EV_ROLL | EV_SAVE when
    the counts moved on to a new day."""
    if new_day:
        zone = tz.load(e.tz)[0]  # config.py warned about a bad string: UTC then
        n = (t + zone.offset(t)) // 86400
        y, m, d = tz.civil_from_days(n)
        e.today = n
        e.tmon = y * 12 + m
        e.ymd = y << 9 | m << 5 | d
        e.midnight = zone.next_midnight(t) - Y2K
        e.asked = False
    if f is None and r is None:
        return 0  # nothing to count with before the meter's first report since boot
    ev = 0
    c = e.c
    if e.day != e.today:
        if 0 <= e.day < e.today:  # (a clock that went back keeps counting on the new date)
            tot = [None, None]
            for k in (0, 1):
                v = f if k == 0 else r
                b = 1 << k
                if e.have & b:
                    if v is None:
                        e.have &= ~b  # nothing to end the day with: start afresh when it comes
                        continue
                    tot[k] = v - c[k]
                    c[4 + k] = tot[k] if e.today == e.day + 1 else 0
                    c[k] = v
                    if e.tmon != e.mon:
                        c[2 + k] = v
            e.closed = (e.day, tot[0], tot[1])
            ev = EV_ROLL | EV_SAVE
        e.day = e.today
        e.mon = e.tmon
    for k in (0, 1):
        v = f if k == 0 else r
        if v is not None and not e.have >> k & 1:  # the first count: today and the month start here
            c[k] = c[2 + k] = v
            c[4 + k] = 0
            e.have |= 1 << k
    return ev | EV_SHOW
