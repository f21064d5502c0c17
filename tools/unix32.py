"""make unix32: two 32-bit (i686, static) MicroPython unix-port interpreters built from
MPY_DIR (a MicroPython v1.28.0 source tree with its micropython-lib), where objects,
pointers and GC blocks have an ESP32's sizes:

  .unix32/micropython32         asyncio and umqtt.simple frozen, as on a stock ESP32 image
  .unix32/micropython32-frozen  the same plus firmware/manifest.py, as on a custom image

MPY_DIR is only read: it is copied to .unix32/src (again only when it changed), and the
builds run there. Each interpreter is rebuilt only when its inputs changed (the source
tree, its manifest, the frozen firmware files, this script). Installs Debian's
gcc-i686-linux-gnu when missing.

  python tools/unix32.py [--print-paths]
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".unix32")
CROSS = "i686-linux-gnu-"
STOCK = os.path.join(OUT, "micropython32")
FROZEN = os.path.join(OUT, "micropython32-frozen")
# What a stock ESP32 image freezes that the firmware uses
STOCK_MANIFEST = 'include("$(MPY_DIR)/extmod/asyncio")\nrequire("umqtt.simple")\n'


def say(msg):
    print("unix32: " + msg, flush=True)


def mpy_dir():
    d = os.environ.get("MPY_DIR", "")
    if not d:
        sys.exit("unix32: MPY_DIR is not set: point it at a MicroPython v1.28.0 source tree "
                 "with its micropython-lib (lib/micropython-lib)")
    d = os.path.abspath(d)
    for need in ("py/mpconfig.h", "ports/unix/Makefile", "mpy-cross/Makefile", "extmod/asyncio",
                 "lib/micropython-lib/micropython/umqtt.simple"):
        if not os.path.exists(os.path.join(d, need)):
            sys.exit("unix32: %s is not a MicroPython source tree with micropython-lib (no %s)" % (d, need))
    return d


def version(d):
    v = {}
    with open(os.path.join(d, "py", "mpconfig.h")) as f:
        for line in f:
            for part in ("MAJOR", "MINOR", "MICRO"):
                key = "#define MICROPY_VERSION_" + part + " "
                if line.startswith(key):
                    v[part] = line[len(key):].strip()
    return "%s.%s.%s" % (v.get("MAJOR"), v.get("MINOR"), v.get("MICRO"))


def tree_fingerprint(d):
    """Names, sizes and times of every file of a source tree: cheap, and changes with it."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(d):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            h.update(("%s %d %d\n" % (os.path.relpath(p, d), st.st_size, int(st.st_mtime))).encode())
    return h.hexdigest()


def files_hash(paths):
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.relpath(p, ROOT).encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def frozen_inputs():
    """The files firmware/manifest.py freezes (it freezes every .py of lib/ and firmware/)."""
    out = [os.path.join(ROOT, "firmware", "manifest.py")]
    for sub in ("lib", "firmware"):
        d = os.path.join(ROOT, sub)
        out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".py")]
    return out


def ensure_compiler():
    if shutil.which(CROSS + "gcc"):
        return
    say("installing gcc-i686-linux-gnu")
    subprocess.run([os.path.join(ROOT, "tools", "apt-ensure"), CROSS + "gcc", "gcc-i686-linux-gnu"], check=True)


def sync_source(src, fp):
    """.unix32/src: a private, writable copy of MPY_DIR (the kit itself stays read-only)."""
    work = os.path.join(OUT, "src")
    stamp = os.path.join(OUT, "src.fingerprint")
    if os.path.isdir(work) and os.path.exists(stamp) and open(stamp).read() == fp:
        return work
    say("copying %s" % src)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(work):  # the kit may be read-only
        os.chmod(dirpath, 0o755)
        for n in filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o200)
    with open(stamp, "w") as f:
        f.write(fp)
    return work


def build(work, name, manifest_text, prog, out):
    manifest = os.path.join(OUT, "manifest-%s.py" % name)
    with open(manifest, "w") as f:
        f.write(manifest_text)
    jobs = str(os.cpu_count() or 2)
    say("building %s" % os.path.relpath(out, ROOT))
    subprocess.run(["make", "-s", "-C", os.path.join(work, "mpy-cross"), "-j", jobs],
                   check=True, stdout=subprocess.DEVNULL)
    r = subprocess.run(["make", "-s", "-C", os.path.join(work, "ports", "unix"), "-j", jobs,
                        "VARIANT=standard", "CROSS_COMPILE=" + CROSS,
                        "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0", "MICROPY_PY_SSL=0", "MICROPY_SSL_MBEDTLS=0",
                        "LDFLAGS_EXTRA=-static", "FROZEN_MANIFEST=" + manifest,
                        "BUILD=build-" + name, "PROG=" + prog],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.exit("unix32: building %s failed:\n%s" % (name, r.stdout[-4000:]))
    tmp = out + ".tmp"
    shutil.copyfile(os.path.join(work, "ports", "unix", "build-" + name, prog), tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)


def main():
    if "--print-paths" in sys.argv:
        print(STOCK)
        print(FROZEN)
        return
    src = mpy_dir()
    v = version(src)
    if v != "1.28.0":
        say("warning: MPY_DIR is MicroPython %s; the ESP32 images this stands for are 1.28.0" % v)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.abspath(__file__), "rb") as f:
        me = hashlib.sha256(f.read()).hexdigest()
    fp = tree_fingerprint(src)
    firmware_manifest = os.path.join(ROOT, "firmware", "manifest.py")
    targets = (
        ("stock", STOCK_MANIFEST, "micropython32", STOCK, ""),
        ("frozen", STOCK_MANIFEST + 'include("%s")\n' % firmware_manifest, "micropython32-frozen", FROZEN,
         files_hash(frozen_inputs())),
    )
    stamps_path = os.path.join(OUT, "stamps.json")
    try:
        stamps = json.load(open(stamps_path))
    except (OSError, ValueError):
        stamps = {}
    work = None
    for name, manifest, prog, out, extra in targets:
        key = hashlib.sha256((src + fp + me + manifest + extra).encode()).hexdigest()
        if os.path.exists(out) and stamps.get(name) == key:
            say("%s is up to date" % os.path.relpath(out, ROOT))
            continue
        if work is None:
            ensure_compiler()
            work = sync_source(src, fp)
        build(work, name, manifest, prog, out)
        stamps[name] = key
        with open(stamps_path + ".tmp", "w") as f:
            json.dump(stamps, f)
        os.replace(stamps_path + ".tmp", stamps_path)
    for out in (STOCK, FROZEN):
        say("%s: MicroPython %s, 32-bit" % (os.path.relpath(out, ROOT), v))


if __name__ == "__main__":
    main()
