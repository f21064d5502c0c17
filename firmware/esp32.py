# The ESP32 board layer, kept thin: the UART to the MCU, the status LED, the button,
# the chip id and reset. `machine` and `micropython` are module globals so host tests
# can swap in fakes (the unix port's micropython module cannot be patched).
import os
import sys
import time

import asyncio
import micropython
from micropython import const

from firmware import log

try:
    import machine
except ImportError:  # not on every port; tests set esp32.machine
    machine = None

RXBUF = const(2048)  # the longest stall (a WLAN.scan, a TLS-less MQTT connect) at 9600 baud

# The chip's UART0 RX pin, where the REPL listens (and the ROM prints its boot log).
_REPL_RX = (("C3", 20), ("C2", 19), ("C6", 17), ("S3", 44), ("S2", 44))


def chip():
    """What the firmware runs on, e.g. "ESP32C3 module with ESP32C3"."""
    try:
        import os
        return os.uname().machine
    except Exception:
        return getattr(sys.implementation, "_machine", "")


def repl_rx_pin(name=None):
    name = chip() if name is None else name
    for key, pin in _REPL_RX:
        if key in name:
            return pin
    return 3  # classic ESP32


# How many UARTs a chip has (MicroPython's machine.UART ids); the classic ESP32 has 3
_UARTS = (("C3", 2), ("C2", 2), ("C6", 2), ("S2", 2), ("S3", 3))


def uart_problem(ucfg, chip_name=None):
    """What is wrong with the uart settings on this chip, or None. Pins must be given:
    a C3's UART1 defaults to RX on GPIO9, the boot pin."""
    name = chip() if chip_name is None else chip_name
    n = 3
    for key, k in _UARTS:
        if key in name:
            n = k
    if not 0 <= ucfg["id"] < n:
        return "uart.id %d: this chip has UART 0..%d" % (ucfg["id"], n - 1)
    if ucfg["tx"] < 0 or ucfg["rx"] < 0 or ucfg["tx"] == ucfg["rx"]:
        return "uart.tx and uart.rx must be two GPIO numbers (got %d and %d)" % (ucfg["tx"], ucfg["rx"])
    return None


def open_uart(ucfg, chip_name=None):
    """(reader, writer) asyncio streams over the UART to the MCU."""
    bad = uart_problem(ucfg, chip_name)
    if bad:
        raise ValueError(bad)
    uid = ucfg["id"]
    kw = {"baudrate": ucfg["baudrate"], "tx": ucfg["tx"], "rx": ucfg["rx"], "timeout": 0}
    if uid != 0:
        # MicroPython refuses to resize the REPL UART's buffer ("REPL UART buffer size is fixed")
        kw["rxbuf"] = RXBUF
    if uid == 0 or ucfg["rx"] == repl_rx_pin(chip_name):
        # Every TuyaMCU frame holds 0x03 bytes (Ctrl-C): reaching the REPL they would raise
        # KeyboardInterrupt and kill the firmware. The owner gets the REPL back in safe mode.
        micropython.kbd_intr(-1)
        log.warn("uart: UART%d rx=GPIO%d shares the REPL's input: Ctrl-C disabled "
                 "(hold the button at boot for safe mode)", uid, ucfg["rx"])
    u = machine.UART(uid, **kw)
    return asyncio.StreamReader(u), asyncio.StreamWriter(u, {})


def _pin_ok(pin):
    return pin is not None and pin >= 0  # None or -1: not fitted


class Led:
    """Status LED. Modes: "setup" fast blink, "connecting" slow blink, "online" a short
    blink every 2 s (solid on would look the same as a hung firmware), "off"."""
    PATTERNS = {"setup": (100, 100), "connecting": (500, 500), "online": (50, 1950), "off": (0, 500)}
    STEP_MS = 50  # how quickly a mode change shows

    def __init__(self, pin, invert=False):
        self.pin = machine.Pin(pin, machine.Pin.OUT) if _pin_ok(pin) else None
        self.invert = bool(invert)
        self.mode = "connecting"
        self._on(False)

    def set(self, mode):
        self.mode = mode

    def _on(self, on):
        if self.pin is not None:
            self.pin.value(1 if bool(on) != self.invert else 0)

    async def _phase(self, mode, on, ms):
        self._on(on)
        while ms > 0 and self.mode == mode:
            step = min(ms, self.STEP_MS)
            await asyncio.sleep_ms(step)
            ms -= step

    async def run(self):
        if self.pin is None:
            return
        while True:
            mode = self.mode
            on_ms, off_ms = self.PATTERNS.get(mode, self.PATTERNS["off"])
            if on_ms:
                await self._phase(mode, True, on_ms)
            await self._phase(mode, False, off_ms)


class Button:
    """Active-low button with pull-up; on_long() once per press held >= LONG_MS."""
    LONG_MS = 5000
    POLL_MS = 50

    def __init__(self, pin, on_long=None):
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP) if _pin_ok(pin) else None
        self.on_long = on_long
        self.long_presses = 0

    def pressed(self):
        return self.pin is not None and self.pin.value() == 0

    async def run(self):
        if self.pin is None:
            return
        since = None
        fired = False
        while True:
            if self.pressed():
                now = time.ticks_ms()
                if since is None:
                    since, fired = now, False
                elif not fired and time.ticks_diff(now, since) >= self.LONG_MS:
                    fired = True
                    self.long_presses += 1
                    log.warn("button: long press")
                    if self.on_long:
                        self.on_long()
            else:
                since = None
            await asyncio.sleep_ms(self.POLL_MS)


def safe_mode(pin, window_ms=2000, hold_ms=200):
    """True when the button is held (low for hold_ms in a row) within window_ms after
    boot: main.py then leaves the REPL to mpremote instead of starting the firmware."""
    if not _pin_ok(pin):
        return False
    p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
    start = time.ticks_ms()
    since = None
    while True:
        now = time.ticks_ms()
        if p.value() == 0:
            if since is None:
                since = now
            if time.ticks_diff(now, since) >= hold_ms:
                return True
        else:
            since = None
        if time.ticks_diff(now, start) >= window_ms:
            return False
        time.sleep_ms(10)


def wifi_trial(app):
    """A Wi-Fi change on trial: its task (firmware/fallback.py) when config.json.prev is there."""
    try:
        os.stat(app.config_path + ".prev")
    except OSError:
        return

    async def trial():
        from firmware.borrow import borrow
        with borrow("firmware.fallback", "files") as fallback:  # only while the trial runs
            await fallback.run(app, app.wifi.JOIN_MS)
    asyncio.create_task(trial())


def unique_id():
    return "".join("%02x" % b for b in machine.unique_id()[-3:])


def reset():
    machine.reset()
