# A small fake of MicroPython's `network` for host tests: WLAN interfaces are
# singletons per interface (as on the ESP32), controlled through their attributes.
# make check holds it to MicroPython's stubs (see machine.py here): "# test-only" marks
# what only the tests use; a parameter named __x is positional-only.
FAKE = True  # test-only
STA_IF = 0
AP_IF = 1
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201

_wlans = {}
_hostname = ["espressif"]  # network.hostname(): before the station is up


def reset_all():  # test-only
    _wlans.clear()
    _hostname[0] = "espressif"


def hostname(__name=None):
    name = __name
    if name is None:
        return _hostname[0]
    if not isinstance(name, str) or not 0 < len(name) <= 32:
        raise ValueError("hostname too long")
    _hostname[0] = name


def WLAN(__interface=STA_IF):
    interface = __interface
    w = _wlans.get(interface)
    if w is None:
        w = _wlans[interface] = _WLAN(interface)
    return w


class _WLAN:  # fake of network.WLAN
    def __init__(self, interface):
        self.interface = interface  # test-only
        self.on = False  # test-only
        self.conf = {"mac": b"\x24\x0a\xc4\x12\xab\xcd", "channel": 6}  # test-only: what config("mac") etc. say
        self.connects = []          # test-only: (ssid, password) of every connect()
        self.disconnects = 0  # test-only
        self.succeed_after = 1      # test-only: isconnected() turns True on this connect() (None: never)
        self.connect_polls = 1      # test-only: isconnected() calls that still say False after a good connect()
        self._pending = 0
        self.connected = False  # test-only
        self.rssi = -57  # test-only
        self.scan_results = []      # test-only: what scan() returns
        self.scan_error = None      # test-only: an exception scan() raises instead
        self.scans = 0  # test-only

    def active(self, __on=None):
        on = __on
        if on is None:
            return self.on
        self.on = bool(on)
        if not on:
            self.connected = False

    def config(self, __param=None, **kw):  # get or set: read one by name (devinfo: mac), set by keyword
        if __param is not None:
            return self.conf[__param]
        self.conf.update(kw)

    def connect(self, __ssid=None, __key=None):
        ssid, key = __ssid, __key
        if not self.on:
            raise OSError("Wifi Not Started")
        self.connects.append((ssid, key))
        if self.succeed_after is not None and len(self.connects) >= self.succeed_after:
            self._pending = self.connect_polls + 1

    def disconnect(self):
        self.disconnects += 1
        self.connected = False
        self._pending = 0

    def drop(self):  # test-only
        """The access point went away."""
        self.connected = False
        self._pending = 0

    def isconnected(self):
        if self._pending:
            self._pending -= 1
            self.connected = not self._pending
        return self.connected

    def status(self, __param=None):
        param = __param
        if param == "rssi":
            if not self.connected:
                raise OSError("not connected")
            return self.rssi
        if param is not None:
            raise ValueError("unknown status param")
        return STAT_GOT_IP if self.connected else STAT_NO_AP_FOUND

    def ifconfig(self, __conf=None):
        if self.connected or self.interface == AP_IF:
            return ("192.168.4.1" if self.interface == AP_IF else "192.0.2.50",
                    "255.255.255.0", "192.0.2.1", "192.0.2.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def scan(self):
        self.scans += 1
        if self.scan_error:
            raise self.scan_error
        return list(self.scan_results)
