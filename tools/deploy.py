"""make deploy PORT=... [CONFIG=file] [FROZEN=1] [DRY=1]: copy build/ to the board with
mpremote (files whose hash matches are skipped), optionally a config as config.json, then
reset; FROZEN=1 (a custom image from make image) copies only main.py, boot.py and the pages.
make flash PORT=... FIRMWARE=... [DRY=1]: erase and write a MicroPython ESP32 image (an
official one, or make image's) with esptool. make console PORT=...: the REPL. Each prints
what it will do first."""
import argparse
import os
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.relpath(os.path.dirname(sys.executable))


def offset_for(image):
    """Where an official image goes: 0x1000 for the classic ESP32 and the S2 (named
    ESP32_GENERIC-..., ESP32_GENERIC_S2-...), 0 for the C2, C3, C6, S3 and newer."""
    board = os.path.basename(image).upper().split("-")[0]
    return "0x1000" if board in ("ESP32_GENERIC", "ESP32_GENERIC_S2") else "0"


def frozen_tree():
    """What a custom image (make image: the code frozen in) needs as files: main.py, boot.py
    and the pages, staged in build/frozen-fs/."""
    dst = os.path.join(ROOT, "build", "frozen-fs")
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, "firmware"))
    for name in ("main.py", "boot.py"):
        shutil.copyfile(os.path.join(ROOT, "build", name), os.path.join(dst, name))
    src = os.path.join(ROOT, "build", "firmware")
    for name in sorted(os.listdir(src)):
        if name.endswith(".html"):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, "firmware", name))
    return dst


def deploy_cmds(port, config=None, frozen=False):
    mp = [os.path.join(BIN, "mpremote"), "connect", port]
    b = lambda p: os.path.relpath(os.path.join(ROOT, "build", p))  # noqa: E731
    if frozen:
        frozen_tree()
        f = lambda p: os.path.relpath(os.path.join(ROOT, "build", "frozen-fs", p))  # noqa: E731
        cmd = mp + ["fs", "cp", "-r", f("firmware"), f("boot.py"), f("main.py"), ":"]
    else:
        cmd = mp + ["fs", "cp", "-r", b("lib"), b("firmware"), b("boot.py"), b("main.py"), ":"]
    if config:
        cmd += ["+", "fs", "cp", config, ":config.json"]
    # what was copied runs: the OTA pointer (lib/otaboot.py) would keep an OTA install
    cmd += ["+", "exec", 'import os; "ota" in os.listdir() and '
                         '[os.remove("ota/" + n) for n in os.listdir("ota") if n.startswith("current")]']
    cmd += ["+", "reset"]
    return [cmd]


def flash_cmds(port, image):
    et = [os.path.join(BIN, "python"), "-m", "esptool", "--port", port]
    return [et + ["erase-flash"], et + ["--baud", "460800", "write-flash", offset_for(image), image]]


def console_cmds(port):
    return [[os.path.join(BIN, "mpremote"), "connect", port, "repl"]]


def run(cmds, dry):
    for c in cmds:
        print("$ " + " ".join(shlex.quote(x) for x in c))
    if dry:
        print("(dry run: nothing done)")
        return 0
    for c in cmds:
        r = subprocess.call(c)
        if r:
            return r
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("deploy", "flash", "console"))
    ap.add_argument("--port")
    ap.add_argument("--config")
    ap.add_argument("--firmware")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--frozen", action="store_true", help="for a custom image (make image): main.py, boot.py, pages")
    a = ap.parse_args()
    if not a.port:
        sys.exit("PORT=... is required, e.g. PORT=/dev/ttyACM0 (see: .venv/bin/mpremote devs)")
    if a.what == "deploy":
        if a.config and not os.path.isfile(a.config):
            sys.exit("no such config file: %s" % a.config)
        print("deploy: %s to %s%s, then reset" % (
            "main.py, boot.py and the pages (the code is frozen in the image)" if a.frozen else "build/",
            a.port, " with %s as config.json" % a.config if a.config else ""))
        print("(if the firmware holds the REPL, hold the button during the first 2 s after power-up: safe mode)")
        return run(deploy_cmds(a.port, a.config, a.frozen), a.dry_run)
    if a.what == "flash":
        if not a.firmware:
            sys.exit("FIRMWARE=... is required: an official image such as ESP32_GENERIC_C3-YYYYMMDD-vX.Y.Z.bin, "
                     "or one from make image (build/image/ESP32_GENERIC_C3-spm02-X.Y.Z.bin)")
        print("flash: erase %s, then write %s at %s" % (a.port, a.firmware, offset_for(a.firmware)))
        return run(flash_cmds(a.port, a.firmware), a.dry_run)
    print("console: the REPL on %s (Ctrl-] or Ctrl-x leaves)" % a.port)
    return run(console_cmds(a.port), a.dry_run)


if __name__ == "__main__":
    sys.exit(main())
