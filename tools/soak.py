#!/usr/bin/env python3
"""make soak: the firmware's own main.py (make run) on the 32-bit stock-image runtime at the
96 KiB budget heap, against the simulator and Mosquitto, through SOAK_DAYS simulated days
(30 by default) on a clock made faster (board.SPEED: SPM02_CLOCK, host only). Heartbeats,
MQTT keepalive and HTTP timeouts stay in real time. Over the run: every midnight, a month
end, a DST change each way, hourly saves, the power history ring wrapping; and at seeded
random moments (printed: SOAK_SEED=<n> replays them) power cuts (kill -9 of the MicroPython
process, then make run again), Mosquitto restarts, MCU reboots, line noise, one clear_energy,
and HTTP clients polling every route. Prints a table and exits 1 unless:

- each day's forward and reverse in /api/history equal the simulator's counter growth
  between the reports that ended that day and the day before (logged by the simulator with
  their simulated time: exact), a report that reached the firmware close to midnight (the
  real latency times the speed-up) on either side; a day whose midnight fell inside a power
  cut ends with the first report after it (README, "Energy you can trust"); and the days add
  up to the counters' whole growth;
- no energy_forward / energy_reverse on B/state ever went down, except at the clear;
- no MemoryError in the firmware's log, and the free heap after gc.collect() (/api/state
  device.mem_free) is flat: the median of the last third of the samples within 1 KB of the
  first third's;
- at most 30 flash writes per simulated day;
- /api/state answered within 2 s at least 99 % of the time outside the cuts.

    SOAK_DAYS=2 SOAK_SEED=7 .venv/bin/python tools/soak.py
"""
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "host_tests"), os.path.join(ROOT, "tools"), os.path.join(ROOT, "lib")]

from harness import Firmware, Mosquitto, MqttWatch, connectable, stop_all, wait_until  # noqa: E402
from spm02sim import Simulator  # noqa: E402
import tz as tzlib  # noqa: E402  (the firmware's own lib/tz.py: the same calendar)

MP32 = os.path.join(ROOT, ".unix32", "micropython32")
# Standard time UTC+1; summer time from the 4th Sunday of February (2027-02-28 02:00) to the
# 1st Sunday of March (2027-03-07 03:00): both changes, and the month end between them, fall
# inside the first week and a half of the run.
TZ = "XST-1XDT,M2.4.0,M3.1.0/3"
START_30 = 1803121200     # 2027-02-20 12:00 local (UTC+1)
START_SHORT = 1803726000  # 2027-02-27 12:00 local: 2 days see the DST start and the month end
STATE = "spm02/state"
ROUTES = ("/", "/api/history", "/metrics", "/api/state")
# The budget's heap (make test's two days too); SOAK_HEAP=<n> runs it at another, to find
# what a change costs
HEAP = os.environ.get("SOAK_HEAP") or "96K"


def log(msg, *args):
    print(time.strftime("%H:%M:%S ") + (msg % args if args else msg), flush=True)


class Clock:
    def __init__(self, start, speed):
        self.start, self.speed, self.real0 = start, speed, time.time()

    def __call__(self, real=None):
        return self.start + ((time.time() if real is None else real) - self.real0) * self.speed

    def env(self):
        return "%d,%d,%.3f" % (self.speed, self.start, self.real0)


def day_of(zone, t):
    return (int(t) + zone.offset(int(t))) // 86400


def date_of(day):
    y, m, d = tzlib.civil_from_days(day)
    return "%04d-%02d-%02d" % (y, m, d)


def get(fw, path, timeout=5):
    t0 = time.time()
    try:
        with urllib.request.urlopen(fw.url(path), timeout=timeout) as r:
            body = r.read()
            return r.status, body, time.time() - t0
    except Exception as e:  # noqa: BLE001 (refused during a cut, a timeout...)
        return None, repr(e).encode(), time.time() - t0


class Polling:
    """HTTP clients: one polls /api/state every 0.5 s (latency, heap, writes), one every other
    route in turn."""

    def __init__(self, fw):
        self.fw = fw
        self.samples = []
        self.waits = (None, None)  # the last (HTTP, MQTT) waits for room in the heap (this boot)  # (real time, latency s or None, mem_free, writes, uptime_s)
        self.other = {p: [0, 0] for p in ROUTES}  # path: [200s, others]
        self.stop_ = threading.Event()
        self.threads = [threading.Thread(target=self._state, daemon=True),
                        threading.Thread(target=self._routes, daemon=True)]
        for t in self.threads:
            t.start()

    def _state(self):
        while not self.stop_.is_set():
            t = time.time()
            status, body, dt = get(self.fw, "/api/state")
            if status == 200:
                try:
                    st = json.loads(body)
                    self.samples.append((t, dt, st["device"]["mem_free"], st["energy"]["writes"],
                                         st["device"]["uptime_s"]))
                    self.waits = (st["device"]["http"].get("mem_waits"), st["mqtt"].get("mem_waits"))
                except (ValueError, KeyError):
                    self.samples.append((t, None, None, None, None))
            else:
                self.samples.append((t, None, None, None, None))
            self.stop_.wait(0.5)

    def _routes(self):
        i = 0
        while not self.stop_.is_set():
            path = ROUTES[i % 3]
            status, _, _ = get(self.fw, path)
            self.other[path][0 if status == 200 else 1] += 1
            i += 1
            self.stop_.wait(0.7)

    def stop(self):
        self.stop_.set()
        for t in self.threads:
            t.join(10)


def schedule(rng, days, start, zone):
    """[(simulated time, event, argument)], sorted: what happens when."""
    span = days * 86400
    ev = []

    def at(lo=0.05, hi=0.97):
        return start + rng.uniform(lo, hi) * span

    n = max(1, days // 3)
    for _ in range(n):
        ev.append((at(), "cut", round(rng.uniform(0.5, 3.0), 1)))
    # one cut across a midnight: the README's rule for a day that ended while the power was off
    mid = next_midnight_of(zone, day_of(zone, start) + rng.randrange(days))
    ev.append((mid - rng.uniform(300, 1200), "cut", 2.0))
    for _ in range(max(1, days // 3)):
        ev.append((at(), "mosquitto", None))
        ev.append((at(), "reboot", None))
        ev.append((at(), "noise", round(rng.uniform(5, 15))))
    ev.append((at(0.3, 0.6), "clear", None))
    return sorted(ev)


def run(days, speed, seed, micropython):
    rng = random.Random(seed)
    start = START_SHORT if days <= 3 else START_30
    clock = Clock(start, speed)
    end = start + days * 86400
    zone = tzlib.load(TZ)[0]
    events = schedule(rng, days, start, zone)
    log("soak: %d simulated days from %s at %dx (%.1f min), seed %d, heap %s, %s", days,
        time.strftime("%Y-%m-%d %H:%M", time.gmtime(start + 3600)), speed, days * 86400 / speed / 60,
        seed, HEAP, os.path.relpath(micropython, ROOT))
    for t, what, arg in events:
        log("  plan: %s %s%s", time.strftime("%m-%d %H:%M", time.gmtime(t + 3600)), what,
            "" if arg is None else " %s" % arg)

    broker = Mosquitto().start()
    sim = Simulator(port=0, interval=1.0, seed=seed, clock=clock, day_offset=3600).start()
    fw = Firmware(sim.port, broker.port, heapsize=HEAP, micropython=micropython,
                  env={"SPM02_CLOCK": clock.env()}, time={"tz": TZ})
    watch = poll = None
    cuts = []  # [real kill, real up, sim kill, connections before]
    noise_until = 0
    writes_by_boot = []  # the last writes figure seen of each boot
    clear_at = None
    waits = []  # per boot: (HTTP requests, MQTT announces) that waited for room in the heap
    t0 = time.time()
    try:
        watch = MqttWatch(broker.port, (STATE,))
        fw.start()
        poll = Polling(fw)
        while clock() < end:
            now = clock()
            while events and events[0][0] <= now:
                _, what, arg = events.pop(0)
                log("%s (simulated %s)", what, time.strftime("%m-%d %H:%M:%S", time.gmtime(now + 3600)))
                if what == "cut":
                    pid = fw.pid()
                    ws = [s[3] for s in poll.samples[-20:] if s[3] is not None]
                    conn = sim.counts["connections"]
                    kill = time.time()
                    os.kill(pid, signal.SIGKILL)
                    fw.stop()
                    writes_by_boot.append(ws[-1] if ws else 0)
                    waits.append(poll.waits)
                    time.sleep(arg)  # the outage itself
                    fw.start()
                    cuts.append([kill, time.time(), clock(kill), conn])
                elif what == "mosquitto":
                    broker.stop()
                    time.sleep(1)
                    broker.start()
                elif what == "reboot":
                    sim.reboot()
                elif what == "noise":
                    sim.set_noise(0.3)
                    noise_until = time.time() + arg
                elif what == "clear":
                    clear_at = time.time()
                    st, body = fw.cmd("clear_energy")
                    log("  clear_energy: %s %s", st, body[:80])
            if noise_until and time.time() >= noise_until:
                sim.set_noise(0)
                noise_until = 0
            time.sleep(0.2)
        sim.set_silent(True)  # the last report stays the last: today's figure is then exact
        time.sleep(2.5)  # the energy clock takes the last report (it ticks once a second)
        status, body, _ = get(fw, "/api/history", 30)
        assert status == 200, body
        history = json.loads(body)
        state = json.loads(get(fw, "/api/state", 30)[1])
        writes_by_boot.append(state["energy"]["writes"])
        waits.append((state["device"]["http"]["mem_waits"], state["mqtt"]["mem_waits"]))
    finally:
        if poll:
            poll.stop()
        stop_all(watch, fw, sim, broker)
    wall = time.time() - t0
    os.makedirs(os.path.join(ROOT, "artifacts"), exist_ok=True)
    with open(os.path.join(ROOT, "artifacts", "soak-firmware.log"), "w") as f:
        f.write(fw.log())
    with open(os.path.join(ROOT, "artifacts", "soak-run.json"), "w") as f:
        json.dump({"reports": sim.report_log, "cuts": cuts, "history": history, "seed": seed,
                   "days": days, "speed": speed, "start": start, "real0": clock.real0}, f)
    return check(days, speed, seed, clock, zone, start, sim.report_log, cuts, history, poll, watch,
                 fw.log(), writes_by_boot, clear_at, wall, waits)


def mono(log_):
    """The simulator's counts made never-decreasing (a clear starts a new cycle)."""
    out, off, last = [], [0, 0], [None, None]
    for t, f, r, conn in log_:
        row = [t, conn]
        for k, v in enumerate((f, r)):
            if last[k] is not None and v < last[k]:
                off[k] += last[k]
            last[k] = v
            row.append(off[k] + v)
        out.append(row)
    return out  # [t, conn, forward, reverse]


def check(days, speed, seed, clock, zone, start, log_, cuts, history, poll, watch, fwlog,
          writes_by_boot, clear_at, wall, waits):
    fails = []
    rep = mono(log_)
    times = [r[0] for r in rep]
    tol = 0.4 * speed  # the firmware's latency (real s) times the speed-up, in simulated s
    daily = {d["date"]: d for d in history["daily"]}
    first_day = day_of(zone, rep[0][0])
    last_day = day_of(zone, rep[-1][0])
    bound = [0, 0]  # per series: index of the report that ended the day before
    # a first start counts from the first report the firmware took: the first or the second
    g = history["daily"][0] if history["daily"] else None
    for k, key in enumerate(("forward", "reverse")):
        if g and g[key] is not None and day_of(zone, rep[1][0]) == first_day:
            m0 = next_midnight_of(zone, first_day)
            ends = [i for i, t in enumerate(times) if t <= m0 + tol]
            for b in (0, 1):
                if any(rep[i][2 + k] - rep[b][2 + k] == round(g[key] * 100) for i in ends[-3:]):
                    bound[k] = b
                    break
    start_bound = list(bound)
    rows = []
    sums = [0, 0]
    for day in range(first_day, last_day + 1):
        date = date_of(day)
        got = daily.get(date)
        row = [date]
        # the midnight that ends `day`: the first time whose local day is day + 1
        mid = next_midnight_of(zone, day)
        cand = [i for i, t in enumerate(times) if mid - tol <= t <= mid + tol]
        before = [i for i, t in enumerate(times) if t < mid - tol]
        if before:
            cand.insert(0, before[-1])
        # a midnight inside a cut (from the kill to the first report after it): the day ends
        # with the first counts the firmware takes after the restart (the first report of a
        # later connection: a second cut may come before the first restart took one)
        cut = None
        for c in cuts:
            after = [i for i, r in enumerate(rep) if r[1] > c[3]]
            if after and c[2] - tol <= mid <= times[after[0]] + tol:
                cut = c
                # the first reports of each later connection: the very first may come before
                # the firmware's handshake took the meter's product (then it is not counted)
                firsts = {}
                for i in after:
                    if len(firsts.setdefault(rep[i][1], [])) < 2:
                        firsts[rep[i][1]].append(i)
                cand += [i for v in firsts.values() for i in v]
        for k, key in enumerate(("forward", "reverse")):
            v = None if got is None else got[key]
            if v is None:
                row += [None, None, "missing"]
                fails.append("%s: no %s in /api/history" % (date, key))
                continue
            cnt = round(v * 100)
            b0 = bound[k]
            if day == last_day:
                choices = [len(rep) - 1]
            else:
                choices = sorted(set(cand))
            ok = [i for i in choices if i >= b0 and rep[i][2 + k] - rep[b0][2 + k] == cnt]
            truth = rep[ok[0] if ok else choices[-1 if choices else 0]][2 + k] - rep[b0][2 + k] if choices else None
            if ok:
                bound[k] = ok[0]
                row += [cnt / 100, truth / 100, "ok"]
            else:
                row += [cnt / 100, None if truth is None else truth / 100, "WRONG"]
                fails.append("%s %s: firmware %.2f, the simulator's growth %s (candidate reports %s)" % (
                    date, key, cnt / 100, [(rep[i][2 + k] - rep[b0][2 + k]) / 100 for i in choices],
                    [time.strftime("%H:%M:%S", time.gmtime(times[i] + 3600)) for i in choices]))
                if choices:
                    bound[k] = choices[-1]
            sums[k] += cnt
        row.append("cut" if cut else "")
        rows.append(row)
    for k, key in enumerate(("forward", "reverse")):
        whole = rep[-1][2 + k] - rep[start_bound[k]][2 + k]
        if sums[k] != whole:
            fails.append("the days' %s add up to %.2f kWh, the counters grew %.2f" % (key, sums[k] / 100, whole / 100))

    # B/state: energy never down, except the clear's new cycle
    with watch.lock:
        msgs = [(json.loads(p)) for t, p, retained in watch.messages if t == STATE and p and not retained]
    drops = []
    for key in ("energy_forward", "energy_reverse"):
        vals = [m[key] for m in msgs if key in m]
        for a, b in zip(vals, vals[1:]):
            if b < a:
                drops.append((key, a, b))
    # the clear's new cycle: one drop of each (to 0, or to what came after the clear)
    allowed = {"energy_forward": 1, "energy_reverse": 1} if clear_at else {}
    bad = []
    for d in drops:
        if allowed.get(d[0]):
            allowed[d[0]] -= 1
        else:
            bad.append(d)
    if bad:
        fails.append("B/state went down: %r" % bad[:6])

    # heap
    merr = fwlog.count("MemoryError")
    if merr:
        lines = [ln for ln in fwlog.splitlines() if "MemoryError" in ln]
        fails.append("%d MemoryError in the firmware's log: %s" % (merr, lines[:5]))
    heap = [s[2] for s in poll.samples if s[2] is not None]
    third = max(1, len(heap) // 3)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    h_first, h_last = med(heap[:third]), med(heap[-third:])
    if abs(h_last - h_first) > 1024:
        fails.append("free heap not flat: %d B (first third) -> %d B (last third)" % (h_first, h_last))

    # flash writes
    writes = sum(writes_by_boot)
    per_day = writes / days
    if per_day > 30:
        fails.append("%.1f flash writes per simulated day (at most 30)" % per_day)

    # latency outside the cuts (a cut: from the kill until the firmware answers again, + 5 s)
    def in_cut(t):
        return any(c[0] - 1 <= t <= c[1] + 5 for c in cuts)
    lat = [s for s in poll.samples if not in_cut(s[0])]
    fast = sum(1 for s in lat if s[1] is not None and s[1] <= 2.0)
    share = fast / len(lat) if lat else 0
    if share < 0.99:
        fails.append("/api/state within 2 s: %.1f %% of %d polls (at least 99 %%)" % (100 * share, len(lat)))

    # the table
    print()
    print("| day | forward kWh | simulator | reverse kWh | simulator | |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        f = lambda x: "-" if x is None else "%.2f" % x  # noqa: E731
        print("| %s | %s | %s | %s | %s | %s |" % (r[0], f(r[1]), f(r[2]), f(r[4]), f(r[5]),
                                                  " ".join(x for x in (r[3], r[6], r[7]) if x and x != "ok")
                                                  or "ok"))
    print()
    print("simulated days %d (%d midnights) in %.1f min wall time at %dx, seed %d" % (
        days, len(rows) - 1, wall / 60, speed, seed))
    print("counters' growth: forward %.2f kWh, reverse %.2f kWh; days sum %.2f / %.2f" % (
        (rep[-1][2] - rep[0][2]) / 100, (rep[-1][3] - rep[0][3]) / 100, sums[0] / 100, sums[1] / 100))
    print("reports %d; power cuts %d; B/state messages %d, drops %r" % (len(rep), len(cuts), len(msgs), drops))
    print("free heap after gc.collect (%s heap): first third %d B, last third %d B, min %d, max %d; "
          "MemoryError %d; waits for room (HTTP, MQTT) per boot %r" % (HEAP, h_first, h_last, min(heap),
                                                                        max(heap), merr, waits))
    print("flash writes %d (%.1f per simulated day; per boot %r)" % (writes, per_day, writes_by_boot))
    print("/api/state: %d polls outside the cuts, %.2f %% within 2 s, slowest %.2f s; other routes %r" % (
        len(lat), 100 * share, max((s[1] for s in lat if s[1] is not None), default=0), poll.other))
    print()
    if fails:
        print("SOAK FAILED (replay: SOAK_SEED=%d SOAK_DAYS=%d):" % (seed, days))
        for f_ in fails:
            print("  - " + f_)
        return 1
    print("soak passed")
    return 0


def next_midnight_of(zone, day):
    """The unix time of the local midnight that starts day + 1."""
    t = (day + 1) * 86400 - zone.offset((day + 1) * 86400)
    # the offset at that moment may differ from the one guessed: settle
    for _ in range(3):
        t2 = (day + 1) * 86400 - zone.offset(t)
        if t2 == t:
            break
        t = t2
    return t


def main():
    days = int(os.environ.get("SOAK_DAYS") or 30)
    speed = int(os.environ.get("SOAK_SPEED") or 1600)
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1, 100000))
    mp = os.environ.get("SPM02_MICROPYTHON") or MP32
    if not os.path.exists(mp):
        sys.exit("soak: %s missing: make unix32 MPY_DIR=<MicroPython source> first" % mp)
    sys.exit(run(days, speed, seed, mp))


if __name__ == "__main__":
    main()
