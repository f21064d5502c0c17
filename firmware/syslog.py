# Remote log: every log line as an RFC 5424 message over UDP to log.syslog ("host:port"),
#   <PRI>1 TIMESTAMP HOSTNAME spm02 - - - MSG
# facility user, severity from the level; HOSTNAME is the node id. Loaded only when
# configured. Sending never blocks (a non-blocking UDP socket; what cannot go is dropped
# and counted); the address is resolved once, by the app, when the network is up.
import socket
import time

try:
    from micropython import const
except ImportError:  # the config check uses parse_target on CPython too
    def const(x):
        return x

FACILITY = const(1)  # user-level messages
SEVERITY = {"E": 3, "W": 4, "I": 6, "D": 7}


def parse_target(text):
    """("host", port) from "host:port"; ValueError with the reason otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or " " in host:
        raise ValueError("must look like host:port")
    try:
        port = int(port)
    except ValueError:
        raise ValueError("the port must be a number")
    if not 0 < port < 65536:
        raise ValueError("the port must be 1..65535")
    return host, port


class Syslog:
    def __init__(self, target, hostname):
        self.host, self.port = parse_target(target)
        self.hostname = hostname
        self.addr = None
        self.sock = None
        self.sent = 0
        self.dropped = 0
        self.error = None

    def resolve(self):
        """Resolve the address and open the socket: getaddrinfo blocks, so the app calls
        this once, when the network is up (and again later only if it failed)."""
        try:
            self.addr = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_DGRAM)[0][-1]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            self.sock = s
            self.error = None
            return True
        except Exception as e:
            self.error = repr(e)
            return False

    def send(self, level, msg):
        if self.sock is None:
            self.dropped += 1
            return
        t = time.gmtime()
        # a clock before NTP says 2000: RFC 5424's NILVALUE then, not a wrong date
        ts = "%04d-%02d-%02dT%02d:%02d:%02dZ" % t[:6] if t[0] >= 2024 else "-"
        try:
            self.sock.sendto(("<%d>1 %s %s spm02 - - - %s" % (
                FACILITY * 8 + SEVERITY.get(level, 6), ts, self.hostname, msg)).encode(), self.addr)
            self.sent += 1
        except OSError:  # no buffer, no route: the line is lost, the loop is not
            self.dropped += 1

    def status(self):
        return {"target": "%s:%d" % (self.host, self.port), "ready": self.sock is not None,
                "sent": self.sent, "dropped": self.dropped, "error": self.error}

    async def run(self, app):
        """Resolve the remote log's address once the network is up (getaddrinfo blocks: once,
        like MQTT's), send what was logged before, then every line as it is logged."""
        import asyncio  # here: the config check imports this module on CPython too
        from firmware import log
        s = self
        while True:
            if app.wifi is None or app.wifi.connected:
                if s.resolve():
                    break
                log.warn("syslog: cannot resolve %s: %s; again in 60 s", s.host, s.error)
                await asyncio.sleep(60)
            else:
                await asyncio.sleep(1)
        for line in log.lines():  # kept at log.level already
            t, level, msg = (line.split(" ", 2) + ["", ""])[:3]
            s.send(level, msg)
        log.configure(app.cfg["log"]["level"], s.send)
        log.info("syslog: sending to %s:%d", s.host, s.port)
