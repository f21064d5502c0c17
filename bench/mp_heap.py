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
RESIDENT = ("asyncio", "ticks", "tuya", "dptable", "spm02", "link", "layout", "plausible", "counters", "meter",
            "mcu", "history", "energy",
            "firmware", "firmware.log", "firmware.board", "firmware.borrow", "firmware.mculink",
            "firmware.mqtt", "firmware.http", "firmware.keeper", "firmware.app", "umqtt.simple")
BORROWED = ("report", "reasons", "firmware.status", "firmware.routes", "discovery", "firmware.announce", "firmware.mqttconn", "commands", "firmware.mqttcmd", "units", "metrics", "firmware.config", "firmware.portal", "files", "firmware.console", "firmware.cfgsave", "firmware.dpsconfig", "firmware.fallback",
            "firmware.store", "firmware.history_api", "firmware.scrape", "tz", "days", "otaboot",
            "firmware.probation", "firmware.ota", "firmware.start")  # firmware.ota: the OTA receiver, with otaboot (as portal with config);
# firmware.announce with discovery (the whole of Home Assistant's announcement)
# Resident on an ESP32 only (the host's whole job never loads them), measured with the
# fakes of machine and network that the host tests use
ESP32_ONLY = ("firmware.esp32", "firmware.health", "firmware.wifi")


def held():
    gc.collect()
    return gc.mem_alloc()


def imp(name):
    return __import__(name, None, None, ("x",))


def esp32_only(out):
    """The modules only an ESP32 keeps loaded, with the fakes of machine and network
    imported first (built in on a device), then all of them dropped again."""
    out["esp32_only"] = {}
    out["esp32_only_order"] = ESP32_ONLY
    sys.path.insert(0, "../host_tests/fakes")
    try:  # an ImportError ends the bench: a row must not silently go missing
        imp("machine")
        imp("network")
        for name in ESP32_ONLY:
            a = held()
            imp(name)
            out["esp32_only"][name] = held() - a
    finally:
        for name in ESP32_ONLY + ("machine", "network"):
            sys.modules.pop(name, None)
            pkg, _, sub = name.rpartition(".")
            if pkg and hasattr(sys.modules.get(pkg), sub):
                delattr(sys.modules[pkg], sub)
        sys.path.pop(0)


def _data(out, what, n):
    out["data"][what] = n
    out["data_order"].append(what)


def _drop(name):
    sys.modules.pop(name, None)
    pkg, _, sub = name.rpartition(".")
    if pkg and hasattr(sys.modules.get(pkg), sub):
        delattr(sys.modules[pkg], sub)


def _wipe(n):
    return _wipe(n - 1) if n else 0


def _grow_qstr_pool():
    # Interned names live in pools that double in size when full: the module whose names
    # happen to fill one would be charged the whole next pool. Interning dummy names first
    # makes room for all the firmware's, so each module's figure is its own; what the dummy
    # names take is left out of the totals.
    class _O:
        pass
    o = _O()
    for i in range(3000):
        setattr(o, "_q%d" % i, 0)


def main():
    out = {"modules": {}, "borrowed": {}, "data": {}, "order": RESIDENT, "borrowed_order": BORROWED,
           "data_order": []}
    _grow_qstr_pool()
    base = held()
    for name in RESIDENT:
        a = held()
        imp(name)
        out["modules"][name] = held() - a
    for name in BORROWED:
        a = held()
        imp(name)
        out["borrowed"][name] = held() - a
        _drop(name)
    for name in BORROWED:  # again: a later one imports an earlier one (portal: config)
        _drop(name)
    _wipe(40)  # stale words on the C stack would keep a borrowed module alive a while
    out["code_total"] = held() - base
    esp32_only(out)

    # The long-lived data: the App as main() builds it (no sockets yet), then a full report
    cfg_mod = imp("firmware.config")
    cfg, warnings = cfg_mod.parse('{"mqtt": {"host": "127.0.0.1"}, "uart": {"url": "tcp://127.0.0.1:1"}}')
    sys.modules.pop("firmware.config", None)
    delattr(sys.modules["firmware"], "config")
    del cfg_mod
    from firmware.app import App
    a = held()
    app = App(cfg, warnings, "firmware/page.html")
    _data(out, "App (Mcu, decoder and UART buffers, MQTT, HTTP)", held() - a)
    sys.path.append("../bench")
    a = held()
    import mp_bench
    # the bench's frame maker and what it imports (report, commands: borrowed on the
    # device) are no part of the firmware's heap: left out of the total
    fixture = held() - a
    m = app.mcu
    m.poll(0)
    a = held()
    m.feed(1, mp_bench.encode(0, b"\x00", 3))
    for f in mp_bench.report_frames(0):
        m.feed(2, f)
    _data(out, "meter state after a full v2 report (every DP kept)", held() - a)
    # What the energy bookkeeping holds (the keeper made one inside the App): its days, the
    # ring's RAM part (16 closed slots and the sums of the slot being filled: the 24 h of
    # slots live in the energy file), and the counter rule's lists (9 energy DPs)
    from energy import Energy
    from counters import Counters

    class _M:
        pass
    a = held()
    e = Energy(_M(), "UTC0")
    _data(out, "energy days and power history (lib/energy.py: days, the ring's RAM)", held() - a)
    a = held()
    c = Counters(m.meter.counters.ids)
    _data(out, "counter rule (lib/counters.py, 9 energy DPs)", held() - a)
    del e, c
    out["total_after_start"] = held() - base - fixture
    print(json.dumps(out))


if __name__ == "__main__":  # bench/mp_qstr.py imports the lists
    main()
