"""The end-to-end suite N times in a row on every runtime there is (the 64-bit PyPI port, and
with MPY_DIR the two 32-bit ones), stopping at the first failure: a test that fails by chance
shows here before it throws a submission away. Each pass's output goes to build/e2e-repeat/;
a table of pass times at the end.

    python tools/e2e_repeat.py [--rounds N] [-k EXPR] [--runtime NAME]

--runtime (64-bit, micropython32 or micropython32-frozen) keeps to one of them: to run the
runtimes side by side, each in a clone of its own (the runs build into the checkout's build/).
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runtimes():
    out = [("64-bit", "")]
    if os.environ.get("MPY_DIR"):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "unix32.py")], check=True)
        for name in ("micropython32", "micropython32-frozen"):
            out.append((name, os.path.join(ROOT, ".unix32", name)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("-k", default="")
    ap.add_argument("--runtime", default="")
    a = ap.parse_args()
    logs = os.path.join(ROOT, "build", "e2e-repeat")
    os.makedirs(logs, exist_ok=True)
    rows = []
    for n in range(1, a.rounds + 1):
        for name, mp in runtimes():
            if a.runtime and name != a.runtime:
                continue
            log = os.path.join(logs, "round%02d-%s.log" % (n, name))
            args = [sys.executable, "-m", "pytest", "-q", "-m", "e2e", "-p", "no:cacheprovider", "host_tests"]
            if a.k:
                args += ["-k", a.k]
            t0 = time.monotonic()
            with open(log, "w") as f:
                rc = subprocess.run(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, SPM02_MICROPYTHON=mp)).returncode
            dt = time.monotonic() - t0
            with open(log) as f:
                last = (f.read().strip().splitlines() or ["(no output)"])[-1]
            rows.append((n, name, dt, rc, last))
            print("round %d %-22s %6.0f s  rc %d  %s" % (n, name, dt, rc, last), flush=True)
            if rc:
                print("failed: see %s" % os.path.relpath(log, ROOT))
                return rc
    total = sum(r[2] for r in rows)
    print("%d rounds on %s passed, %.0f s in all (%.0f s a round)"
          % (a.rounds, ", ".join(sorted({r[1] for r in rows})), total, total / a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
