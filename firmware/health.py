# Hardware watchdog fed from the asyncio loop, and only while the firmware is healthy:
# the loop runs (a blocked loop never gets here to feed), every watched task is alive
# and none has been silent too long. On trouble it logs once and stops feeding, and the
# WDT resets the chip.
import time

import asyncio

from firmware import log


class Health:
    def __init__(self, wdt=None, timeout_ms=30000, check_ms=1000, ticks=None):
        # wdt: the machine module (uses machine.WDT) or a factory(timeout=ms) -> obj.feed()
        # timeout_ms must exceed the longest blocking call: umqtt connect, getaddrinfo,
        # WLAN.scan (~3 s), ntptime.
        if wdt is not None and hasattr(wdt, "WDT"):
            wdt = wdt.WDT
        self.factory = wdt
        self.timeout_ms = timeout_ms
        self.check_ms = check_ms
        self.ticks = ticks or time.ticks_ms
        self.wdt = None
        self.failed = None  # why feeding stopped
        self.feeds = 0
        self.max_lag_ms = 0
        self._watched = {}  # name -> [task, max_silence_ms or None, last beat]

    def watch(self, name, task, max_silence_ms=None):
        """Watch a task: it must stay alive and, with a limit, call beat(name) that often."""
        self._watched[name] = [task, max_silence_ms, self.ticks()]

    def beat(self, name):
        w = self._watched.get(name)
        if w is not None:
            w[2] = self.ticks()

    def problem(self, now=None):
        """What is wrong, or None."""
        now = self.ticks() if now is None else now
        for name in self._watched:
            task, limit, last = self._watched[name]
            if task.done():
                return "task %s ended" % name
            if limit is not None and time.ticks_diff(now, last) > limit:
                return "task %s silent for %d ms" % (name, time.ticks_diff(now, last))
        return None

    def status(self):
        return {"ok": self.failed is None, "failed": self.failed, "feeds": self.feeds,
                "max_lag_ms": self.max_lag_ms, "watched": list(self._watched)}

    async def run(self):
        if self.factory is not None:
            self.wdt = self.factory(timeout=self.timeout_ms)  # from here on it cannot be stopped
        last = self.ticks()
        while True:
            await asyncio.sleep_ms(self.check_ms)
            now = self.ticks()
            lag = time.ticks_diff(now, last) - self.check_ms
            last = now
            if lag > self.max_lag_ms:
                if lag >= 1000:  # a new worst blocking call: worth knowing before it gets fatal
                    log.warn("health: loop blocked for %d ms", lag)
                self.max_lag_ms = lag
            if self.failed is not None:
                continue
            why = self.problem(now)
            if why is None and lag >= self.timeout_ms:
                # only seen with a fake WDT: a real one has reset the chip by now
                why = "loop stalled for %d ms" % lag
            if why is not None:
                self.failed = why
                log.error("health: %s; no more watchdog feeds, reset in %d s", why, self.timeout_ms // 1000)
                continue
            if self.wdt is not None:
                self.wdt.feed()
            self.feeds += 1
