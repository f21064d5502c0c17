# Moves bytes between the UART and the sans-IO Mcu, and runs its timers. One reader
# task, one writer task per UART. Keeps going through MCU silence, MCU reboots, line
# noise and (on the host) the TCP line going away.
import time

import asyncio
from micropython import const

from firmware import board, log
from link import EV_ONLINE, EV_OFFLINE, EV_REBOOT, EV_SETUP

RX_BUF = const(256)
IDLE_MS = const(200)  # a frame that stops arriving for this long was cut short
TICK_MS = const(10)


class McuLink:
    def __init__(self, mcu, on_setup=None):
        # Nobody needs telling when readings change: MQTT and the page compare meter.seq.
        self.mcu = mcu
        self.on_setup = on_setup
        self.connected = False
        self.last_rx = 0
        self._buf = bytearray(RX_BUF)
        self._beat = None

    async def run(self, ucfg, beat=None):
        self._beat = beat
        delay = 1
        while True:
            if beat is not None:
                beat("uart")  # also while the UART cannot be opened: that is no hang
            try:
                r, w = await board.open_uart(ucfg)
            except Exception as e:
                log.warn("uart: cannot open (%r); again in %d s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            delay = 1
            self.connected = True
            log.info("uart: open")
            tx = asyncio.create_task(self._writer(w))
            try:
                await self._reader(r)
            except Exception as e:
                log.warn("uart: %r", e)
            finally:
                self.connected = False
                tx.cancel()
                try:
                    w.close()
                    await w.wait_closed()
                except Exception:
                    pass
            await asyncio.sleep(1)

    def _events(self, ev, now):
        if ev & EV_ONLINE:
            log.info("mcu: online")
        if ev & EV_REBOOT:
            log.warn("mcu: rebooted, handshake again")
        if ev & EV_OFFLINE:
            log.warn("mcu: offline (heartbeats unanswered)")
        if ev & EV_SETUP and self.on_setup:
            self.on_setup()

    async def _reader(self, r):
        buf = self._buf
        while True:
            n = await r.readinto(buf)
            if not n:
                raise OSError("uart closed")
            now = board.ticks()
            self.last_rx = now
            ev = self.mcu.feed(now, buf, n)
            if ev:
                self._events(ev, now)

    async def _writer(self, w):
        mcu = self.mcu
        dec = mcu.dec
        while True:
            now = board.ticks()
            if dec.pending() and time.ticks_diff(now, self.last_rx) > IDLE_MS:
                dec.expire()
                ev = mcu.feed(now, b"")
                if ev:
                    self._events(ev, now)
            f = mcu.poll(now)
            if f is not None:
                w.write(f)
                await w.drain()
            ev = mcu.link.take_events()
            if ev:
                self._events(ev, now)
            if self._beat is not None:
                self._beat("uart")  # for the watchdog: this loop is alive
            await asyncio.sleep_ms(TICK_MS)
