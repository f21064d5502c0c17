"""Tests of the SPM02 simulator itself, over raw TCP bytes on 127.0.0.1.

The frame and DP helpers here are written independently of the simulator's own, so the
tests check the bytes on the wire, not the simulator against itself.
"""
import json
import os
import socket
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import spm02sim  # noqa: E402

V2_DPS = {1, 6, 7, 8, 9, 17, 18, 19, 23, 29, 32, 50, 101} | set(range(102, 111))
CLOUD_DPS = {1, 6, 7, 8, 9, 17, 18, 19, 23, 29, 32, 50, 101, 102, 130} | {
    b + 9 * k for k in range(3) for b in (103, 104, 105, 108, 109, 110)}


# ---------------------------------------------------------------- wire helpers

def mkframe(cmd, data=b"", ver=0x00):
    b = bytes([0x55, 0xAA, ver, cmd, len(data) >> 8, len(data) & 0xFF]) + data
    return b + bytes([sum(b) % 256])


def rec(dpid, dptype, value):
    return bytes([dpid, dptype]) + len(value).to_bytes(2, "big") + value


def dps_of(payload):
    """{dpid: (type, bytes)} of a report payload; asserts it is well formed."""
    out, i = {}, 0
    while i < len(payload):
        n = int.from_bytes(payload[i + 2:i + 4], "big")
        assert i + 4 + n <= len(payload)
        out[payload[i]] = (payload[i + 1], payload[i + 4:i + 4 + n])
        i += 4 + n
    return out


def num(t_v):
    t, v = t_v
    return int.from_bytes(v, "big", signed=(t == 2))


def raw_phase(v, encoding):
    """(volts count, current count, power count) of a raw phase DP."""
    def signed(u):
        if u < 0x100000:
            return u
        return u - 0x1000000 if encoding == "twos" else -(0x19999A - u)
    assert len(v) == 8
    return (int.from_bytes(v[0:2], "big"), signed(int.from_bytes(v[2:5], "big")),
            signed(int.from_bytes(v[5:8], "big")))


class Client:
    """A raw TCP client with its own resynchronising frame reader (a partial frame that
    stops growing for 0.2 s loses its leading byte, as a stray 55 AA from noise may
    announce a payload that never comes)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.buf = b""
        self.garbage = 0

    def send(self, cmd, data=b""):
        self.s.sendall(mkframe(cmd, data))

    def frame(self, timeout=2.0):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\x55\xaa")
            if i > 0 or (i < 0 and len(self.buf) > 1):
                cut = i if i > 0 else len(self.buf) - 1
                self.garbage += cut
                self.buf = self.buf[cut:]
                continue
            if i == 0 and len(self.buf) >= 6:
                n = int.from_bytes(self.buf[4:6], "big")
                if n > 1024:
                    self.buf, self.garbage = self.buf[1:], self.garbage + 1
                    continue
                if len(self.buf) >= 7 + n:
                    f, self.buf = self.buf[:7 + n], self.buf[7 + n:]
                    if sum(f[:-1]) % 256 != f[-1]:
                        self.buf, self.garbage = f[1:] + self.buf, self.garbage + 1
                        continue
                    assert f[2] == 0x03
                    return f[3], f[6:-1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame")
            self.s.settimeout(min(left, 0.2))
            try:
                chunk = self.s.recv(4096)
            except socket.timeout:
                # a stray 55 AA announcing a payload that never comes: drop it, rescan
                if len(self.buf) > 1:
                    self.buf, self.garbage = self.buf[1:], self.garbage + 1
                continue
            if not chunk:
                raise EOFError
            self.buf += chunk

    def expect(self, cmd, timeout=2.0):
        """Payload of the next frame with this cmd (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            c, p = self.frame(max(0.01, deadline - time.monotonic()))
            if c == cmd:
                return p

    def report(self, want, timeout=2.0):
        """Collect 0x07 frames until every DP in `want` was seen: {dpid: (type, bytes)}."""
        got = {}
        deadline = time.monotonic() + timeout
        while not want <= got.keys():
            got.update(dps_of(self.expect(0x07, max(0.01, deadline - time.monotonic()))))
        return got

    def handshake(self):
        self.send(0x00)
        hb = self.expect(0x00)
        self.send(0x01)
        info = json.loads(self.expect(0x01))
        self.send(0x02)
        assert self.expect(0x02) == b""
        self.send(0x03, b"\x04")
        assert self.expect(0x03) == b""
        return hb, info

    def silent_for(self, seconds):
        """True if nothing arrives for that long."""
        try:
            self.frame(seconds)
            return False
        except TimeoutError:
            return True

    def drain(self, quiet=0.1):
        """Discard whatever is in flight (a report that was being sent)."""
        self.s.settimeout(quiet)
        try:
            while self.s.recv(65536):
                pass
        except socket.timeout:
            pass
        self.buf = b""

    def close(self):
        self.s.close()


@pytest.fixture
def make():
    """make(**kw) -> (sim, client); everything is stopped and closed afterwards."""
    made = []

    def _make(**kw):
        kw.setdefault("interval", 60.0)      # tests that want periodic reports ask for them
        kw.setdefault("ask_time", False)
        sim = spm02sim.Simulator(port=0, seed=kw.pop("seed", 1), **kw).start()
        made.append(sim)
        c = Client(sim.port)
        made.append(c)
        assert sim.connected.wait(2)
        return sim, c
    try:
        yield _make
    finally:
        for x in reversed(made):
            x.close() if isinstance(x, Client) else x.stop()


# ---------------------------------------------------------------- handshake and reports

@pytest.mark.parametrize("layout,key", [("v2", "kxdr6su0c55p7bbo"), ("cloud", "g5n4t0")])
def test_handshake(make, layout, key):
    sim, c = make(layout=layout)
    hb, info = c.handshake()
    assert hb == b"\x00"
    assert info["p"].startswith(key) and info["v"] == "1.0.0" and info["m"] == 0
    assert sim.wifi_state == 4
    c.send(0x00)
    assert c.expect(0x00) == b"\x01"
    assert not sim.handshake_done.is_set()
    c.send(0x08)
    c.report(V2_DPS if layout == "v2" else CLOUD_DPS)
    assert sim.handshake_done.wait(1)
    assert [cmd for cmd, _ in sim.received] == [0x00, 0x01, 0x02, 0x03, 0x00, 0x08]
    assert sim.counts["frames_in"] == 6 and sim.counts["bad_in"] == 0


def test_product_key_option(make):
    sim, c = make(product_key="abcdefghijklmnop")
    c.send(0x01)
    assert json.loads(c.expect(0x01))["p"] == "abcdefghijklmnop"


def test_v2_full_report_consistent(make):
    sim, c = make(layout="v2")
    c.handshake()
    c.send(0x08)
    r = c.report(V2_DPS)
    assert set(r) == V2_DPS
    assert r[19] == (3, b"vow25010001")
    assert r[9][0] == 5 and len(r[9][1]) == 1
    assert r[101] == (1, b"\x00")
    total_p = total_va = 0
    for k, raw_dp in enumerate((6, 7, 8)):
        assert r[raw_dp][0] == 0
        v, i, p = raw_phase(r[raw_dp][1], "twos")
        assert (num(r[102 + 3 * k]), num(r[103 + 3 * k]), num(r[104 + 3 * k])) == (v, i, p)
        assert 2250 <= v <= 2400 and 200 <= i <= 20000
        assert 0.8 * v * i / 1e4 - 1 <= p <= 0.99 * v * i / 1e4 + 1    # pf 0.80..0.99
        total_p += p
        total_va += v / 10 * i / 1000
    assert num(r[29]) == total_p
    assert num(r[50]) == round(total_p / total_va * 100)
    assert 4990 <= num(r[32]) <= 5010
    assert num(r[1]) > 0


def test_cloud_full_report_consistent(make):
    sim, c = make(layout="cloud")
    c.send(0x08)
    r = c.report(CLOUD_DPS)
    assert set(r) == CLOUD_DPS
    assert len(r[9][1]) == 4
    assert num(r[102]) == 225
    phases = [(103, 104, 105, 108, 109, 110), (112, 113, 114, 117, 118, 119),
              (121, 122, 123, 126, 127, 128)]
    ps, fwd, rev = [], [], []
    for raw_dp, (dv, di, dp_, dpf, dfw, drv) in zip((6, 7, 8), phases):
        v, i, p = raw_phase(r[raw_dp][1], "twos")
        assert (num(r[dv]), num(r[di]), num(r[dp_])) == (v, i, p)
        assert p == round(v * i * num(r[dpf]) / 1e6)       # P = V * I * pf
        ps.append(p)
        fwd.append(num(r[dfw]))
        rev.append(num(r[drv]))
    assert num(r[29]) == sum(ps)
    assert num(r[1]) == sum(fwd) and num(r[23]) == sum(rev)
    currents = [num(r[d]) for d in (104, 113, 122)]
    avg = sum(currents) / 3
    assert num(r[130]) == round(max(abs(x - avg) for x in currents) / avg * 100)


@pytest.mark.parametrize("layout", ["v2", "cloud"])
def test_truth_matches_frames(make, layout):
    sim, c = make(layout=layout)
    c.send(0x08)
    want = V2_DPS if layout == "v2" else CLOUD_DPS
    r = c.report(want)
    counts = sim.truth_counts()
    t = sim.truth()
    for dpid, (typ, val) in r.items():
        assert counts[dpid] == (val if typ == 0 else val.decode() if typ == 3 else num((typ, val)))
    assert t["voltage_a"] == num(r[102 if layout == "v2" else 103]) / 10
    assert t["current_b"] == round(num(r[106 if layout == "v2" else 113]) / 1000, 3)
    assert t["power"] == num(r[29]) and isinstance(t["power"], int)
    assert t["frequency"] == json.loads("%.2f" % (num(r[32]) / 100))
    assert t["energy_forward"] == json.loads("%.2f" % (num(r[1]) / 100))
    assert t["device_id"] == "vow25010001" and t["locating"] is False
    assert t["faults_raw"] == 0 and t["faults"] == []
    assert t["alarms"] == {
        "overcurrent": {"enabled": True, "threshold": 60},
        "unbalance": {"enabled": False, "threshold": 20},
        "overvoltage": {"enabled": True, "threshold": 260},
        "undervoltage": {"enabled": True, "threshold": 190},
        "high_power": {"enabled": False, "threshold": 20},
        "phase_loss": {"enabled": True, "threshold": 0},
        "reverse_power": {"enabled": False, "threshold": 0}}
    extra = {"report_interval", "current_unbalance"} | {
        k + "_" + p for k in ("power_factor", "energy_forward", "energy_reverse") for p in "abc"}
    assert extra <= t.keys() if layout == "cloud" else not (extra & t.keys())


def test_dps_per_frame(make):
    sim, c = make(layout="cloud", dps_per_frame=3)
    c.send(0x08)
    seen, sizes = {}, []
    while set(seen) != CLOUD_DPS:
        d = dps_of(c.expect(0x07))
        sizes.append(len(d))
        seen.update(d)
    assert max(sizes) == 3 and sum(sizes) == len(CLOUD_DPS)


# ---------------------------------------------------------------- writes

def test_clear_energy(make):
    sim, c = make(layout="cloud")
    c.send(0x08)
    assert num(c.report(CLOUD_DPS)[1]) > 0
    c.send(0x06, rec(12, 1, b"\x01"))
    r = c.report({12, 1, 23, 109, 110, 118, 119, 127, 128})
    assert num(r[12]) == 1
    assert all(num(v) == 0 for dp, v in r.items() if dp != 12)
    sim.report_now()
    r = c.report(CLOUD_DPS)
    assert num(r[1]) < 5 and num(r[23]) < 5           # a few ms of energy at most
    assert sim.truth()["energy_forward"] == num(r[1]) / 100


def test_energy_integrates_power(make):
    sim, c = make(layout="cloud", energy_scale=3600 * 100.0, export_period=0)
    sim.set_phase("c", pf=-0.9)
    c.send(0x08)
    c.report(CLOUD_DPS)
    c.send(0x06, rec(12, 1, b"\x01"))
    c.report({12})
    time.sleep(0.2)
    sim.report_now()
    t1 = sim.truth()
    time.sleep(0.2)
    sim.report_now()
    t2 = sim.truth()
    for p in "ab":
        assert t2["energy_forward_" + p] > t1["energy_forward_" + p] > 0
        assert t2["energy_reverse_" + p] == 0
    assert t2["energy_reverse_c"] > t1["energy_reverse_c"] > 0
    assert t2["energy_forward_c"] == 0
    assert t2["energy_forward"] == round(sum(t2["energy_forward_" + p] for p in "abc"), 2)


def test_alarm_write_echo_and_overcurrent_fault(make):
    sim, c = make(layout="v2")
    new17 = bytes.fromhex("01010005 02000014 030100F5 040100BE 07000014")
    c.send(0x06, rec(17, 0, new17))
    assert dps_of(c.expect(0x07))[17] == (0, new17)
    assert sim.truth()["alarms"]["overcurrent"] == {"enabled": True, "threshold": 5}
    assert sim.truth()["alarms"]["overvoltage"]["threshold"] == 245
    sim.set_phase("a", current=12.0)
    sim.report_now()
    assert num(c.report(V2_DPS)[9]) == 0x04
    new18 = bytes.fromhex("05000000 07010000")
    c.send(0x06, rec(18, 0, new18))
    assert dps_of(c.expect(0x07))[18] == (0, new18)
    assert sim.truth()["alarms"]["reverse_power"]["enabled"] is True


@pytest.mark.parametrize("layout,bit", [("v2", 0x08), ("cloud", 1 << 12)])
def test_phase_loss_fault(make, layout, bit):
    sim, c = make(layout=layout)
    sim.set_phase("b", voltage=0)
    sim.report_now()
    r = c.report({7, 9, 29})
    v, i, p = raw_phase(r[7][1], "twos")
    assert (v, i, p) == (0, 0, 0)
    assert num(r[9]) == bit
    assert "phase_loss" in sim.truth()["faults"]
    sim.release_phase("b")
    sim.report_now()
    assert num(c.report({9})[9]) == 0


def test_cloud_voltage_faults(make):
    sim, c = make(layout="cloud")
    sim.set_phase("a", voltage=270)
    sim.set_phase("c", voltage=150)
    sim.report_now()
    assert num(c.report({9})[9]) == (1 << 10) | (1 << 11)
    assert sim.truth()["faults"] == ["overvoltage", "undervoltage"]


@pytest.mark.parametrize("layout", ["v2", "cloud"])
def test_locating_refresh(make, layout):
    sim, c = make(layout=layout)
    c.send(0x06, rec(101, 1, b"\x01"))
    assert dps_of(c.expect(0x07))[101] == (1, b"\x01")
    assert sim.truth()["locating"] is True
    c.send(0x06, rec(35, 4, b"\x00"))
    assert dps_of(c.expect(0x07))[35] == (4, b"\x00")
    r = c.report(V2_DPS if layout == "v2" else CLOUD_DPS)
    assert r[101] == (1, b"\x01")
    assert sim.counts["reports"] == 1


def test_report_interval_cloud_and_readonly_v2(make):
    sim, c = make(layout="cloud")
    c.send(0x06, rec(102, 2, (600).to_bytes(4, "big")))
    assert num(dps_of(c.expect(0x07))[102]) == 600
    assert sim.truth()["report_interval"] == 600
    sim2, c2 = make(layout="v2")
    c2.send(0x08)
    volts = num(c2.report(V2_DPS)[102])
    c2.send(0x06, rec(102, 2, (600).to_bytes(4, "big")))   # voltage_a in v2: read-only
    assert num(dps_of(c2.expect(0x07))[102]) == volts


# ---------------------------------------------------------------- negative values

@pytest.mark.parametrize("enc", ["twos", "offset"])
def test_negative_power_encoding(make, enc):
    sim, c = make(layout="v2", neg_encoding=enc)
    sim.set_phase("c", voltage=230.0, current=10.0, pf=-0.9)
    sim.report_now()
    r = c.report(V2_DPS)
    field = int.from_bytes(r[8][1][5:8], "big")
    assert field == (0x1000000 - 2070 if enc == "twos" else 0x19999A - 2070)
    assert raw_phase(r[8][1], enc) == (2300, 10000, -2070)     # |I|, signed P
    assert r[110][1] == (-2070 & 0xFFFFFFFF).to_bytes(4, "big")
    assert num(r[110]) == -2070 and num(r[109]) == 10000
    assert sim.truth()["power_c"] == -2070
    assert num(r[29]) == sum(raw_phase(r[d][1], enc)[2] for d in (6, 7, 8))
    # a pinned negative current is encoded the same way
    sim.set_phase("c", current=-1.5, pf=0.9)
    sim.report_now()
    assert raw_phase(c.report({8})[8][1], enc)[1] == -1500


def test_export_phase_periodic(make):
    sim, c = make(layout="v2", export_period=0.4)
    signs = set()
    deadline = time.monotonic() + 2
    while len(signs) < 2 and time.monotonic() < deadline:
        sim.report_now()
        signs.add(num(c.report({110})[110]) < 0)
        time.sleep(0.05)
    assert signs == {True, False}
    assert sim.truth_counts()[104] > 0 and sim.truth_counts()[107] > 0


# ---------------------------------------------------------------- timing, silence, reboot

def test_periodic_reports_after_heartbeat(make):
    sim, c = make(layout="v2", interval=0.2)
    assert c.silent_for(0.5)                 # no reports before the first heartbeat
    c.send(0x00)
    assert c.expect(0x00) == b"\x00"
    t0 = time.monotonic()
    c.report(V2_DPS, timeout=1)
    c.report(V2_DPS, timeout=1)
    assert 0.3 <= time.monotonic() - t0 < 1.5
    sim.set_interval(30)
    c.drain()
    assert c.silent_for(0.5)


def test_silence_and_reboot(make):
    sim, c = make(layout="v2", interval=0.2)
    c.send(0x00)
    assert c.expect(0x00) == b"\x00"
    sim.set_silent(True)
    c.drain()
    n = sim.mark()
    c.send(0x00)
    c.send(0x08)
    assert c.silent_for(0.5)
    assert sim.wait_frame(0x08, since=n, timeout=1) == (0x08, b"")
    sim.set_silent(False)
    c.send(0x00)
    assert c.expect(0x00) == b"\x01"
    sim.reboot()
    c.drain()
    assert c.silent_for(0.4)                 # reboot pauses reports until a heartbeat
    c.send(0x00)
    assert c.expect(0x00) == b"\x00"
    c.send(0x00)
    assert c.expect(0x00) == b"\x01"


def test_time_and_network_asks(make):
    sim, c = make(ask_time=True, ask_network=True)
    c.send(0x00)
    c.expect(0x00)
    c.send(0x08)
    assert c.expect(0x1C) == b""
    assert c.expect(0x2B) == b""
    answer = bytes([1, 25, 6, 1, 12, 30, 0, 7])
    c.send(0x1C, answer)
    c.send(0x2B, b"\x04")
    assert sim.wait_frame(0x2B)[1] == b"\x04"
    assert sim.local_time == answer and sim.network_status == b"\x04"


def test_report_cmd_0x22_and_send(make):
    sim, c = make(report_cmd=0x22)
    sim.report_now()
    got = {}
    while set(got) != V2_DPS:
        got.update(dps_of(c.expect(0x22)))
    sim.send(0x04)
    assert c.expect(0x04) == b""
    c.send(0x23, b"\x01")
    sim.wait_frame(0x23, timeout=1)
    assert sim.counts["unknown_in"] == 0


# ---------------------------------------------------------------- link robustness

def test_parser_resyncs(make):
    sim, c = make(layout="v2")
    good = mkframe(0x00)
    bad = bytearray(mkframe(0x01))
    bad[-1] ^= 0xFF
    junk = b"\x00\x55\x55\xaa\x00\x07\xff\xff" + bytes(bad) + b"\x55" + good[:3]
    c.s.sendall(junk)
    time.sleep(0.05)
    c.s.sendall(good[3:])                    # the heartbeat split across two writes
    assert c.expect(0x00) == b"\x00"
    # a payload containing 55 AA must not cut the frame short
    alarms = bytes.fromhex("0101 55AA 0301 00F5")
    c.send(0x06, rec(17, 0, alarms))
    assert dps_of(c.expect(0x07))[17] == (0, alarms)
    assert sim.counts["bad_in"] >= 2
    assert [cmd for cmd, _ in sim.received] == [0x00, 0x06]


def test_stalled_partial_frame_is_dropped(make):
    sim, c = make(layout="v2")
    c.s.sendall(b"\x55\xaa\x00\x06\x03\x00")    # announces 768 bytes that never come
    c.send(0x00)
    assert c.expect(0x00, timeout=3) == b"\x00"


def test_noise_between_frames(make):
    sim, c = make(layout="cloud", noise=1.0)
    c.send(0x08)
    r = c.report(CLOUD_DPS, timeout=3)
    assert set(r) == CLOUD_DPS
    assert c.garbage > 0 and sim.counts["noise_bytes"] > 0
    sim.set_noise(0)
    n = sim.counts["noise_bytes"]
    sim.report_now()
    c.report(CLOUD_DPS)
    assert sim.counts["noise_bytes"] == n


def test_new_connection_replaces_old(make):
    sim, c = make(layout="v2")
    c.send(0x00)
    c.expect(0x00)
    c2 = Client(sim.port)
    try:
        with pytest.raises((EOFError, ConnectionResetError)):
            c.frame(2)
        c2.send(0x00)
        assert c2.expect(0x00) == b"\x01"     # same MCU: no reboot
        assert sim.counts["connections"] == 2
    finally:
        c2.close()


def test_stop_closes_and_context_manager():
    with spm02sim.Simulator(port=0) as sim:
        c = Client(sim.port)
        assert sim.connected.wait(2)
    try:
        with pytest.raises((EOFError, ConnectionResetError, TimeoutError)):
            c.frame(1)
    finally:
        c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim.port), timeout=0.5).close()


def test_frame_parser_unit():
    p = spm02sim.FrameParser(stale=0.5)
    stream = mkframe(0x07, rec(1, 2, b"\x00\x00\x01\x00")) + b"\xaa\x55" + mkframe(0x00)
    out = []
    for i in range(len(stream)):
        out += p.feed(stream[i:i + 1], now=0)
    assert [(cmd, data) for _, cmd, data in out] == [(0x07, rec(1, 2, b"\x00\x00\x01\x00")),
                                                     (0x00, b"")]
    assert p.feed(b"\x55\xaa\x00\x00\x00\x10", now=1) == []
    assert p.poll(now=1.2) == [] and p.poll(now=1.6) == [] and p.bad == 1


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 0x40), st.binary(max_size=40),
                          st.binary(max_size=12), st.integers(1, 9)), max_size=6))
def test_frame_parser_finds_every_frame_behind_junk(items):
    # junk that cannot form a header (no 0x55), frames of any content, fed in odd chunks
    stream, want = b"", []
    for cmd, data, junk, _ in items:
        stream += junk.replace(b"\x55", b"\x00") + mkframe(cmd, data, ver=0x00)
        want.append((cmd, data))
    chunk = items[0][3] if items else 1
    p, got = spm02sim.FrameParser(), []
    for i in range(0, len(stream), chunk):
        got += [(cmd, data) for _, cmd, data in p.feed(stream[i:i + chunk], now=0)]
    assert got == want and p.bad == 0


# ---------------------------------------------------------------- family profiles

SPM01_DPS = {1, 2, 6, 9, 18, 19}


def v0x_fields(raw):
    """(ver, V, I, P, Q, S, PF) of a v01/v02 raw phase DP, signs applied (written here
    from the reference, independently of the simulator)."""
    assert raw[1] == 0x0F and len(raw) == 16 + raw[0]
    f = [int.from_bytes(raw[2:4], "big")] + [int.from_bytes(raw[4 + 3 * j:7 + 3 * j], "big")
                                             for j in range(4)] + [raw[16]]
    if raw[0] == 2:
        for bit, j in ((1, 1), (2, 2), (4, 3), (8, 5)):
            if raw[17] & bit:
                f[j] = -f[j]
    return [raw[0]] + f


def test_spm01_single_phase_report(make):
    sim, c = make(layout="spm01")
    c.handshake()
    c.send(0x08)
    r = c.report(SPM01_DPS)
    assert set(r) == SPM01_DPS
    v, i, p = raw_phase(r[6][1], "twos")
    assert 2250 <= v <= 2400 and 0.8 * v * i / 1e4 - 1 <= p <= 0.99 * v * i / 1e4 + 1
    assert num(r[1]) > 0 and r[2][0] == 2
    assert r[18] == (0, b"\x08\x01\x00\x1e\x09\x00\x00\x05")  # report interval 30 s, record 9
    t = sim.truth()
    assert (t["voltage_a"], t["current_a"], t["power_a"]) == (v / 10, i / 1000, p)
    assert t["report_interval"] == 30 and t["alarms"] == {"alarm_9": {"enabled": False, "threshold": 5}}
    assert "energy_reverse" in t and not any(k.endswith(("_b", "_c")) for k in t)


def test_spm01_value_dps_and_only_when_asked(make):
    sim, c = make(layout="spm01", value_dps=True, push=False, interval=0.2)
    c.handshake()
    c.send(0x00)
    c.expect(0x00)
    assert c.silent_for(0.8)  # heartbeats answered, no report unasked
    c.send(0x08)
    r = c.report(SPM01_DPS | {102, 103, 104})
    assert raw_phase(r[6][1], "twos") == (num(r[102]), num(r[103]), num(r[104]))
    assert c.silent_for(0.8)


def test_v02_raw_format(make):
    sim, c = make(layout="v2", raw_format="v02", export_phase="b")
    sim.set_phase("b", pf=-0.9)
    c.send(0x08)
    r = c.report(V2_DPS)
    for k in range(3):
        ver, v, i, p, q, s, pf = v0x_fields(r[6 + k][1])
        assert ver == 2 and len(r[6 + k][1]) == 18
        assert (v, i, p) == (num(r[102 + 3 * k]), num(r[103 + 3 * k]), num(r[104 + 3 * k]))
        assert s == round(v * abs(i) / 1e4) and abs(q * q + p * p - s * s) <= 2 * s + 2
        assert p == round(v * i * pf / 1e6)
        t = sim.truth()
        ph = "abc"[k]
        assert (t["reactive_power_" + ph], t["apparent_power_" + ph], t["power_factor_" + ph]) == (q, s, pf / 100)
    _, _, _, p, q, _, pf = v0x_fields(r[7][1])
    assert p < 0 and q < 0 and pf == -90  # the exporting phase: sign bits set


def test_v01_raw_format_has_no_signs(make):
    sim, c = make(layout="v2", raw_format="v01")
    sim.set_phase("c", pf=-0.9)
    c.send(0x08)
    r = c.report(V2_DPS)
    ver, v, i, p, q, s, pf = v0x_fields(r[8][1])
    assert ver == 1 and len(r[8][1]) == 17 and p > 0 and pf == 90
    assert num(r[110]) == -p  # the value DP keeps the sign


def test_value_dps_only(make):
    sim, c = make(layout="v2", raw_format=None)
    c.send(0x08)
    r = c.report(V2_DPS - {6, 7, 8})
    assert not {6, 7, 8} & set(r)
    time.sleep(0.2)
    assert sim.counts["reports"] == 1


def test_dp18_interval_and_extra_dps(make):
    sim, c = make(layout="v2", dp18_interval=60, extra_dps={120: (2, 25)})
    c.send(0x08)
    r = c.report(V2_DPS | {120})
    assert num(r[120]) == 25
    assert r[18][1] == b"\x05\x01\x00\x00\x07\x00\x00\x00\x08\x01\x00\x3c"
    c.send(0x06, rec(18, 0, b"\x05\x01\x00\x00\x07\x00\x00\x00\x08\x01\x00\x78"))
    assert dps_of(c.expect(0x07))[18][1][-4:] == b"\x08\x01\x00\x78"
    assert sim.truth()["report_interval"] == 120


# ---------------------------------------------------------------- energy counters a test controls

def test_counters_move_only_when_told(make):
    sim, c = make(layout="v2", energy_auto=False)
    sim.set_counts(forward=240000000, reverse=1234)
    c.send(0x08)
    r = c.report(V2_DPS)
    assert (num(r[1]), num(r[23])) == (240000000, 1234)
    time.sleep(0.2)
    sim.add_counts(forward=7, reverse=1)
    sim.report_now()
    r = c.report({1, 23})
    assert (num(r[1]), num(r[23])) == (240000007, 1235) == (sim.energy_counts()[1], sim.energy_counts()[23])
    assert sim.truth()["energy_forward"] == 2400000.07


def test_glitch_sends_a_bogus_value_then_the_counter(make):
    sim, c = make(layout="v2", energy_auto=False)
    sim.set_counts(forward=5000)
    sim.glitch(1, 0, times=2)
    for want in (0, 0, 5000):
        sim.report_now()
        assert num(c.report({1})[1]) == want
    assert sim.energy_counts()[1] == 5000


def test_reset_energy_is_a_new_cycle_without_dp12(make):
    sim, c = make(layout="cloud", energy_auto=False)
    sim.set_counts(forward=0, reverse=0)  # the totals: all on phase A, the others 0
    sim.set_counts(forward=300, reverse=20, phase="b")
    sim.report_now()
    r = c.report(CLOUD_DPS)
    assert (num(r[118]), num(r[119]), num(r[1]), num(r[23])) == (300, 20, 300, 20)
    sim.reset_energy()
    sim.report_now()
    r = c.report(CLOUD_DPS)
    assert num(r[1]) == num(r[118]) == 0 and 12 not in r


def test_spm01_counters_are_dp1_and_dp2(make):
    sim, c = make(layout="spm01", energy_auto=False)
    sim.set_counts(forward=100, reverse=40)
    sim.glitch(2, 0)
    sim.report_now()
    r = c.report({1, 2})
    assert (num(r[1]), num(r[2])) == (100, 0) and 23 not in r
    assert sim.energy_counts() == {1: 100, 2: 40}


def test_simulated_clock_grows_counters_and_logs_each_report(make):
    # make soak's clock: the counters grow with the simulated time (one step per report, by
    # the daily curve: import at 19:00, phase C exporting at noon), each report logged
    now = [1803121200.0]  # 2027-02-20 11:00 UTC, noon at day_offset 3600
    sim, c = make(clock=lambda: now[0], day_offset=3600)
    c.send(0x08)
    c.report(V2_DPS)
    assert len(sim.report_log) == 1
    t0, f0, r0, conn = sim.report_log[0]
    assert (t0, conn) == (now[0], 1)
    now[0] += 3600  # an hour by day: phase C exports, A and B import a little
    sim.report_now()
    now[0] += 3600
    sim.report_now()
    (t1, f1, r1, _), (t2, f2, r2, _) = sim.report_log[1:]
    assert (t1, t2) == (t0 + 3600, t0 + 7200)
    assert r2 > r1 >= r0 and f2 > f1 >= f0
    assert (f2, r2) == (sim.truth_counts()[1], sim.truth_counts()[23])
    now[0] += 5 * 3600  # 19:00 local: the evening peak, nothing exported
    sim.report_now()
    now[0] += 1800
    sim.report_now()
    (_, f3, r3, _), (_, f4, r4, _) = sim.report_log[3:]
    assert r4 == r3 and f4 - f3 > (f2 - f1) / 2
