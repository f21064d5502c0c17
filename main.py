# SPM02 firmware entry point. On the ESP32: config.json next to this file.
# On the host: micropython main.py <config file> (see make run).
import sys

# A custom image has the firmware frozen in: that copy comes first, before the directory of
# this script (which holds firmware/ for the pages, and on a stock image the .mpy files).
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

from firmware import app  # noqa: E402

app.main(sys.argv[1] if len(sys.argv) > 1 else "config.json")
