# The TuyaMCU link machine and the Mcu glue, driven with frames and a fake clock.
# Runs under pytest and in the MicroPython unix port.
from portable import hexb
import link as L
import tuya
from commands import encode_dp
from tuya import encode
from mcu import Mcu, EV_CHANGED
import report

PORTABLE = True

HB = hexb("55 AA 00 00 00 00 FF")


def answer(lk, now, cmd, data=b""):
    return lk.receive(now, cmd, data, 0, len(data))


def sent(lk, now):
    """Every frame poll gives at time now (stepping past the 10 ms gap)."""
    out = []
    while True:
        f = lk.poll(now)
        if f is None:
            return out
        out.append(bytes(f))
        now += L.GAP_MS


def cmd_of(frame):
    return frame[3]


def online_link(now=0):
    lk = L.Link()
    assert lk.poll(now) == HB
    ev = answer(lk, now + 20, 0, b"\x00")
    assert ev & L.EV_ONLINE
    return lk


def test_heartbeat_fast_until_answered():
    lk = L.Link()
    assert lk.poll(0) == HB
    assert lk.poll(500) is None
    assert lk.poll(1000) == HB  # unanswered: again after 1 s
    assert lk.poll(2000) == HB


def test_heartbeat_slow_once_answered():
    lk = online_link()
    t = 40
    seen = []
    while t < 31000:
        f = lk.poll(t)
        if f is not None:
            if cmd_of(f) == 0:
                seen.append(t)
                answer(lk, t + 5, 0, b"\x01")
            else:
                answer(lk, t + 5, 7 if cmd_of(f) == 8 else cmd_of(f))
        t += 5
    assert len(seen) == 2
    assert 14900 <= seen[0] <= 15100 and 29900 <= seen[1] <= 30100


def test_handshake_order_and_pacing():
    lk = online_link()
    now = 30
    order = []
    for _ in range(4):
        f = lk.poll(now)
        assert f is not None
        order.append(cmd_of(f))
        assert lk.poll(now + 1) is None  # one in flight
        answer(lk, now + 5, 7 if cmd_of(f) == 8 else cmd_of(f))
        assert lk.poll(now + 6) is None or order[-1] == 8  # the 10 ms gap
        now += 15
    assert order == [0x01, 0x02, 0x03, 0x08]


def test_wifi_state_sent_in_handshake_is_configurable():
    lk = L.Link(wifi_state=3)
    lk.poll(0)
    answer(lk, 10, 0, b"\x00")
    frames = []
    now = 20
    for _ in range(3):
        f = lk.poll(now)
        frames.append(f)
        answer(lk, now + 1, cmd_of(f))
        now += 20
    assert frames[2] == encode(0x03, b"\x03")


def test_retries_then_gives_up():
    lk = online_link()
    f = lk.poll(30)
    assert cmd_of(f) == 1
    assert lk.poll(200) is None
    assert lk.poll(330) == f  # retry after 300 ms
    assert lk.poll(630) == f
    nxt = lk.poll(930)  # gave up: next command
    assert cmd_of(nxt) == 2
    assert lk.retries == 2 and lk.timeouts == 1


def test_missed_heartbeats_go_offline_and_handshake_again():
    lk = online_link()
    now = 20
    # finish the handshake
    for _ in range(4):
        f = lk.poll(now)
        answer(lk, now + 1, 7 if cmd_of(f) == 8 else cmd_of(f))
        now += 20
    offline_at = None
    t = now
    while t < 120000 and offline_at is None:
        lk.poll(t)
        if lk.take_events() & L.EV_OFFLINE:
            offline_at = t
        t += 10
    assert offline_at is not None and not lk.online
    # silent MCU: 15 s, then misses re-asked at 1 s: offline within about 17 s
    assert offline_at < 20000
    f = lk.poll(offline_at + 1000)
    assert f == HB
    ev = answer(lk, offline_at + 1010, 0, b"\x01")
    assert ev & L.EV_ONLINE
    assert cmd_of(lk.poll(offline_at + 1030)) == 1  # handshake again


def test_reboot_detected_by_heartbeat_zero():
    lk = online_link()
    ev = answer(lk, 100, 0, b"\x00")
    assert ev & L.EV_REBOOT and lk.reboots == 1
    assert cmd_of(lk.poll(120)) == 1


def test_first_answer_one_still_handshakes():
    lk = L.Link()
    lk.poll(0)
    assert answer(lk, 10, 0, b"\x01") & L.EV_ONLINE
    assert cmd_of(lk.poll(20)) == 1


def test_answers_to_mcu_questions():
    lk = online_link()
    lk.clock = lambda: (2026, 11, 24, 5, 30, 7, 2)
    lk.rssi = -71
    cases = [
        (0x1C, b"", encode(0x1C, bytes((1, 26, 11, 24, 5, 30, 7, 2)))),
        (0x2B, b"", encode(0x2B, b"\x04")),
        (0x0E, b"", encode(0x0E, b"\x00\x00")),
        (0x22, encode_dp(1, 2, 5), encode(0x23, b"\x01")),
        (0x24, b"", encode(0x24, bytes((256 - 71,)))),
        (0x34, b"\x04", encode(0x34, b"\x04\x00")),
        (0x04, b"", encode(0x04)),
    ]
    now = 100
    for cmd, data, want in cases:
        ev = answer(lk, now, cmd, data)
        got = lk.poll(now + 20)  # replies go before anything else
        now += 100
        assert got == want, (cmd, got)
        if cmd == 0x04:
            assert ev & L.EV_SETUP
        if cmd == 0x22:
            assert ev & L.EV_DPS


def test_time_unknown_is_invalid():
    lk = online_link()
    answer(lk, 100, 0x1C)
    assert lk.poll(1000) == encode(0x1C, bytes(8))


def test_unknown_command_counted():
    lk = online_link()
    assert answer(lk, 100, 0x99, b"\x01\x02") == 0
    assert lk.unknown == 1 and lk.last_unknown == 0x99
    answer(lk, 100, 0x34, b"\x07")
    assert lk.unknown == 2


def test_product_info():
    lk = online_link()
    ev = answer(lk, 50, 0x01, b'{"p":"kxdr6su0c55p7bbo","v":"1.0.0","m":0}')
    assert ev & L.EV_PRODUCT
    assert lk.product_key == "kxdr6su0c55p7bbo" and lk.mcu_version == "1.0.0"
    answer(lk, 60, 0x01, b"\xff\xfe")  # garbage: no crash
    answer(lk, 70, 0x01, b"keyonly123")
    assert lk.product_key == "keyonly123"


def test_queue_bounded():
    lk = L.Link()
    for i in range(20):
        lk.send(0x06, bytes((i,)))
    assert len(lk._queue) == L.QUEUE_MAX


def test_set_dp_answered_by_report():
    lk = online_link()
    now = 30
    for _ in range(4):
        f = lk.poll(now)
        answer(lk, now + 1, 7 if cmd_of(f) == 8 else cmd_of(f))
        now += 20
    lk.send(0x06, encode_dp(12, 1, 1))
    f = lk.poll(now)
    assert f == encode(0x06, encode_dp(12, 1, 1))
    answer(lk, now + 5, 0x07, encode_dp(12, 1, 1))
    assert lk._inflight is None


def test_ticks_wrap():
    lk = L.Link()
    t = 0x3FFFFFFF - 500
    assert lk.poll(t) == HB
    assert lk.poll((t + 1000) & 0x3FFFFFFF) == HB


def test_mcu_feed_end_to_end():
    m = Mcu()
    f = m.poll(0)
    assert f == HB
    ev = m.feed(10, encode(0, b"\x00", 3) + encode(0x01, b'{"p":"kxdr6su0c55p7bbo","v":"2.1","m":0}', 3))
    assert ev & L.EV_ONLINE and ev & L.EV_PRODUCT
    ev = m.feed(20, encode(0x07, encode_dp(102, 2, 2317) + encode_dp(29, 2, -40), 3))
    assert ev & EV_CHANGED
    assert m.feed(30, encode(0x07, encode_dp(102, 2, 2317), 3)) & EV_CHANGED == 0
    v = m.meter.values()
    assert v["voltage_a"] == 231.7 and v["power"] == -40
    st = report.mcu_status(m, 5030)
    assert st["online"] and st["product_key"] == "kxdr6su0c55p7bbo" and st["mcu_version"] == "2.1"
    assert st["layout"] == "v2" and st["frames_rx"] == 4 and st["last_report_s"] == 5
    assert st["errors"]["checksum"] == 0


# --- asking a silent meter (mcu.poll_s) ---------------------------------------------

def run_silent(lk, start, end, report_at=()):
    """Poll from start to end in 10 ms steps, answering heartbeats and every command; a
    query (0x08) is acked but brings no report (a meter that says nothing unless the time
    is in report_at). Returns the times 0x08 went out."""
    queries = []
    t = start
    while t < end:
        f = lk.poll(t)
        if f is not None:
            c = cmd_of(f)
            if c == 0:
                answer(lk, t + 5, 0, b"\x01")
            else:
                if c == 8:
                    queries.append(t)
                answer(lk, t + 5, c)
        for r in report_at:
            if r == t:
                answer(lk, t + 1, 7, encode_dp(1, tuya.T_VALUE, 5))
        t += 10
    return queries


def test_silent_meter_is_asked_every_poll_s():
    lk = L.Link(poll_ms=5000)
    assert lk.poll(0) == HB
    answer(lk, 20, 0, b"\x00")
    q = run_silent(lk, 30, 21000)
    assert q[0] < 1000  # the handshake's own query
    polls = q[1:]
    assert len(polls) == 4 and lk.polls == 4
    for a, b in zip(polls, polls[1:]):
        assert 5000 <= b - a <= 5100  # never more often than poll_s


def test_reports_hold_the_poll_back():
    lk = L.Link(poll_ms=5000)
    assert lk.poll(0) == HB
    answer(lk, 20, 0, b"\x00")
    # reports every 4 s: no poll; then silence: a poll 5 s after the last report
    q = run_silent(lk, 30, 20000, report_at=(4000, 8000, 12000))
    assert len(q) == 2 and 17000 <= q[1] <= 17100, q
    assert lk.polls == 1


def test_no_poll_while_offline_or_when_off():
    lk = L.Link(poll_ms=5000)
    t = 0
    while t < 20000:  # the MCU never answers: heartbeats only
        f = lk.poll(t)
        assert f is None or cmd_of(f) == 0
        t += 10
    assert lk.polls == 0
    lk = L.Link(poll_ms=0)
    assert lk.poll(0) == HB
    answer(lk, 20, 0, b"\x00")
    assert len(run_silent(lk, 30, 60000)) == 1 and lk.polls == 0  # the handshake's query only


def test_poll_counted_in_status():
    m = Mcu(poll_s=7)
    st = report.mcu_status(m, 0)
    assert st["polls"] == 0 and st["poll_s"] == 7
