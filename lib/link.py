# The TuyaMCU conversation, sans-IO: the caller hands in frames and the time (ms,
# MicroPython ticks), and takes out frames to send. Heartbeats, the handshake,
# answers to the MCU's questions, one paced send queue, and a query (0x08) when a meter
# that answers heartbeats has sent no report for poll_ms (some only report when asked).
#
#   ev = link.receive(now, cmd, buf, start, n)   # bit set of EV_* for one frame
#   data = link.poll(now)                         # bytes to write now, or None
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import tuya
from tuya import encode
from ticks import diff as _diff, add as _add

EV_ONLINE = const(1)    # the MCU answered after silence (or at start)
EV_OFFLINE = const(2)   # heartbeats went unanswered
EV_REBOOT = const(4)    # the MCU answered a heartbeat with 0 again: it restarted
EV_DPS = const(8)       # buf[start:start+n] holds DP records
EV_PRODUCT = const(16)  # product info arrived (link.product_key, link.mcu_version)
EV_SETUP = const(32)    # the MCU asks for Wi-Fi reset: enter setup mode

_HB_FAST = const(1000)     # ms between heartbeats until the MCU answers
_HB_SLOW = const(15000)    # ms between heartbeats while it does
_HB_MISSES = const(3)      # unanswered heartbeats in a row that mean the MCU is gone
_ANSWER_MS = const(300)    # how long a command waits for its answer
_RETRIES = const(2)        # sends after the first before giving up on a command
GAP_MS = const(10)         # quiet time between two frames we send
QUEUE_MAX = const(8)       # commands waiting; the oldest goes first when full

HEARTBEAT_FRAME = b"\x55\xaa\x00\x00\x00\x00\xff"


class Link:
    def __init__(self, wifi_state=4, poll_ms=30000):
        self.wifi_state = wifi_state  # what we tell the MCU (4: "cloud connected")
        self.poll_ms = poll_ms  # 0: never ask on our own
        self.rssi = -60
        self.clock = None  # function returning (y, mo, d, h, mi, s, weekday 1..7) or None
        self.online = False
        self.answered = False  # any heartbeat answered since start
        self.product_key = None
        self.mcu_version = None
        self.product_info = None
        self.mode = None
        self._queue = []     # (cmd, data) waiting for their turn
        self._replies = []   # frames answering the MCU: no answer expected, sent first
        self._inflight = None  # [cmd, frame, sent_at, sends]
        self._hb_due = None  # None: at the next poll
        self._misses = 0
        self._ev = 0  # events raised by timers, handed out by take_events
        self._last_tx = None
        self.last_rx = None
        self._quiet = 0  # when the last report came (or the last poll, or the MCU came online)
        # counters
        self.polls = 0
        self.tx = 0
        self.rx = 0
        self.retries = 0
        self.timeouts = 0
        self.unknown = 0
        self.last_unknown = None
        self.reboots = 0

    # --- what the app asks for ----------------------------------------------

    def send(self, cmd, data=b""):
        """Queue a command that expects an answer (paced, retried)."""
        if len(self._queue) >= QUEUE_MAX:
            self._queue.pop(0)
        self._queue.append((cmd, data))

    def set_wifi_state(self, state):
        if state != self.wifi_state:
            self.wifi_state = state
            if self.online:
                self.send(tuya.WIFI_STATE, bytes((state,)))

    def handshake(self):
        self._queue = []
        self.send(tuya.PRODUCT)
        self.send(tuya.MODE)
        self.send(tuya.WIFI_STATE, bytes((self.wifi_state,)))
        self.send(tuya.QUERY)

    # --- frames from the MCU -------------------------------------------------

    def receive(self, now, cmd, buf, start, n):
        self.rx += 1
        self.last_rx = now
        ev = 0
        inf = self._inflight
        if inf is not None:
            c = inf[0]
            if c == cmd or (cmd == tuya.REPORT and (c == tuya.SET_DP or c == tuya.QUERY)):
                self._inflight = None
        if cmd == tuya.HEARTBEAT:
            self._misses = 0
            first = n > 0 and buf[start] == 0
            if not self.online:
                self.online = True
                self._quiet = now
                ev |= EV_ONLINE
                self.handshake()
            elif first:
                self.reboots += 1
                ev |= EV_REBOOT
                self.handshake()
            self.answered = True
            self._hb_due = _add(now, _HB_SLOW)
        elif cmd == tuya.REPORT:
            ev |= EV_DPS
            self._quiet = now
        elif cmd == tuya.REPORT_ACK:
            ev |= EV_DPS
            self._quiet = now
            self._reply(tuya.REPORT_ACK_ANSWER, b"\x01")
        elif cmd == tuya.PRODUCT:
            self._product(bytes(buf[start:start + n]))
            ev |= EV_PRODUCT
        elif cmd == tuya.MODE:
            self.mode = bytes(buf[start:start + n])
        elif cmd == tuya.WIFI_STATE or cmd == tuya.SET_DP or cmd == tuya.QUERY:
            pass  # acks
        elif cmd == tuya.WIFI_RESET:
            self._reply(tuya.WIFI_RESET, b"")
            ev |= EV_SETUP
        elif cmd == tuya.LOCAL_TIME:
            self._reply(tuya.LOCAL_TIME, self._time())
        elif cmd == tuya.NET_STATUS:
            self._reply(tuya.NET_STATUS, bytes((self.wifi_state,)))
        elif cmd == tuya.WIFI_TEST:
            self._reply(tuya.WIFI_TEST, b"\x00\x00")
        elif cmd == tuya.RSSI:
            self._reply(tuya.RSSI, bytes((self.rssi & 0xFF,)))
        elif cmd == tuya.EXTENDED and n > 0 and buf[start] == 4:
            self._reply(tuya.EXTENDED, b"\x04\x00")
        else:
            self.unknown += 1
            self.last_unknown = cmd
        return ev

    def _product(self, data):
        try:
            self.product_info = data.decode()
        except Exception:  # not UTF-8
            self.product_info = None
        try:
            import json
            info = json.loads(self.product_info)
            p = info.get("p")
            v = info.get("v")
            self.product_key = p if isinstance(p, str) else None
            self.mcu_version = v if isinstance(v, str) else None
        except Exception:
            # Some MCUs send a bare product key rather than JSON
            p = self.product_info
            if p and 8 <= len(p) <= 32 and " " not in p and "{" not in p:
                self.product_key = p

    def _time(self):
        t = self.clock() if self.clock else None
        if not t:
            return b"\x00" * 8
        y, mo, d, h, mi, s, wd = t
        return bytes((1, (y - 2000) & 0xFF, mo, d, h, mi, s, wd))

    def _reply(self, cmd, data):
        if len(self._replies) < QUEUE_MAX:
            self._replies.append(encode(cmd, data))

    # --- time passes ---------------------------------------------------------

    def poll(self, now):
        """The next frame to write now, or None. Call often (every few ms) and
        after every frame received."""
        if self._last_tx is not None and _diff(now, self._last_tx) < GAP_MS:
            return None
        if self._replies:
            return self._tx(now, self._replies.pop(0))
        inf = self._inflight
        if inf is not None:
            if _diff(now, inf[2]) < _ANSWER_MS:
                return None
            if inf[3] <= _RETRIES and inf[0] != tuya.HEARTBEAT:
                self.retries += 1
                inf[2] = now
                inf[3] += 1
                return self._tx(now, inf[1])
            self._inflight = None
            if inf[0] == tuya.HEARTBEAT:
                self._missed(now)
            else:
                self.timeouts += 1
        if self._hb_due is None or _diff(now, self._hb_due) >= 0:
            self._hb_due = _add(now, _HB_SLOW if self.online else _HB_FAST)
            self._inflight = [tuya.HEARTBEAT, HEARTBEAT_FRAME, now, 1]
            return self._tx(now, HEARTBEAT_FRAME)
        if self.online and self.poll_ms and _diff(now, self._quiet) >= self.poll_ms:
            # silent too long: ask, and not again before another poll_ms has passed
            self._quiet = now
            self.polls += 1
            self.send(tuya.QUERY)
        if self._queue and self.online:
            cmd, data = self._queue.pop(0)
            f = encode(cmd, data)
            self._inflight = [cmd, f, now, 1]
            return self._tx(now, f)
        return None

    def _missed(self, now):
        self._misses += 1
        if self.online and self._misses >= _HB_MISSES:
            self.online = False
            self._queue = []
            self._hb_due = now  # back to the fast rate
            self._ev |= EV_OFFLINE
        elif self.online:
            self._hb_due = _add(now, _HB_FAST)  # ask again soon rather than in 15 s

    def _tx(self, now, frame):
        self._last_tx = now
        self.tx += 1
        return frame

    def take_events(self):
        """Events raised while polling (EV_OFFLINE), once."""
        ev = self._ev
        self._ev = 0
        return ev

