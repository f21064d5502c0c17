# MQTT for Home Assistant on umqtt.simple (the ESP32's frozen 1.7.x or PyPI's 1.3.4 on
# the host). umqtt.simple blocks, so every socket it gets has a timeout, the broker's
# address is resolved once, and the loop polls it without ever waiting on it.
import gc
import time

import asyncio
from micropython import const

from firmware import log
from firmware.borrow import borrow, TURN

TYPE_CHECKING = const(0)  # pyright reads this block (and the annotations); MicroPython compiles none of it
if TYPE_CHECKING:
    from typing import Any

TIMEOUT_S = const(2)     # longest any single socket call may block the loop
KEEPALIVE_S = const(60)
BURST_MS = const(30)     # a report burst is over when the UART was quiet this long
POLL_MS = const(20)
BACKOFF_MAX = const(60)
LEGACY_MS = const(1000)  # retained configs of earlier versions arrive within this after subscribing


class _Sock:
    """The broker's socket as umqtt.simple sees it. Both versions make it blocking at
    times (1.7.0's connect() sets timeout None; wait_msg() reads the rest of a packet with
    setblocking(True)), and a blocking call would stall the whole loop on a broker that
    goes quiet: here blocking means at most TIMEOUT_S."""

    def __init__(self, s):
        self.s = s
        s.settimeout(TIMEOUT_S)
        # the rest is the socket's own: no call of ours in between
        self.connect = s.connect
        self.read = s.read
        self.write = s.write
        self.close = s.close

    def settimeout(self, t):
        self.s.settimeout(TIMEOUT_S if t is None or t > TIMEOUT_S else t)

    def setblocking(self, flag):
        self.s.settimeout(TIMEOUT_S if flag else 0)


class Mqtt:
    # set by firmware/mqttconn.py's init(), whose code is in the heap only while it runs
    app: Any
    cfg: dict
    base: str
    prefix: str
    node: str
    client: Any
    connected: bool
    last_error: Any
    publishes: int
    mem_waits: int
    connects: int
    commands_ok: int
    commands_bad: int
    device_ms: int
    _addr: Any
    _seq: int
    _disc_shape: Any
    _disc_due: bool
    _legacy: Any
    _avail: Any
    _topic_cmd: bytes
    _topic_ha: bytes
    _topic_disc: bytes

    def __init__(self, app):
        with borrow("firmware.mqttconn") as conn:  # its code only while it runs
            conn.init(self, app)

    async def run(self):
        if not self.cfg["host"]:
            log.info("mqtt: no mqtt.host set, MQTT off")
            return
        delay = 1
        while True:
            self.app.beat("mqtt")
            try:
                async with TURN:  # its code borrowed: one such job at a time (firmware/borrow.py)
                    self._connect()
                await self._session()
            except Exception as e:
                if self.connected:
                    delay = 1  # it had connected: the backoff starts again
                self.last_error = repr(e)
                log.warn("mqtt: %r; again in %d s", e, delay)
            self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _connect(self):
        # Not in run: a local there would keep the borrowed module for the session
        with borrow("firmware.mqttconn") as conn:  # the connect and subscriptions, only while they run
            conn.connect(self)

    def _close(self):
        self.connected = False
        c = self.client
        self.client = None
        if c is not None and c.sock is not None:
            try:
                c.sock.close()
            except Exception:
                pass

    async def _session(self):
        c = self.client
        self._avail = None
        subscribed = time.ticks_ms()
        self._disc_shape = None
        self._seq = -1
        last_ping = time.ticks_ms()
        device_at = None
        while True:
            # what the broker sent, a few messages per turn
            for _ in range(4):
                if c.check_msg() is None:
                    break
            # Available while the meter's MCU answers: stale readings show as unavailable
            online = self.app.mcu.link.online
            if online != self._avail:
                c.publish(self.base + "/availability", "online" if online else "offline", True)
                self._avail = online
            m = self.app.mcu.meter
            now = time.ticks_ms()
            if device_at is None or time.ticks_diff(now, device_at) >= self.device_ms:
                device_at = now
                self.publish_device()
            if m.seq != self._seq and time.ticks_diff(now, self.app.link.last_rx) >= BURST_MS:
                # Announce once the first report told us the layout, and old configs had
                # time to arrive (retained, right after the subscription), then the state.
                if self._disc_due or self._disc_shape != m.shape:
                    if time.ticks_diff(now, subscribed) < LEGACY_MS:
                        await asyncio.sleep_ms(POLL_MS)
                        continue
                    await self._announce(m)
                self._seq = m.seq
                async with TURN:  # not while an HTTP answer or a save holds the heap
                    self.publish_state()
            elif self._disc_due and self._disc_shape is not None:
                await self._announce(m)
            self.app.beat("mqtt")
            if time.ticks_diff(now, last_ping) > KEEPALIVE_S * 500:
                c.ping()
                last_ping = now
            await asyncio.sleep_ms(POLL_MS)

    def publish_device(self):
        # Not in _session: a local there would keep the borrowed module for the session
        try:
            with borrow("firmware.devinfo") as devinfo:  # its code only while it runs
                devinfo.publish(self)
        except MemoryError as e:  # (before any byte went): the next one, not a new session
            log.warn("mqtt: no B/device now: %r", e)

    def publish_state(self):
        self.publish_parts(self.base + "/state", self.app.mcu.meter.state_parts, True)
        self.publishes += 1

    def publish_parts(self, topic, parts, retain=False):
        """A PUBLISH (QoS 0) whose payload is the pieces of text parts() yields, written
        piece by piece, so that the whole payload is never in memory at once. parts is
        called twice: once to count the bytes the header needs, then to write them."""
        n = 0
        for p in parts():
            n += len(p.encode())  # bytes, not characters: the meter's strings may be UTF-8
        p = None
        gc.collect()  # the first pass's pieces, before the second makes them again
        t = topic.encode()
        size = 2 + len(t) + n
        head = bytearray(7)
        head[0] = 0x31 if retain else 0x30
        i = 1
        while size > 0x7F:
            head[i] = (size & 0x7F) | 0x80
            size >>= 7
            i += 1
        head[i] = size
        head[i + 1] = len(t) >> 8
        head[i + 2] = len(t) & 0xFF
        sock = self.client.sock
        sock.write(head, i + 3)
        sock.write(t)
        for p in parts():
            sock.write(p)

    async def _announce(self, m):
        async with TURN:  # one job with borrowed code at a time (firmware/borrow.py)
            for _ in range(50):
                gc.collect()  # what an answer or a save before left: the code in one piece
                loaded = False
                try:
                    with borrow("firmware.announce", "discovery") as announce:  # only while it runs
                        loaded = True
                        announce.send(self, m)
                    announce = None  # its code gone before the next's comes
                    if self._legacy is not None:  # then, not together: the old configs cleared
                        with borrow("firmware.mqttconn") as conn:
                            await conn.clear_legacy(self)
                    return
                except MemoryError:
                    if loaded:
                        raise  # a message may be cut: the session starts again
                    # no room for its code yet (the heap in pieces after a burst): wait for it
                    self.mem_waits += 1
                    await asyncio.sleep_ms(100)
            raise MemoryError("no room for discovery")

    def _message(self, topic, msg):
        topic = bytes(topic)
        if topic == self._topic_ha:
            if bytes(msg) == b"online":
                self._disc_due = True  # Home Assistant restarted: announce again
            return
        if self._legacy is not None and topic.startswith(self._topic_disc):
            try:
                with borrow("firmware.mqttconn") as conn:
                    conn.old_config(self, topic.decode(), msg)
            except Exception as e:  # a topic that is not UTF-8: not one of ours
                log.warn("mqtt: discovery topic ignored: %r", e)
            return
        if topic.startswith(self._topic_cmd):
            with borrow("firmware.mqttcmd", "commands") as mqttcmd:  # loaded only for a command
                mqttcmd.run(self, topic[len(self._topic_cmd):], msg)
