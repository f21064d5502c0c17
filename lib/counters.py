# Energy counters Home Assistant can trust. Home Assistant reads any drop of a
# total_increasing counter as a new meter cycle and counts the next value again in full, so
# a bogus 0 from the meter (some send them after power-up) would add the whole counter to
# the Energy dashboard. The rule, per energy DP:
#   - nothing is believed before the meter's first report since boot;
#   - a value below the believed one is held: the believed value stays, a warning names
#     the DP, until HOLD reports in a row confirm the drop (each at or above the one before,
#     as a counter that started again counts); then it is a new cycle;
#   - after our own clear_energy (cleared()) a drop within the next _ARM reports is a new
#     cycle at once;
#   - the believed value from before a restart (firmware/store.py puts it in value with
#     S_KNOWN) is what a first report after boot is held against, so a bogus 0 then is held
#     too; it is not shown itself (Home Assistant may have seen more since it was saved):
#     the DP's reading stays away until a report is believed.
# Each drop held and each new cycle is counted (glitches, cycles) and told to trace(i, what,
# believed, value), when the firmware sets one (it logs them with the local time), so that
# the trace stays after the warning has gone.
# mono() never goes down: the believed value plus every value a new cycle ended, so
# today's energy stays right across a clear (lib/energy.py works on it).
#
# Sans-IO, and allocation-free per report: small ints in lists indexed by slot, one slot per
# DP id that is an energy counter in some layout (the meter decides which it shows).
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

HOLD = const(3)       # reports in a row that confirm a drop
_ARM = const(3)       # reports after our clear_energy within which a drop is the new cycle
S_KNOWN = const(1)    # there is a believed value (reported, or restored)
_S_LIVE = const(2)    # a report since boot was believed: the value is shown
TR_HELD = const(1)    # trace(): a drop is held
TR_CYCLE = const(2)   # a drop confirmed by HOLD reports in a row: a new cycle
TR_CLEARED = const(3)  # a drop after our clear_energy: a new cycle at once


class Counters:
    def __init__(self, ids):
        n = len(ids)
        self.ids = tuple(ids)
        self.st = bytearray(n)
        self.value = [0] * n      # believed, in the DP's counts
        self.fold = [0] * n       # the sum of the values new cycles ended
        self.low = [0] * n        # a held drop: the last value below the believed one
        self.held = bytearray(n)  # reports of the held drop so far (0: none held)
        self.arm = bytearray(n)   # reports left in which a drop follows our clear_energy
        self.cycles = 0           # new cycles taken: the firmware saves the fold at once
        self.glitches = 0         # drops held (each once, however long; a new cycle is held first)
        self.trace = None         # trace(i, TR_*, believed, value), or None

    def slot(self, dpid):
        ids = self.ids
        for i in range(len(ids)):
            if ids[i] == dpid:
                return i
        return -1

    def report(self, i, c, rule=True):
        """The meter reported count c for slot i; rule: the DP is an energy counter in the
        meter's layout (else the value is only kept: DP 109 is a current on the v2 layout).
        True when what is shown changed (the believed value, or a drop held or let go)."""
        st = self.st[i]
        arm = self.arm[i]
        if arm:
            self.arm[i] = arm - 1
        b = self.value[i]
        n = self.held[i]
        if not rule or not st & S_KNOWN or c >= b:
            # the first value ever, or a counter that did not go down
            self.st[i] = S_KNOWN | _S_LIVE
            self.held[i] = 0
            self.value[i] = c
            return c != b or n > 0 or not st & _S_LIVE
        low = self.low[i]
        self.low[i] = c
        n = n + 1 if n and c >= low else 1
        if arm or n >= HOLD:
            # a new cycle: what the old one counted is kept in fold
            self.st[i] = S_KNOWN | _S_LIVE
            self.fold[i] += b
            self.value[i] = c
            self.arm[i] = self.held[i] = 0
            self.cycles += 1
            if self.trace is not None:
                self.trace(i, TR_CLEARED if arm else TR_CYCLE, b, c)
            return True
        if not self.held[i]:
            self.glitches += 1
            if self.trace is not None:
                self.trace(i, TR_HELD, b, c)
        self.held[i] = n
        return n == 1 or c != low

    def cleared(self):
        """Our clear_energy went to the meter: a drop that follows is a new cycle."""
        for i in range(len(self.ids)):
            self.arm[i] = _ARM

    def believed(self, i):
        """The value to publish, or None before a report since boot was believed."""
        return self.value[i] if i >= 0 and self.st[i] & _S_LIVE else None

    def mono(self, i):
        """A count that never goes down (believed + folded), or None like believed()."""
        return self.fold[i] + self.value[i] if i >= 0 and self.st[i] & _S_LIVE else None
