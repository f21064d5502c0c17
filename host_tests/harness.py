"""Real parts for end-to-end tests, all on 127.0.0.1: Mosquitto, the simulated meter,
and the firmware's own main.py running in the MicroPython unix port (via make run).
Every process started here is stopped by its owner."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "artifacts")
# The interpreter the firmware runs on (make run MICROPYTHON=...): the PyPI unix port by
# default; make test-32 sets it to each 32-bit runtime in turn.
MICROPYTHON = os.environ.get("SPM02_MICROPYTHON", "")


def free_port():
    """A loopback port free now, for a server a test starts a moment later (Mosquitto, the
    firmware's HTTP): below the kernel's ephemeral range (spm02sim.bind_low), since a port
    bind(0) handed out may be handed out again meanwhile as the source port of any outgoing
    connection (the tests make hundreds), and the server's bind would then fail. Random, so
    that test runs side by side rarely pick the same one; bound once to check."""
    from spm02sim import bind_low
    with socket.socket() as s:
        return bind_low(s, half=0)


# Every temp dir the tests make (tempdir): conftest.py removes them when the session ends
_tempdirs = []


def tempdir(prefix):
    """A new temp dir (a firmware's, a broker's, a browser profile), removed by
    remove_tempdirs(): at once by its owner, or with every other at the session's end."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def remove_tempdirs(*dirs):
    """Remove these temp dirs (made by tempdir), or every one not removed yet."""
    for d in dirs or list(_tempdirs):
        shutil.rmtree(d, ignore_errors=True)
        if d in _tempdirs:
            _tempdirs.remove(d)


class WaitTimeout(AssertionError, TimeoutError):
    """A wait that ended without its condition: an assertion failure that says what was
    awaited and what was seen (a TimeoutError too, for the waits that expect one)."""


# What a failed wait prints: the firmwares, MQTT watchers and simulators running now, each
# with its own tail (the firmware's log, the MQTT lines, the frames from the module)
_live = []


def live(x):
    if x not in _live:
        _live.append(x)
    return x


def gone(x):
    if x in _live:
        _live.remove(x)


def seen_now():
    out = []
    for x in _live[-6:]:
        try:
            out.append(x.seen())
        except Exception as e:  # what it saw cannot be read: say so, keep the rest
            out.append("%s: %r" % (type(x).__name__, e))
    return "\n".join(out)


def wait_until(pred, timeout=10.0, step=0.05, what="condition"):
    """pred() until it is true (and return that value), every step seconds; after timeout
    seconds a WaitTimeout naming what was awaited (what: text, or a function that says it
    then, with the figures of that moment), the condition's last value and the tails of
    everything running. A condition that raises ends the wait at once, with the same account."""
    end = time.monotonic() + timeout
    if callable(what):
        say = what
    else:
        def say():
            return what
    while True:
        try:
            v = pred()
        except Exception as e:
            raise WaitTimeout("waiting for %s: the condition raised %r\n%s" % (say(), e, seen_now())) from e
        if v:
            return v
        if time.monotonic() > end:
            raise WaitTimeout("timed out after %.1f s waiting for %s (the condition gave %r)\n%s"
                              % (timeout, say(), v, seen_now()))
        time.sleep(step)


def stop_all(*things):
    """Stop each (a watcher, a firmware, a simulator...), None skipped, whatever one of
    them raises: a test's cleanup stops every process it started."""
    for x in things:
        if x is not None:
            try:
                x.stop()
            except Exception:
                pass


def _stop(proc, sig=signal.SIGTERM):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Mosquitto:
    """Debian's mosquitto on a free loopback port; stop() and start() keep the port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempdir("mosq-")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % self.port)
        self.proc = None

    def start(self):
        exe = "mosquitto" if _which("mosquitto") else "/usr/sbin/mosquitto"
        self.log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen([exe, "-c", self.conf], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        # ours listening, not only something: a run beside this one may have taken the port
        # while the broker was down (a broker restart)
        wait_until(lambda: self.proc.poll() is not None or listening(self.proc.pid, self.port), 10,
                   what="mosquitto listening on its port %d" % self.port)
        assert self.proc.poll() is None, "mosquitto ended (port %d taken by another process?)" % self.port
        return self

    def stop(self):
        _stop(self.proc)
        self.proc = None


def _which(name):
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if os.access(os.path.join(d, name), os.X_OK):
            return True
    return False


def connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def _listeners(port):
    """The inodes of the sockets listening on port (Linux's /proc/net/tcp, tcp6)."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                for line in list(f)[1:]:
                    p = line.split()
                    if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                        out.add(p[9])
        except OSError:
            pass
    return out


def listening(pid, port):
    """Whether process pid is what listens on port: a run beside this one may take a port
    while the process that had it is down (a power cut, a broker restart), and a probe that
    only connects would take that process for ours."""
    inodes = _listeners(port)
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd))[8:-1] in inodes:  # "socket:[inode]"
                return True
        except OSError:
            pass
    return False


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _micropython_under(pid):
    """The pid of the MicroPython interpreter among pid's descendants, or None. The PyPI
    unix port is a Python script (python .../micropython main.py), the 32-bit ones are
    binaries (micropython32 main.py)."""
    todo = _children(pid)
    while todo:
        p = todo.pop(0)
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(os.path.basename(a).startswith(b"micropython") for a in argv[:2]) and b"main.py" in argv:
            return p
        todo += _children(p)
    return None


class Firmware:
    """main.py in the MicroPython unix port, started with `make run`."""

    def __init__(self, uart_port, mqtt_port=None, http_port=None, heapsize=None, micropython=None,
                 nofile=None, env=None, **extra):
        self.http_port = http_port or free_port()
        self.cfg = {"name": "spm02", "uart": {"url": "tcp://127.0.0.1:%d" % uart_port},
                    "mqtt": {"host": "127.0.0.1" if mqtt_port else "", "port": mqtt_port or 1883},
                    "http": {"port": self.http_port, "host": "127.0.0.1"}}
        for k, v in extra.items():
            if isinstance(v, dict):
                self.cfg.setdefault(k, {}).update(v)
            else:
                self.cfg[k] = v
        self.heapsize = heapsize
        self.micropython = MICROPYTHON if micropython is None else micropython
        self.nofile = nofile  # a file descriptor limit, to stand in for lwIP's 10 sockets
        self.env = env or {}  # more environment for make run (e.g. SPM02_OTA_KILL)
        self.dir = tempdir("fw-")
        self.cfg_path = os.path.join(self.dir, "config.json")
        self.log_path = os.path.join(self.dir, "firmware.log")
        self.proc = None

    def start(self, wait=True):
        if self.cfg["http"].get("port") == self.http_port and connectable(self.http_port):
            # another process took our port while this firmware was down (a run beside this
            # one): a firmware started on it would not listen, and a test would talk to that
            # process. Another port, as a device's address may change too.
            self.http_port = self.cfg["http"]["port"] = free_port()
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f)
        args = ["make", "-s", "--no-print-directory", "run", "CONFIG=" + self.cfg_path]
        if self.heapsize:
            args.append("HEAPSIZE=%s" % self.heapsize)
        if self.micropython:
            args.append("MICROPYTHON=%s" % self.micropython)
        self._log = open(self.log_path, "ab")
        limit = None
        if self.nofile:
            import resource
            n = self.nofile
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))  # noqa: E731
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=limit, env=dict(os.environ, **self.env))
        live(self)
        if wait:
            wait_until(lambda: self.proc.poll() is not None or self.listening(), 20,
                       what="firmware http")
            assert self.proc.poll() is None, self.log()
        return self

    def stop(self):
        """Stop make run and the firmware under it. make may be gone a moment before the
        interpreter it ran, whose listener then still answers: a firmware started next on
        the same port would seem up while a test talks to the dying one. So: until nothing
        answers on the port."""
        mp = _micropython_under(self.proc.pid) if self.proc else None
        _stop(self.proc)
        self.proc = None
        gone(self)
        wait_until(lambda: mp is None or not listening(mp, self.http_port), 10,
                   what="the stopped firmware's port closed")

    def restarts(self):
        """How many times make run started the firmware again (exit status 75: a restart)."""
        return self.log().count("make run: restart (exit status 75)")

    def answers(self):
        """/api/state answers 200 now (False while it is refused: restarting)."""
        try:
            return self.request("GET", "/api/state")[0] == 200
        except OSError:
            return False

    def listening(self):
        """This firmware's interpreter (not any process) listens on its HTTP port."""
        mp = _micropython_under(self.proc.pid) if self.proc else None
        return mp is not None and listening(mp, self.http_port)

    def seen(self, lines=40):
        """The tail of the firmware's log, for a failed wait."""
        rc = "running" if self.proc and self.proc.poll() is None else "make run ended: %r" % (
            self.proc and self.proc.poll(),)
        tail = self.log().splitlines()[-lines:]
        return "--- firmware on :%d (%s), its log's last %d lines ---\n%s" % (
            self.http_port, rc, len(tail), "\n".join(tail))

    def pid(self, timeout=10):
        """The MicroPython process running main.py now: make runs it from a shell loop that
        starts it again after a restart (exit status 75), so it is found among make's
        descendants, and a new one after each restart."""
        return wait_until(lambda: _micropython_under(self.proc.pid), timeout, what="the firmware process")

    def sockets(self, pid=None):
        """How many sockets the firmware process holds now."""
        pid = pid or self.pid()
        n = 0
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                    n += 1
            except OSError:
                pass  # closed meanwhile
        return n

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # --- HTTP ---------------------------------------------------------------

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def request(self, method, path, body=None, headers=None, timeout=5):
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def state(self):
        status, body = self.request("GET", "/api/state")
        assert status == 200, body
        return json.loads(body)

    def cmd(self, name, payload=b"", headers=None):
        if isinstance(payload, str):
            payload = payload.encode()
        return self.request("POST", "/api/cmd/" + name, payload, headers)


class Poller:
    """GET path again and again from a thread while a test does something else (a restart,
    a save): every answer kept as (status, body), a refused or cut connection as (None, its
    exception). Every 200 must be whole: check with whole_json()."""

    def __init__(self, fw, path="/api/state"):
        self.fw, self.path = fw, path
        self.answers = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.answers.append(self.fw.request("GET", self.path, timeout=5))
            except Exception as e:  # refused or reset while restarting: not an answer
                self.answers.append((None, e))
                time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self

    def whole_json(self):
        """The 200 answers that are not whole JSON (a cut one would look like a 200)."""
        bad = []
        for st, body in self.answers:
            if st == 200:
                try:
                    json.loads(body)
                except ValueError:
                    bad.append(body[-200:])
        return bad


class MqttWatch:
    """A paho-mqtt client that records every message under the given topics."""
    made = 0

    def __init__(self, port, topics=("#",)):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.messages = []  # (topic, payload bytes, retain)
        self.last = {}
        MqttWatch.made += 1  # one client id each: a broker drops a client whose id connects again
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="test-%d-%d" % (os.getpid(), MqttWatch.made))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p=None: [c.subscribe(t) for t in topics]
        self.acks = 0  # subscriptions the broker acknowledged
        self.client.on_subscribe = lambda *a: setattr(self, "acks", self.acks + 1)
        self.topics = topics
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        live(self)

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))
            self.last[msg.topic] = msg.payload

    def get(self, topic):
        with self.lock:
            return self.last.get(topic)

    def count(self, topic):
        with self.lock:
            return sum(1 for t, _, _ in self.messages if t == topic)

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, retain=retain).wait_for_publish(5)

    def sync(self, topic):
        """Publish a marker to topic (one this watcher subscribes to) and wait until it comes
        back: the broker keeps one client's messages in order, so everything it had sent this
        watcher before (the retained messages of its subscriptions) has arrived by then."""
        wait_until(lambda: self.acks >= len(self.topics), 10, what="the subscriptions acknowledged")
        MqttWatch.made += 1
        mark = ("sync-%d" % MqttWatch.made).encode()
        self.publish(topic, mark)
        wait_until(lambda: any(t == topic and p == mark for t, p, _ in list(self.messages)), 10,
                   what="the marker back on " + topic)

    def seen(self, lines=15):
        """The last MQTT messages received, for a failed wait."""
        with self.lock:
            tail = self.messages[-lines:]
            n = len(self.messages)
        return "--- MQTT: the last %d of %d messages (topic, retained, payload) ---\n%s" % (
            len(tail), n, "\n".join("%s %s %r" % (t, "R" if r else "-", p[:300]) for t, p, r in tail))

    def stop(self):
        gone(self)
        self.client.loop_stop()
        self.client.disconnect()


class Rig:
    """The end-to-end rig: the simulated meter, the firmware's main.py against it and, given a
    broker, an MqttWatch on that broker. Everything it starts, stop() stops (whatever each
    stop raises), and a constructor or start() that fails half-way stops what it had started
    before it raises. A test module may subclass it for helpers of its own.

    broker: a Mosquitto, or None for a firmware without MQTT; sim_layout: the simulator's;
    sim: more Simulator options (interval 3600 unless given: it reports only when asked, so
    the truth holds still); topics: what the watcher subscribes to; watch: when it is made:
    "start" (in start(), before the firmware: it sees all the firmware publishes), "started"
    (once the firmware is up) or "now" (here); start: start the firmware here too; every other
    keyword is the Firmware's (heapsize, env, micropython, nofile, config sections: layout, http, time...)."""

    def __init__(self, broker=None, sim_layout="v2", sim=None, topics=("#",), watch="start", start=False, **fw):
        from spm02sim import Simulator
        self.broker, self.topics, self.when = broker, topics, watch
        self.sim = self.fw = self.watch = None
        try:
            opts = {"interval": 3600}
            opts.update(sim or {})
            self.sim = Simulator(layout=sim_layout, port=0, **opts).start()
            self.fw = Firmware(self.sim.port, broker.port if broker else None, **fw)
            if watch == "now":
                self._watch()
            if start:
                self.start()
        except BaseException:
            self.stop()
            raise

    def _watch(self):
        if self.broker is not None and self.watch is None:
            self.watch = MqttWatch(self.broker.port, self.topics)
        return self.watch

    def start(self, before=None, wait=True):
        """Start the firmware (and the watcher, as the constructor's watch says); before(watch)
        runs once the watcher is there and before the firmware starts (watch="start")."""
        try:
            if self.when == "start" and self._watch() is not None and before:
                before(self.watch)
            self.fw.start(wait)
            if self.when == "started":
                self._watch()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, wait=True):
        """The firmware stopped and started again (same port, same files); the simulator and the
        watcher run on."""
        self.fw.stop()
        self.fw.start(wait)
        return self

    def stop(self):
        stop_all(self.watch, self.fw, self.sim)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def state(self):
        return self.fw.state()

    def values(self):
        return self.fw.state()["values"]

    def settled(self, timeout=15):
        """Wait until /api/state shows every value the simulator last sent."""
        def ok():
            truth = self.sim.truth()
            v = self.values()
            return truth and all(v.get(k) == truth[k] for k in truth) and (truth, v)
        try:
            return wait_until(ok, timeout, 0.1, "state to equal the simulator's truth")
        except TimeoutError:
            truth, v = self.sim.truth(), self.values()
            diff = {k: (truth[k], v.get(k)) for k in truth if v.get(k) != truth[k]}
            raise AssertionError("state differs from the simulator: %r\n%s" % (diff, self.fw.log()[-3000:]))

    def metrics(self):
        """/metrics parsed: {family name: family}."""
        from prometheus_client.parser import text_string_to_metric_families
        status, body = self.fw.request("GET", "/metrics")
        assert status == 200
        return {f.name: f for f in text_string_to_metric_families(body.decode())}


# --- helpers of more than one test module ---------------------------------------

def render_all(cmps, state):
    """Every template of the live components, rendered against the state as Home
    Assistant's Jinja2 would: {unique_id: text}."""
    import jinja2
    env = jinja2.Environment()
    env.filters["tojson"] = json.dumps
    out = {}
    for c in cmps.values():
        if "value_template" in c:
            out[c["unique_id"]] = env.from_string(c["value_template"]).render(value_json=state)
    return out


# What checkout_copy copies of this checkout
COPIED = ("lib", "firmware", "tools", "main.py", "boot.py", "Makefile", "requirements-dev.txt")


def checkout_copy(dst, version, edits=()):
    """A copy of this checkout (sharing its .venv and .deps) with another VERSION and edits
    [(file, old, new)], each of which must apply exactly once (old None: new goes first)."""
    os.makedirs(dst)
    for name in COPIED:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, os.path.join(dst, name))  # keeps times: make sees nothing to install
    for name in (".venv", ".deps"):
        os.symlink(os.path.join(ROOT, name), os.path.join(dst, name))
    edits = (("firmware/app.py", 'VERSION = "0.1.0"', 'VERSION = "%s"' % version),) + tuple(edits)
    for path, old, new in edits:
        p = os.path.join(dst, path)
        text = open(p).read()
        if old is None:
            text = new + text
        else:
            assert text.count(old) == 1, (path, old)
            text = text.replace(old, new)
        with open(p, "w") as f:
            f.write(text)
    return dst
