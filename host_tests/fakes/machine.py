# A small fake of MicroPython's `machine` for host tests (it shadows the unix port's own
# machine module when host_tests/fakes is on MICROPYPATH). Tests drive it through the
# class attributes and reset_all().
# make check holds it to MicroPython's stubs: every name here exists on the device and
# takes the same calls, except what carries "# test-only" (how the tests drive and inspect
# the fake). A parameter named __x is positional-only, as the C function's (MicroPython
# has no `/`).
import io
import time

FAKE = True  # test-only
resets = []  # test-only

# machine.reset_cause() values of MicroPython's ESP32 port
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
cause = [PWRON_RESET]  # test-only: what reset_cause() says: tests set cause[0]


def reset_all():  # test-only
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
    mem = b""  # test-only: the RTC's user memory, kept across resets (not a power cut), as on the chip

    def memory(self, __data=None):
        data = __data
        if data is None:
            return RTC.mem
        RTC.mem = bytes(data)


def unique_id():
    return b"\x24\x0a\xc4\x12\xab\xcd"


class UART(io.IOBase):
    """Records writes in .tx; tests inject received bytes with .inject(). Works with
    asyncio.StreamReader/Writer: the unix port's poll asks ioctl for a file number first
    (answer -1: none) and then polls through ioctl(MP_STREAM_POLL)."""
    instances = []  # test-only

    def __init__(self, __id, baudrate=None, *, tx=None, rx=None, rxbuf=None, timeout=None):
        if __id == 0 and rxbuf is not None:
            raise ValueError("REPL UART buffer size is fixed")  # as MicroPython's ESP32 port
        self.id = __id  # test-only
        given = (("baudrate", baudrate), ("tx", tx), ("rx", rx), ("rxbuf", rxbuf), ("timeout", timeout))
        self.kw = dict((k, v) for k, v in given if v is not None)  # test-only: the keywords given
        self.rx = bytearray()  # test-only
        self.tx = bytearray()  # test-only
        UART.instances.append(self)

    def inject(self, data):  # test-only
        self.rx.extend(data)

    def any(self):
        return len(self.rx)

    def read(self, __n=-1):
        n = __n
        if not self.rx:
            return None  # timeout=0: nothing yet
        if n is None or n < 0:
            n = len(self.rx)
        data = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return data

    def readinto(self, __buf, __n=-1):
        buf = __buf
        if not self.rx:
            return None
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, __data):
        data = __data
        self.tx.extend(data)
        return len(data)

    def ioctl(self, req, arg):  # test-only: the unix port's poll asks a Python stream this
        if req == 3:  # MP_STREAM_POLL
            ready = 4 & arg  # always writable
            if self.rx:
                ready |= 1 & arg
            return ready
        return -1  # MP_STREAM_GET_FILENO and the rest: not a file


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2    # the ESP32 port's values (make check compares them with the stub)
    PULL_DOWN = 1
    levels = {}      # test-only: pin id -> input level set by the test
    instances = []   # test-only

    def __init__(self, __id, mode=-1, pull=-1, *, value=None):
        self.id = __id  # test-only
        self._mode = mode
        self._pull = pull
        self.out = 0  # test-only
        self.history = []  # test-only: (ticks_ms, value) of every write
        Pin.instances.append(self)
        if value is not None:
            self.value(value)

    def mode(self):
        return self._mode

    def pull(self):
        return self._pull

    def value(self, __v=None):
        v = __v
        if v is None:
            if self._mode == Pin.OUT:
                return self.out
            return Pin.levels.get(self.id, 1 if self._pull == Pin.PULL_UP else 0)
        self.out = 1 if v else 0
        self.history.append((time.ticks_ms(), self.out))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class WDT:
    instances = []  # test-only

    def __init__(self, *, id=0, timeout=5000):
        self.timeout = timeout  # test-only
        self.feeds = []  # test-only: ticks_ms of every feed
        WDT.instances.append(self)

    def feed(self):
        self.feeds.append(time.ticks_ms())
