# A small fake of MicroPython's `machine` for host tests (it shadows the unix port's own
# machine module when host_tests/fakes is on MICROPYPATH). Tests drive it through the
# class attributes and reset_all().
import io
import time

FAKE = True
resets = []

# machine.reset_cause() values of MicroPython's ESP32 port
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
cause = [PWRON_RESET]  # what reset_cause() says: tests set cause[0]


def reset_all():
    del resets[:]
    UART.instances = []
    Pin.levels = {}
    Pin.instances = []
    WDT.instances = []
    cause[0] = PWRON_RESET
    RTC.mem = b""


def reset():
    resets.append(time.ticks_ms())


def reset_cause():
    return cause[0]


class RTC:
    mem = b""  # the RTC's user memory: kept across resets (not a power cut), as on the chip

    def memory(self, data=None):
        if data is None:
            return RTC.mem
        RTC.mem = bytes(data)


def unique_id():
    return b"\x24\x0a\xc4\x12\xab\xcd"


class UART(io.IOBase):
    """Records writes in .tx; tests inject received bytes with .inject(). Works with
    asyncio.StreamReader/Writer: the unix port's poll asks ioctl for a file number first
    (answer -1: none) and then polls through ioctl(MP_STREAM_POLL)."""
    instances = []

    def __init__(self, id, **kw):
        if id == 0 and "rxbuf" in kw:
            raise ValueError("REPL UART buffer size is fixed")  # as MicroPython's ESP32 port
        self.id = id
        self.kw = kw
        self.rx = bytearray()
        self.tx = bytearray()
        UART.instances.append(self)

    def inject(self, data):
        self.rx.extend(data)

    def any(self):
        return len(self.rx)

    def read(self, n=-1):
        if not self.rx:
            return None  # timeout=0: nothing yet
        if n is None or n < 0:
            n = len(self.rx)
        data = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return data

    def readinto(self, buf, n=-1):
        if not self.rx:
            return None
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, data):
        self.tx.extend(data)
        return len(data)

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            ready = 4 & arg  # always writable
            if self.rx:
                ready |= 1 & arg
            return ready
        return -1  # MP_STREAM_GET_FILENO and the rest: not a file


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    levels = {}      # pin id -> input level set by the test
    instances = []

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.out = 0
        self.history = []  # (ticks_ms, value) of every write
        Pin.instances.append(self)
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.OUT:
                return self.out
            return Pin.levels.get(self.id, 1 if self.pull == Pin.PULL_UP else 0)
        self.out = 1 if v else 0
        self.history.append((time.ticks_ms(), self.out))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class WDT:
    instances = []

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = []  # ticks_ms of every feed
        WDT.instances.append(self)

    def feed(self):
        self.feeds.append(time.ticks_ms())
