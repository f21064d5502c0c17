# make check (tools/check.py) fails on what it is there to catch: a fake that offers more
# than MicroPython's stub of the module (a name, an argument, a keyword, an attribute, a
# constant's value),
# and device code that misuses the device's API; typing noise alone does not fail it.
# One board keeps it quick: the boards' stubs agree on everything used here.
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = "esp32_generic_c3"


def check(*args):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "check.py"), "--board", BOARD,
                        "--fakes-only"] + list(args), capture_output=True, text=True, cwd=ROOT)
    return p.returncode, p.stdout + p.stderr


def edit(path, old, new):
    text = open(path).read()
    assert old in text, old
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


def test_the_fakes_as_they_are_pass():
    rc, out = check()
    assert rc == 0, out
    assert "0 fake mismatches" in out


def test_a_fake_offering_more_than_its_stub_fails(tmp_path):
    fakes = tmp_path / "fakes"
    shutil.copytree(os.path.join(ROOT, "host_tests", "fakes"), fakes)
    m = str(fakes / "machine.py")
    with open(m, "a") as f:
        f.write("\n\ndef frobnicate():\n    pass\n")                     # a name the device lacks
    edit(m, "def reset():", "def reset(hard=False):")                    # an argument it lacks
    edit(m, "def value(self, __v=None):", "def value(self, v=None):")    # v= by keyword
    edit(m, "self.tx = bytearray()  # test-only", "self.tx = bytearray()")  # an attribute
    edit(str(fakes / "network.py"), "def scan(self):", "def scan(self, passive=False):")
    edit(str(fakes / "network.py"), "STAT_GOT_IP = 1010", "STAT_GOT_IP = 1011")  # another value
    test = tmp_path / "mp_test_x.py"
    test.write_text("class S:  # fake of socket.socket\n"
                    "    def sendall(self, __b, __flags):\n        pass\n\n\n"
                    "class T:  # fake of socket.socket\n"
                    "    def close(self):  # as the device's\n        pass\n")
    rc, out = check("--fakes", str(fakes), "--fake-tests", str(test))
    assert rc == 1, out
    for what in ("offers machine.frobnicate()", "offers machine.reset(hard: Any)",
                 "offers machine.Pin.value(v: Any)", "offers machine.UART.tx,",
                 "offers network.WLAN.scan(passive: Any)",
                 "offers socket.socket.sendall(__b: Any, __flags: Any)",
                 "network.STAT_GOT_IP = 1011, the stub says 1010"):
        assert what in out, (what, out)
    assert "7 fake mismatches" in out, out
    assert "socket.socket.close" not in out  # what the device has passes


def test_device_code_misusing_the_api_fails_and_typing_noise_does_not(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time\n"
                   "import machine\n"
                   "import nosuchmodule\n"                        # unknown module
                   "from machine import NoSuchThing\n"            # unknown import name
                   "time.ticks_foo()\n"                           # unknown attribute
                   "machine.UART(1, baudrat=9600)\n"              # unknown keyword
                   "time.sleep_ms(1, 2)\n"                        # too many arguments
                   "import pytest\n")                             # the host's, not the device's
    noise = tmp_path / "noise.py"
    noise.write_text("import time\n"
                     "v = 1 if time.ticks_ms() else 's'\n"
                     "v.upper()\n"                                # a union (as of dict values)
                     "x = None if time.ticks_ms() else 'y'\n"
                     "x.upper()\n")                               # optional narrowing
    rc, out = check("--code", str(noise))
    assert rc == 0 and "2 typing noise" in out, out
    rc, out = check("--code", str(bad))
    assert rc == 1, out
    assert "6 API errors" in out, out
    for line in range(3, 9):
        assert "bad.py:%d:" % line in out, (line, out)


def test_the_allow_list_wants_a_reason_and_a_proof_that_holds(tmp_path):
    src = tmp_path / "mpy"
    (src / "extmod").mkdir(parents=True)
    (src / "extmod" / "x.py").write_text("def core():\n    pass\n")
    allow = tmp_path / "allow.txt"
    allow.write_text("firmware/a.py: one\n"
                     "    why: a stub is wrong\n"
                     "    proof: extmod/x.py:1: def core():\n"      # holds
                     "firmware/b.py: two\n"
                     "    why: a stub is wrong\n"
                     "    proof: extmod/x.py:2: def core():\n"      # line 2 says something else
                     "firmware/c.py: three\n"
                     "    proof: extmod/x.py:1: def core():\n")     # no reason
    env = dict(os.environ, MPY_DIR=str(src))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "check.py"), "--board", BOARD,
                        "--fakes-only", "--allow", str(allow)], capture_output=True, text=True, env=env)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "allow.txt:4: proof extmod/x.py:2 does not say 'def core():'" in out, out
    assert "allow.txt:7: the entry has no why" in out, out
    assert "allow.txt:1:" not in out, out


def test_get_or_set_is_checked_as_its_two_forms_only(tmp_path):
    """WLAN.config reads one value by name or sets by keyword, never both in one call: a fake
    marked '# get or set' is held to those two forms; unmarked, the same fake offers a call
    the device refuses (a name and keywords at once), and fails."""
    fakes = tmp_path / "fakes"
    shutil.copytree(os.path.join(ROOT, "host_tests", "fakes"), fakes)
    rc, out = check("--fakes", str(fakes))
    assert rc == 0, out
    edit(str(fakes / "network.py"), "**kw):  # get or set:", "**kw):  # read or set:")
    rc, out = check("--fakes", str(fakes))
    assert rc == 1 and "offers network.WLAN.config(__param: Any, **kw: object)" in out, out
