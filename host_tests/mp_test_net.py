# The ESP32 port's socket differences, with a fake of its lwIP sockets: setsockopt knows
# only a few options (and ignores its level), listen's backlog is 2 unless given, and
# setblocking(True) or settimeout(None) really blocks (the unix port keeps a receive
# timeout across them, so only a fake shows this). MicroPython only.
import sys

if "." not in sys.path:
    sys.path.append(".")  # `from firmware import ...`

from firmware import http, mqtt, mqttconn

SO_REUSEADDR = 4
LWIP_OPTIONS = (SO_REUSEADDR, 0x20, 0x19, 1, 0x400)  # REUSEADDR, BROADCAST, BINDTODEVICE, NODELAY, ADD_MEMBERSHIP


class LwipSocket:  # fake of socket.socket
    def __init__(self):
        self.calls = []  # test-only
        self.timeout = None  # test-only: None: blocking, as on lwIP

    def setsockopt(self, __level, __opt, __value):
        if __opt not in LWIP_OPTIONS:
            raise OSError(22)  # EINVAL
        self.calls.append(("setsockopt", __opt, __value))

    def bind(self, __addr):
        self.calls.append(("bind", __addr))

    def listen(self, __backlog=2):
        self.calls.append(("listen", __backlog))

    def setblocking(self, __flag):
        self.timeout = None if __flag else 0

    def settimeout(self, __t):
        self.timeout = __t

    def close(self):
        self.calls.append(("close",))

    def connect(self, __addr):
        self.calls.append(("connect", __addr))

    def read(self, __n):
        return b""

    def write(self, __buf):
        return len(__buf)


class LwipModule:  # fake of module socket
    SOL_SOCKET = 0xFFF
    SO_REUSEADDR = SO_REUSEADDR
    AF_INET = 2
    SOCK_STREAM = 1

    def __init__(self):
        self.made = []  # test-only

    def socket(self, __af=2, __type=1, __proto=0):
        s = LwipSocket()
        self.made.append(s)
        return s

    def getaddrinfo(self, __host, __port):
        return [(2, 1, 0, "", (__host, __port))]


def test_listener_uses_only_lwip_options_and_an_explicit_backlog():
    fake = LwipModule()
    old = http.socket
    http.socket = fake
    try:
        s = http.listen("0.0.0.0", 80)
    finally:
        http.socket = old
    assert s is fake.made[0]
    assert s.calls == [("setsockopt", SO_REUSEADDR, 1), ("bind", ("0.0.0.0", 80)), ("listen", http.BACKLOG)]
    assert http.BACKLOG == 1 and s.timeout == 0  # non-blocking: accepted only when readable


def test_listener_closes_its_socket_when_bind_fails():
    class Taken(LwipModule):
        def getaddrinfo(self, host, port):
            raise OSError(112)  # EADDRINUSE
    fake = Taken()
    old = http.socket
    http.socket = fake
    try:
        try:
            http.listen("0.0.0.0", 80)
            assert False, "listen did not raise"
        except OSError:
            pass
    finally:
        http.socket = old
    assert fake.made[0].calls[-1] == ("close",)  # no socket leaked: lwIP has 10


def test_mqtt_socket_never_blocks_longer_than_its_timeout():
    # what umqtt.simple does to its socket: 1.7.0's connect(timeout=None) -> settimeout(None);
    # wait_msg -> setblocking(True) after the first byte; check_msg -> setblocking(False)
    s = LwipSocket()
    w = mqtt._Sock(s)
    assert s.timeout == mqtt.TIMEOUT_S
    w.settimeout(None)
    assert s.timeout == mqtt.TIMEOUT_S
    w.setblocking(False)
    assert s.timeout == 0
    w.setblocking(True)
    assert s.timeout == mqtt.TIMEOUT_S
    w.settimeout(30)
    assert s.timeout == mqtt.TIMEOUT_S
    w.settimeout(1)
    assert s.timeout == 1


def test_mqtt_net_gives_umqtt_wrapped_sockets_and_the_resolved_address():
    net = mqttconn._Net(("192.0.2.7", 1883))
    old = mqttconn.socket
    fake = LwipModule()
    mqttconn.socket = fake
    try:
        s = net.socket()
    finally:
        mqttconn.socket = old
    assert isinstance(s, mqtt._Sock) and fake.made[0].timeout == mqtt.TIMEOUT_S
    assert net.getaddrinfo("broker.lan", 1883)[0][-1] == ("192.0.2.7", 1883)  # no DNS again
