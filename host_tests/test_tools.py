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
