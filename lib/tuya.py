# TuyaMCU framing and DP records: pure, sans-IO, runs on CPython and MicroPython.
#
#   55 AA | ver | cmd | len_hi len_lo | data[len] | checksum (sum of all before, mod 256)
#
# The decoder is fed arbitrary chunks and hands out one frame at a time. It works in
# a single preallocated buffer and never raises on input: a frame that fails (bad
# checksum, absurd length, truncated) is counted and its bytes after the first are
# scanned again, so a good frame that starts inside a broken one is not lost.
# Encoding DP records is lib/commands.py's (encode_dp): only a command sends DPs.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAX_DATA = const(1024)  # no real frame of the SPM02 comes near; anything longer is noise

# Commands (their names for people are in tools/decode.py)
HEARTBEAT = const(0x00)
PRODUCT = const(0x01)
MODE = const(0x02)
WIFI_STATE = const(0x03)
WIFI_RESET = const(0x04)
SET_DP = const(0x06)
REPORT = const(0x07)
QUERY = const(0x08)
WIFI_TEST = const(0x0E)
LOCAL_TIME = const(0x1C)
REPORT_ACK = const(0x22)
REPORT_ACK_ANSWER = const(0x23)
RSSI = const(0x24)
NET_STATUS = const(0x2B)
EXTENDED = const(0x34)

# DP types
T_RAW = const(0)
T_BOOL = const(1)
T_VALUE = const(2)
T_STRING = const(3)
T_ENUM = const(4)
T_BITMAP = const(5)
TYPE_NAMES = ("raw", "bool", "value", "string", "enum", "bitmap")


def encode(cmd, data=b"", ver=0):
    """One complete frame as bytes."""
    n = len(data)
    f = bytearray(7 + n)
    f[0] = 0x55
    f[1] = 0xAA
    f[2] = ver
    f[3] = cmd
    f[4] = n >> 8
    f[5] = n & 0xFF
    f[6:6 + n] = data
    s = 0
    for i in range(6 + n):
        s += f[i]
    f[6 + n] = s & 0xFF
    return bytes(f)


def be_uint(buf, start, n):
    v = 0
    for i in range(start, start + n):
        v = (v << 8) | buf[i]
    return v


def be_int32(buf, start):
    # Negative numbers are built from the inverted bytes so that on a 32-bit device
    # no intermediate exceeds a small int (no heap allocation).
    if buf[start] & 0x80:
        return -(((buf[start] ^ 0xFF) << 24 | (buf[start + 1] ^ 0xFF) << 16
                  | (buf[start + 2] ^ 0xFF) << 8 | (buf[start + 3] ^ 0xFF)) + 1)
    return buf[start] << 24 | buf[start + 1] << 16 | buf[start + 2] << 8 | buf[start + 3]


def dp_value(dptype, buf, start, n):
    """The decoded value of one DP record: int, str or bytes."""
    if dptype == T_VALUE and n == 4:
        return be_int32(buf, start)
    if dptype in (T_BOOL, T_ENUM, T_BITMAP, T_VALUE):
        return be_uint(buf, start, n)
    if dptype == T_STRING:
        try:
            return bytes(buf[start:start + n]).decode()
        except Exception:  # not UTF-8: keep the bytes (MicroPython has no other codecs)
            pass
    return bytes(buf[start:start + n])


def dp_records(buf, start, end):
    """List of (dpid, type, value_start, value_len) records in buf[start:end].

    Stops at a record that runs past the end (the rest is not DPs). For tools and
    tests; the device walks records in place (see meter.Meter.dps)."""
    out = []
    i = start
    while i + 4 <= end:
        n = buf[i + 2] << 8 | buf[i + 3]
        if i + 4 + n > end:
            break
        out.append((buf[i], buf[i + 1], i + 4, n))
        i += 4 + n
    return out


class Decoder:
    """Incremental frame decoder.

        dec.feed(chunk)
        while dec.next():
            dec.cmd, dec.ver, dec.buf[6:6 + dec.plen]  (valid until the next call)
    """

    def __init__(self, max_data=MAX_DATA):
        self.max_data = max_data
        self.buf = bytearray(max_data + 7)
        self.n = 0  # bytes of the candidate frame in buf
        self._sum = 0
        self._rp = 0  # replay: bytes buf[_rp:_re] are scanned again before new input
        self._re = 0
        self._in = b""
        self._ip = 0
        self._end = 0
        self.ver = 0
        self.cmd = 0
        self.plen = 0
        self.frames = 0
        # Errors by kind: bytes outside any frame, bad checksums, absurd lengths,
        # partial frames dropped after the line went idle.
        self.noise = 0
        self.checksum = 0
        self.too_long = 0
        self.truncated = 0

    def feed(self, data, n=-1):
        """Take data[:n] (all of it when n < 0) as the next input; no copy is made."""
        self._in = data
        self._ip = 0
        self._end = len(data) if n < 0 else n

    def pending(self):
        """True while a partial frame waits for more bytes."""
        return self.n > 0 or self._rp < self._re

    def expire(self):
        """The line went idle inside a frame: drop it and rescan its bytes."""
        if self.n:
            self.truncated += 1
            self._fail()

    def _fail(self):
        # Rescan everything after the failed frame's first byte: buf[1:n] followed by
        # what was still waiting in the replay area. Move the latter down so that the
        # two are contiguous (the write position never passes the read position).
        buf = self.buf
        n = self.n
        rp = self._rp
        re = self._re
        w = n
        while rp < re:
            buf[w] = buf[rp]
            w += 1
            rp += 1
        self._rp = 1
        self._re = w
        self.n = 0

    def next(self):
        """Advance to the next complete frame. False when the input is used up."""
        buf = self.buf
        while True:
            if self._rp < self._re:
                b = buf[self._rp]
                self._rp += 1
            elif self._ip < self._end:
                b = self._in[self._ip]
                self._ip += 1
            else:
                return False
            n = self.n
            if n == 0:
                if b == 0x55:
                    buf[0] = b
                    self.n = 1
                    self._sum = b
                else:
                    self.noise += 1
                continue
            if n == 1:
                if b == 0xAA:
                    buf[1] = b
                    self.n = 2
                    self._sum += b
                elif b != 0x55:  # 55 55 AA: the second 55 may start the frame
                    self.noise += 2
                    self.n = 0
                else:
                    self.noise += 1
                continue
            buf[n] = b
            n += 1
            self.n = n
            if n < 6:
                self._sum += b
                continue
            plen = buf[4] << 8 | buf[5]
            if n == 6:
                self._sum += b
                if plen > self.max_data:
                    self.too_long += 1
                    self._fail()
                continue
            if n < 7 + plen:
                self._sum += b
                continue
            # n == 7 + plen: b is the checksum
            if (self._sum & 0xFF) != b:
                self.checksum += 1
                self._fail()
                continue
            self.ver = buf[2]
            self.cmd = buf[3]
            self.plen = plen
            self.frames += 1
            self.n = 0
            return True

    def errors(self):
        return {"noise": self.noise, "checksum": self.checksum,
                "too_long": self.too_long, "truncated": self.truncated}
