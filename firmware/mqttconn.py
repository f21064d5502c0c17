# The MQTT session's start (firmware/mqtt.py runs the session): the broker's address, the
# client connected with its last will, the subscriptions, and an earlier version's configs
# that arrive retained right after. Loaded only while one of these runs, never together
# with discovery's code (firmware/announce.py).
import socket

from firmware import log
from firmware.mqtt import _Sock, KEEPALIVE_S

LEGACY_MAX = 80  # more than any version announced


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
