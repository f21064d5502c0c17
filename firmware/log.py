# One-line logs with the time since boot; the last few stay in RAM for the page.
import time

RECENT = 12
recent = []


def log(level, msg, *args):
    if args:
        try:
            msg = msg % args
        except Exception:
            msg = "%s %r" % (msg, args)
    line = "%d.%03d %s %s" % (time.ticks_ms() // 1000 % 100000, time.ticks_ms() % 1000, level, msg)
    print(line)
    if level != "D":
        recent.append(line)
        if len(recent) > RECENT:
            recent.pop(0)


def info(msg, *args):
    log("I", msg, *args)


def warn(msg, *args):
    log("W", msg, *args)


def error(msg, *args):
    log("E", msg, *args)
