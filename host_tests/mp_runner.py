# Runs the portable test modules in the MicroPython unix port: every function whose
# name starts with test_ is called; prints one line per failure and a summary.
#   micropython host_tests/mp_runner.py [--label=NAME] [--note=TEXT] host_tests/test_tuya.py ...
import sys


def main(args):
    label = "micropython"
    note = ""
    paths = []
    for a in args:
        if a.startswith("--label="):
            label = a[8:]
        elif a.startswith("--note="):
            note = "  [%s]" % a[7:]
        else:
            paths.append(a)
    passed = failed = 0
    for path in paths:
        name = path.split("/")[-1]
        if name.endswith(".py"):
            name = name[:-3]
        try:
            mod = __import__(name)
        except Exception as e:
            print("FAIL %s: import: %r" % (name, e))
            failed += 1
            continue
        for attr in sorted(dir(mod)):
            fn = getattr(mod, attr)
            if not attr.startswith("test_") or not callable(fn):
                continue
            try:
                fn()
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL %s.%s: %s %s" % (name, attr, type(e).__name__, e))
                sys.print_exception(e)
    print("%s: %d passed, %d failed%s" % (label, passed, failed, note))
    return failed


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:]) else 0)
