# SPM02 firmware entry point. On the ESP32: config.json next to this file.
# On the host: micropython main.py <config file> (see make run).
# OTA never replaces this file: it stays a few lines (on a stock image it is heap for as
# long as the firmware runs) and never fails.
import sys

cfg = sys.argv[1] if len(sys.argv) > 1 else "config.json"

# A custom image has the firmware frozen in: that copy comes first, before the directory of
# this script (which holds firmware/ for the pages, and on a stock image the .mpy files).
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

# Which install runs (lib/otaboot.py): decided by the factory install's code, imported before
# any OTA directory is on the path and dropped after; an OTA install then comes first.
import otaboot  # noqa: E402
ota = otaboot.boot(cfg)
del sys.modules["otaboot"]
del sys.modules["files"]  # otaboot's: the install that runs imports its own
del otaboot

try:
    from firmware import app
    app.main(cfg, ota=ota)
except Exception as e:
    if ota["slot"] == "factory":
        raise
    # An OTA install failed: the factory's otaboot notes why and restarts; its boot counter
    # goes back to the previous install after a few of these.
    sys.print_exception(e)
    del sys.path[:2]  # the OTA install's directories
    import otaboot
    otaboot.failed(cfg, repr(e))
