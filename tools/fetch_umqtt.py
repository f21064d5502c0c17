"""Fetch umqtt.simple 1.3.4 from PyPI for the host run, into .deps/umqtt/ (ignored by git).

pip cannot install that sdist (it has no setup.py), but it can find it: we ask pip to
download it, take the file's address from what pip says, fetch it ourselves and check
it against a pinned hash. On an ESP32, umqtt.simple is frozen into the firmware.
"""
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

NAME = "micropython-umqtt.simple"
VERSION = "1.3.4"
SHA256 = "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f"
MEMBER = "micropython-umqtt.simple-%s/umqtt/simple.py" % VERSION


def sdist_url():
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "-d", d, "%s==%s" % (NAME, VERSION)], capture_output=True, text=True)
        text = p.stdout + p.stderr
    m = re.search(r"(https?://\S+/micropython[-_.]umqtt[-_.]simple-%s\.tar\.gz)" % re.escape(VERSION), text)
    if not m:
        sys.exit("fetch_umqtt: pip did not name the %s %s sdist:\n%s" % (NAME, VERSION, text[-2000:]))
    return m.group(1)


def main(dest):
    with urllib.request.urlopen(sdist_url(), timeout=60) as r:
        data = r.read()
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        sys.exit("fetch_umqtt: sha256 mismatch: %s" % got)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        src = t.extractfile(MEMBER).read()
    os.makedirs(os.path.join(dest, "umqtt"), exist_ok=True)
    with open(os.path.join(dest, "umqtt", "__init__.py"), "w"):
        pass
    with open(os.path.join(dest, "umqtt", "simple.py"), "wb") as f:
        f.write(src)
    print("fetch_umqtt: %s %s -> %s/umqtt/simple.py" % (NAME, VERSION, dest))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".deps")
