# Which install of the firmware runs: the factory one (the files make deploy put in /lib and
# /firmware, or the code frozen into a custom image) or one of two OTA install directories,
# <data>/ota/a and <data>/ota/b. The choice is the pointer <data>/ota/current, a small JSON
# object always replaced by a temp file and a rename, so a power cut leaves the old pointer
# or the new one:
#   slot, id          what runs: "a"/"b" and its bundle id, or "factory"
#   prev_slot, previous   where to go back to: a proven install, or "factory"
#   boots, proven     boots of an unproven install so far; proven once it showed itself healthy
#   rolled_back       why the last rollback happened (kept until the next update)
#   error             the last exception that ended an unproven install (for rolled_back)
# An install directory is complete only while its file "id" holds its bundle id: written
# last by the receiver, removed first when the directory is reused.
#
# main.py imports this module from the factory install (before any OTA directory is on
# sys.path) and drops it again before the firmware loads, so a broken update cannot break
# the code that decides to go back; main.py itself stays a few lines (it is heap for as long
# as the firmware runs). The firmware borrows this module to write the pointer. The
# decisions are pure functions; load/store are the only file access, kept small.
import json
import os
import sys

from files import read_recovered, write_atomic

FACTORY = "factory"
MAX_BOOTS = 3        # an install that has not proven itself after this many boots goes back
SLOTS = ("a", "b")
KEYS = ("slot", "id", "prev_slot", "previous", "boots", "proven", "rolled_back", "error")


def factory(why=None):
    return {"slot": FACTORY, "id": FACTORY, "prev_slot": FACTORY, "previous": FACTORY, "boots": 0,
            "proven": True, "rolled_back": why, "error": None}


def valid(p):
    """The pointer if every field has its type, else None (a corrupt pointer means factory)."""
    if not isinstance(p, dict):
        return None
    for k in KEYS:
        if k not in p:
            return None
    for k in ("slot", "prev_slot"):
        if p[k] != FACTORY and p[k] not in SLOTS:
            return None
    for k in ("id", "previous"):
        if not isinstance(p[k], str) or not 0 < len(p[k]) <= 16:
            return None
    if not isinstance(p["boots"], int) or isinstance(p["boots"], bool) or p["boots"] < 0:
        return None
    if not isinstance(p["proven"], bool):
        return None
    for k in ("rolled_back", "error"):
        if p[k] is not None and not isinstance(p[k], str):
            return None
    return p


def parse(text):
    if text is None:
        return None
    try:
        return valid(json.loads(text))
    except Exception:
        return None


def decide(p, ok):
    """(pointer to run, changed) for this boot. p: the stored pointer or None; ok(slot, id):
    is that install directory complete with that bundle id. changed: store it before the
    firmware is imported, so that a boot which never returns still counts."""
    if p is None or p["slot"] == FACTORY:
        return (p or factory()), False
    slot, ident = p["slot"], p["id"]
    if not ok(slot, ident):
        why = "%s: install incomplete or missing" % ident
    elif p["proven"]:
        return p, False
    elif p["boots"] < MAX_BOOTS:
        q = dict(p)
        q["boots"] += 1
        return q, True
    else:
        why = "%s was not healthy after %d boots" % (ident, p["boots"])
        if p["error"]:
            why += " (last error: %s)" % p["error"]
    prev, prev_id = p["prev_slot"], p["previous"]
    if prev != FACTORY and not ok(prev, prev_id):
        why += "; %s is incomplete too" % prev_id
        prev = prev_id = FACTORY
    # prev is proven by construction (see install): it runs as proven, with nothing behind it
    q = factory("%s; went back to %s" % (why, prev_id))
    q["slot"] = prev
    q["id"] = prev_id
    return q, True


def target(p):
    """The install directory an update goes to: the one not running."""
    return "b" if p["slot"] == "a" else "a"


def install(p, slot, ident):
    """The pointer that switches to a new install from p (what runs now). Going back is
    only ever to a proven install: an unproven one has factory behind it instead."""
    keep = p["proven"]
    return {"slot": slot, "id": ident, "prev_slot": p["slot"] if keep else FACTORY,
            "previous": p["id"] if keep else FACTORY, "boots": 0, "proven": False,
            "rolled_back": None, "error": None}


def prove(p):
    q = dict(p)
    q["boots"] = 0
    q["proven"] = True
    q["error"] = None
    return q


def crashed(p, error):
    q = dict(p)
    q["error"] = error[:160]
    return q


# --- files -------------------------------------------------------------------------------

def pointer_path(d):
    """d: the data directory ("" on the device, where config.json is; on the host the
    directory of the config file, with its trailing "/")."""
    return d + "ota/current"


def slot_dir(d, slot):
    return d + "ota/" + slot


def _read(path, limit=1024):
    try:
        with open(path) as f:
            return f.read(limit)
    except OSError:
        return None


def slot_ok(d, slot, ident):
    return _read(slot_dir(d, slot) + "/id", 32) == ident


def load(d):
    """The stored pointer, or None (none, or corrupt). A leftover temp file is either a write
    cut short before its rename (the pointer is still there: drop it) or, on FAT, one cut
    between the remove and the rename (no pointer: it is the new one)."""
    text, _ = read_recovered(pointer_path(d), _read, lambda t: parse(t) is not None)
    return parse(text)


def store(d, p, point=None, rename=None, remove=None):
    """Replace the pointer: a temp file, then a rename (FAT will not rename over a file:
    there, remove and rename, and load() recovers the temp file if cut in between).
    point: the name of the moment between the two, for kill_point."""
    try:
        os.mkdir(d + "ota")
    except OSError:
        pass  # there already
    write_atomic(pointer_path(d), json.dumps(p), rename, remove, (lambda: kill_point(point)) if point else None)


def kill_point(name):
    # Test hook, host only (never on an ESP32): with SPM02_OTA_KILL=<name> in its environment
    # the process is killed here as a power cut would stop it, so the end-to-end tests can
    # cut the power at exact points of an update and of a boot.
    if sys.platform != "esp32" and hasattr(os, "getenv") and os.getenv("SPM02_OTA_KILL") == name:
        os.system("kill -9 $PPID")  # the shell's parent: this process


def boot(cfg):
    """main.py's OTA step, given the config's path: decide, store the decision before the
    firmware is imported (so that a boot which never returns still counts), and put the OTA
    install's directories first on sys.path, before frozen code too. The pointer, for the
    firmware. Never raises: whatever is wrong, the factory install runs."""
    d = cfg[:cfg.rfind("/") + 1]  # the data directory: the config's
    try:
        p, changed = decide(load(d), lambda slot, ident: slot_ok(d, slot, ident))
        if changed:
            store(d, p)
            kill_point("boot")
    except Exception as e:
        p = factory("the OTA pointer cannot be used (%r); running the factory install" % (e,))
    if p["slot"] != FACTORY:
        s = slot_dir(d, p["slot"])
        sys.path.insert(0, s)
        sys.path.insert(0, s + "/lib")
        print("ota: running %s (%s)" % (p["id"], "proven" if p["proven"] else "boot %d, unproven" % p["boots"]))
    if p["rolled_back"]:
        print("ota: rolled back: %s" % p["rolled_back"])
    return p


def failed(cfg, error):
    """An OTA install ended in an exception (main.py): note it in the pointer unless the
    install had proven itself, and restart."""
    d = cfg[:cfg.rfind("/") + 1]
    try:
        p = load(d)
        if p and not p["proven"]:
            store(d, crashed(p, error))
    finally:
        restart()


def restart():
    """A reset on the ESP32; on the host, exit status 75: make run starts it again."""
    if sys.platform == "esp32":
        import machine
        machine.reset()
    raise SystemExit(75)
