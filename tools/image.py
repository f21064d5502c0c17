"""make image BOARD=ESP32_GENERIC_C3|ESP32_GENERIC MPY_DIR=... [DRY=1]: a custom MicroPython
image for the ESP32 with the firmware frozen in (firmware/manifest.py on top of the board's
own manifest), so its code runs from flash instead of the heap.

MPY_DIR is a full MicroPython v1.28.0 checkout (git clone -b v1.28.0, its ports/esp32 and
submodules). The build runs MicroPython's own ESP32 build (make in ports/esp32, which calls
ESP-IDF's idf.py) with its build directory in build/image/, and copies the result to
build/image/<BOARD>-spm02-<version>.bin, a name make flash knows the offset of. Without
idf.py on PATH it prints the same build as a `docker run espressif/idf:v5.5.1 ...` command
and stops. DRY=1 prints the commands only."""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "image")
BOARDS = ("ESP32_GENERIC_C3", "ESP32_GENERIC")
IDF_IMAGE = "espressif/idf:v5.5.1"  # the ESP-IDF MicroPython v1.28 recommends


def version():
    with open(os.path.join(ROOT, "firmware", "app.py")) as f:
        return re.search(r'^VERSION = "([^"]+)"', f.read(), re.M).group(1)


def manifest_text(mpy_dir, board):
    """The image's manifest: the board's own (what a stock image freezes) plus ours, named
    relative to build/image/ so that it reads the same inside a container."""
    own = "$(BOARD_DIR)/manifest.py" if os.path.isfile(
        os.path.join(mpy_dir, "ports", "esp32", "boards", board, "manifest.py")) else "$(PORT_DIR)/boards/manifest.py"
    return ("# make image: the board's own manifest and the firmware (generated; see tools/image.py)\n"
            'include("%s")\ninclude("../../firmware/manifest.py")\n' % own)


def build_cmds(mpy, root, board, image_name):
    """The build as shell commands, with MicroPython at mpy and this project at root."""
    port = mpy + "/ports/esp32"
    build = root + "/build/image/build-" + board
    manifest = root + "/build/image/manifest-%s.py" % board
    return [
        ["make", "-C", mpy + "/mpy-cross"],
        ["make", "-C", port, "BOARD=" + board, "submodules"],
        ["make", "-C", port, "BOARD=" + board, "BUILD=" + build, "FROZEN_MANIFEST=" + manifest],
        ["cp", build + "/firmware.bin", root + "/build/image/" + image_name],
    ]


def docker_cmd(mpy_dir, board, image_name):
    inner = " && ".join(" ".join(shlex.quote(x) for x in c)
                        for c in [["git", "config", "--global", "--add", "safe.directory", "*"]]
                        + build_cmds("/mpy", "/spm02", board, image_name))
    return ["docker", "run", "--rm", "-u", "%d:%d" % (os.getuid(), os.getgid()), "-e", "HOME=/tmp",
            "-v", mpy_dir + ":/mpy", "-v", ROOT + ":/spm02", IDF_IMAGE, "bash", "-c", inner]


def show(cmd):
    print("$ " + " ".join(shlex.quote(x) for x in cmd))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--board", default="")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    if a.board not in BOARDS:
        sys.exit("image: BOARD=%s: give BOARD=%s" % (a.board, " or BOARD=".join(BOARDS)))
    mpy_dir = os.environ.get("MPY_DIR", "")
    if not mpy_dir or not os.path.isfile(os.path.join(mpy_dir, "py", "mpconfig.h")):
        sys.exit("image: MPY_DIR=%s is not a MicroPython source tree: give MPY_DIR=<a MicroPython v1.28.0 "
                 "checkout> (git clone --depth 1 -b v1.28.0 https://github.com/micropython/micropython)" % mpy_dir)
    mpy_dir = os.path.abspath(mpy_dir)
    name = "%s-spm02-%s.bin" % (a.board, version())
    os.makedirs(OUT, exist_ok=True)
    manifest = os.path.join(OUT, "manifest-%s.py" % a.board)
    with open(manifest, "w") as f:
        f.write(manifest_text(mpy_dir, a.board))
    print("image: MicroPython for %s with the firmware frozen in -> build/image/%s" % (a.board, name))
    print("image: manifest build/image/%s: the board's own, then firmware/manifest.py" % os.path.basename(manifest))
    full = os.path.isfile(os.path.join(mpy_dir, "ports", "esp32", "Makefile"))
    if not full:
        print("image: note: %s has no ports/esp32/Makefile: the ESP32 build needs a full MicroPython "
              "v1.28.0 checkout with its submodules" % mpy_dir)
    if shutil.which("idf.py"):
        cmds = build_cmds(mpy_dir, ROOT, a.board, name)
        for c in cmds:
            show(c)
        if a.dry_run:
            print("(dry run: nothing done)")
            return 0
        if not full:
            return 2
        for c in cmds:
            r = subprocess.call(c)
            if r:
                return r
        print("image: build/image/%s; flash it with: make flash PORT=<port> FIRMWARE=build/image/%s" % (name, name))
        return 0
    show(docker_cmd(mpy_dir, a.board, name))
    if a.dry_run:
        print("(dry run: nothing done)")
        return 0
    print("image: ESP-IDF's idf.py is not on PATH (install ESP-IDF v5.5.1 and source its export.sh). "
          "The command above builds the same in Espressif's container where Docker runs; then: "
          "make flash PORT=<port> FIRMWARE=build/image/%s" % name)
    return 2


if __name__ == "__main__":
    sys.exit(main())
