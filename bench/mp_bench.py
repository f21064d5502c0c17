# Micro-benchmarks in the MicroPython unix port, on the build tree's lib/ (the .mpy the
# device runs). Prints one JSON object. Run by tools/bench.py.
import gc
import json
import time

import tuya
from commands import encode_dp  # (borrowed on the device: for a command only)
from tuya import encode, T_RAW, T_VALUE, T_BITMAP, T_STRING, T_BOOL
from mcu import Mcu
import report

N = 10000


def raw_phase(v, i, p):
    return bytes((v >> 8, v & 0xFF, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF,
                  (p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF))


def report_frames(k=0):
    """One v2 report, one DP per frame as the meter sends it; k shifts every value."""
    v = (2314 + k, 2301 + k, 2330 + k)
    i = (5000 + k, 1200 + k, 3000 + k)
    p = (1100 + k, 250 + k, 600 + k)
    recs = [(1, T_VALUE, 123456 + k), (23, T_VALUE, 789), (29, T_VALUE, sum(p)), (32, T_VALUE, 5000 + k % 5),
            (50, T_VALUE, 95), (9, T_BITMAP, 0), (19, T_STRING, "vow25010001"), (101, T_BOOL, 0),
            (17, T_RAW, b"\x01\x01\x00\x3c\x03\x01\x01\x04"), (18, T_RAW, b"\x05\x01\x00\x00")]
    for ph in range(3):
        recs.append((6 + ph, T_RAW, raw_phase(v[ph], i[ph], p[ph])))
        recs += [(102 + 3 * ph, T_VALUE, v[ph]), (103 + 3 * ph, T_VALUE, i[ph]), (104 + 3 * ph, T_VALUE, p[ph])]
    return [encode(0x07, encode_dp(*r), 3) for r in recs]


def online_mcu():
    m = Mcu()
    m.poll(0)
    m.feed(1, encode(0, b"\x00", 3))
    for f in report_frames(0):
        m.feed(2, f)
    return m


def alloc_of(fn):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    fn()
    b = gc.mem_alloc()
    gc.enable()
    return b - a


def main():
    out = {}
    m = online_mcu()
    hb = encode(0, b"\x01", 3)

    def heartbeats():
        for t in range(N):
            m.feed(10 + t, hb)
    out["alloc_heartbeat_total"] = alloc_of(heartbeats)
    out["alloc_per_heartbeat"] = out["alloc_heartbeat_total"] / N

    same = report_frames(0)

    def unchanged():
        for t in range(N // len(same) + 1):
            for f in same:
                m.feed(20000 + t, f)
    out["alloc_unchanged_report_total"] = alloc_of(unchanged)
    out["alloc_per_unchanged_frame"] = out["alloc_unchanged_report_total"] / (N // len(same) + 1) / len(same)

    # Changed values: alternate two reports whose value DPs all differ
    a, b = report_frames(1), report_frames(2)
    changed_per_report = sum(1 for x, y in zip(a, b) if x != y)  # DPs (one frame each) that changed
    reps = N // len(a)

    def changing():
        for t in range(reps):
            for f in (a if t & 1 else b):
                m.feed(40000 + t, f)
    out["alloc_changed_total"] = alloc_of(changing)
    out["changed_dps"] = reps * changed_per_report
    out["alloc_per_changed_dp"] = out["alloc_changed_total"] / (reps * changed_per_report)

    # Parser throughput: frames through the decoder alone, and the whole feed path
    stream = b"".join(report_frames(3)) * 20
    nframes = len(report_frames(3)) * 20
    dec = tuya.Decoder()
    t0 = time.ticks_us()
    for _ in range(10):
        dec.feed(stream)
        while dec.next():
            pass
    dt = time.ticks_diff(time.ticks_us(), t0)
    fps = nframes * 10 * 1000000 // dt
    out["parser_frames_per_s"] = fps
    out["parser_bytes_per_s"] = len(stream) * 10 * 1000000 // dt
    out["parser_x_115200_baud"] = round(out["parser_bytes_per_s"] / 11520, 1)

    # CPU per report cycle: decode + state + JSON (the publish itself is a socket write)
    frames = [report_frames(k) for k in (4, 5)]
    t0 = time.ticks_us()
    cycles = 50
    for c in range(cycles):
        for f in frames[c & 1]:
            m.feed(60000 + c, f)
        payload = m.meter.state_json().encode()
    out["cpu_us_per_report_cycle"] = time.ticks_diff(time.ticks_us(), t0) // cycles
    out["state_json_bytes"] = len(payload)
    out["dps_json_bytes"] = len(report.dps_json(m.meter, 0))
    # Not a measurement of every allocation (MicroPython does not report allocations by
    # size): the largest of the buffers and strings picked here by hand as the big ones,
    # the decoder's frame buffer, one piece of B/state (it is published piece by piece),
    # one DP's JSON, one component and one piece of the discovery message.
    import discovery
    import dptable
    cands = [(len(m.dec.buf), "decoder frame buffer"), (max(len(p) for p in m.meter.state_parts()), "one piece of B/state")]
    cands.append((max(len(p) for p in report.dps_parts(m.meter, 0)), "one DP of /api/state"))
    for comp, oid, conf in discovery.entities(dptable.CLOUD):
        c = discovery.component(comp, oid, conf, "spm02", "spm02")
        cands.append((len(json.dumps(c)), "one component of the discovery message"))
    parts = list(discovery.device_parts(dptable.CLOUD, (), 0, "spm02", "spm02", "spm02", "0.0.0", ""))
    cands.append((max(len(p) for p in parts), "one piece of the discovery message"))
    out["discovery_message_bytes"] = sum(len(p) for p in parts)  # streamed: never whole in memory
    best = max(cands)
    out["largest_known_buffer"], out["largest_known_buffer_what"] = best
    print(json.dumps(out))


if __name__ == "__main__":
    main()
