# Keeps the energy bookkeeping of lib/energy.py going: its clock once a second, the files
# next to the config (firmware/store.py, loaded only for a read or a write), and a save
# before a restart (App.before_restart).
import gc
import sys
import time

import asyncio

from energy import Energy, EV_ROLL, EV_SAVE, EV_QUERY, EV_SHOW, Y2K
from firmware import board, log
from firmware.borrow import borrow, TURN


def _wipe(n):
    # The GC is conservative: words the day change left on the C stack would keep the
    # modules it imported alive. Calls this deep overwrite them.
    return _wipe(n - 1) if n else 0


class Keeper(Energy):
    def __init__(self, app):
        Energy.__init__(self, app.mcu.meter, app.cfg["time"]["tz"])  # config.py checked it
        self.app = app
        d = app.config_path
        self.path = d[:d.rfind("/") + 1] + "energy.dat"  # next to the config
        self.writes = 0      # files written since boot: flash writes
        self.error = None
        self.retry = 0       # after a failed write: not again before this unix time
        self.seen = None     # mcu.last_report of the last report taken
        self.note = self._store(2)  # load: a warning goes with the config's
        self.meter.counters.trace = self._trace
        t = board.unix_time()
        if t is not None:
            self._tick(t, False)  # the calendar now, while the heap is quiet

    async def run(self):
        while True:
            t = board.unix_time()
            if t is not None:
                # a save, a day change, a first start load code: not while others hold the heap
                async with TURN:
                    t = board.unix_time()
                    try:
                        if t is not None:
                            self._step(t)
                    except Exception as e:  # never the end of the bookkeeping
                        log.error("energy: %r", e)
            # near midnight, tick often so that the day ends on time
            m = self.midnight
            ms = 1000
            if t is not None and m is not None:
                left = m - (t - Y2K)
                if left <= 2:
                    ms = 100
                if left > 0:  # a clock made faster (board.SPEED, host only): wake at midnight all the same
                    ms = min(ms, left * 1000 // board.SPEED + 5)
            await asyncio.sleep_ms(ms)

    def _step(self, t):
        app = self.app
        lr = app.mcu.last_report
        # a report burst that has ended (30 ms of quiet on the UART)
        report = lr != self.seen and time.ticks_diff(time.ticks_ms(), app.link.last_rx) >= 30
        if report:
            self.seen = lr
        ev = self._tick(t, report)
        link = app.mcu.link
        if ev & EV_QUERY and link.online:
            link.send(0x08)  # the day should end on the meter's latest counts
        if ev & EV_SHOW:
            self.meter.seq += 1  # the day keys changed: publish
        if ev & EV_ROLL:
            self._store(1)
        if ev & EV_SAVE and t >= self.retry:
            self._store(0, t)

    def _tick(self, t, report):
        try:
            return self.tick(t, report)
        except Exception as e:  # (no memory for the day change): again at the next tick
            log.error("energy: %r", e)
            return 0
        finally:
            if "days" in sys.modules:  # imported for a day change only
                sys.modules.pop("days")
                sys.modules.pop("tz", None)
                _wipe(24)

    def _trace(self, i, what, old, new):
        # A held drop or a new cycle of an energy counter (lib/counters.py): a warn line with
        # the local time, which stays in the log (and syslog) after the warning is gone.
        # Rare: the calendar's code is borrowed for it.
        try:
            with borrow("countlog", "tz") as countlog:
                log.warn("energy: %s", countlog.line(self.meter, i, what, old, new, self.tz, board.unix_time()))
        except Exception as e:  # (no memory now): the values at least
            log.warn("energy: DP %d went down from %d to %d (counts): %r", self.meter.counters.ids[i], old, new, e)

    def _store(self, what, t=None):
        """firmware/store.py: 0 save, 1 keep the day that ended, 2 load."""
        gc.collect()  # its code in one piece of heap (the others wait: TURN)
        try:
            with borrow("firmware.store", "files") as store:
                return store.run(self, what, t)
        except Exception as e:  # a full or failing flash: said, and tried again later
            self.error = repr(e)
            log.error("energy: %r", e)
            if t is not None:
                self.retry = t + 60

    def flush(self):
        """Before a restart: save what changed since the last save."""
        if self.unsaved():
            self._store(0, board.unix_time())
