# The log line of a held drop or a new cycle of an energy counter (lib/counters.py calls
# the firmware's trace, which borrows this: such lines are rare, their code is not kept).
import counters
import spm02


def line(meter, i, what, old, new, tz, t):
    """text() at unix time t (None: the clock is not known) in the POSIX TZ string tz."""
    lt = None
    if t is not None:
        import tz as zones
        lt = zones.load(tz)[0].local(t)
    return text(meter, i, what, old, new, lt)


def text(meter, i, what, old, new, lt=None):
    """The line for counter slot i of the meter: from old (believed) to new (reported)
    counts; what: counters.TR_*; lt: the local time (year, month, day, hour, minute,
    second, ...) or None while the clock is not known."""
    dpid = meter.counters.ids[i]
    r = meter.row(dpid)
    dec = r[4] if r is not None else 2
    if what == counters.TR_HELD:
        why = "held (not published) until %d reports in a row confirm a new cycle" % counters.HOLD
    elif what == counters.TR_CYCLE:
        why = "confirmed by %d reports in a row: a new cycle" % counters.HOLD
    else:
        why = "after clear_energy: a new cycle"
    return "%s (DP %d) went down from %s to %s kWh at %s: %s" % (
        r[2] if r is not None else "energy", dpid, spm02.fmt(old, dec), spm02.fmt(new, dec),
        "%04d-%02d-%02d %02d:%02d:%02d" % lt[:6] if lt else "an unknown time (clock not set)", why)
