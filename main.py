# SPM02 firmware entry point. On the ESP32: config.json next to this file.
# On the host: micropython main.py <config file> (see make run).
import sys

from firmware import app

app.main(sys.argv[1] if len(sys.argv) > 1 else "config.json")
