# The energy bookkeeping's flash writes per day, measured by running the firmware's own code
# (lib/energy.py and lib/days.py, as firmware/keeper.py drives them) through two simulated days
# in MicroPython: a tick every second, a full report every 15 s with the counters moving, a
# local midnight (time.tz), and in the second variant one clear_energy in the middle of the
# day. A save (EV_SAVE) writes energy.dat, a day change (EV_ROLL) one record of energy.days:
# one flash write each. Prints one JSON object. Run by tools/bench.py.
import json
import sys

sys.path.append("../bench")
import mp_bench  # noqa: E402
import commands  # noqa: E402
from energy import Energy, EV_SAVE, EV_ROLL  # noqa: E402
from mcu import Mcu  # noqa: E402
from tz import days_from_civil  # noqa: E402

TZ = "CET-1CEST,M3.5.0,M10.5.0/3"
START = days_from_civil(2026, 6, 9) * 86400  # a Tuesday, 02:00 in Berlin
DAY = 86400


def run(clear_at=None):
    mcu = Mcu()
    mcu.poll(0)
    mcu.feed(1, mp_bench.encode(0, b"\x00", 3))
    e = Energy(mcu.meter, TZ)
    writes = []  # unix times of the flash writes
    k = 0
    for t in range(START, START + 2 * DAY):
        report = t % 15 == 0
        if report:
            k += 1
            for f in mp_bench.report_frames(k):
                mcu.feed(2, f)
        if clear_at is not None and t == START + DAY + clear_at:
            commands.run(mcu, "clear_energy", "PRESS")
            mcu.feed(3, mp_bench.encode(0x07, mp_bench.encode_dp(1, mp_bench.T_VALUE, 0), 3))
        ev = e.tick(t, report)
        if ev & EV_ROLL:
            writes.append(t)
        if ev & EV_SAVE:
            writes.append(t)
            e.did_save(t)
            e.ring.base = e.ring.slot - 1  # (what store.save does after writing)
    # the second day, from local midnight to local midnight (the first starts afresh)
    day2 = [w for w in writes if START + DAY - 7200 <= w < START + 2 * DAY - 7200]
    return len(day2), len(writes)


def main():
    plain, total = run()
    cleared, _ = run(clear_at=13 * 3600)
    print(json.dumps({"writes_per_day": plain, "writes_first_two_days": total,
                      "writes_per_day_with_a_clear": cleared}))


main()
