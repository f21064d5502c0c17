# One-line logs with the time since boot. The last ones are kept for /api/state in one
# preallocated ring of bytes: log lines come at odd times, and as separate strings they
# would each pin a small hole in the heap for as long as they are kept.
import time

RING = 1024
_ring = bytearray(RING)
_pos = 0   # where the next byte goes
_full = False


def _keep(line):
    global _pos, _full
    for b in line.encode():
        _ring[_pos] = b
        _pos += 1
        if _pos == RING:
            _pos = 0
            _full = True
    _ring[_pos] = 10  # "\n" ends every kept line
    _pos = (_pos + 1) % RING
    if _pos == 0:
        _full = True


def recent():
    """The kept lines, oldest first (the oldest may have lost its start)."""
    data = bytes(_ring[_pos:] + _ring[:_pos]) if _full else bytes(_ring[:_pos])
    lines = data.decode("utf-8", "ignore").split("\n") if data else []
    if _full and lines:
        lines = lines[1:]  # cut by the ring
    return [x for x in lines if x]


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
