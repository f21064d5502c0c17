"""make build: compile lib/ and firmware/ to .mpy with mpy-cross into build/, next to
boot.py, main.py, the pages and a config example, and print a size report. make run and
the end-to-end tests run this tree, so what is tested is what is flashed."""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build")
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")

EXAMPLE = {
    "name": "spm02",
    "wifi": {"ssid": "your-wifi", "password": "your-wifi-password"},
    "uart": {"id": 1, "tx": 21, "rx": 20, "baudrate": 9600},
    "mqtt": {"host": "192.0.2.10", "port": 1883, "user": "", "password": "", "base_topic": "spm02"},
    "http": {"port": 80, "password": ""},
    "layout": "auto",
}


def stale(src, target):
    return not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(src)


def make(src, target):
    """Build one file if it is out of date; written to a temporary name and renamed, so
    a firmware already running from build/ (or a second build) never sees half a file."""
    if not stale(src, target):
        return
    tmp = "%s.%d.tmp" % (target, os.getpid())
    if src.endswith(".py") and target.endswith(".mpy"):
        # -s: a short source name in tracebacks, no machine paths. Line numbers are left out
        # (4 KB of heap on a stock image); SOURCE_LINES=1 keeps them for debugging.
        lines = [] if os.environ.get("SOURCE_LINES") else ["-X", "no-source-lines"]
        subprocess.run([MPY_CROSS, "-O1"] + lines + ["-s", os.path.relpath(src, ROOT), "-o", tmp, src], check=True)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, target)


def build_dir(src, dst):
    os.makedirs(dst, exist_ok=True)
    out = []
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if name == "manifest.py":
            continue  # the freezing manifest (make unix32, make image), not firmware
        if name.endswith(".py"):
            out.append(os.path.join(dst, name[:-3] + ".mpy"))
        elif name.endswith(".html"):
            out.append(os.path.join(dst, name))
        else:
            continue
        make(path, out[-1])
    for name in os.listdir(dst):  # modules that no longer exist
        if os.path.join(dst, name) not in out and not name.endswith(".tmp"):
            os.remove(os.path.join(dst, name))
    return out


def options_changed():
    """True (and the new options recorded) when the compile options differ from the last
    build's: then every .mpy is made again."""
    opts = "source-lines" if os.environ.get("SOURCE_LINES") else "no-source-lines"
    path = os.path.join(OUT, "options")
    try:
        with open(path) as f:
            if f.read() == opts:
                return False
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(opts)
    return True


def main():
    os.makedirs(OUT, exist_ok=True)
    if options_changed():
        for d, _, names in os.walk(OUT):
            for n in names:
                if n.endswith(".mpy"):
                    os.remove(os.path.join(d, n))
    files = build_dir(os.path.join(ROOT, "lib"), os.path.join(OUT, "lib"))
    files += build_dir(os.path.join(ROOT, "firmware"), os.path.join(OUT, "firmware"))
    for name in ("boot.py", "main.py"):
        files.append(os.path.join(OUT, name))
        make(os.path.join(ROOT, name), files[-1])
    # umqtt.simple for the host run only (an ESP32 has it frozen in): compiled like the
    # rest, so the host loads bytecode as the device does, not source.
    um = os.path.join(ROOT, ".deps", "umqtt")
    if os.path.isdir(um):
        build_dir(um, os.path.join(OUT, "host", "umqtt"))
    example = os.path.join(OUT, "config.example.json")
    with open(example + ".tmp", "w") as f:
        json.dump(EXAMPLE, f, indent=2)
    os.replace(example + ".tmp", example)
    mpy = sum(os.path.getsize(f) for f in files if f.endswith(".mpy"))
    report = {"mpy_bytes": mpy,
              "files": {os.path.relpath(f, OUT): os.path.getsize(f) for f in files}}
    with open(os.path.join(OUT, "sizes.json.tmp"), "w") as f:
        json.dump(report, f, indent=1)
    os.replace(os.path.join(OUT, "sizes.json.tmp"), os.path.join(OUT, "sizes.json"))
    print("build/: %d files" % len(files))
    for f in files:
        print("  %6d  %s" % (os.path.getsize(f), os.path.relpath(f, OUT)))
    print("  %6d  total .mpy (the heap is the budget: make bench)" % mpy)


if __name__ == "__main__":
    main()
