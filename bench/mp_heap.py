# Where the heap goes, measured in a MicroPython runtime on the build tree (run by
# tools/bench.py on the 32-bit stock-image and frozen runtimes). Prints one JSON object:
#   modules:  heap held by importing each module, in the firmware's dependency order (so a
#             module's figure is its own): bytecode when loaded from .mpy, plus its objects
#             (module dict, functions, classes, module-level data) either way
#   borrowed: modules loaded only while used, measured the same way and dropped again
#   data:     the long-lived objects of a running firmware, after a full report
import gc
import json
import sys

# Resident: what app.main imports before the loop starts, dependencies first
RESIDENT = ("asyncio", "ticks", "tuya", "dptable", "spm02", "link", "counters", "meter", "mcu",
            "history", "energy",
            "firmware", "firmware.log", "firmware.board", "firmware.borrow", "firmware.mculink",
            "firmware.mqtt", "firmware.http", "firmware.keeper", "firmware.app", "umqtt.simple")
BORROWED = ("commands", "discovery", "metrics", "firmware.config", "firmware.portal", "firmware.files",
            "firmware.store", "firmware.history_api", "tz", "days")


def held():
    gc.collect()
    return gc.mem_alloc()


def imp(name):
    return __import__(name, None, None, ("x",))


def _data(out, what, n):
    out["data"][what] = n
    out["data_order"].append(what)


def main():
    out = {"modules": {}, "borrowed": {}, "data": {}, "order": RESIDENT, "borrowed_order": BORROWED,
           "data_order": []}
    base = held()
    for name in RESIDENT:
        a = held()
        imp(name)
        out["modules"][name] = held() - a
    for name in BORROWED:
        a = held()
        imp(name)
        out["borrowed"][name] = held() - a
        sys.modules.pop(name, None)
        pkg, _, sub = name.rpartition(".")
        if pkg and hasattr(sys.modules.get(pkg), sub):
            delattr(sys.modules[pkg], sub)
    out["code_total"] = held() - base

    # The long-lived data: the App as main() builds it (no sockets yet), then a full report
    cfg_mod = imp("firmware.config")
    cfg, warnings = cfg_mod.parse('{"mqtt": {"host": "127.0.0.1"}, "uart": {"url": "tcp://127.0.0.1:1"}}')
    sys.modules.pop("firmware.config", None)
    del cfg_mod
    from firmware.app import App
    a = held()
    app = App(cfg, warnings, "firmware/page.html")
    _data(out, "App (Mcu, decoder and UART buffers, MQTT, HTTP)", held() - a)
    sys.path.append("../bench")
    import mp_bench
    m = app.mcu
    m.poll(0)
    a = held()
    m.feed(1, mp_bench.encode(0, b"\x00", 3))
    for f in mp_bench.report_frames(0):
        m.feed(2, f)
    _data(out, "meter state after a full v2 report (every DP kept)", held() - a)
    out["total_after_start"] = held() - base
    print(json.dumps(out))


main()
