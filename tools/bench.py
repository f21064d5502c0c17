"""make bench [SOAK=1]: memory, allocation, latency and size of the firmware, measured in
the real MicroPython (unix port, 64-bit) on the build tree, against the simulated meter
and Mosquitto on 127.0.0.1. Prints a table (figure, goal, pass/fail) and writes
bench.json. SOAK=1 adds the 10-minute leak run."""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "host_tests")]

from harness import Firmware, Mosquitto, MqttWatch, wait_until  # noqa: E402
from spm02sim import Simulator  # noqa: E402

SOAK = os.environ.get("SOAK", "") not in ("", "0")
KB = 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def micro():
    """The micro-benchmarks of bench/mp_bench.py, run on build/lib."""
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "build", "lib"))
    out = subprocess.run([os.path.join(ROOT, ".venv", "bin", "micropython"), "-X", "heapsize=4M",
                          os.path.join(ROOT, "bench", "mp_bench.py")], env=env, capture_output=True,
                         text=True, timeout=300, cwd=os.path.join(ROOT, "build"))
    if out.returncode:
        raise SystemExit("mp_bench failed:\n" + out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def heap_trial(broker, heap):
    """Does the firmware do its whole job in this heap? Handshake, full reports, MQTT
    publish, and /, /api/state, /metrics 20 times each, without a MemoryError."""
    sim = Simulator(layout="v2", port=0, interval=1.0).start()
    fw = Firmware(sim.port, broker.port, heapsize=heap)
    ok = False
    w = None
    try:
        fw.start()
        w = MqttWatch(broker.port, ("spm02/state",))
        wait_until(lambda: w.get("spm02/state"), 10, what="state on MQTT")
        for _ in range(20):
            for path in ("/", "/api/state", "/metrics"):
                st, body = fw.request("GET", path)
                if st != 200:
                    raise RuntimeError("%s answered %d" % (path, st))
        ok = fw.proc.poll() is None
    except Exception as e:
        log("  heap %d: %r" % (heap, e))
    finally:
        if w:
            w.stop()
        text = fw.log()
        fw.stop()
        sim.stop()
    return ok and "MemoryError" not in text


def smallest_heap(broker, lo=16 * KB, hi=512 * KB, step=4 * KB):
    if not heap_trial(broker, hi):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        log("  trying heap %d KiB" % (mid // KB))
        if heap_trial(broker, mid):
            hi = mid
        else:
            lo = mid
    return hi


def latency(broker, bursts=200):
    """Last frame of a report burst written by the meter -> B/state at the broker (ms)."""
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, broker.port)
    w = None
    try:
        fw.start()
        w = MqttWatch(broker.port, ("spm02/state",))
        wait_until(lambda: w.get("spm02/state"), 10, what="first state")
        out = []
        for _ in range(bursts):
            n = w.count("spm02/state")
            sim.report_now()  # returns once the last frame is written
            t0 = time.monotonic()
            wait_until(lambda: w.count("spm02/state") > n, 5, 0.0005, what="state after a burst")
            out.append((time.monotonic() - t0) * 1000)
            time.sleep(0.02)
        return out
    finally:
        if w:
            w.stop()
        fw.stop()
        sim.stop()


def page_bytes():
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, None)
    try:
        fw.start()
        return len(fw.request("GET", "/")[1])
    finally:
        fw.stop()
        sim.stop()


def leak(broker, seconds):
    """Free heap after gc.collect() under a meter reporting 20 times a second and the page
    polling: the drift between the start (after warm-up) and the end."""
    sim = Simulator(layout="v2", port=0, interval=0.05).start()
    fw = Firmware(sim.port, broker.port, heapsize="256K")
    try:
        fw.start()
        end = time.monotonic() + 30
        while time.monotonic() < end:  # warm up: every path taken once
            for p in ("/", "/metrics"):
                fw.request("GET", p)
            time.sleep(0.5)
        first = fw.state()["device"]["mem_free"]
        samples = [first]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for p in ("/", "/metrics", "/api/state"):
                fw.request("GET", p)
            time.sleep(1)
            samples.append(fw.state()["device"]["mem_free"])
        return first, samples[-1], min(samples), len(samples)
    finally:
        fw.stop()
        sim.stop()


def main():
    subprocess.run(["make", "-s", "--no-print-directory", "build"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    sizes = json.load(open(os.path.join(ROOT, "build", "sizes.json")))
    res = {}
    rows = []

    def row(name, value, goal, ok):
        rows.append((name, value, goal, "pass" if ok is True else "FAIL" if ok is False else "-"))

    log("micro-benchmarks in the unix port ...")
    m = micro()
    res["micro"] = m
    broker = Mosquitto().start()
    try:
        log("smallest heap (binary search) ...")
        h = smallest_heap(broker)
        res["smallest_heap"] = h
        row("smallest heap", "%d KiB" % (h // KB) if h else "> 512 KiB", "<= 64 KiB", bool(h) and h <= 64 * KB)
        row("alloc per heartbeat answer", "%.1f B" % m["alloc_per_heartbeat"], "0 B", m["alloc_per_heartbeat"] == 0)
        row("alloc per unchanged report frame", "%.1f B" % m["alloc_per_unchanged_frame"], "0 B",
            m["alloc_per_unchanged_frame"] == 0)
        row("alloc per changed value", "%.1f B" % m["alloc_per_changed_value"], "<= 64 B",
            m["alloc_per_changed_value"] <= 64)
        if SOAK:
            log("leak: 10 minutes at 20 reports/s with HTTP polling ...")
            first, last, low, n = leak(broker, 600)
            res["leak"] = {"free_start": first, "free_end": last, "free_min": low, "samples": n}
            row("leak (10 min soak)", "%+d B" % (last - first), "drift < 1 KB", abs(last - first) < 1024)
        else:
            row("leak", "SOAK=1 runs it", "drift < 1 KB", None)
        log("latency: 200 report bursts ...")
        lat = sorted(latency(broker))
        p99 = lat[int(len(lat) * 0.99) - 1]
        res["latency_ms"] = {"p50": statistics.median(lat), "p99": p99, "max": lat[-1]}
        row("burst -> B/state latency p99", "%.1f ms (p50 %.1f)" % (p99, statistics.median(lat)),
            "<= 100 ms", p99 <= 100)
    finally:
        broker.stop()
    row("parser throughput", "%d frames/s = %.0fx the 115200-baud line" % (
        m["parser_frames_per_s"], m["parser_x_115200_baud"]), "reported", None)
    row("CPU per report cycle", "%d us (decode, state, JSON)" % m["cpu_us_per_report_cycle"], "reported", None)
    row(".mpy of the build", "%d B" % sizes["mpy_bytes"], "<= 48 KB", sizes["mpy_bytes"] <= 48 * KB)
    pb = page_bytes()
    res["page_bytes"] = pb
    row("bytes of / on the wire", "%d B" % pb, "<= 8 KB", pb <= 8 * KB)
    row("largest single allocation", "%d B (%s)" % (m["largest_alloc"], m["largest_alloc_what"]), "reported", None)
    res["sizes"] = sizes
    res["table"] = rows
    with open(os.path.join(ROOT, "bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    w = [max(len(str(r[i])) for r in rows) for i in range(4)]
    print("%-*s  %-*s  %-*s  %s" % (w[0], "figure", w[1], "value", w[2], "goal", "result"))
    for r in rows:
        print("%-*s  %-*s  %-*s  %s" % (w[0], r[0], w[1], r[1], w[2], r[2], r[3]))
    print("(figures written to bench.json)")


if __name__ == "__main__":
    main()
