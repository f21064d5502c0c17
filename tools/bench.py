"""make bench [SOAK=1]: memory, allocation, latency and size of the firmware, measured in
the real MicroPython on the build tree, against the simulated meter and Mosquitto on
127.0.0.1. The heap figures that decide (the budgets) come from the 32-bit runtimes of
make unix32 (an ESP32's object sizes), when MPY_DIR is set; the 64-bit PyPI unix port gives
the rest. Prints a table (figure, goal, result), where the heap goes, and writes bench.json.
SOAK=1 adds the 10-minute leak run."""
import base64
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
import ota as otatool  # noqa: E402

SOAK = os.environ.get("SOAK", "") not in ("", "0")
KB = 1024
UNIX32 = os.path.join(ROOT, ".unix32")
MP32 = os.path.join(UNIX32, "micropython32")
MP32F = os.path.join(UNIX32, "micropython32-frozen")
# Smallest heap for the whole job, every change must keep these; the goals are what we aim for
BUDGET = {MP32: (96 * KB, 64 * KB), MP32F: (48 * KB, 32 * KB)}
# The resident modules of the energy bookkeeping (the rest is borrowed for a read or write)
ENERGY_CODE = ("counters", "history", "energy", "firmware.keeper")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_mp(script, micropython=None):
    """A bench script in a MicroPython runtime on the build tree; its last line, as JSON."""
    build = os.path.join(ROOT, "build")
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s" % (os.path.join(build, "lib"), build))
    out = subprocess.run([micropython or os.path.join(ROOT, ".venv", "bin", "micropython"), "-X", "heapsize=4M",
                          os.path.join(ROOT, "bench", script)], env=env, capture_output=True,
                         text=True, timeout=300, cwd=build)
    if out.returncode:
        raise SystemExit("%s failed:\n%s%s" % (script, out.stdout, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def micro():
    """The micro-benchmarks of bench/mp_bench.py, run on build/lib."""
    return run_mp("mp_bench.py")


def heap_trial(broker, heap, micropython=None, ota=None, ota_runs=True):
    """Does the firmware do its whole job in this heap? Handshake, full reports, MQTT
    publish, and /, /api/state, /metrics, /api/history, the console (GET /settings, /api/config,
    /api/log and a POST /api/config: written, applied without a restart) 20 times
    each, without a MemoryError. ota: a bundle (bytes, id) to update to as well, received (200) and, with
    ota_runs, then running in the same heap (on a custom image it runs from files: the
    stock figure)."""
    sim = Simulator(layout="v2", port=0, interval=1.0).start()
    fw = Firmware(sim.port, broker.port, heapsize=heap, micropython=micropython or "",
                  http={"password": "bench"} if ota else {})
    ok = False
    w = None
    text = None
    try:
        fw.start()
        w = MqttWatch(broker.port, ("spm02/state",))
        wait_until(lambda: w.get("spm02/state"), 10, what="state on MQTT")
        hdr = {"Content-Type": "application/json"}
        if ota:
            hdr["Authorization"] = "Basic " + base64.b64encode(b"bench:bench").decode()
        for i in range(20):
            for path in ("/", "/api/state", "/metrics", "/api/history", "/settings", "/api/config", "/api/log?since=0"):
                st, body = fw.request("GET", path, headers=hdr)
                if st != 200:
                    raise RuntimeError("%s answered %d" % (path, st))
            # a change that applies at once (log.level): written, no restart
            change = ('{"log": {"level": "%s"}}' % ("warn" if i % 2 == 0 else "info")).encode()
            st, body = fw.request("POST", "/api/config", change, hdr)
            if st != 200 or b'"restart": false' not in body:
                raise RuntimeError("POST /api/config answered %d %r" % (st, body))
        if ota:
            st, body = otatool.upload("127.0.0.1", fw.http_port, "bench", ota[0])
            if st != 200:
                raise RuntimeError("the update answered %d %r" % (st, body))
            if not ota_runs:
                text = fw.log()  # before the restart into the new version
            elif not otatool.wait_running("127.0.0.1", fw.http_port, ota[1], 20)[0]:
                raise RuntimeError("the update does not run")
        ok = fw.proc.poll() is None
    except Exception as e:
        log("  heap %d: %r" % (heap, e))
    finally:
        if w:
            w.stop()
        text = fw.log() if text is None else text
        fw.stop()
        sim.stop()
    if os.environ.get("BENCH_DEBUG") and (not ok or "MemoryError" in text):
        log(text[-3000:])
    return ok and "MemoryError" not in text


def smallest_heap(broker, micropython=None, lo=16 * KB, hi=512 * KB, step=4 * KB, confirm=3, ota=None,
                  ota_runs=True):
    """Binary search, then confirmed: near the edge a trial passes or fails with the timing
    of the job (which request meets which publish), so the answer must pass `confirm`
    trials in a row; each failure moves it a step up."""
    if not heap_trial(broker, hi, micropython, ota, ota_runs):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        log("  trying heap %d KiB" % (mid // KB))
        if heap_trial(broker, mid, micropython, ota, ota_runs):
            hi = mid
        else:
            lo = mid
    passed = 1
    while passed < confirm:
        log("  confirming heap %d KiB" % (hi // KB))
        if heap_trial(broker, hi, micropython, ota, ota_runs):
            passed += 1
        else:
            hi += step
            passed = 0
    return hi


def held_after_start(broker, micropython):
    """Heap held (after gc.collect) once the whole job has started: the MCU reported, MQTT
    published state and discovery, each page served once. The smallest of a few reads of
    /api/state, which collects and reads mem_alloc while it writes."""
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, broker.port, micropython=micropython, heapsize="256K")
    w = None
    try:
        fw.start()
        w = MqttWatch(broker.port, ("spm02/state",))
        wait_until(lambda: w.get("spm02/state"), 10, what="state on MQTT")
        for path in ("/", "/metrics"):
            fw.request("GET", path)
        return min(fw.state()["device"]["mem_alloc"] for _ in range(5))
    finally:
        if w:
            w.stop()
        fw.stop()
        sim.stop()


def where_heap_goes():
    """bench/mp_heap.py on both 32-bit runtimes: a module's bytecode is what it holds from
    .mpy minus what it holds frozen; the frozen figure is its objects."""
    stock = run_mp("mp_heap.py", MP32)
    frozen = run_mp("mp_heap.py", MP32F)
    return {"stock": stock, "frozen": frozen}


def qstrs():
    """bench/mp_qstr.py on the 32-bit stock runtime: {stage: {n_pool, n_qstr, n_total_bytes}}
    for the resident modules, every module loaded once, and the ESP32's too (with the
    host's fakes of machine and network, whose names a device has built in)."""
    build = os.path.join(ROOT, "build")
    out = subprocess.run([MP32, "-X", "heapsize=4M", os.path.join(ROOT, "bench", "mp_qstr.py")],
                         env=dict(os.environ, MICROPYPATH=".frozen:%s:%s" % (os.path.join(build, "lib"), build)),
                         capture_output=True, text=True, timeout=60, cwd=build)
    if out.returncode:
        raise SystemExit("mp_qstr.py failed:\n%s%s" % (out.stdout, out.stderr))
    res = {}
    stage = None
    for line in out.stdout.splitlines():
        if line.startswith("stage: "):
            stage = line[7:]
        elif line.startswith("qstr pool:") and stage:
            res[stage] = {k: int(v) for k, v in (kv.split("=") for kv in line[11:].split(", "))}
    return res


def print_heap_breakdown(h):
    s, f = h["stock"], h["frozen"]
    print()
    print("where the heap goes (32-bit, bytes held after gc.collect; code = from .mpy minus frozen)")
    print("  %-22s %8s %8s %8s" % ("module", ".mpy", "frozen", "code"))
    for name in s["order"]:
        a, b = s["modules"][name], f["modules"][name]
        print("  %-22s %8d %8d %8d" % (name, a, b, a - b))
    print("  %-22s %8d %8d %8d" % ("all resident modules", s["code_total"], f["code_total"],
                                   s["code_total"] - f["code_total"]))
    for name in s["esp32_only_order"]:  # each one measured (mp_heap.py fails otherwise)
        a, b = s["esp32_only"][name], f["esp32_only"][name]
        print("  %-22s %8d %8d %8d  (resident on an ESP32 only)" % (name, a, b, a - b))
    for name in s["borrowed_order"]:
        print("  %-22s %8d %8d %8d  (loaded only while used)" % (
            name, s["borrowed"][name], f["borrowed"][name], s["borrowed"][name] - f["borrowed"][name]))
    for what in s["data_order"]:
        print("  data: %-50s %6d B" % (what, s["data"][what]))
    print("  %-22s %8d %8d" % ("total after start", s["total_after_start"], f["total_after_start"]))

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


def writes_across_midnight():
    """The firmware's own count of flash writes (/api/state energy.writes) over a local
    midnight put 8 s after start by time.tz, with a report every second: the day that
    ended goes into energy.days and energy.dat is saved."""
    sim = Simulator(layout="v2", port=0, interval=1.0).start()
    t = int(time.time()) + 8
    east = -t % 86400
    tz = "XMT-%d:%02d:%02d" % (east // 3600, east // 60 % 60, east % 60)
    fw = Firmware(sim.port, None, time={"tz": tz})
    try:
        fw.start()
        before = fw.state()["energy"]
        wait_until(lambda: time.time() > t + 3, 30, what="midnight")
        after = fw.state()["energy"]
        return after["writes"] - before["writes"], before["date"], after["date"]
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
    have32 = bool(os.environ.get("MPY_DIR"))
    if have32:
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "unix32.py")], check=True,
                       stdout=subprocess.DEVNULL)
        log("where the heap goes (32-bit) ...")
        res["heap_breakdown"] = where_heap_goes()
        q = res["qstrs"] = qstrs()
        r, a, e = q["resident"], q["every module"], q["esp32"]
        # Names stay for good, in pools that double: a borrowed module must not need a new
        # pool (on the 32-bit runtime the next one is 9 KB)
        row("names interned for good (qstrs), 32-bit stock image",
            "%d after the resident modules, %d with every module loaded once (%d pools, %d B); "
            "%d with the ESP32's modules and the fakes of machine and network (%d pools)" % (
                r["n_qstr"], a["n_qstr"], a["n_pool"], a["n_total_bytes"], e["n_qstr"], e["n_pool"]),
            "no new pool for borrowed code", a["n_pool"] == r["n_pool"])
    # a bundle of this build, as make ota makes it (another version string: a new id)
    bundle = otatool.bundle(otatool.files_of(os.path.join(ROOT, "build")), "bench")
    broker = Mosquitto().start()
    try:
        if have32:
            for mp, what in ((MP32, "32-bit, stock image (.mpy in the heap)"),
                             (MP32F, "32-bit, firmware frozen (custom image)")):
                budget, goal = BUDGET[mp]
                log("smallest heap, %s (binary search) ..." % what)
                h = smallest_heap(broker, mp, hi=256 * KB, step=2 * KB)
                key = os.path.basename(mp)
                res["smallest_heap_" + key] = h
                ok = bool(h) and h <= budget
                row("smallest heap, " + what, "%d KiB" % (h // KB) if h else "> 256 KiB",
                    "<= %d KiB (goal %d KiB: %s)" % (budget // KB, goal // KB,
                                                     "met" if ok and h <= goal else "not met"), ok)
                held = held_after_start(broker, mp)
                res["held_after_start_" + key] = held
                row("heap held after start, " + what, "%d B" % held, "reported", None)
                # The same job and an OTA update received (its code loaded only while it
                # runs): the budget holds with OTA in. On the stock image the new version
                # then runs in the same heap; a custom image runs it from files, which
                # needs the stock image's heap (the README says so)
                stock = mp == MP32
                what_ota = "an OTA update received and run" if stock else "an OTA update received"
                log("smallest heap with %s, %s (binary search) ..." % (what_ota, what))
                h = smallest_heap(broker, mp, hi=256 * KB, step=2 * KB, ota=bundle, ota_runs=stock)
                res["smallest_heap_ota_" + key] = h
                row("smallest heap with %s, %s" % (what_ota, what), "%d KiB" % (h // KB) if h else "> 256 KiB",
                    "<= %d KiB" % (budget // KB), bool(h) and h <= budget)
        else:
            row("smallest heap, 32-bit runtimes", "skipped: MPY_DIR not set", "<= 96 / 48 KiB", None)
        log("smallest heap, 64-bit PyPI unix port (binary search) ...")
        h = smallest_heap(broker)
        res["smallest_heap"] = h
        row("smallest heap, 64-bit unix port", "%d KiB" % (h // KB) if h else "> 512 KiB",
            "reported (objects twice an ESP32's)", None)
        row("alloc per heartbeat answer", "%.1f B" % m["alloc_per_heartbeat"], "0 B", m["alloc_per_heartbeat"] == 0)
        row("alloc per unchanged report frame", "%.1f B" % m["alloc_per_unchanged_frame"], "0 B",
            m["alloc_per_unchanged_frame"] == 0)
        row("alloc per changed DP", "%.1f B" % m["alloc_per_changed_dp"], "<= 64 B",
            m["alloc_per_changed_dp"] <= 64)
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
    row(".mpy of the build", "%d B" % sizes["mpy_bytes"], "reported (the heap is the budget)", None)
    pb = page_bytes()
    res["page_bytes"] = pb
    row("bytes of / on the wire", "%d B" % pb, "<= 12 KB", pb <= 12 * KB)
    log("flash writes: a simulated day of the energy bookkeeping, and a midnight in the firmware ...")
    en = run_mp("mp_energy.py")
    n, d0, d1 = writes_across_midnight()
    en["midnight_writes"], en["midnight_dates"] = n, [d0, d1]
    res["energy_writes"] = en
    row("flash writes per day (energy file, day records)",
        "%d (%d with a clear; at a midnight in the firmware: %d, %s -> %s)" % (
            en["writes_per_day"], en["writes_per_day_with_a_clear"], n, d0, d1),
        "<= 30", en["writes_per_day"] <= 30 and en["writes_per_day_with_a_clear"] <= 30 and n == 2)
    row("largest of the big buffers picked by hand (not every allocation measured)",
        "%d B (%s)" % (m["largest_known_buffer"], m["largest_known_buffer_what"]), "reported", None)
    if "heap_breakdown" in res:
        s, f = res["heap_breakdown"]["stock"], res["heap_breakdown"]["frozen"]
        code = sum(s["modules"][n] - f["modules"][n] for n in ENERGY_CODE)
        data = sum(s["data"][k] for k in s["data"] if k.startswith(("energy days", "counter rule")))
        res["history_cost"] = {"code": code, "data": data}
        row("what energy days and history cost (32-bit)", "%d B of data + %d B of resident code "
            "(%s, from .mpy)" % (data, code, ", ".join(ENERGY_CODE)), "reported", None)
    res["sizes"] = sizes
    res["table"] = rows
    with open(os.path.join(ROOT, "bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    w = [max(len(str(r[i])) for r in rows) for i in range(4)]
    print("%-*s  %-*s  %-*s  %s" % (w[0], "figure", w[1], "value", w[2], "goal", "result"))
    for r in rows:
        print("%-*s  %-*s  %-*s  %s" % (w[0], r[0], w[1], r[1], w[2], r[2], r[3]))
    if "heap_breakdown" in res:
        print_heap_breakdown(res["heap_breakdown"])
    print("(figures written to bench.json)")


if __name__ == "__main__":
    main()
