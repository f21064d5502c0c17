# The OTA pointer and the boot decision (lib/otaboot.py): which install runs, counted boots,
# going back, and the pointer's files through cut writes. Runs under pytest and in the
# MicroPython unix port (plain asserts).
import errno
import json
import os

import otaboot
from otaboot import FACTORY, decide, install, prove
from portable import rmtree, tmpdir

PORTABLE = True


def all_ok(slot, ident):
    return True


def none_ok(slot, ident):
    return False


def only(*complete):
    return lambda slot, ident: (slot, ident) in complete


def boots_until_back(p, ok=all_ok):
    """Boot until the decision goes back; [pointer after each boot]."""
    seen = []
    for _ in range(10):
        p, changed = decide(p, ok)
        assert changed
        seen.append(p)
        if p["rolled_back"]:
            return seen
    raise AssertionError("never went back")


def test_no_pointer_or_factory_runs_factory_without_a_write():
    p, changed = decide(None, none_ok)
    assert p == otaboot.factory() and not changed
    q = otaboot.factory("it went back")
    assert decide(q, none_ok) == (q, False)


def test_corrupt_pointers_mean_factory():
    good = json.dumps(install(otaboot.factory(), "a", "0123456789ab"))
    assert otaboot.parse(good) is not None
    for bad in (None, "", "{", "[]", "null", good[:-1], good.replace('"a"', '"c"'),
                good.replace('"boots": 0', '"boots": -1'), good.replace('"boots": 0', '"boots": true'),
                good.replace('"proven": false', '"proven": 0'), good.replace('"0123456789ab"', '"%s"' % ("x" * 17)),
                good.replace('"prev_slot": "factory"', '"prev_slot": 3'), good.replace(', "error": null', '')):
        assert otaboot.parse(bad) is None, bad


def test_a_proven_install_runs_without_a_write():
    p = prove(install(otaboot.factory(), "a", "aaaa"))
    assert decide(p, only(("a", "aaaa"))) == (p, False)


def test_an_unproven_install_gets_three_boots_then_factory():
    p = install(otaboot.factory(), "a", "aaaa")
    assert (p["slot"], p["id"], p["prev_slot"], p["boots"], p["proven"]) == ("a", "aaaa", FACTORY, 0, False)
    seen = boots_until_back(p)
    assert [q["boots"] for q in seen[:3]] == [1, 2, 3]
    assert all(q["slot"] == "a" and not q["proven"] for q in seen[:3])
    back = seen[3]
    assert (back["slot"], back["id"], back["proven"], back["boots"]) == (FACTORY, FACTORY, True, 0)
    assert back["rolled_back"] == "aaaa was not healthy after 3 boots; went back to factory"
    assert decide(back, all_ok) == (back, False)  # and it stays there, saying why


def test_going_back_to_the_previous_proven_install_with_the_last_error():
    running = prove(install(otaboot.factory(), "b", "bbbb"))
    p = install(running, "a", "aaaa")
    assert (p["prev_slot"], p["previous"]) == ("b", "bbbb")
    seen = boots_until_back(otaboot.crashed(p, "RuntimeError('x')"))
    back = seen[-1]
    assert (back["slot"], back["id"], back["prev_slot"], back["proven"]) == ("b", "bbbb", FACTORY, True)
    assert back["rolled_back"] == ("aaaa was not healthy after 3 boots (last error: RuntimeError('x'))"
                                   "; went back to bbbb")
    assert back["error"] is None


def test_an_incomplete_install_goes_back_at_once():
    running = prove(install(otaboot.factory(), "b", "bbbb"))
    p = install(running, "a", "aaaa")
    back, changed = decide(p, only(("b", "bbbb")))
    assert changed and back["slot"] == "b" and back["rolled_back"].startswith("aaaa: install incomplete")
    # also a proven one whose files went missing
    back, changed = decide(prove(p), only(("b", "bbbb")))
    assert changed and back["slot"] == "b"
    # and with its previous one gone too: factory
    back, _ = decide(p, none_ok)
    assert back["slot"] == FACTORY and "bbbb is incomplete too" in back["rolled_back"]


def test_an_incomplete_previous_install_means_factory():
    p = install(prove(install(otaboot.factory(), "b", "bbbb")), "a", "aaaa")
    back = boots_until_back(p, only(("a", "aaaa")))[-1]
    assert (back["slot"], back["id"]) == (FACTORY, FACTORY)
    assert back["rolled_back"] == "aaaa was not healthy after 3 boots; bbbb is incomplete too; went back to factory"


def test_an_update_of_an_unproven_install_has_factory_behind_it():
    unproven = install(otaboot.factory(), "a", "aaaa")
    p = install(unproven, otaboot.target(unproven), "bbbb")
    assert (p["slot"], p["prev_slot"], p["previous"]) == ("b", FACTORY, FACTORY)


def test_updates_alternate_between_the_two_directories():
    p = otaboot.factory()
    slots = []
    for ident in ("1111", "2222", "3333"):
        p = prove(install(p, otaboot.target(p), ident))
        slots.append(p["slot"])
    assert slots == ["a", "b", "a"] and p["previous"] == "2222"


def test_prove_and_crashed():
    p = otaboot.crashed(install(otaboot.factory(), "a", "aaaa"), "x" * 500)
    assert len(p["error"]) == 160
    p["boots"] = 2
    q = prove(p)
    assert (q["boots"], q["proven"], q["error"]) == (0, True, None)
    assert p["boots"] == 2 and not p["proven"]  # pure: a new pointer


# --- files ---------------------------------------------------------------------------


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def in_tmp(fn):
    def wrapped():
        d = tmpdir("otaboot")
        try:
            fn(d)
        finally:
            rmtree(d)
    return wrapped


def make_slot(d, slot, ident):
    for p in ("ota", "ota/" + slot):
        try:
            os.mkdir(d + p)
        except OSError:
            pass
    with open(d + "ota/" + slot + "/id", "w") as f:
        f.write(ident)


@in_tmp
def test_store_and_load(d):
    assert otaboot.load(d) is None
    p = install(otaboot.factory(), "a", "0123456789ab")
    otaboot.store(d, p)
    assert otaboot.load(d) == p
    assert read(d + "ota/current.tmp") is None
    otaboot.store(d, prove(p))
    assert otaboot.load(d) == prove(p)


@in_tmp
def test_a_cut_write_beside_the_pointer_is_dropped(d):
    old = install(otaboot.factory(), "a", "aaaa")
    otaboot.store(d, old)
    for left in (json.dumps(install(old, "b", "bbbb")), '{"slot": "b", "id'):
        with open(d + "ota/current.tmp", "w") as f:
            f.write(left)  # complete or not: the rename never happened
        assert otaboot.load(d) == old
        assert read(d + "ota/current.tmp") is None


@in_tmp
def test_a_lone_complete_temp_file_is_the_pointer(d):
    # FAT: cut between removing the pointer and renaming the temp file
    os.mkdir(d + "ota")
    new = install(otaboot.factory(), "b", "bbbb")
    with open(d + "ota/current.tmp", "w") as f:
        f.write(json.dumps(new))
    assert otaboot.load(d) == new
    assert json.loads(read(d + "ota/current")) == new and read(d + "ota/current.tmp") is None
    # a lone half-written one is not
    with open(d + "ota/current.tmp", "w") as f:
        f.write('{"slot": "a"')
    os.remove(d + "ota/current")
    assert otaboot.load(d) is None and read(d + "ota/current.tmp") is None


@in_tmp
def test_fat_rename_fallback(d):
    old = install(otaboot.factory(), "a", "aaaa")
    otaboot.store(d, old)
    new = prove(old)
    calls = []

    def fat_rename(a, b):
        calls.append(b)
        if read(b) is not None:
            raise OSError(errno.EEXIST)  # FAT will not rename over a file
        os.rename(a, b)

    otaboot.store(d, new, rename=fat_rename)
    assert otaboot.load(d) == new and len(calls) == 2

    def cut(path):  # the power goes between the remove and the rename
        os.remove(path)
        raise KeyboardInterrupt

    try:
        otaboot.store(d, old, rename=fat_rename, remove=cut)
        raise AssertionError("not cut")
    except KeyboardInterrupt:
        pass
    assert read(d + "ota/current") is None
    assert otaboot.load(d) == old  # recovered from the temp file


def booted(d):
    """otaboot.boot as main.py calls it, given the config's path: (pointer, the directories
    it put first on sys.path), and sys.path as it was."""
    import sys
    before = list(sys.path)
    p = otaboot.boot(d + "config.json")
    added = [x for x in sys.path if x not in before]
    for x in added:
        sys.path.remove(x)
    return p, added


@in_tmp
def test_boot_counts_before_the_firmware_loads(d):
    p = install(otaboot.factory(), "a", "aaaa")
    otaboot.store(d, p)
    make_slot(d, "a", "aaaa")
    for n in (1, 2, 3):
        q, paths = booted(d)
        assert paths == [d + "ota/a/lib", d + "ota/a"] and q["boots"] == n
        assert otaboot.load(d)["boots"] == n  # on flash before the firmware is imported
    q, paths = booted(d)
    assert paths == [] and q["rolled_back"] and otaboot.load(d) == q


@in_tmp
def test_boot_checks_the_install_directory_id(d):
    p = prove(install(otaboot.factory(), "a", "aaaa"))
    otaboot.store(d, p)
    make_slot(d, "a", "aaaa")
    assert booted(d) == (p, [d + "ota/a/lib", d + "ota/a"])
    make_slot(d, "a", "cccc")  # another bundle was being written there
    q, paths = booted(d)
    assert paths == [] and q["rolled_back"].startswith("aaaa: install incomplete")
    assert otaboot.slot_ok(d, "a", "cccc") and not otaboot.slot_ok(d, "b", "cccc")


@in_tmp
def test_boot_never_fails(d):
    otaboot.store(d, install(otaboot.factory(), "a", "aaaa"))
    make_slot(d, "a", "aaaa")
    os.mkdir(d + "ota/current.tmp")  # the boot counter cannot be written
    p, paths = booted(d)
    assert paths == [] and p["slot"] == FACTORY and "cannot be used" in p["rolled_back"]
    os.rmdir(d + "ota/current.tmp")
    os.remove(d + "ota/current")
    os.mkdir(d + "ota/current")  # nor read
    assert booted(d) == (otaboot.factory(), [])
    assert booted(d + "no/such/dir/") == (otaboot.factory(), [])
