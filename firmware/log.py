# One-line logs with the time since boot. The last ones are kept for /api/state in one
# preallocated ring of bytes: log lines come at odd times, and as separate strings they
# would each pin a small hole in the heap for as long as they are kept.
import time

RING = 1024
_ring = bytearray(RING)
_pos = 0   # where the next byte goes
_full = False
_count = 0  # lines kept since boot: the number the next one gets (/api/log?since=)


def _keep(line):
    global _pos, _full, _count
    _count += 1
    for b in line.encode():
        _ring[_pos] = b if b != 10 else 32  # one line stays one line: its number counts
        _pos += 1
        if _pos == RING:
            _pos = 0
            _full = True
    _ring[_pos] = 10  # "\n" ends every kept line
    _pos = (_pos + 1) % RING
    if _pos == 0:
        _full = True


def lines():
    """The kept lines, oldest first, one at a time: only a line's worth of heap at once
    (copying the whole ring to split it took five times its size)."""
    first = _full  # the oldest may have lost its start
    cur = b""
    for a, b in ((_pos, RING), (0, _pos)) if _full else ((0, _pos),):
        i = a
        while i < b:
            j = i
            while j < b and _ring[j] != 10:
                j += 1
            cur += _ring[i:j]
            if j < b:  # the line ends here
                if cur and not first:
                    yield cur.decode("utf-8", "ignore")
                first = False
                cur = b""
            i = j + 1


def recent():
    """The kept lines, oldest first, as a list."""
    return list(lines())


LEVELS = "DIWE"
_least = 1   # index in LEVELS of the least level logged: info
_sink = None  # sink(level, msg): the remote log, when configured


def configure(level="info", sink=None):
    """log.level (debug|info|warn|error) and where lines go besides the console and ring."""
    global _least, _sink
    i = LEVELS.find(level[:1].upper())
    _least = i if i >= 0 else 1
    _sink = sink


def log(level, msg, *args):
    if LEVELS.find(level) < _least:
        return
    if args:
        try:
            msg = msg % args
        except Exception:
            msg = "%s %r" % (msg, args)
    t = time.ticks_ms()
    line = "%d.%03d %s %s" % (t // 1000 % 100000, t % 1000, level, msg)
    print(line)
    if level != "D":
        _keep(line)
    if _sink is not None:
        _sink(level, msg)


def info(msg, *args):
    log("I", msg, *args)


def warn(msg, *args):
    log("W", msg, *args)


def error(msg, *args):
    log("E", msg, *args)
