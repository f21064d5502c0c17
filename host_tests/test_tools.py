"""make build, deploy, flash and console: the build tree and the commands they print."""
import json
import os
import subprocess

from harness import ROOT


def make(*args):
    p = subprocess.run(["make", "-s", "--no-print-directory"] + list(args), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def commands(out):
    return [line[2:].split() for line in out.splitlines() if line.startswith("$ ")]


def test_build_tree():
    rc, out = make("build")
    assert rc == 0, out
    b = os.path.join(ROOT, "build")
    for f in ("boot.py", "main.py", "lib/tuya.mpy", "lib/meter.mpy", "firmware/app.mpy",
              "firmware/page.html", "config.example.json"):
        assert os.path.isfile(os.path.join(b, f)), f
    assert not [n for n in os.listdir(os.path.join(b, "lib")) if n.endswith(".py")]
    sizes = json.load(open(os.path.join(b, "sizes.json")))
    assert sizes["mpy_bytes"] == sum(v for k, v in sizes["files"].items() if k.endswith(".mpy"))
    assert "total .mpy" in out
    ex = json.load(open(os.path.join(b, "config.example.json")))
    assert ex["uart"] == {"id": 1, "tx": 21, "rx": 20, "baudrate": 9600}


def test_deploy_dry_run():
    rc, out = make("deploy", "PORT=/dev/ttyACM0", "DRY=1")
    assert rc == 0, out
    (cmd,) = commands(out)
    assert cmd[0].endswith("mpremote") and cmd[1:3] == ["connect", "/dev/ttyACM0"]
    assert cmd[3:6] == ["fs", "cp", "-r"]
    assert {"build/lib", "build/firmware", "build/boot.py", "build/main.py"} <= set(cmd)
    assert cmd[-2:] == ["+", "reset"] and "config.json" not in out
    assert "dry run" in out
    # the OTA pointer goes, so that what was copied runs
    assert "exec" in cmd and 'os.remove("ota/" + n)' in out and 'startswith("current")' in out


def test_deploy_with_config_dry_run():
    rc, out = make("deploy", "PORT=/dev/ttyUSB0", "CONFIG=host_tests/host-config.json", "DRY=1")
    assert rc == 0, out
    (cmd,) = commands(out)
    i = cmd.index(":config.json")
    assert cmd[i - 3:i] == ["fs", "cp", "host_tests/host-config.json"]


def test_deploy_needs_port():
    rc, out = make("deploy", "DRY=1")
    assert rc != 0 and "PORT=" in out


def test_flash_dry_run_offsets():
    for image, offset in (("ESP32_GENERIC_C3-20250415-v1.25.0.bin", "0"),
                          ("ESP32_GENERIC-20250415-v1.25.0.bin", "0x1000"),
                          ("ESP32_GENERIC_S3-20250415-v1.25.0.bin", "0"),
                          ("ESP32_GENERIC_C2-FLASH_2M-20250415-v1.25.0.bin", "0")):
        rc, out = make("flash", "PORT=/dev/ttyACM0", "FIRMWARE=" + image, "DRY=1")
        assert rc == 0, out
        erase, write = commands(out)
        assert erase[1:] == ["-m", "esptool", "--port", "/dev/ttyACM0", "erase-flash"]
        assert write[1:] == ["-m", "esptool", "--port", "/dev/ttyACM0", "--baud", "460800",
                             "write-flash", offset, image]


def test_console_dry_run():
    rc, out = make("console", "PORT=/dev/ttyACM0", "DRY=1")
    assert rc == 0
    assert commands(out) == [[commands(out)[0][0], "connect", "/dev/ttyACM0", "repl"]]


def fake_mpy_dir(tmp, full=False):
    """A stand-in for a MicroPython checkout: enough for make image to recognise one."""
    os.makedirs(os.path.join(tmp, "py"))
    open(os.path.join(tmp, "py", "mpconfig.h"), "w").close()
    if full:
        os.makedirs(os.path.join(tmp, "ports", "esp32"))
        open(os.path.join(tmp, "ports", "esp32", "Makefile"), "w").close()
    return tmp


def image(tmp, *args, idf=False, mpy_dir=None):
    env = dict(os.environ, MPY_DIR=mpy_dir if mpy_dir is not None else fake_mpy_dir(os.path.join(tmp, "mpy")))
    path = [d for d in env["PATH"].split(os.pathsep) if not os.path.exists(os.path.join(d, "idf.py"))]
    if idf:  # an idf.py on PATH, as after ESP-IDF's export.sh
        d = os.path.join(tmp, "idf")
        os.makedirs(d)
        with open(os.path.join(d, "idf.py"), "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(os.path.join(d, "idf.py"), 0o755)
        path.insert(0, d)
    env["PATH"] = os.pathsep.join(path)
    p = subprocess.run(["make", "-s", "--no-print-directory", "image"] + list(args), cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=env)
    return p.returncode, p.stdout + p.stderr


def app_version():
    import re
    return re.search(r'^VERSION = "([^"]+)"', open(os.path.join(ROOT, "firmware", "app.py")).read(), re.M).group(1)


def test_image_dry_run_without_idf_prints_the_container_build(tmp_path):
    rc, out = image(str(tmp_path), "BOARD=ESP32_GENERIC_C3", "DRY=1")
    assert rc == 0, out
    (cmd,) = commands(out)
    name = "ESP32_GENERIC_C3-spm02-%s.bin" % app_version()
    assert cmd[:2] == ["docker", "run"] and "espressif/idf:v5.5.1" in cmd
    assert "%s:/mpy" % os.path.join(str(tmp_path), "mpy") in cmd and "%s:/spm02" % ROOT in cmd
    inner = " ".join(cmd)
    assert "make -C /mpy/ports/esp32 BOARD=ESP32_GENERIC_C3 BUILD=/spm02/build/image/build-ESP32_GENERIC_C3 " \
           "FROZEN_MANIFEST=/spm02/build/image/manifest-ESP32_GENERIC_C3.py" in inner
    assert "submodules" in inner and "make -C /mpy/mpy-cross" in inner
    assert inner.rstrip("'").endswith("/spm02/build/image/" + name)
    assert "dry run" in out and "no ports/esp32/Makefile" in out
    # the image's manifest: the board's own, then ours, named so that it reads the same in a container
    m = open(os.path.join(ROOT, "build", "image", "manifest-ESP32_GENERIC_C3.py")).read()
    assert 'include("$(PORT_DIR)/boards/manifest.py")' in m and 'include("../../firmware/manifest.py")' in m


def test_image_without_idf_stops_with_the_command(tmp_path):
    rc, out = image(str(tmp_path), "BOARD=ESP32_GENERIC")
    assert rc != 0
    assert "idf.py is not on PATH" in out and commands(out)[0][:2] == ["docker", "run"]
    assert "FIRMWARE=build/image/ESP32_GENERIC-spm02-%s.bin" % app_version() in out


def test_image_dry_run_with_idf_prints_the_native_build(tmp_path):
    mpy = fake_mpy_dir(os.path.join(str(tmp_path), "mpy"), full=True)
    rc, out = image(str(tmp_path), "BOARD=ESP32_GENERIC", "DRY=1", idf=True, mpy_dir=mpy)
    assert rc == 0, out
    cmds = commands(out)
    b = os.path.join(ROOT, "build", "image")
    assert cmds == [
        ["make", "-C", mpy + "/mpy-cross"],
        ["make", "-C", mpy + "/ports/esp32", "BOARD=ESP32_GENERIC", "submodules"],
        ["make", "-C", mpy + "/ports/esp32", "BOARD=ESP32_GENERIC", "BUILD=%s/build-ESP32_GENERIC" % b,
         "FROZEN_MANIFEST=%s/manifest-ESP32_GENERIC.py" % b],
        ["cp", "%s/build-ESP32_GENERIC/firmware.bin" % b, "%s/ESP32_GENERIC-spm02-%s.bin" % (b, app_version())]]
    assert "no ports/esp32/Makefile" not in out


def test_image_refuses_bad_board_and_missing_mpy_dir(tmp_path):
    rc, out = image(str(tmp_path), "BOARD=ESP32_GENERIC_S3", "DRY=1")
    assert rc != 0 and "BOARD=ESP32_GENERIC_C3 or BOARD=ESP32_GENERIC" in out
    rc, out = image(str(tmp_path), "BOARD=ESP32_GENERIC_C3", "DRY=1", mpy_dir=str(tmp_path))
    assert rc != 0 and "not a MicroPython source tree" in out


def test_flash_takes_make_images_images():
    for image_name, offset in (("build/image/ESP32_GENERIC_C3-spm02-0.2.0.bin", "0"),
                               ("build/image/ESP32_GENERIC-spm02-0.2.0.bin", "0x1000")):
        rc, out = make("flash", "PORT=/dev/ttyACM0", "FIRMWARE=" + image_name, "DRY=1")
        assert rc == 0, out
        assert commands(out)[1][-2:] == [offset, image_name]


def test_deploy_for_a_custom_image_copies_main_and_pages_only():
    rc, out = make("deploy", "PORT=/dev/ttyACM0", "FROZEN=1", "DRY=1")
    assert rc == 0, out
    (cmd,) = commands(out)
    assert cmd[3:6] == ["fs", "cp", "-r"]
    assert cmd[6:9] == ["build/frozen-fs/firmware", "build/frozen-fs/boot.py", "build/frozen-fs/main.py"]
    staged = os.path.join(ROOT, "build", "frozen-fs", "firmware")
    assert sorted(os.listdir(staged)) == ["page.html", "settings.html", "setup.html"]  # the code is in the image


def test_ota_dry_run_builds_the_bundle():
    rc, out = make("ota", "DRY=1")
    assert rc == 0, out
    assert "dry run" in out
    ident = out.strip().splitlines()[-1]
    import hashlib
    import re
    import struct
    with open(os.path.join(ROOT, "build", "ota.bin"), "rb") as f:
        data = f.read()
    assert data[:8] == b"SPM02OTA"
    (n,) = struct.unpack(">I", data[8:12])
    head = data[12:12 + n]
    assert n <= 8192 and hashlib.sha256(head).hexdigest()[:12] == ident
    lines = [json.loads(x) for x in head.decode().splitlines()]  # JSON lines
    h, files = lines[0], lines[1:]
    app = open(os.path.join(ROOT, "firmware", "app.py")).read()
    assert h["format"] == 1 and h["version"] == re.search(r'^VERSION = "(.*)"', app, re.M).group(1)
    assert h["files"] == len(files) and head.endswith(b"\n")
    b = os.path.join(ROOT, "build")
    want = sorted(["lib/" + x for x in os.listdir(os.path.join(b, "lib")) if x.endswith(".mpy")] +
                  ["firmware/" + x for x in os.listdir(os.path.join(b, "firmware"))
                   if x.endswith((".mpy", ".html"))])
    assert [p for p, _, _ in files] == want  # sorted; never main.py, boot.py or a config
    i = 12 + n
    for path, size, sha in files:
        with open(os.path.join(b, path), "rb") as f:
            content = f.read()
        assert data[i:i + size] == content and size == len(content)
        assert hashlib.sha256(content).hexdigest() == sha
        i += size
    assert i == len(data)


def test_ota_needs_host_and_password_and_never_shows_the_password():
    rc, out = make("ota")
    assert rc != 0 and "HOST=" in out
    rc, out = make("ota", "HOST=127.0.0.1:1")
    assert rc != 0 and "PASSWORD=" in out
    rc, out = make("ota", "HOST=127.0.0.1:1", "PASSWORD=pw-$$never-shown", "WAIT=0")
    assert rc != 0 and "127.0.0.1:1" in out  # nothing listens there
    assert "never-shown" not in out


def test_bundle_writes_the_file_make_ota_would_upload():
    rc, out = make("bundle")
    assert rc == 0, out
    ident = out.strip().splitlines()[-1]
    import re
    app = open(os.path.join(ROOT, "firmware", "app.py")).read()
    ver = re.search(r'^VERSION = "(.*)"', app, re.M).group(1)
    path = os.path.join(ROOT, "build", "spm02-%s-%s.ota" % (ver, ident))
    assert os.path.isfile(path) and ("build/spm02-%s-%s.ota" % (ver, ident)) in out
    with open(path, "rb") as f:
        named = f.read()
    rc, out = make("ota", "DRY=1")  # the same build: the same id, the same bytes
    assert rc == 0, out
    assert out.strip().splitlines()[-1] == ident
    with open(os.path.join(ROOT, "build", "ota.bin"), "rb") as f:
        assert f.read() == named
