# What MQTT (firmware/mqtt.py: the session) does rarely: its settings at start, the
# broker's address, the client connected with its last will, the subscriptions, and an
# earlier version's discovery configs (they arrive retained right after subscribing).
# Loaded only while one of these runs, never together with discovery's code
# (firmware/announce.py).
import os
import socket

from micropython import const

from firmware import board, log
from firmware.mqtt import _Sock, KEEPALIVE_S

LEGACY_MAX = const(80)  # more than any version announced
DEVICE_MS = const(300000)  # B/device (the device's health): at connect and this often


def init(q, app):
    """The Mqtt object's settings and counters."""
    q.app = app
    m = app.cfg["mqtt"]
    q.cfg = m
    q.base = m["base_topic"]
    q.prefix = m["discovery_prefix"]
    q.node = app.node_id
    q.client = None
    q.connected = False
    q.last_error = None
    q.publishes = 0
    q.mem_waits = 0  # announces that waited for room in the heap for their code
    q.connects = 0
    q.commands_ok = 0
    q.commands_bad = 0
    q._addr = None
    q._seq = -1          # meter.seq of the last state published
    q._disc_shape = None  # meter shape (layout and extras) whose entities are announced
    q._disc_due = False
    # Per-entity discovery configs of earlier versions, found on the broker: migrated to
    # the device message (their entities and history kept), then cleared. Looked for in
    # the first session after boot; None once done.
    q._legacy = []
    q.device_ms = DEVICE_MS
    if not board.ESP32 and os.getenv("SPM02_DEVICE_MS"):  # host-only test hook
        q.device_ms = int(os.getenv("SPM02_DEVICE_MS"))
    q._topic_cmd = (q.base + "/cmd/").encode()
    q._topic_ha = (q.prefix + "/status").encode()
    q._topic_disc = (q.prefix + "/").encode()


class _Net:
    """What umqtt.simple sees as its socket module while it connects (the only time it
    uses it): sockets that never block for long, and the broker's address as resolved once
    (getaddrinfo blocks)."""

    def __init__(self, addr):
        self.addr = addr

    def socket(self, *args):
        return _Sock(socket.socket(*args))

    def getaddrinfo(self, host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 0, "", self.addr)]


def connect(q):
    from umqtt import simple  # imported at start-up by app.main, see there
    cfg = q.cfg
    if q._addr is None:
        q._addr = socket.getaddrinfo(cfg["host"], cfg["port"])[0][-1]
    real = simple.socket
    simple.socket = _Net(q._addr)
    try:
        c = simple.MQTTClient(q.node, cfg["host"], cfg["port"],
                              user=cfg["user"] or None, password=cfg["password"] or None,
                              keepalive=KEEPALIVE_S)
        c.set_callback(q._message)
        c.set_last_will(q.base + "/availability", "offline", retain=True)
        q.client = c
        c.connect()
    finally:
        simple.socket = real  # not _Net: this module's code is not kept by it
    q.connects += 1
    q.connected = True
    q.last_error = None
    log.info("mqtt: connected to %s:%d", cfg["host"], cfg["port"])
    c.subscribe(q.base + "/cmd/+")
    c.subscribe(q.prefix + "/status")
    if q._legacy is not None:
        c.subscribe(q.prefix + "/+/" + q.node + "/+/config")


def old_config(q, topic, msg):
    """A per-entity config an earlier version left: tell Home Assistant it moves to the
    device message (so the entity and its history stay), clear it after that message."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[1] == "device" or not msg or bytes(msg[:12]) == b'{"migrate_di':
        return  # ours: the device message, our migration notes and clears coming back
    if q._legacy is not None and topic not in q._legacy and len(q._legacy) < LEGACY_MAX:
        q._legacy.append(topic)
        q.client.publish(topic, b'{"migrate_discovery": true}', True)


async def clear_legacy(q):
    """After the device message: the per-entity configs of earlier versions cleared, and
    their subscription ended."""
    import asyncio
    legacy = q._legacy
    for topic in legacy:
        q.client.publish(topic, b"", True)
        await asyncio.sleep_ms(0)  # let the UART tasks run between publishes
    if legacy:
        log.info("mqtt: %d per-entity configs of an earlier version migrated and cleared", len(legacy))
    q._legacy = None
    if hasattr(q.client, "unsubscribe"):  # umqtt.simple 1.7 has it, 1.3.4 not: then ignored
        q.client.unsubscribe(q.prefix + "/+/" + q.node + "/+/config")
    log.info("mqtt: discovery sent")
