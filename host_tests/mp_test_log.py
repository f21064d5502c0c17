# The kept log lines: a fixed ring of bytes, oldest first, whole lines only.
# MicroPython only (firmware.log uses time.ticks_ms).
import sys

if "." not in sys.path:
    sys.path.append(".")

from firmware import log


def test_ring_keeps_the_newest_whole_lines():
    for i in range(40):
        log.info("line %d of the test, some words to fill the ring", i)
    r = log.recent()
    assert r[-1].endswith("line 39 of the test, some words to fill the ring")
    assert all(" I line " in x for x in r)  # no line cut in half
    nums = [int(x.split("line ")[1].split(" ")[0]) for x in r]
    assert nums == list(range(nums[0], 40)) and len(nums) >= 10
    assert sum(len(x) + 1 for x in r) <= log.RING


def test_debug_lines_not_kept():
    log.info("kept one")
    log.log("D", "not this one")
    assert log.recent()[-1].endswith("kept one")


def test_lines_match_the_ring_bytes_across_its_wrap():
    # whatever the ring's position, lines() gives exactly the whole lines the ring holds
    for k in range(7):
        log.info("wrap %d %s", k, "x" * (37 + 11 * k))
        data = bytes(log._ring[log._pos:] + log._ring[:log._pos]) if log._full else bytes(log._ring[:log._pos])
        want = [x for x in data.decode().split("\n")[1 if log._full else 0:] if x]
        assert log.recent() == want, (k, log._pos)
        assert list(log.lines()) == want


def since(n):
    from firmware import console  # what /api/log answers with
    nxt, lines = console.since(n)
    return nxt, list(lines)


def test_since_numbers_lines_across_the_wrap():
    # every line keeps its number while the ring wraps; those that left it are skipped
    start = log._count
    for k in range(60):
        log.info("numbered %d %s", start + k, "y" * (k % 13))
    nxt, got = since(start)
    assert nxt == start + 60
    assert len(got) < 60  # the ring wrapped: the first ones are gone
    nums = [int(x.split("numbered ")[1].split(" ")[0]) for x in got]
    assert nums == list(range(nxt - len(got), nxt))  # oldest first, numbers without a gap
    assert since(nxt - 3) == (nxt, got[-3:])
    assert since(nxt) == (nxt, [])
    assert since(0) == (nxt, log.recent())
    log.info("one more\nwith a newline in it")
    assert since(nxt) == (nxt + 1, [log.recent()[-1]])
