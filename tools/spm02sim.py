#!/usr/bin/env python3
"""Simulated SPM02-family meter MCU: a TuyaMCU peer on a TCP socket (CPython, stdlib only).

The firmware on the host talks to "the UART" as a TCP connection; this program sits at the
other end and behaves like the meter's MCU (see the shared spm02-reference.md). It is the
truth the end-to-end tests compare the firmware against, and what `make sim` runs.

    sim = Simulator(layout="v2", port=0, interval=0.3, seed=1)
    Simulator(layout="spm01", push=False)     # single-phase, reports only when asked
    Simulator(raw_format="v02")               # Tuya's 18-byte raw phase format
    Simulator(raw_format=None)                # a v2 meter with value DPs 102..110 only
    with sim:                       # start() ... stop()
        connect to 127.0.0.1:sim.port, heartbeat, 0x01, 0x02, 0x03, 0x08 ...
        sim.truth()                 # state keys of the last values sent, in contract units

Profiles: `layout` "v2" (DP 102..110 per phase), "cloud" (g5n4t0, DP 102 report interval,
103..130) or "spm01" (single-phase: DP 1 and DP 2 energy, raw DP 6, DP 9, DP 18 with the
report interval record 0x08; `value_dps=True` sends DP 102..104 as well). `raw_format` is
"8" (voltage, current, power), "v01"/"v02" (Tuya's 17/18-byte format with reactive and
apparent power and the power factor; v01 has no signs, v02 sign bits) or None (no raw phase
DPs at all). `value_dps=False` drops the per-phase value DPs. `push=False`: the meter never
reports on its own, only when asked (0x08). `dp18_interval` puts record 0x08 (seconds) in
DP 18 (default: 30 for spm01). `extra_dps` {dpid: (type, value)} go out in every report.

Energy counters (DP 1, DP 23 or DP 2 on an SPM01, the cloud layout's per-phase 109..128) are
integrated from the simulated power, or, with `energy_auto=False`, move only when a test
says so: `set_counts(forward=, reverse=, phase=)` and `add_counts(...)` in counts of 0.01 kWh
(the totals are the sum of the phases), `reset_energy()` (the meter starts a new cycle on
its own), `glitch(dp, value=0, times=1)` (the next reports send a bogus value for one DP,
as some meters do after power-up), `energy_counts()` (the real counters, glitches aside).

Choices worth knowing (the reference leaves them open):
- Current is reported as a magnitude and the sign lives in the power (and power factor):
  an exporting phase has I > 0, pf < 0, P < 0. A test may still pin a negative current.
- Negative 24-bit fields inside raw DPs 6/7/8 use `neg_encoding`: "twos" (24-bit two's
  complement) or "offset" (0x19999A - |x|, as the zigbee SPM02 firmwares do). Value DPs
  (4 bytes) always carry negatives as 32-bit two's complement.
- Cloud DP 102 (report_interval, 225..3600 s) and DP 18's record 0x08 are stored and
  reported back (DP 102 clamped to its range), but do not change the simulator's real
  report period (`interval`), so tests and demos can keep a short one.
- Reactive power is sqrt(S^2 - P^2) with S = V x I, negative while the phase exports.
- Faults (DP 9) are evaluated on every fresh measurement from the enabled alarms: phase_loss
  when a phase is under 10 V, undervoltage for 10 V <= V < threshold, overvoltage above,
  overcurrent above the threshold in A, unbalance above the threshold in %, high_power when
  |total power| exceeds the threshold in kW, reverse_power when total power < 0. Only names
  the layout has a bit for show up in the bitmap.
- Noise (set_noise) is 1..10 random bytes before a frame, half the time with a stray 55 AA
  in them. Such a header may announce a long payload: a parser gets the real frames behind
  it back once enough bytes arrived and the checksum failed, or sooner with a timeout on a
  stalled partial frame (FrameParser does both).
- A new TCP connection is the same MCU on a re-plugged wire: it does not reboot the MCU
  (use reboot() for that), but handshake_done is cleared until the new client handshakes.
"""

import argparse
import json
import logging
import math
import random
import selectors
import signal
import socket
import threading
import time

log = logging.getLogger("spm02sim")

# ---------------------------------------------------------------- TuyaMCU framing

MAX_LEN = 1024          # longest payload accepted; longer headers are treated as noise
RAW, BOOL, VALUE, STRING, ENUM, BITMAP = 0, 1, 2, 3, 4, 5


def checksum(data):
    return sum(data) & 0xFF


def frame(cmd, data=b"", ver=0x03):
    """One complete TuyaMCU frame."""
    head = bytes([0x55, 0xAA, ver, cmd, len(data) >> 8, len(data) & 0xFF]) + bytes(data)
    return head + bytes([checksum(head)])


def dp_record(dpid, dptype, value):
    """One DP record: dpid | type | len(2) | value bytes."""
    return bytes([dpid, dptype, len(value) >> 8, len(value) & 0xFF]) + bytes(value)


def parse_dps(data):
    """DP records of a 0x06/0x07/0x22 payload -> [(dpid, type, value bytes)]; stops at junk."""
    out, i = [], 0
    while i + 4 <= len(data):
        n = (data[i + 2] << 8) | data[i + 3]
        if i + 4 + n > len(data):
            break
        out.append((data[i], data[i + 1], bytes(data[i + 4:i + 4 + n])))
        i += 4 + n
    return out


class FrameParser:
    """Bytes in, (ver, cmd, data) frames out. Resynchronises on 55 AA after anything bad.

    After a bad header or checksum only the leading 0x55 is dropped, so a real frame hidden
    behind a stray 55 AA is still found. A partial frame that stops growing for `stale`
    seconds is treated the same way (a stray header announcing a long payload must not
    stall the link until enough bytes trickle in)."""

    def __init__(self, stale=1.0):
        self.buf = bytearray()
        self.bad = 0
        self.stale = stale
        self._since = None          # when the current head of buf was first seen

    def feed(self, data=b"", now=None):
        now = time.monotonic() if now is None else now
        buf = self.buf
        buf += data
        out, moved = [], False
        while True:
            i = buf.find(b"\x55\xaa")
            if i < 0:
                keep = 1 if buf[-1:] == b"\x55" else 0   # may be the start of a header
                if len(buf) > keep:
                    del buf[:len(buf) - keep]
                    moved = True
                break
            if i:
                del buf[:i]
                moved = True
            if len(buf) < 6:
                break
            n = (buf[4] << 8) | buf[5]
            if n > MAX_LEN:
                del buf[:1]
                self.bad += 1
                moved = True
                continue
            if len(buf) < 7 + n:
                break
            if checksum(buf[:6 + n]) != buf[6 + n]:
                del buf[:1]
                self.bad += 1
                moved = True
                continue
            out.append((buf[2], buf[3], bytes(buf[6:6 + n])))
            del buf[:7 + n]
            moved = True
        if not buf:
            self._since = None
        elif moved or self._since is None:
            self._since = now
        return out

    def poll(self, now=None):
        """Give up on a stalled partial frame; returns frames found behind it."""
        now = time.monotonic() if now is None else now
        if self._since is not None and now - self._since > self.stale and self.buf:
            del self.buf[:1]
            self.bad += 1
            self._since = now
            return self.feed(b"", now)
        return []


def enc24(x, encoding="twos"):
    """A signed reading as the 24-bit field of a raw phase DP."""
    if x >= 0:
        return x & 0xFFFFFF
    return (0x19999A + x) if encoding == "offset" else (x & 0xFFFFFF)


def dec24(u, encoding="twos"):
    """Inverse of enc24 (values at or above 0x100000 are negative, see the reference)."""
    if u < 0x100000:
        return u
    return -(0x19999A - u) if encoding == "offset" else u - 0x1000000


# ---------------------------------------------------------------- the meter's DPs

PHASES = "abc"
KXDR_KEY = "kxdr6su0c55p7bbo"
CLOUD_KEY = "g5n4t0simulated0"
SPM01_KEY = "spm01simulated00"   # no product key of an SPM01 is known: no hint
RAW_FORMATS = ("8", "v01", "v02", None)

CLOUD_FAULTS = ("short_circuit", "surge", "overload", "leakage_current", "temperature", "fire",
                "high_power", "self_test", "overcurrent", "unbalance", "overvoltage",
                "undervoltage", "phase_loss", "outage", "magnetism", "credit", "no_balance")
FAULT_BITS = {"v2": {"overcurrent": 2, "phase_loss": 3},
              "cloud": {name: bit for bit, name in enumerate(CLOUD_FAULTS)},
              "spm01": {}}   # the SPM01's bits are not known
BITMAP_WIDTH = {"v2": 1, "cloud": 4, "spm01": 1}

ALARM_IDS = {1: "overcurrent", 2: "unbalance", 3: "overvoltage", 4: "undervoltage",
             5: "phase_loss"}
ALARM_NAMES = {17: {**ALARM_IDS, 7: "high_power"}, 18: {**ALARM_IDS, 7: "reverse_power"}}
DEFAULT_ALARMS = {17: [(1, 1, 60), (2, 0, 20), (3, 1, 260), (4, 1, 190), (7, 0, 20)],
                  18: [(5, 1, 0), (7, 0, 0)]}

# DP types; 12 and 35 are write-only commands (echoed, never in a full report).
COMMON_TYPES = {1: VALUE, 6: RAW, 7: RAW, 8: RAW, 9: BITMAP, 12: BOOL, 17: RAW, 18: RAW,
                19: STRING, 23: VALUE, 29: VALUE, 32: VALUE, 35: ENUM, 50: VALUE, 101: BOOL}
REPORTED_COMMON = (1, 6, 7, 8, 9, 17, 18, 19, 23, 29, 32, 50, 101)
REPORTED_SPM01 = (1, 2, 6, 9, 18, 19)

# Value DPs with a plain scaled number: dpid -> (state key, decimals)
SCALED_COMMON = {1: ("energy_forward", 2), 23: ("energy_reverse", 2), 29: ("power", 0),
                 32: ("frequency", 2), 50: ("power_factor", 2)}
SCALED = {
    "v2": {**SCALED_COMMON, **{
        102 + 3 * k + j: (name + "_" + ph, dec)
        for k, ph in enumerate(PHASES)
        for j, (name, dec) in enumerate((("voltage", 1), ("current", 3), ("power", 0)))}},
    "cloud": {**SCALED_COMMON, 102: ("report_interval", 0), 130: ("current_unbalance", 0),
              **{base + 9 * k: (name + "_" + ph, dec)
                 for k, ph in enumerate(PHASES)
                 for base, name, dec in ((103, "voltage", 1), (104, "current", 3),
                                         (105, "power", 0), (108, "power_factor", 2),
                                         (109, "energy_forward", 2),
                                         (110, "energy_reverse", 2))}},
    "spm01": {1: ("energy_forward", 2), 2: ("energy_reverse", 2), 102: ("voltage_a", 1),
              103: ("current_a", 3), 104: ("power_a", 0)},
}
WRITABLE = {"v2": {12, 17, 18, 35, 101}, "cloud": {12, 17, 18, 35, 101, 102},
            "spm01": {12, 17, 18, 35, 101}}


def dp_type(dpid):
    return COMMON_TYPES.get(dpid, VALUE)


def _scale(count, decimals):
    # round() so that 2317 -> 231.7 compares equal to json.loads("231.7")
    return count if decimals == 0 else round(count / 10 ** decimals, decimals)


def alarms_bytes(records):
    return b"".join(bytes([i, e, t >> 8 & 0xFF, t & 0xFF]) for i, e, t in records)


def enc_phase(fmt, v, i, p, q, s, pf, encoding="twos"):
    """A raw phase DP: 8 bytes (V, I, P) or Tuya's v01/v02 (ver | 0F | V | I | P | Q | S |
    PF [| sign bits]); v01 carries magnitudes only."""
    if fmt == "8":
        return v.to_bytes(2, "big") + enc24(i, encoding).to_bytes(3, "big") \
            + enc24(p, encoding).to_bytes(3, "big")
    ver = 1 if fmt == "v01" else 2
    b = bytes([ver, 0x0F]) + v.to_bytes(2, "big") \
        + b"".join(min(abs(x), 0xFFFFFF).to_bytes(3, "big") for x in (i, p, q, s)) + bytes([min(abs(pf), 255)])
    if ver == 2:
        b += bytes([(i < 0) | (p < 0) << 1 | (q < 0) << 2 | (pf < 0) << 3])
    return b


def dec_phase(raw, encoding="twos"):
    """{field: count} of a raw phase DP (voltage, current, power [, reactive_power,
    apparent_power, power_factor]); {} for an unknown format."""
    if len(raw) == 8:
        return {"voltage": int.from_bytes(raw[:2], "big"),
                "current": dec24(int.from_bytes(raw[2:5], "big"), encoding),
                "power": dec24(int.from_bytes(raw[5:8], "big"), encoding)}
    if len(raw) in (17, 18) and raw[0] == len(raw) - 16 and raw[1] == 0x0F:
        signs = raw[17] if len(raw) == 18 else 0
        out = {"voltage": int.from_bytes(raw[2:4], "big")}
        for j, name in enumerate(("current", "power", "reactive_power", "apparent_power")):
            out[name] = int.from_bytes(raw[4 + 3 * j:7 + 3 * j], "big")
        out["power_factor"] = raw[16]
        for bit, name in ((1, "current"), (2, "power"), (4, "reactive_power"), (8, "power_factor")):
            if signs & bit:
                out[name] = -out[name]
        return out
    return {}


PHASE_DECIMALS = {"voltage": 1, "current": 3, "power": 0, "reactive_power": 0, "apparent_power": 0,
                  "power_factor": 2}


def alarms_records(raw):
    """4-byte records of DP 17/18; a trailing partial record is ignored."""
    return [(raw[i], raw[i + 1], (raw[i + 2] << 8) | raw[i + 3])
            for i in range(0, len(raw) - len(raw) % 4, 4)]


# ---------------------------------------------------------------- the simulator

def bind_low(sock, host="127.0.0.1", half=1):
    """Bind sock to a free port below the kernel's ephemeral range, chosen at random: a port
    bind(0) hands out comes from that range, where a port just freed is handed out again, and
    a client still trying the old owner of the port (a firmware whose simulator has gone, in
    a test run side by side) would then connect to the new one and push its client out. The
    port, once bound. half: 1 for the upper half of that space (the simulators), 0 for the
    lower (harness.free_port's servers), so a simulator never takes a port a server was
    promised and has not bound yet."""
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999  # Linux's default
    bottom, top = (10000, lo) if lo > 12000 else (hi + 1, 65536)
    mid = (bottom + top) // 2
    bottom, top = (mid, top) if half else (bottom, mid)
    for _ in range(200):
        port = random.randrange(bottom, top)
        try:
            sock.bind((host, port))
            return port
        except OSError:
            continue  # taken
    raise OSError("no free port between %d and %d" % (bottom, top))


class Simulator:
    def __init__(self, layout="v2", port=0, interval=15.0, seed=1, neg_encoding="twos",
                 dps_per_frame=1, noise=0.0, product_key=None, export_phase="c",
                 ask_time=True, ask_network=False, host="127.0.0.1", export_period=120.0,
                 energy_scale=1.0, report_cmd=0x07, device_id="vow25010001", raw_format="8",
                 value_dps=None, push=True, dp18_interval=None, extra_dps=None, energy_auto=True,
                 clock=None, day_offset=3600):
        if layout not in SCALED:
            raise ValueError("layout must be 'v2', 'cloud' or 'spm01'")
        if raw_format not in RAW_FORMATS:
            raise ValueError("raw_format must be '8', 'v01', 'v02' or None")
        if neg_encoding not in ("twos", "offset"):
            raise ValueError("neg_encoding must be 'twos' or 'offset'")
        if export_phase is not None and export_phase not in PHASES:
            raise ValueError("export_phase must be one of a, b, c or None")
        self.layout = layout
        self.phases = "a" if layout == "spm01" else PHASES
        self.raw_format = raw_format
        self.value_dps = (layout != "spm01") if value_dps is None else bool(value_dps)
        self.push = bool(push)               # False: reports only when asked (0x08)
        self.extra_dps = dict(extra_dps or {})
        self.host, self.port = host, port
        self.interval = float(interval)
        self.neg_encoding = neg_encoding
        self.dps_per_frame = max(1, int(dps_per_frame))
        self.noise = float(noise)
        self.product_key = product_key or {"v2": KXDR_KEY, "cloud": CLOUD_KEY, "spm01": SPM01_KEY}[layout]
        self.export_phase = export_phase
        self.export_period = export_period   # s; the export phase exports in the second half
        self.energy_scale = energy_scale     # >1 makes the energy counters move faster
        self.energy_auto = bool(energy_auto)  # False: the counters move only when told
        # clock: a function giving the simulated unix time (make soak's faster clock, the
        # firmware's SPM02_CLOCK). With it, the phases follow a daily curve of that time
        # (local by day_offset s east: import morning and evening, phase C exporting by day),
        # the counters grow with it, one step per report, and each report sent is logged in
        # report_log as (simulated time, forward, reverse, connection number).
        self.clock = clock
        self.day_offset = day_offset
        self.report_log = []
        self._glitch = {}                    # dpid -> [bogus value, reports left]
        self.ask_time, self.ask_network = ask_time, ask_network
        self.report_cmd = report_cmd         # 0x07, or 0x22 (report that wants a 0x23 ack)
        self.device_id = device_id

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        self._nrng = random.Random(None if seed is None else "noise%s" % seed)
        self.received = []                   # (cmd, payload) of every valid frame in
        self.counts = dict(frames_in=0, frames_out=0, bad_in=0, unknown_in=0, unknown_dp=0,
                           reports=0, connections=0, noise_bytes=0)
        self.connected = threading.Event()
        self.handshake_done = threading.Event()
        self.wifi_state = None               # last byte of a 0x03 from the module
        self.local_time = None               # payload of the module's 0x1C answer
        self.network_status = None           # payload of the module's 0x2B answer

        # MCU state
        self._silent = False
        self._first_hb = True                # next heartbeat answer is 0x00
        self._reporting = False              # periodic reports run (after a heartbeat answer)
        self._hb_seen = False                # a heartbeat came on this connection
        self._next_report = 0.0
        self._locating = False
        self._report_interval = 225
        self._alarms = {dp: list(r) for dp, r in DEFAULT_ALARMS.items()}
        if dp18_interval is None and layout == "spm01":
            dp18_interval = 30
        if layout == "spm01":
            self._alarms = {17: [], 18: [(9, 0, 5)]}
        if dp18_interval is not None:
            self._alarms[18] = sorted(self._alarms[18] + [(8, 1, int(dp18_interval))])
        self._last = {}                      # dpid -> value most recently sent
        self._pins = {ph: {} for ph in PHASES}
        r = self._rng
        self._ph = {ph: dict(v=r.uniform(228, 236), i=r.uniform(0.5, 8.0),
                             pf=r.uniform(0.85, 0.98)) for ph in PHASES}
        self._freq = 50.0 + r.uniform(-0.03, 0.03)
        self._wh_f = {ph: r.uniform(300e3, 600e3) for ph in PHASES}      # Wh
        self._wh_r = {ph: (r.uniform(50e3, 150e3) if ph == export_phase else 0.0)
                      for ph in PHASES}
        self._p_prev = {ph: 0 for ph in PHASES}                          # W, last sample
        self._t0 = self._t_last = time.monotonic()
        if clock is not None:
            self._t_last = clock()

        # I/O
        self._lsock = self._client = self._thread = None
        self._parser = FrameParser()
        self._stop = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.port:
            s.bind((self.host, self.port))
        else:
            bind_low(s, self.host)
        s.listen(2)
        self._lsock = s
        self.port = s.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="spm02sim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5.0)
            self._thread = None
        elif self._lsock:
            self._lsock.close()

    def __enter__(self):
        return self if self._thread else self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ test controls

    def report_now(self):
        """Send a full report (fresh measurement) now, whatever the handshake state."""
        with self._lock:
            if not self._silent:
                self._full_report()

    def set_silent(self, silent=True):
        """A hung MCU: frames are still read and recorded but nothing is answered or sent."""
        with self._lock:
            self._silent = bool(silent)

    def reboot(self):
        """Forget the handshake: next heartbeat answer is 0x00, reports wait for it."""
        with self._lock:
            self._first_hb = True
            self._reporting = False
            self._hb_seen = False
            self.handshake_done.clear()

    def set_noise(self, prob):
        """Probability of random garbage (sometimes with a stray 55 AA) before each frame."""
        with self._lock:
            self.noise = float(prob)

    def set_interval(self, seconds):
        with self._lock:
            self.interval = float(seconds)
            self._next_report = time.monotonic() + self.interval

    def set_phase(self, phase, voltage=None, current=None, pf=None):
        """Pin a phase's voltage (V), current (A) and/or power factor from the next
        measurement on (call report_now() to send it). A pinned voltage under 10 V with the
        current not pinned gives 0 A. Negative pf = export."""
        ph = self._phase(phase)
        with self._lock:
            for k, v in (("v", voltage), ("i", current), ("pf", pf)):
                if v is not None:
                    self._pins[ph][k] = float(v)

    def set_counts(self, forward=None, reverse=None, phase=None):
        """Set the energy counters, in counts of 0.01 kWh: a phase's, or the totals (put on
        phase A, the other phases to 0). Call report_now() to send them."""
        with self._lock:
            for ph in self.phases if phase is None else (self._phase(phase),):
                for wh, v in ((self._wh_f, forward), (self._wh_r, reverse)):
                    if v is not None:
                        wh[ph] = float(v * 10) if ph == self.phases[0] or phase is not None else 0.0

    def add_counts(self, forward=0, reverse=0, phase="a"):
        """Advance the counters of a phase by known amounts (counts of 0.01 kWh)."""
        ph = self._phase(phase)
        with self._lock:
            self._wh_f[ph] += forward * 10
            self._wh_r[ph] += reverse * 10

    def reset_energy(self):
        """The meter starts a new cycle on its own (no DP 12 from the module): all 0."""
        with self._lock:
            for ph in PHASES:
                self._wh_f[ph] = self._wh_r[ph] = 0.0

    def glitch(self, dp, value=0, times=1):
        """The next `times` reports carrying DP dp send `value` instead of the counter."""
        with self._lock:
            self._glitch[dp] = [value, times]

    def energy_counts(self):
        """{dpid: count} of the real energy counters (what a glitch hides)."""
        with self._lock:
            return self._energy_values()

    def release_phase(self, phase=None):
        """Undo set_phase for one phase (or all): readings drift again."""
        with self._lock:
            for ph in (PHASES if phase is None else self._phase(phase)):
                self._pins[ph].clear()

    def send(self, cmd, data=b""):
        """Send any frame as the MCU would (e.g. 0x04, 0x0E, 0x22, 0x24, 0x34)."""
        with self._lock:
            return self._write(self._frame_bytes(cmd, data))

    def send_raw(self, data):
        """Send bytes as they are (line noise, broken frames)."""
        with self._lock:
            return self._write(bytes(data))

    # ------------------------------------------------------------ inspection

    def mark(self):
        """Index to pass as `since` to wait for frames received after this point."""
        with self._lock:
            return len(self.received)

    def wait_for(self, predicate, timeout=5.0, since=0):
        """First (cmd, payload) at index >= since with predicate(cmd, payload) true."""
        deadline = time.monotonic() + timeout
        idx = since
        with self._cond:
            while True:
                while idx < len(self.received):
                    cmd, payload = self.received[idx]
                    idx += 1
                    if predicate(cmd, payload):
                        return cmd, payload
                left = deadline - time.monotonic()
                if left <= 0:
                    got = ["%02x:%s" % (c, p[:24].hex()) for c, p in self.received[since:][-20:]]
                    raise TimeoutError("no matching frame from the module within %.1f s; %d frames since "
                                       "the mark, the last (cmd:payload): %s"
                                       % (timeout, len(self.received) - since, " ".join(got) or "none"))
                self._cond.wait(left)

    def wait_frame(self, cmd, timeout=5.0, since=None, dp=None):
        """First frame with this cmd (and, if dp is given, carrying that DP) from index
        `since` (default: from the first frame ever received)."""
        def match(c, payload):
            return c == cmd and (dp is None or any(r[0] == dp for r in parse_dps(payload)))
        return self.wait_for(match, timeout, 0 if since is None else since)

    def truth_counts(self):
        """{dpid: last value sent}: int for value/bool/enum/bitmap, bytes for raw, str for
        string. Includes echoed command DPs (12, 35) once they were sent."""
        with self._lock:
            return dict(self._last)

    def truth(self):
        """The last values sent, as the contract's state keys in contract units."""
        with self._lock:
            last = dict(self._last)
        t = {}
        for dpid, (key, dec) in SCALED[self.layout].items():
            if dpid in last:
                t[key] = _scale(last[dpid], dec)
        # per-phase readings inside the raw phase DPs where no value DP gave them
        for k, ph in enumerate(self.phases):
            for name, count in dec_phase(last.get(6 + k, b""), self.neg_encoding).items():
                t.setdefault(name + "_" + ph, _scale(count, PHASE_DECIMALS[name]))
        if 19 in last:
            t["device_id"] = last[19]
        if 101 in last:
            t["locating"] = bool(last[101])
        if 9 in last:
            t["faults_raw"] = last[9]
            names = sorted(FAULT_BITS[self.layout].items(), key=lambda kv: kv[1])
            t["faults"] = [n for n, bit in names if last[9] >> bit & 1]
        if 17 in last or 18 in last:
            t["alarms"] = {}
            for dp in (17, 18):
                for i, e, th in alarms_records(last.get(dp, b"")):
                    if dp == 18 and i == 8:          # the report interval, not an alarm
                        t.setdefault("report_interval", th)
                        continue
                    name = ALARM_NAMES[dp].get(i, "alarm_%d" % i)
                    t["alarms"][name] = {"enabled": bool(e), "threshold": th}
            if not t["alarms"]:
                del t["alarms"]
        return t

    # ------------------------------------------------------------ measurement

    @staticmethod
    def _phase(phase):
        ph = PHASES[phase] if isinstance(phase, int) else str(phase).lower()
        if ph not in PHASES:
            raise ValueError("phase must be a, b, c or 0..2")
        return ph

    def _integrate(self, now):
        # The power last measured is taken to have held since then.
        if self.clock is not None:
            now = self.clock()
        hours = (now - self._t_last) / 3600.0 * self.energy_scale
        self._t_last = now
        if not self.energy_auto:
            return
        for ph in self.phases:
            p = self._p_prev[ph]
            if p > 0:
                self._wh_f[ph] += p * hours
            elif p < 0:
                self._wh_r[ph] -= p * hours

    def _energy_values(self):
        v = {}
        f = {ph: int(self._wh_f[ph] // 10) for ph in self.phases}     # 0.01 kWh = 10 Wh
        r = {ph: int(self._wh_r[ph] // 10) for ph in self.phases}
        v[1] = sum(f.values())                                         # total = sum of phases
        v[2 if self.layout == "spm01" else 23] = sum(r.values())
        if self.layout == "cloud":
            for k, ph in enumerate(PHASES):
                v[109 + 9 * k], v[110 + 9 * k] = f[ph], r[ph]
        return v

    def _sample(self):
        """A fresh measurement: drift, integrate energy, return {dpid: value} of a report."""
        now = time.monotonic()
        self._integrate(now)
        r = self._rng
        self._freq = min(50.1, max(49.9, self._freq + r.gauss(0, 0.01)))
        exporting = bool(self.export_period) and \
            (now - self._t0) % self.export_period >= self.export_period / 2
        curve = None
        if self.clock is not None:
            h = (self.clock() + self.day_offset) % 86400 / 3600.0
            sun = max(0.0, math.sin(math.pi * (h - 7) / 11)) if 7 <= h < 18 else 0.0
            use = 0.4 + 3 * math.exp(-(h - 7.5) ** 2) + 5 * math.exp(-(h - 19) ** 2 / 2)
            curve = {"a": use, "b": use * 0.7 + 0.3, "c": 0.3 + 9 * sun}
            exporting = sun > 0.1
        vc, ic, pfc, pc = {}, {}, {}, {}
        for ph in self.phases:
            s, pin = self._ph[ph], self._pins[ph]
            s["v"] = min(240.0, max(225.0, s["v"] + r.gauss(0, 0.3)))
            s["i"] = min(20.0, max(0.2, s["i"] * math.exp(r.gauss(0, 0.05))))
            if curve is not None:
                s["i"] = curve[ph] * math.exp(r.gauss(0, 0.1))
            s["pf"] = min(0.99, max(0.80, s["pf"] + r.gauss(0, 0.01)))
            v = pin.get("v", s["v"])
            i = pin.get("i", 0.0 if v < 10 else s["i"])
            pf = pin.get("pf", -s["pf"] if exporting and ph == self.export_phase else s["pf"])
            vc[ph] = min(65535, max(0, round(v * 10)))
            ic[ph], pfc[ph] = round(i * 1000), round(pf * 100)
            # P from the reported (rounded) V, I and pf, so the report is self-consistent.
            pc[ph] = round(vc[ph] * ic[ph] * pfc[ph] / 1e6)
            self._p_prev[ph] = pc[ph]

        total_p = sum(pc.values())
        total_va = sum(vc[ph] * ic[ph] for ph in self.phases) / 1e4
        avg_i = sum(abs(x) for x in ic.values()) / len(self.phases)
        unbalance = round(max(abs(abs(x) - avg_i) for x in ic.values()) / avg_i * 100) \
            if avg_i else 0

        vals = {9: self._faults(vc, ic, total_p, unbalance),
                17: alarms_bytes(self._alarms[17]), 18: alarms_bytes(self._alarms[18]),
                19: self.device_id, 29: total_p, 32: round(self._freq * 100),
                50: round(total_p / total_va * 100) if total_va else 0,
                101: int(self._locating)}
        vals.update(self._energy_values())
        vals.update({dp: v for dp, (_t, v) in self.extra_dps.items()})
        for k, ph in enumerate(self.phases):
            va = round(vc[ph] * abs(ic[ph]) / 1e4)
            q = round(math.sqrt(max(va * va - pc[ph] * pc[ph], 0)))
            vals[6 + k] = enc_phase(self.raw_format or "8", vc[ph], ic[ph], pc[ph],
                                    -q if pfc[ph] < 0 else q, va, pfc[ph], self.neg_encoding)
            if self.layout in ("v2", "spm01"):
                vals[102 + 3 * k], vals[103 + 3 * k], vals[104 + 3 * k] = vc[ph], ic[ph], pc[ph]
            else:
                vals[103 + 9 * k], vals[104 + 9 * k] = vc[ph], ic[ph]
                vals[105 + 9 * k], vals[108 + 9 * k] = pc[ph], pfc[ph]
        if self.layout == "cloud":
            vals[102], vals[130] = self._report_interval, unbalance
        return vals

    def _faults(self, vc, ic, total_p, unbalance):
        al = {}
        for dp in (17, 18):
            for i, e, th in self._alarms[dp]:
                if e:
                    al[ALARM_NAMES[dp].get(i)] = th
        active = set()
        volts = [v / 10 for v in vc.values()]
        if "overcurrent" in al and any(abs(i) / 1000 > al["overcurrent"] for i in ic.values()):
            active.add("overcurrent")
        if "unbalance" in al and unbalance > al["unbalance"]:
            active.add("unbalance")
        if "overvoltage" in al and any(v > al["overvoltage"] for v in volts):
            active.add("overvoltage")
        if "undervoltage" in al and any(10 <= v < al["undervoltage"] for v in volts):
            active.add("undervoltage")
        if "phase_loss" in al and any(v < 10 for v in volts):
            active.add("phase_loss")
        if "high_power" in al and abs(total_p) > al["high_power"] * 1000:
            active.add("high_power")
        if "reverse_power" in al and total_p < 0:
            active.add("reverse_power")
        bits = FAULT_BITS[self.layout]
        return sum(1 << bits[n] for n in active if n in bits)

    # ------------------------------------------------------------ sending (lock held)

    def _encode(self, dpid, value):
        t = self.extra_dps[dpid][0] if dpid in self.extra_dps else dp_type(dpid)
        if t == RAW:
            b = bytes(value)
        elif t == STRING:
            b = str(value).encode()
        elif t == VALUE:
            b = (int(value) & 0xFFFFFFFF).to_bytes(4, "big")     # 32-bit two's complement
        elif t == BITMAP:
            b = int(value).to_bytes(BITMAP_WIDTH[self.layout], "big")
        else:                                                    # bool, enum
            b = bytes([int(value) & 0xFF])
        return dp_record(dpid, t, b)

    def _frame_bytes(self, cmd, data):
        out = b""
        if self.noise and self._nrng.random() < self.noise:
            junk = bytearray(self._nrng.randbytes(self._nrng.randint(1, 10)))
            if self._nrng.random() < 0.5:
                at = self._nrng.randint(0, len(junk))
                junk[at:at] = b"\x55\xaa"
            self.counts["noise_bytes"] += len(junk)
            out = bytes(junk)
        self.counts["frames_out"] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("out %s", _describe(cmd, data))
        return out + frame(cmd, data)

    def _write(self, data):
        c = self._client
        if c is None:
            return False
        try:
            c.sendall(data)
            return True
        except OSError:
            try:                        # the loop thread sees EOF and drops the client
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False

    def _report(self, values):
        """Send {dpid: value} as report frames, dps_per_frame records each, back to back."""
        for dp, g in list(self._glitch.items()):
            if dp in values:
                values[dp] = g[0]
                g[1] -= 1
                if g[1] <= 0:
                    del self._glitch[dp]
        recs = [self._encode(dp, v) for dp, v in values.items()]
        n = self.dps_per_frame
        out = b"".join(self._frame_bytes(self.report_cmd, b"".join(recs[i:i + n]))
                       for i in range(0, len(recs), n))
        self._last.update(values)       # before writing: a client may look at once
        entry = None
        if self.clock is not None and 1 in values:  # logged before writing too, taken back if unsent
            entry = (self.clock(), values[1], values.get(2 if self.layout == "spm01" else 23),
                     self.counts["connections"])
            self.report_log.append(entry)
        if not self._write(out) and entry is not None:
            self.report_log.remove(entry)

    def report_dps(self):
        """Every DP of a full report, in the order it is sent."""
        if self.layout == "spm01":
            dps = set(REPORTED_SPM01) | ({102, 103, 104} if self.value_dps else set())
        else:
            dps = set(REPORTED_COMMON) | {dp for dp, (key, _) in SCALED[self.layout].items()
                                          if self.value_dps or key[-2:] not in ("_a", "_b", "_c")}
        if self.raw_format is None:
            dps -= {6, 7, 8}
        return sorted(dps | set(self.extra_dps))

    def _full_report(self):
        vals = self._sample()
        self.counts["reports"] += 1
        self._report({dp: vals[dp] for dp in self.report_dps()})

    # ------------------------------------------------------------ receiving (lock held)

    def _handle(self, ver, cmd, data):
        self.counts["frames_in"] += 1
        self.received.append((cmd, data))
        self._cond.notify_all()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("in  %s", _describe(cmd, data))
        if self._silent:
            return
        send = self._write_frame
        if cmd == 0x00:
            send(0x00, b"\x00" if self._first_hb else b"\x01")
            if self._first_hb or not self._reporting:
                self._next_report = time.monotonic() + self.interval
            self._first_hb, self._reporting, self._hb_seen = False, True, True
        elif cmd == 0x01:
            send(0x01, json.dumps({"p": self.product_key, "v": "1.0.0", "m": 0},
                                  separators=(",", ":")).encode())
        elif cmd == 0x02:
            send(0x02)
        elif cmd == 0x03:
            self.wifi_state = data[0] if data else None
            send(0x03)
        elif cmd == 0x08:
            self._full_report()
            if self._hb_seen and not self.handshake_done.is_set():
                self.handshake_done.set()
                if self.ask_time:
                    send(0x1C)
                if self.ask_network:
                    send(0x2B)
        elif cmd == 0x06:
            for dpid, _t, value in parse_dps(data):
                self._set_dp(dpid, value)
        elif cmd == 0x1C:
            self.local_time = data
        elif cmd == 0x2B:
            self.network_status = data
        elif cmd not in (0x04, 0x0E, 0x23, 0x24, 0x34):      # answers to send(); recorded
            self.counts["unknown_in"] += 1

    def _write_frame(self, cmd, data=b""):
        self._write(self._frame_bytes(cmd, data))

    def _set_dp(self, dpid, raw):
        if dpid not in WRITABLE[self.layout]:
            if dpid in self._last:                 # read-only DP: report it unchanged
                self._report({dpid: self._last[dpid]})
            else:
                self.counts["unknown_dp"] += 1
            return
        num = int.from_bytes(raw, "big", signed=len(raw) == 4) if raw else 0
        if dpid == 12:
            echo = {12: num}
            if num:
                self._integrate(time.monotonic())
                for ph in PHASES:
                    self._wh_f[ph] = self._wh_r[ph] = 0.0
                echo.update(self._energy_values())
            self._report(echo)
        elif dpid == 35:
            self._report({35: num})
            if num == 0:
                self._full_report()
        elif dpid == 101:
            self._locating = bool(num)
            self._report({101: int(self._locating)})
        elif dpid == 102:                          # cloud report_interval (not our period)
            self._report_interval = min(3600, max(225, num))
            self._report({102: self._report_interval})
        elif dpid in (17, 18):
            self._alarms[dpid] = alarms_records(raw)
            self._report({dpid: alarms_bytes(self._alarms[dpid])})

    # ------------------------------------------------------------ I/O thread

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self._lsock, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    if key.fileobj is self._lsock:
                        self._accept(sel)
                    else:
                        self._read(sel, key.fileobj)
                self._tick()
        finally:
            with self._lock:
                if self._client:
                    self._drop(sel, self._client)
            sel.close()
            self._lsock.close()

    def _accept(self, sel):
        try:
            conn, addr = self._lsock.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(2.0)                       # bounds a send to a client that won't read
        with self._lock:
            if self._client:
                log.info("new client replaces the old one")
                self._drop(sel, self._client)
            self._client = conn
            self._parser = FrameParser()
            self._hb_seen = False
            self.handshake_done.clear()
            self.counts["connections"] += 1
            self.connected.set()
        sel.register(conn, selectors.EVENT_READ)
        log.info("client connected from %s:%d", *addr[:2])

    def _drop(self, sel, conn):
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()
        if conn is self._client:
            self._client = None
            self.connected.clear()
            self.handshake_done.clear()

    def _read(self, sel, conn):
        try:
            data = conn.recv(4096)
        except (OSError, socket.timeout):
            data = b""
        with self._lock:
            if not data:
                log.info("client disconnected")
                self._drop(sel, conn)
                return
            self._process(self._parser.feed, data)

    def _process(self, parse, *args):
        before = self._parser.bad
        frames = parse(*args)
        self.counts["bad_in"] += self._parser.bad - before
        for ver, cmd, payload in frames:
            self._handle(ver, cmd, payload)

    def _tick(self):
        with self._lock:
            self._process(self._parser.poll)
            now = time.monotonic()
            if self._client and self._reporting and self.push and not self._silent \
                    and now >= self._next_report:
                self._full_report()
                self._next_report = now + self.interval


def _describe(cmd, data):
    """One short log line for a frame."""
    if cmd in (0x06, 0x07, 0x22):
        return "cmd=%02X " % cmd + " ".join("dp%d=%s" % (d, v.hex()) for d, _t, v in
                                             parse_dps(data))
    return "cmd=%02X len=%d %s" % (cmd, len(data), data[:48].hex())


# ---------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description="Simulated SPM02-family meter MCU (TuyaMCU over TCP)")
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--layout", choices=("v2", "cloud", "spm01"), default="v2")
    ap.add_argument("--raw-format", choices=("8", "v01", "v02", "none"), default="8",
                    help="raw phase DPs 6/7/8: 8 bytes, Tuya's v01/v02, or none at all")
    ap.add_argument("--value-dps", choices=("yes", "no", "auto"), default="auto",
                    help="per-phase value DPs (auto: yes for v2/cloud, no for spm01)")
    ap.add_argument("--only-when-asked", action="store_true", help="never report unasked")
    ap.add_argument("--dp18-interval", type=int, default=None,
                    help="report interval record 0x08 in DP 18 (s; default 30 for spm01)")
    ap.add_argument("--interval", type=float, default=15.0, help="seconds between reports")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--neg-encoding", choices=("twos", "offset"), default="twos")
    ap.add_argument("--noise", type=float, default=0.0, help="garbage probability per frame")
    ap.add_argument("--dps-per-frame", type=int, default=1)
    ap.add_argument("--product-key", default=None)
    ap.add_argument("--export-phase", choices=("a", "b", "c", "none"), default="c")
    ap.add_argument("--export-period", type=float, default=120.0)
    ap.add_argument("--energy-scale", type=float, default=1.0,
                    help="speed up the energy counters (e.g. 3600: one hour per second)")
    ap.add_argument("--no-ask-time", action="store_true")
    ap.add_argument("--ask-network", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every frame")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    sim = Simulator(layout=a.layout, port=a.port, host=a.host, interval=a.interval,
                    seed=a.seed, neg_encoding=a.neg_encoding, dps_per_frame=a.dps_per_frame,
                    noise=a.noise, product_key=a.product_key,
                    export_phase=None if a.export_phase == "none" else a.export_phase,
                    export_period=a.export_period, energy_scale=a.energy_scale,
                    ask_time=not a.no_ask_time, ask_network=a.ask_network,
                    raw_format=None if a.raw_format == "none" else a.raw_format,
                    value_dps=None if a.value_dps == "auto" else a.value_dps == "yes",
                    push=not a.only_when_asked, dp18_interval=a.dp18_interval)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    sim.start()
    log.info("SPM02 simulator (%s layout, key %s) on %s:%d", sim.layout, sim.product_key,
             a.host, sim.port)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    sim.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
